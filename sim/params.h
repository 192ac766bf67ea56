#ifndef SIM_PARAMS_H
#define SIM_PARAMS_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"
#include "form.h"
#include "simerror.h"

/*
 * The Calls create operation of Twilio's REST API v2010
 * (twilio_api_v2010.json: POST /2010-04-01/Accounts/{AccountSid}/Calls.json,
 * requestBody CreateCallRequest): its form parameters and their validation.
 * Pure logic; no I/O.
 */

enum simparam_type {
	SIMPARAM_STRING = 0,
	SIMPARAM_INTEGER,
	SIMPARAM_BOOLEAN,
	SIMPARAM_ARRAY, /* repeated key, items of type string */
};

/* One parameter as the OAS describes it. enum_values and pattern are what
 * the OAS states (NULL when it states none); values is the sim's own list of
 * accepted values taken from the OAS descriptions (NULL when free text). */
struct simparam_spec {
	const char *name;
	enum simparam_type type;
	const char *format;               /* OAS "format", or NULL */
	const char *const *enum_values;   /* NULL-terminated, or NULL */
	const char *pattern;              /* OAS "pattern", or NULL */
	const char *const *values;        /* NULL-terminated, or NULL */
	long long min, max;               /* SIMPARAM_INTEGER range */
	size_t max_len;                   /* 0: FORM_MAX_VALUE */
};

/* The whole table (static, never NULL); *n receives its length. */
const struct simparam_spec *simparams_specs(size_t *n);

/* Static name of a type as the OAS spells it ("string", "integer", ...). */
const char *simparams_type_name(enum simparam_type t);

/* RecordingStatusCallbackEvent values, as a bit mask. */
enum simrecevent {
	SIMREC_IN_PROGRESS = 1u << 0,
	SIMREC_COMPLETED = 1u << 1,
	SIMREC_ABSENT = 1u << 2,
};

/* StatusCallbackEvent values (call_enum_event), as a bit mask. */
enum simevent {
	SIMEV_INITIATED = 1u << 0,
	SIMEV_RINGING = 1u << 1,
	SIMEV_ANSWERED = 1u << 2,
	SIMEV_COMPLETED = 1u << 3,
};

#define SIMPARAMS_MAX_E164 17

/* A validated create request. Strings are borrowed from the form passed to
 * simparams_validate and live as long as it; NULL when absent (an empty value
 * counts as absent). to and from are the E.164 forms (owned here). */
struct simcall_req {
	char to[SIMPARAMS_MAX_E164];
	char from[SIMPARAMS_MAX_E164];
	const char *url;
	const char *method;               /* "GET" or "POST" (default) */
	const char *fallback_url;
	const char *fallback_method;      /* default "POST" */
	const char *twiml;
	const char *application_sid;
	const char *status_callback;
	const char *status_callback_method; /* default "POST" */
	unsigned events;                  /* simevent mask; SIMEV_COMPLETED by default */
	long long timeout;                /* seconds, default 60 */
	bool record;
	const char *recording_status_callback;        /* NULL: no recording callbacks */
	const char *recording_status_callback_method; /* default "POST" */
	unsigned recording_events;        /* simrecevent mask; SIMREC_COMPLETED by default */
	int recording_channels;           /* 1 (mono, default) or 2 (dual) */
	const char *recording_track;      /* "inbound", "outbound", "both" (default) */
	bool test_credentials;            /* From is the magic +15005550006 */
};

/*
 * Validates a Calls create form as Twilio does and fills *out.
 * Checks, in order: every key is a CreateCallRequest parameter (else 400 /
 * 20001; real Twilio ignores unknown keys with warning 20001, the simulator
 * refuses them so our client is held to the OAS); only array parameters
 * repeat (400 / 21200); To present (21201) and a valid number (21211); From
 * present (21213) and valid (21212); Twilio's magic test numbers
 * (docs/TWILIO.md, "Test credentials and magic numbers": From +15005550001
 * 21212, any other +1500555000X From 21210; To +15005550001 21217,
 * +15005550002 21214, +15005550003 21215, +15005550004 21216); one of Url,
 * Twiml, ApplicationSid (21205); Url an absolute http(s) URL (21205);
 * *Method in GET|POST (21209); Timeout 1..600 (21208); SendDigits (21206);
 * every other typed value (21200).
 * Returns VERR_OK, or VERR_INVALID with *err filled (err->status 400).
 */
enum verr simparams_validate(const struct form *f, struct simcall_req *out, struct simerror *err);

/* True if in is a '+' followed by a valid phone number (phone_parse); its
 * E.164 form then goes to out. */
bool simparams_e164(const char *in, char out[SIMPARAMS_MAX_E164]);

/* True if s is an absolute http:// or https:// URL as url_check has it,
 * with a host name of letters, digits, '-' and '.' (URL_HOSTNAME: Twilio
 * refuses '_'), or an IPv6 literal in brackets. */
bool simparams_url_ok(const char *s);

/* Formats an E.164 number as Twilio's *_formatted fields do: "(415) 555-0100"
 * for +1 numbers with 10 national digits, the number unchanged otherwise.
 * out holds at least 32 bytes. */
#define SIMPARAMS_MAX_FORMATTED 32
void simparams_format_number(const char *e164, char out[SIMPARAMS_MAX_FORMATTED]);

#endif
