/*
 * Twilio recording status callbacks (recording_parse): required parameters
 * missing or malformed, another account, the optional ones' ranges, repeats,
 * RecordingStartTime as RFC 3339 (or left out when it does not read), and
 * the stored payload. Parameters: Twilio's RecordingStatusCallback.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "form.h"
#include "recording.h"

#define OURS "AC0123456789abcdef0123456789abcdef"
#define OTHER "ACfedcba9876543210fedcba9876543210"
#define CALL "CA00112233445566778899aabbccddeeff"
#define REC "RE00112233445566778899aabbccddeeff"

static const char *const base[][2] = {
	{ "AccountSid", OURS },
	{ "CallSid", CALL },
	{ "RecordingSid", REC },
	{ "RecordingUrl", "https://api.twilio.com/2010-04-01/Accounts/" OURS "/Recordings/" REC },
	{ "RecordingStatus", "completed" },
	{ "RecordingDuration", "7" },
	{ "RecordingChannels", "1" },
	{ "RecordingStartTime", "Tue, 31 Aug 2010 20:36:28 +0000" },
	{ "RecordingSource", "OutboundAPI" },
	{ "RecordingTrack", "both" },
	{ "ErrorCode", "0" },
};
#define NBASE (sizeof base / sizeof base[0])

/* base with key set to value (NULL: removed; key not in base: added). */
static void build(struct form *f, const char *key, const char *value)
{
	size_t i;
	bool seen = false;

	memset(f, 0, sizeof *f);
	for (i = 0; i < NBASE; i++) {
		if (key != NULL && strcmp(base[i][0], key) == 0) {
			seen = true;
			if (value != NULL)
				assert_int_equal(form_add(f, key, value), VERR_OK);
			continue;
		}
		assert_int_equal(form_add(f, base[i][0], base[i][1]), VERR_OK);
	}
	if (key != NULL && !seen && value != NULL)
		assert_int_equal(form_add(f, key, value), VERR_OK);
}

static void test_valid(void **state)
{
	struct form f;
	struct recording_event ev;
	struct json_object *o, *v;
	char field[64] = "";

	(void)state;
	build(&f, "Extra", "kept");
	assert_int_equal(recording_parse(&f, OURS, &ev, field, sizeof field), VERR_OK);
	assert_string_equal(ev.recording_sid, REC);
	assert_string_equal(ev.call_sid, CALL);
	assert_string_equal(ev.status, "completed");
	assert_int_equal(ev.duration_seconds, 7);
	assert_int_equal(ev.channels, 1);
	assert_int_equal(ev.error_code, 0);
	assert_string_equal(ev.source, "OutboundAPI");
	assert_string_equal(ev.track, "both");
	assert_string_equal(ev.started_at, "2010-08-31T20:36:28Z");
	assert_true(strncmp(ev.media_url, "https://api.twilio.com/", 23) == 0);
	o = json_tokener_parse(ev.payload);
	assert_non_null(o);
	assert_true(json_object_object_get_ex(o, "Extra", &v));
	assert_string_equal(json_object_get_string(v), "kept");
	json_object_put(o);
	recording_event_free(&ev);
	form_free(&f);
}

/* Only the required parameters: the optional fields say "absent". */
static void test_minimal(void **state)
{
	struct form f = { 0 };
	struct recording_event ev;
	char field[64] = "";

	(void)state;
	assert_int_equal(form_add(&f, "AccountSid", OURS), VERR_OK);
	assert_int_equal(form_add(&f, "CallSid", CALL), VERR_OK);
	assert_int_equal(form_add(&f, "RecordingSid", REC), VERR_OK);
	assert_int_equal(form_add(&f, "RecordingStatus", "in-progress"), VERR_OK);
	assert_int_equal(recording_parse(&f, OURS, &ev, field, sizeof field), VERR_OK);
	assert_int_equal(ev.duration_seconds, -1);
	assert_int_equal(ev.channels, 0);
	assert_int_equal(ev.error_code, -1);
	assert_string_equal(ev.media_url, "");
	assert_string_equal(ev.started_at, "");
	recording_event_free(&ev);
	form_free(&f);
}

