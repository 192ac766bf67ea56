#include "err.h"

const char *verr_strerror(enum verr e)
{
	static const char *const text[VERR__COUNT] = {
		[VERR_OK] = "success",
		[VERR_NOMEM] = "out of memory",
		[VERR_INVALID] = "invalid input",
		[VERR_TOOBIG] = "input too large",
		[VERR_CONFIG] = "configuration error",
		[VERR_NOTFOUND] = "not found",
		[VERR_CONFLICT] = "conflict",
		[VERR_DB] = "database error",
		[VERR_DB_DOWN] = "database unavailable",
		[VERR_IO] = "i/o error",
		[VERR_UPSTREAM] = "upstream error",
		[VERR_UPSTREAM_DOWN] = "upstream unavailable",
		[VERR_TIMEOUT] = "upstream timed out",
		[VERR_AUTH] = "authentication failed",
		[VERR_FORBIDDEN] = "forbidden",
	};
	if ((unsigned)e >= VERR__COUNT || text[e] == 0)
		return "unknown error";
	return text[e];
}
