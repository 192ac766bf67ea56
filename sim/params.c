#include "params.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "num.h"
#include "phone.h"
#include "sid.h"
#include "url.h"

/* Inline TwiML limit (OAS: "Max 4000 characters"); bytes here. */
#define SIMPARAMS_MAX_TWIML 4000
/* SendDigits: "a maximum length of 32 digits" (OAS). */
#define SIMPARAMS_MAX_DIGITS 32
#define SIMPARAMS_MAX_URL 2048
#define SIMPARAMS_MAX_SHORT 256

static const char *const http_methods[] = { "GET", "POST", NULL };
static const char *const call_events[] = { "initiated", "ringing", "answered", "completed", NULL };
static const char *const rec_events[] = { "in-progress", "completed", "absent", NULL };
static const char *const rec_channels[] = { "mono", "dual", NULL };
static const char *const rec_tracks[] = { "inbound", "outbound", "both", NULL };
static const char *const machine_detection[] = { "Enable", "DetectMessageEnd", NULL };
static const char *const trims[] = { "trim-silence", "do-not-trim", NULL };
static const char *const bools[] = { "true", "false", NULL };

#define S(n) SIMPARAM_STRING, NULL, NULL, NULL, NULL, 0, 0, SIMPARAMS_MAX_SHORT
#define URI(n) SIMPARAM_STRING, "uri", NULL, NULL, NULL, 0, 0, SIMPARAMS_MAX_URL
#define METHOD SIMPARAM_STRING, "http-method", http_methods, NULL, NULL, 0, 0, 8
#define INT(lo, hi) SIMPARAM_INTEGER, NULL, NULL, NULL, NULL, (lo), (hi), 16

/* CreateCallRequest properties, in the OAS order. */
static const struct simparam_spec specs[] = {
	{ "To", SIMPARAM_STRING, "endpoint", NULL, NULL, NULL, 0, 0, SIMPARAMS_MAX_SHORT },
	{ "From", SIMPARAM_STRING, "endpoint", NULL, NULL, NULL, 0, 0, SIMPARAMS_MAX_SHORT },
	{ "Method", METHOD },
	{ "FallbackUrl", URI(0) },
	{ "FallbackMethod", METHOD },
	{ "StatusCallback", URI(0) },
	{ "StatusCallbackEvent", SIMPARAM_ARRAY, NULL, NULL, NULL, call_events, 0, 0, 64 },
	{ "StatusCallbackMethod", METHOD },
	{ "SendDigits", SIMPARAM_STRING, NULL, NULL, NULL, NULL, 0, 0, SIMPARAMS_MAX_DIGITS },
	{ "Timeout", INT(1, 600) },
	{ "Record", SIMPARAM_BOOLEAN, NULL, NULL, NULL, bools, 0, 0, 5 },
	{ "RecordingChannels", SIMPARAM_STRING, NULL, NULL, NULL, rec_channels, 0, 0, 8 },
	{ "RecordingStatusCallback", SIMPARAM_STRING, NULL, NULL, NULL, NULL, 0, 0, SIMPARAMS_MAX_URL },
	{ "RecordingStatusCallbackMethod", METHOD },
	{ "SipAuthUsername", S(0) },
	{ "SipAuthPassword", S(0) },
	{ "MachineDetection", SIMPARAM_STRING, NULL, NULL, NULL, machine_detection, 0, 0, 32 },
	{ "MachineDetectionTimeout", INT(3, 59) },
	{ "RecordingStatusCallbackEvent", SIMPARAM_ARRAY, NULL, NULL, NULL, rec_events, 0, 0, 64 },
	{ "Trim", SIMPARAM_STRING, NULL, NULL, NULL, trims, 0, 0, 16 },
	{ "CallerId", S(0) },
	{ "MachineDetectionSpeechThreshold", INT(1000, 6000) },
	{ "MachineDetectionSpeechEndThreshold", INT(500, 5000) },
	{ "MachineDetectionSilenceTimeout", INT(2000, 10000) },
	{ "AsyncAmd", SIMPARAM_STRING, NULL, NULL, NULL, bools, 0, 0, 5 },
	{ "AsyncAmdStatusCallback", URI(0) },
	{ "AsyncAmdStatusCallbackMethod", METHOD },
	{ "Byoc", SIMPARAM_STRING, NULL, NULL, "^BY[0-9a-fA-F]{32}$", NULL, 0, 0, 34 },
	{ "CallReason", S(0) },
	{ "CallToken", SIMPARAM_STRING, NULL, NULL, NULL, NULL, 0, 0, 4096 },
	{ "RecordingTrack", SIMPARAM_STRING, NULL, NULL, NULL, rec_tracks, 0, 0, 8 },
	{ "TimeLimit", INT(1, 86400) },
	{ "ClientNotificationUrl", URI(0) },
	{ "Url", URI(0) },
	{ "Twiml", SIMPARAM_STRING, "twiml", NULL, NULL, NULL, 0, 0, SIMPARAMS_MAX_TWIML },
	{ "ApplicationSid", SIMPARAM_STRING, NULL, NULL, "^AP[0-9a-fA-F]{32}$", NULL, 0, 0, 34 },
};

