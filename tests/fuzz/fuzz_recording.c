/*
 * form_parse then recording_parse on arbitrary bytes, as webhook_fcgi runs
 * them on a signed POST /twilio/recording body. Whatever validates must hold
 * typed fields within their caps (sids of the right kind, a known status, an
 * https media URL, an RFC 3339 start time or none) and a payload that is one
 * JSON object; whatever fails must name the parameter and leave nothing to
 * free. Each body is checked against our account and the one it names.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "callback.h"
#include "form.h"
#include "recording.h"
#include "sid.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define OURS "AC0123456789abcdef0123456789abcdef"

static void check(int cond, const char *what)
{
	if (!cond) {
		fprintf(stderr, "fuzz_recording: %s\n", what);
		abort();
	}
}

static void check_time(const char *t)
{
	size_t i;

	if (t[0] == '\0')
		return;
	/* YYYY-MM-DDTHH:MM:SSZ */
	check(strlen(t) == 20 && t[4] == '-' && t[7] == '-' && t[10] == 'T' && t[13] == ':' &&
	      t[16] == ':' && t[19] == 'Z', "started_at is not RFC 3339");
	for (i = 0; i < 19; i++)
		if (i != 4 && i != 7 && i != 10 && i != 13 && i != 16)
			check(t[i] >= '0' && t[i] <= '9', "started_at holds a non-digit");
}

static void run(const struct form *f, const char *account)
{
	struct recording_event ev;
	struct json_object *o;
	char field[64];
	enum verr e;

	memset(field, 0, sizeof field);
	e = recording_parse(f, account, &ev, field, sizeof field);
	if (e == VERR_OK) {
		check(strcmp(ev.account_sid, account) == 0, "accepted another account");
		check(sid_valid(ev.recording_sid, "RE"), "accepted a bad RecordingSid");
		check(sid_valid(ev.call_sid, "CA"), "accepted a bad CallSid");
		check(recording_status_valid(ev.status), "accepted a bad RecordingStatus");
		check(ev.media_url[0] == '\0' || strncmp(ev.media_url, "https://", 8) == 0,
		      "accepted a media URL that is not https");
		check(ev.channels >= 0 && ev.channels <= 2, "channels range");
		check(ev.duration_seconds >= -1 && ev.duration_seconds <= 100000000, "duration range");
		check(ev.error_code >= -1 && ev.error_code <= 999999, "error code range");
		check_time(ev.started_at);
		o = json_tokener_parse(ev.payload);
		check(o != NULL && json_object_is_type(o, json_type_object), "payload not an object");
		json_object_put(o);
	} else {
		check(e == VERR_INVALID || e == VERR_FORBIDDEN, "unexpected error");
		check(field[0] != '\0', "no field named");
		check(ev.payload == NULL, "failed parse left a payload");
	}
	recording_event_free(&ev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct form f = { 0 };
	char err[FORM_MAX_ERROR];
	const char *acct;

	if (form_parse((const char *)data, size, &f, err, sizeof err) != VERR_OK)
		return 0;
	run(&f, OURS);
	acct = form_get(&f, "AccountSid");
	if (acct != NULL && sid_valid(acct, "AC"))
		run(&f, acct);
	form_free(&f);
	return 0;
}
