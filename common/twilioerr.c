#include "twilioerr.h"

#include <stddef.h>

static const struct {
	int code;
	enum apierr err;
	const char *field;
} code_map[] = {
	{ 21211, APIERR_INVALID_PHONE_NUMBER, "to" },
	{ 21214, APIERR_INVALID_PHONE_NUMBER, "to" },
	{ 21217, APIERR_INVALID_PHONE_NUMBER, "to" },
	{ 21212, APIERR_INVALID_PHONE_NUMBER, "from" },
	{ 21210, APIERR_CALLER_ID_NOT_VERIFIED, "from" },
	{ 21215, APIERR_DESTINATION_NOT_ALLOWED, "to" },
	{ 21216, APIERR_DESTINATION_NOT_ALLOWED, "to" },
	{ 20003, APIERR_TWILIO_AUTH_FAILED, NULL },
	{ 20429, APIERR_TWILIO_UNAVAILABLE, NULL },
};

/* What clients are told, per operation, when Twilio's own text is not for
 * them. */
static const struct {
	const char *timeout, *down, *rate_limited, *unreadable, *unexpected, *local;
} texts[] = {
	[TWILIOERR_CREATE] = {
		"twilio did not answer in time; the call may or may not have been placed",
		"twilio could not be reached; no call was placed",
		"twilio is rate limiting requests; try again later",
		"twilio failed or answered unreadably; the call may or may not have been placed",
		"twilio answered with an unexpected response",
		"the call could not be placed",
	},
	[TWILIOERR_UPDATE] = {
		"twilio did not answer in time; the call may or may not have changed: retry",
		"twilio could not be reached; the call was not changed",
		"twilio is rate limiting requests; try again later",
		"twilio answered with an unexpected response; retry",
		"twilio answered with an unexpected response; retry",
		"the call could not be changed",
	},
};

static enum apierr error_of(const struct twilio_error *e, const char **field)
{
	size_t i;

	*field = NULL;
	if (e->kind == VERR_TIMEOUT)
		return APIERR_TWILIO_TIMEOUT;
	if (e->kind == VERR_UPSTREAM_DOWN)
		return APIERR_TWILIO_UNAVAILABLE;
	if (e->kind != VERR_UPSTREAM)
		return APIERR_INTERNAL;
	for (i = 0; i < sizeof code_map / sizeof code_map[0]; i++) {
		if (code_map[i].code == e->code) {
			*field = code_map[i].field;
			return code_map[i].err;
		}
	}
	if (e->http_status == 429 || (e->http_status >= 500 && e->http_status <= 599))
		return APIERR_TWILIO_UNAVAILABLE;
	if (e->may_exist && e->http_status >= 200 && e->http_status <= 299)
		return APIERR_OUTCOME_UNKNOWN; /* Twilio said yes in a way we cannot read */
	return APIERR_TWILIO_ERROR;
}

static const char *message_of(const struct twilio_error *e, enum twilioerr_op op)
{
	if (e->kind == VERR_UPSTREAM && e->code != 0 && e->http_status >= 400 &&
	    e->http_status <= 499 && e->message[0] != '\0')
		return e->message;
	switch (e->kind) {
	case VERR_TIMEOUT:
		return texts[op].timeout;
	case VERR_UPSTREAM_DOWN:
		return texts[op].down;
	case VERR_UPSTREAM:
		if (e->http_status == 429)
			return texts[op].rate_limited;
		return e->may_exist ? texts[op].unreadable : texts[op].unexpected;
	default:
		return texts[op].local;
	}
}

void twilioerr_map(const struct twilio_error *e, enum twilioerr_op op, struct apierr_detail *out)
{
	const char *field;

	if (op != TWILIOERR_UPDATE)
		op = TWILIOERR_CREATE;
	out->code = error_of(e, &field);
	out->message = message_of(e, op);
	out->field = op == TWILIOERR_CREATE ? field : NULL;
	out->twilio_code = e->code;
	out->retry_after = e->retry_after;
	if (out->retry_after <= 0)
		out->retry_after = op == TWILIOERR_CREATE && apierr_status(out->code) == 503
		                           ? TWILIOERR_RETRY_S : 0;
}
