#ifndef VOICE_CALLSQUERY_H
#define VOICE_CALLSQUERY_H

#include "apierr.h"
#include "cursor.h"
#include "err.h"

/*
 * The query string of GET /calls: status (one of Twilio's nine CallStatus
 * values), direction (inbound, outbound-api, outbound-dial), limit (1..100,
 * default 20) and cursor (an opaque cursor this service issued, common/cursor).
 * Each at most once; anything else is refused.
 */
#define CALLSQUERY_DEFAULT_LIMIT 20
#define CALLSQUERY_MAX_LIMIT 100

/* What one page of GET /calls selects (db_calls_list): status and direction
 * filter when non-NULL; after_created/after_sid (both or neither) continue
 * after a previous page's last row; owner: the key's name, NULL for every
 * call. Strings borrowed. */
struct callsquery_filter {
	const char *status, *direction, *after_created, *after_sid;
	const char *owner;
	int limit;
};

struct callsquery {
	struct callsquery_filter filter; /* points into the fields below */
	char status[16];
	char direction[24];
	char after_created[CURSOR_MAX_PIECE];
	char after_sid[CURSOR_MAX_PIECE];
};

struct callsquery_error {
	enum apierr code;  /* APIERR_INVALID_QUERY, _INVALID_VALUE, _UNKNOWN_FIELD */
	char field[64];    /* the parameter at fault, "" when none */
	char message[160];
};

/* Parses query (raw, form-encoded, may be "") into q. VERR_INVALID with err
 * filled; q is then unusable. q must not be copied (filter points into it). */
enum verr callsquery_parse(const char *query, struct callsquery *q, struct callsquery_error *err);

#endif