#undef S
#undef URI
#undef METHOD
#undef INT

const struct simparam_spec *simparams_specs(size_t *n)
{
	*n = sizeof specs / sizeof specs[0];
	return specs;
}

const char *simparams_type_name(enum simparam_type t)
{
	switch (t) {
	case SIMPARAM_STRING:
		return "string";
	case SIMPARAM_INTEGER:
		return "integer";
	case SIMPARAM_BOOLEAN:
		return "boolean";
	case SIMPARAM_ARRAY:
		return "array";
	}
	return "string";
}

static const struct simparam_spec *spec_find(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof specs / sizeof specs[0]; i++)
		if (strcmp(specs[i].name, name) == 0)
			return &specs[i];
	return NULL;
}

static bool in_list(const char *const *list, const char *v, bool nocase)
{
	for (; *list != NULL; list++)
		if ((nocase ? strcasecmp(*list, v) : strcmp(*list, v)) == 0)
			return true;
	return false;
}

/* The two OAS patterns used here: "^", two fixed letters, then 32 hex digits. */
static bool sid_ok(const char *pattern, const char *v)
{
	return strlen(pattern) > 3 && sid_valid(v, pattern + 1);
}

bool simparams_url_ok(const char *s)
{
	return url_check(s, URL_HTTP | URL_HOSTNAME) == VERR_OK;
}

void simparams_format_number(const char *e164, char out[SIMPARAMS_MAX_FORMATTED])
{
	size_t n = strlen(e164), i;

	if (n == 12 && strncmp(e164, "+1", 2) == 0) {
		for (i = 2; i < 12; i++)
			if (e164[i] < '0' || e164[i] > '9')
				break;
		if (i == 12) {
			snprintf(out, SIMPARAMS_MAX_FORMATTED, "(%.3s) %.3s-%.4s", e164 + 2,
			         e164 + 5, e164 + 8);
			return;
		}
	}
	str_copy(out, SIMPARAMS_MAX_FORMATTED, e164);
}

/* Twilio's magic test numbers: "+1500555000" followed by one digit. */
static int magic_digit(const char *v)
{
	if (strncmp(v, "+1500555000", 11) == 0 && v[11] >= '0' && v[11] <= '9' && v[12] == '\0')
		return v[11] - '0';
	return -1;
}

/* Checks each token of a space-separated value against list. */
static bool tokens_ok(const char *v, const char *const *list, unsigned *mask)
{
	char tok[64];
	size_t n;
	bool any = false;

	while (*v != '\0') {
		while (*v == ' ')
			v++;
		if (*v == '\0')
			break;
		for (n = 0; v[n] != '\0' && v[n] != ' '; n++)
			;
		if (n >= sizeof tok)
			return false;
		memcpy(tok, v, n);
		tok[n] = '\0';
		v += n;
		if (!in_list(list, tok, false))
			return false;
		if (mask != NULL) {
			size_t i;

			for (i = 0; list[i] != NULL; i++)
				if (strcmp(list[i], tok) == 0)
					*mask |= 1u << i;
		}
		any = true;
	}
	return any;
}

