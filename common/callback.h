#ifndef VOICE_CALLBACK_H
#define VOICE_CALLBACK_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"
#include "form.h"

/*
 * A Twilio call webhook (status callback or Voice URL request) validated into
 * typed fields. Parameter names and values: docs/TWILIO.md, "Status
 * callbacks" (Twilio docs "StatusCallback" and "TwiML voice request"
 * parameters).
 */
#define CALLBACK_MAX_SID 35
#define CALLBACK_MAX_STATUS 16
#define CALLBACK_MAX_DIRECTION 24
#define CALLBACK_MAX_PARTY 65   /* From/To: E.164, client:…, sip:…, "anonymous" */
#define CALLBACK_MAX_ANSWERED_BY 32

struct call_event {
	char call_sid[CALLBACK_MAX_SID];
	char account_sid[CALLBACK_MAX_SID];
	char status[CALLBACK_MAX_STATUS];
	char direction[CALLBACK_MAX_DIRECTION];
	char from[CALLBACK_MAX_PARTY];
	char to[CALLBACK_MAX_PARTY];
	char answered_by[CALLBACK_MAX_ANSWERED_BY]; /* "" when absent */
	long long sequence_number;   /* -1 when absent */
	long long duration_seconds;  /* CallDuration; -1 when absent */
	long long sip_response_code; /* -1 when absent */
	char *payload;               /* every parameter as a JSON object; owned */
};

/*
 * Validates the webhook parameters f into ev. account_sid is ours: a callback
 * for another account is VERR_FORBIDDEN. Malformed or missing required
 * parameters are VERR_INVALID with the parameter's name in field. Repeated
 * keys become JSON arrays in the payload. On success the caller frees with
 * callback_event_free (safe on a zeroed or failed event).
 */
enum verr callback_parse(const struct form *f, const char *account_sid, struct call_event *ev,
                         char *field, size_t fieldsz);
void callback_event_free(struct call_event *ev);

/* Every parameter of f as one JSON object {"key":"value",…}, in the order
 * received; a key seen more than once becomes an array of its values. NULL
 * when out of memory; the caller frees the string with free(). */
char *callback_payload_json(const struct form *f);

/* True for Twilio's nine CallStatus values. */
bool callback_status_valid(const char *s);

#endif
