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

/* The payload of an event we make up ourselves (a status Twilio answered, a
 * reconciled call): {"key":"value",…} for the n pairs kv[i] = { key, value }
 * whose value is neither NULL nor "", in order. NULL when out of memory; the
 * caller frees the string with free(). */
char *callback_payload_pairs(const char *const (*kv)[2], size_t n);

/* True for Twilio's nine CallStatus values. */
bool callback_status_valid(const char *s);

/*
 * The checks every Twilio callback form shares (this module's and
 * recording.h's). field/fieldsz: where the name of the offending parameter
 * goes (truncated to fit).
 */

/* True when s is one of the n strings of list. */
bool callback_one_of(const char *s, const char *const *list, size_t n);

/* True when s is text without control characters (below 0x20, 0x7f),
 * shorter than max bytes. */
bool callback_text_valid(const char *s, size_t max);

/* Reads the optional integer parameter key of f into *out: absent when it is
 * missing or empty, else a value in [min, max] (num_parse). False when it is
 * present and not such an integer. */
bool callback_opt_int(const struct form *f, const char *key, long long min, long long max,
                      long long absent, long long *out);

/* False, with the parameter's name in field, when one of the n parameters
 * named in typed stands more than once in f: a repeated one is ambiguous. */
bool callback_once(const struct form *f, const char *const *typed, size_t n, char *field,
                   size_t fieldsz);

/* Checks the form's AccountSid acct (NULL when absent) against ours:
 * VERR_OK, or "AccountSid" in field and VERR_INVALID when it is not an
 * account sid, VERR_FORBIDDEN when it names another account. */
enum verr callback_account_check(const char *acct, const char *account_sid, char *field,
                                 size_t fieldsz);

#endif
