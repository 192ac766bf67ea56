#ifndef VOICE_ERR_H
#define VOICE_ERR_H

/*
 * One error enum for the whole library. 0 means success everywhere; human
 * detail goes into a caller-supplied buffer or a struct field.
 */
enum verr {
	VERR_OK = 0,
	VERR_NOMEM,        /* allocation failed */
	VERR_INVALID,      /* input failed validation */
	VERR_TOOBIG,       /* a named maximum was exceeded */
	VERR_CONFIG,       /* configuration missing or malformed */
	VERR_NOTFOUND,     /* no such record */
	VERR_CONFLICT,     /* record exists in an incompatible state */
	VERR_DB,           /* database answered with an error */
	VERR_DB_DOWN,      /* database unreachable */
	VERR_IO,           /* I/O or system call failed */
	VERR_UPSTREAM,     /* upstream (Twilio) answered with an error */
	VERR_UPSTREAM_DOWN,/* upstream unreachable before the request was sent */
	VERR_TIMEOUT,      /* upstream did not answer in time */
	VERR_AUTH,         /* authentication failed */
	VERR_FORBIDDEN,    /* authenticated but not allowed */
	VERR__COUNT
};

/* On a function whose result says whether it did its job (an appender, a
 * setter): a caller that ignores it is a compile error under -Werror. */
#define VOICE_MUST_USE __attribute__((warn_unused_result))

/* Static, lowercase description of e; never NULL. */
const char *verr_strerror(enum verr e);

#endif