static const struct {
	const char *key, *value; /* value NULL: removed */
	enum verr want;
	const char *field;
} invalid[] = {
	{ "AccountSid", NULL, VERR_INVALID, "AccountSid" },
	{ "AccountSid", "AC123", VERR_INVALID, "AccountSid" },
	{ "AccountSid", OTHER, VERR_FORBIDDEN, "AccountSid" },
	{ "CallSid", NULL, VERR_INVALID, "CallSid" },
	{ "CallSid", REC, VERR_INVALID, "CallSid" },
	{ "RecordingSid", NULL, VERR_INVALID, "RecordingSid" },
	{ "RecordingSid", CALL, VERR_INVALID, "RecordingSid" },
	{ "RecordingSid", "RE0011223344556677889", VERR_INVALID, "RecordingSid" },
	{ "RecordingStatus", NULL, VERR_INVALID, "RecordingStatus" },
	{ "RecordingStatus", "done", VERR_INVALID, "RecordingStatus" },
	{ "RecordingStatus", "Completed", VERR_INVALID, "RecordingStatus" },
	{ "RecordingUrl", "http://api.twilio.com/x", VERR_INVALID, "RecordingUrl" },
	{ "RecordingUrl", "https://api.twilio.com/a b", VERR_INVALID, "RecordingUrl" },
	{ "RecordingDuration", "seven", VERR_INVALID, "RecordingDuration" },
	{ "RecordingDuration", "-2", VERR_INVALID, "RecordingDuration" },
	{ "RecordingChannels", "3", VERR_INVALID, "RecordingChannels" },
	{ "RecordingChannels", "0", VERR_INVALID, "RecordingChannels" },
	{ "ErrorCode", "-1", VERR_INVALID, "ErrorCode" },
	{ "RecordingSource", "Outbound\x01" "API", VERR_INVALID, "RecordingSource" },
};

static void test_invalid(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
		struct form f;
		struct recording_event ev;
		char field[64] = "";
		enum verr e;

		build(&f, invalid[i].key, invalid[i].value);
		e = recording_parse(&f, OURS, &ev, field, sizeof field);
		if (e != invalid[i].want || strcmp(field, invalid[i].field) != 0)
			fail_msg("%s=%s: got %d field %s", invalid[i].key,
			         invalid[i].value ? invalid[i].value : "(none)", (int)e, field);
		assert_null(ev.payload);
		recording_event_free(&ev);
		form_free(&f);
	}
}

static void test_repeats(void **state)
{
	static const char *const typed[] = { "RecordingSid", "RecordingStatus", "RecordingUrl",
		"RecordingDuration", "CallSid" };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof typed / sizeof typed[0]; i++) {
		struct form f;
		struct recording_event ev;
		char field[64] = "";

		build(&f, NULL, NULL);
		assert_int_equal(form_add(&f, typed[i], "x"), VERR_OK);
		assert_int_equal(recording_parse(&f, OURS, &ev, field, sizeof field), VERR_INVALID);
		assert_string_equal(field, typed[i]);
		form_free(&f);
	}
}

static void test_start_time(void **state)
{
	static const struct {
		const char *in, *want; /* want "": left out */
	} cases[] = {
		{ "Tue, 31 Aug 2010 20:36:28 +0000", "2010-08-31T20:36:28Z" },
		{ "Mon, 1 Feb 2027 09:05:00 -0730", "2027-02-01T16:35:00Z" },
		{ "Sat, 01 Jan 2000 00:30:00 +0100", "1999-12-31T23:30:00Z" },
		{ "Tue, 31 Aug 2010 20:36:28 GMT", "" },
		{ "2010-08-31T20:36:28Z", "" },
		{ "Tue, 31 Foo 2010 20:36:28 +0000", "" },
		{ "Tue, 32 Aug 2010 20:36:28 +0000", "" },
		{ "Tue, 31 Aug 2010 24:00:00 +0000", "" },
		{ "Tue, 31 Aug 2010 20:36:28 +0000 trailing", "" },
		{ "Fri, 31 Dec 9999 23:59:59 -1400", "" },
		{ "", "" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct form f;
		struct recording_event ev;
		char field[64] = "";

		build(&f, "RecordingStartTime", cases[i].in);
		/* a date that does not read is no reason to refuse the recording */
		assert_int_equal(recording_parse(&f, OURS, &ev, field, sizeof field), VERR_OK);
		if (strcmp(ev.started_at, cases[i].want) != 0)
			fail_msg("%s: got %s, want %s", cases[i].in, ev.started_at, cases[i].want);
		recording_event_free(&ev);
		form_free(&f);
	}
}

static void test_statuses(void **state)
{
	(void)state;
	assert_true(recording_status_valid("in-progress"));
	assert_true(recording_status_valid("absent"));
	assert_false(recording_status_valid("deleted"));
	assert_true(recording_status_final("completed"));
	assert_true(recording_status_final("absent"));
	assert_false(recording_status_final("in-progress"));
	assert_false(recording_status_final("processing"));
}

/* ---- cancel and hang up take no body, or {} ---- */

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_minimal),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_repeats),
		cmocka_unit_test(test_start_time),
		cmocka_unit_test(test_statuses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