static bool digits_ok(const char *v)
{
	for (; *v != '\0'; v++)
		if (strchr("0123456789ABCD#*wW", *v) == NULL)
			return false;
	return true;
}

/* Validates one value against its spec; returns 0 or the Twilio code. */
static int value_check(const struct simparam_spec *s, const char *v)
{
	long long n;
	size_t max = s->max_len != 0 ? s->max_len : FORM_MAX_VALUE;

	if (strlen(v) > max)
		return strcmp(s->name, "SendDigits") == 0 ? 21206 : 21200;
	if (s->enum_values != NULL && !in_list(s->enum_values, v, false))
		return strstr(s->name, "Method") != NULL ? 21209 : 21200;
	if (s->pattern != NULL && !sid_ok(s->pattern, v))
		return 21200;
	switch (s->type) {
	case SIMPARAM_INTEGER:
		if (!num_parse(v, s->min, s->max, &n))
			return strcmp(s->name, "Timeout") == 0 ? 21208 : 21200;
		return 0;
	case SIMPARAM_BOOLEAN:
		return in_list(s->values, v, true) ? 0 : 21200;
	case SIMPARAM_ARRAY:
		return tokens_ok(v, s->values, NULL) ? 0 : 21200;
	case SIMPARAM_STRING:
		break;
	}
	if (s->values != NULL && !in_list(s->values, v, true))
		return 21200;
	if (s->format != NULL && strcmp(s->format, "uri") == 0 && !simparams_url_ok(v))
		return strcmp(s->name, "Url") == 0 ? 21205 : 21200;
	if (strcmp(s->name, "SendDigits") == 0 && !digits_ok(v))
		return 21206;
	return 0;
}

static const char *get(const struct form *f, const char *key)
{
	const char *v = form_get(f, key);

	return v != NULL && v[0] != '\0' ? v : NULL;
}

bool simparams_e164(const char *in, char out[SIMPARAMS_MAX_E164])
{
	struct phone_number pn;
	char why[PHONE_MAX_REASON];

	if (in[0] != '+' || phone_parse(in, NULL, &pn, why, sizeof why) != VERR_OK)
		return false;
	str_copy(out, SIMPARAMS_MAX_E164, pn.e164);
	return true;
}

enum verr simparams_validate(const struct form *f, struct simcall_req *out, struct simerror *err)
{
	const char *to, *from, *v;
	size_t i;
	int code, m;

	memset(out, 0, sizeof *out);
	memset(err, 0, sizeof *err);
	for (i = 0; i < f->n; i++) {
		const struct simparam_spec *s = spec_find(f->params[i].key);

		if (s == NULL)
			return simerror_invalid(err, 20001, "Unknown parameter: %s", f->params[i].key);
		if (s->type != SIMPARAM_ARRAY && form_count(f, s->name) > 1)
			return simerror_invalid(err, 21200, "Parameter %s was given more than once", s->name);
	}

	to = get(f, "To");
	from = get(f, "From");
	if (to == NULL)
		return simerror_invalid(err, 21201, "A 'To' phone number is required.");
	if (from == NULL)
		return simerror_invalid(err, 21213, "A 'From' phone number is required.");

