#ifndef VOICE_CALLREQ_H
#define VOICE_CALLREQ_H

#include <stdbool.h>
#include <stddef.h>

#include "apierr.h"
#include "err.h"
#include "phone.h"

/*
 * The POST /call request body (docs/API.md, "POST /call"): JSON parsed with
 * json-c into a typed struct against an allowlist of fields, each with a
 * validator.
 *
 * field      JSON type          rule
 * to         string, required   1..CALLREQ_MAX_NUMBER-1 bytes, no NUL; checked
 *                               as a phone number later (callreq_numbers)
 * from       string             as to; absent: the configured default
 * country    string             two ASCII letters naming a known country
 *                               (ISO 3166 alpha-2, either case; stored upper)
 * say        string             1..CALLREQ_MAX_SAY_CHARS characters, not
 *                               blank; only characters XML 1.0 allows and no
 *                               controls except tab, line feed and carriage
 *                               return (no other C0, no DEL, no C1 controls,
 *                               no U+FFFE/U+FFFF), so it can go into <Say>
 * url        string             absolute https:// URL, at most
 *                               CALLREQ_MAX_URL-1 bytes, RFC 3986 characters
 *                               only, a host, no user:password@
 * timeout    integer            5..600 (Twilio Calls API Timeout max 600);
 *                               1.0, 1e1, "30", true are wrong types
 * record, machine_detection     true or false
 * say and url are mutually exclusive. null is a wrong type for every field.
 *
 * The body must be I-JSON (RFC 7493): one object, UTF-8, no duplicate member
 * names; plus strict RFC 8259 syntax (no single quotes, NaN, Infinity,
 * comments, trailing commas, raw control characters in strings, trailing
 * data other than whitespace, NUL bytes, BOM).
 */

#define CALLREQ_MAX_BODY (16 * 1024) /* largest body accepted */
#define CALLREQ_MAX_NUMBER 65        /* PHONE_MAX_INPUT + NUL */
#define CALLREQ_MAX_SAY_CHARS 1000   /* Unicode code points */
#define CALLREQ_MAX_SAY (CALLREQ_MAX_SAY_CHARS * 4 + 1) /* UTF-8 bytes + NUL */
#define CALLREQ_MAX_URL 1025         /* 1024 bytes + NUL */
#define CALLREQ_TIMEOUT_MIN 5
#define CALLREQ_TIMEOUT_MAX 600

/* Absent optional strings are "" and absent booleans false. */
struct call_request {
	char to[CALLREQ_MAX_NUMBER];
	char from[CALLREQ_MAX_NUMBER];
	char country[3];
	char say[CALLREQ_MAX_SAY];
	char url[CALLREQ_MAX_URL];
	int timeout;            /* valid when has_timeout */
	bool has_from;
	bool has_timeout;
	bool record;
	bool machine_detection;
};

#define CALLREQ_MAX_FIELD 32
#define CALLREQ_MAX_MESSAGE 160

/*
 * What went wrong, ready for apierr_reply (common/apierr.h). field is ""
 * when no single field is at fault. code is one of:
 *   APIERR_INVALID_JSON       malformed, not I-JSON, not an object
 *   APIERR_PAYLOAD_TOO_LARGE  body over CALLREQ_MAX_BODY
 *   APIERR_UNKNOWN_FIELD      a member not in the allowlist
 *   APIERR_INVALID_TYPE       a member of the wrong JSON type
 *   APIERR_INVALID_VALUE      right type, value out of range or malformed
 *   APIERR_MISSING_FIELD      "to" absent
 *   APIERR_INVALID_PHONE_NUMBER     callreq_numbers: to/from invalid
 *   APIERR_DESTINATION_NOT_ALLOWED  callreq_numbers: policy refused "to"
 *   APIERR_INTERNAL           a local failure
 * Messages are human sentences; they quote no client-supplied value except
 * member names (truncated), never phone numbers.
 */
struct callreq_error {
	enum apierr code;
	char field[CALLREQ_MAX_FIELD];
	char message[CALLREQ_MAX_MESSAGE];
};

/*
 * Parses the len bytes at body (need not be NUL-terminated; borrowed for the
 * call only) into *out, which is fully overwritten. err is cleared on success.
 * Returns:
 *   VERR_OK
 *   VERR_INVALID  see err->code: APIERR_INVALID_JSON, _UNKNOWN_FIELD,
 *                 _INVALID_TYPE, _INVALID_VALUE, _MISSING_FIELD; err->field
 *                 names the member (the first offending one in body order)
 *   VERR_TOOBIG   len > CALLREQ_MAX_BODY (APIERR_PAYLOAD_TOO_LARGE)
 *   VERR_NOMEM    json-c could not allocate (APIERR_INTERNAL)
 * Phone numbers are not validated here beyond length: see callreq_numbers,
 * so that 400 (shape) and 422 (number) stay apart.
 */
enum verr callreq_parse(const char *body, size_t len, struct call_request *out,
                        struct callreq_error *err);

/*
 * Normalises req->to (national input read with req->country) and req->from
 * (default_from when req has no "from"; read with req->country as well) with
 * phone_parse, then applies policy to the destination. Fills *to and *from.
 * default_from may be NULL or "" (then "from" is required).
 * Returns:
 *   VERR_OK
 *   VERR_INVALID    err->code APIERR_INVALID_PHONE_NUMBER, field "to" or
 *                   "from"; for a missing caller ID APIERR_MISSING_FIELD,
 *                   field "from"
 *   VERR_FORBIDDEN  err->code APIERR_DESTINATION_NOT_ALLOWED, field "to"
 *   VERR_CONFIG     default_from was used and is not a valid number
 *                   (err->code APIERR_INTERNAL, no field)
 *   VERR_NOMEM, VERR_IO  from phone_parse (err->code APIERR_INTERNAL)
 * The caller ID is not checked against the policy: Twilio decides which
 * numbers may call from (a Twilio number or a verified caller ID).
 */
enum verr callreq_numbers(const struct call_request *req, const char *default_from,
                          const struct phone_policy *policy, struct phone_number *to,
                          struct phone_number *from, struct callreq_error *err);

#endif
