#ifndef VOICE_FORM_H
#define VOICE_FORM_H

#include <stddef.h>

#include "buf.h"
#include "err.h"

/*
 * application/x-www-form-urlencoded bodies and query strings, as browsers and
 * Twilio encode them (WHATWG URL standard, "application/x-www-form-urlencoded
 * parsing"), but strict: a malformed escape is an error instead of being kept
 * literally. Every struct form holds only NUL-free, valid UTF-8 keys and
 * values within the caps below, in the order they were received.
 */
#define FORM_MAX_PARAMS 256    /* pairs per form */
#define FORM_MAX_KEY 256       /* decoded key bytes */
#define FORM_MAX_VALUE 16384   /* decoded value bytes */
#define FORM_MAX_ERROR 128     /* a detail buffer this size never truncates */

struct form_param {
	char *key;   /* decoded, NUL-terminated, owned by the form */
	char *value; /* decoded, NUL-terminated, "" when absent; owned by the form */
};

/* Zero-initialise ({0}) before use; release with form_free. */
struct form {
	struct form_param *params;
	size_t n;
	size_t cap;      /* params allocated */
	char *arena;     /* form_parse's decoded pairs (one block), or NULL */
	size_t arena_len;
};

/*
 * Decodes len bytes of data into out (which is overwritten, not freed first).
 * Pairs are split on '&' and at the first '='; '+' is a space; "%XX" takes
 * either hex case; repeated keys are kept in order; "k" alone gives value "";
 * empty pairs ("a=1&&b=2", a leading or trailing '&') are skipped.
 *
 * Errors (out is then zeroed and holds nothing to free):
 *   VERR_INVALID  '%' not followed by two hex digits, a NUL byte (raw or
 *                 decoded), or a decoded key or value that is not valid UTF-8
 *   VERR_TOOBIG   more than FORM_MAX_PARAMS pairs, a key over FORM_MAX_KEY
 *                 or a value over FORM_MAX_VALUE decoded bytes
 *   VERR_NOMEM
 * On error a lowercase detail naming the parameter (by key when it is short
 * printable ASCII, otherwise by position) is written to err when err is not
 * NULL and errsz > 0, e.g. "parameter 'To' is not valid utf-8"; it is never
 * longer than FORM_MAX_ERROR - 1 bytes. data may be NULL when len is 0.
 * On success the caller frees out with form_free.
 */
enum verr form_parse(const char *data, size_t len, struct form *out, char *err, size_t errsz);

/* Frees every pair and leaves f zeroed; f may be NULL or already zeroed. */
void form_free(struct form *f);

/*
 * The value of the first pair whose key equals key (byte-wise), or NULL.
 * Borrowed from f until it is changed or freed. f may be NULL.
 */
const char *form_get(const struct form *f, const char *key);

/* How many pairs have this key; 0 when f is NULL. */
size_t form_count(const struct form *f, const char *key);

/*
 * Appends a copy of the pair (key, value) to f.
 * Errors: VERR_INVALID (key or value NULL or not valid UTF-8), VERR_TOOBIG
 * (f already holds FORM_MAX_PARAMS pairs, or a cap on key or value length is
 * exceeded), VERR_NOMEM. f is unchanged on error.
 */
enum verr form_add(struct form *f, const char *key, const char *value) VOICE_MUST_USE;

/*
 * Appends "key=value" to b, preceded by '&' when b is not empty, encoded as
 * twilio-python sends bodies (urllib.parse.urlencode, i.e. quote_plus):
 * A-Z a-z 0-9 '-' '.' '_' '~' are kept, space becomes '+', every other byte
 * becomes "%XX" with uppercase hex. form_parse decodes the result back to the
 * same key and value.
 * Errors: VERR_INVALID (key or value NULL), VERR_TOOBIG (past b->max),
 * VERR_NOMEM. b is unchanged on error.
 */
enum verr form_append(struct buf *b, const char *key, const char *value) VOICE_MUST_USE;

#endif