	/* docs/TWILIO.md, "Test credentials and magic numbers": before any other
	 * check of the numbers. */
	m = magic_digit(from);
	if (m == 1)
		return simerror_invalid(err, 21212, "The 'From' number %s is not a valid phone number, shortcode, or alphanumeric sender ID.", from);
	if (m >= 0 && m != 6)
		return simerror_invalid(err, 21210, "The source phone number provided, %s, is not yet verified for your account. You may only make calls from phone numbers that you've verified or purchased from Twilio.", from);
	switch (magic_digit(to)) {
	case 1:
		return simerror_invalid(err, 21217, "Phone number %s does not appear to be valid", to);
	case 2:
		return simerror_invalid(err, 21214, "'To' phone number %s cannot be reached", to);
	case 3:
		return simerror_invalid(err, 21215, "Account not authorized to call %s. Perhaps you need to enable some international permissions: https://www.twilio.com/console/voice/calls/geo-permissions/low-risk", to);
	case 4:
		return simerror_invalid(err, 21216, "Call blocked by Twilio: %s", to);
	default:
		break;
	}
	if (m == 6) {
		out->test_credentials = true;
		str_copy(out->from, sizeof out->from, from);
	} else if (strlen(from) > SIMPARAMS_MAX_SHORT ||
	           !simparams_e164(from, out->from)) {
		return simerror_invalid(err, 21212, "The 'From' number %s is not a valid phone number, shortcode, or alphanumeric sender ID.", strlen(from) > 64 ? "given" : from);
	}
	if (strlen(to) > SIMPARAMS_MAX_SHORT || !simparams_e164(to, out->to))
		return simerror_invalid(err, 21211, "The 'To' number %s is not a valid phone number.", strlen(to) > 64 ? "given" : to);

	out->url = get(f, "Url");
	out->twiml = get(f, "Twiml");
	out->application_sid = get(f, "ApplicationSid");
	if (out->url == NULL && out->twiml == NULL && out->application_sid == NULL)
		return simerror_invalid(err, 21205, "Url parameter is required. Please provide a Url, Twiml or ApplicationSid.");

	for (i = 0; i < f->n; i++) {
		const struct simparam_spec *s = spec_find(f->params[i].key);

		v = f->params[i].value;
		if (v[0] == '\0' && strcmp(s->name, "To") != 0 && strcmp(s->name, "From") != 0)
			continue;
		if (strcmp(s->name, "To") == 0 || strcmp(s->name, "From") == 0)
			continue;
		code = value_check(s, v);
		if (code == 21205)
			return simerror_invalid(err, code, "Url is not a valid URL: %s", strlen(v) > 64 ? "given" : v);
		if (code != 0)
			return simerror_invalid(err, code, "Invalid value for parameter %s", s->name);
	}

	out->method = get(f, "Method") != NULL ? get(f, "Method") : "POST";
	out->fallback_url = get(f, "FallbackUrl");
	out->fallback_method = get(f, "FallbackMethod") != NULL ? get(f, "FallbackMethod") : "POST";
	out->status_callback = get(f, "StatusCallback");
	out->status_callback_method =
		get(f, "StatusCallbackMethod") != NULL ? get(f, "StatusCallbackMethod") : "POST";
	out->timeout = 60;
	if ((v = get(f, "Timeout")) != NULL)
		(void)num_parse(v, 1, 600, &out->timeout);
	out->record = (v = get(f, "Record")) != NULL && strcasecmp(v, "true") == 0;
	out->recording_status_callback = get(f, "RecordingStatusCallback");
	out->recording_status_callback_method = get(f, "RecordingStatusCallbackMethod") != NULL
	                                            ? get(f, "RecordingStatusCallbackMethod")
	                                            : "POST";
	for (i = 0; i < f->n; i++)
		if (strcmp(f->params[i].key, "RecordingStatusCallbackEvent") == 0)
			(void)tokens_ok(f->params[i].value, rec_events, &out->recording_events);
	if (out->recording_events == 0)
		out->recording_events = SIMREC_COMPLETED;
	out->recording_channels = (v = get(f, "RecordingChannels")) != NULL && strcmp(v, "dual") == 0
	                              ? 2 : 1;
	out->recording_track = get(f, "RecordingTrack") != NULL ? get(f, "RecordingTrack") : "both";
	for (i = 0; i < f->n; i++)
		if (strcmp(f->params[i].key, "StatusCallbackEvent") == 0)
			(void)tokens_ok(f->params[i].value, call_events, &out->events);
	if (out->events == 0)
		out->events = SIMEV_COMPLETED;
	return VERR_OK;
}
