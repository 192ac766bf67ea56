/*
 * "Never lose a call record" (common/record.h) against the fake database
 * (tests/unit/fakedb.c): a record goes to the spool only when the database
 * is unreachable (VERR_DB_DOWN), never when it refused the statement
 * (VERR_DB, which a retry would meet again); and the spool is replayed into
 * the database once it answers, a record it refuses then being set aside.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "callback.h"
#include "fakedb.h"
#include "form.h"
#include "record.h"
#include "recording.h"
#include "spool.h"

#define OURS "AC0123456789abcdef0123456789abcdef"
#define CALL "CA00112233445566778899aabbccddeeff"
#define REC "RE00112233445566778899aabbccddeeff"
#define EVENT_BODY                                                                          \
	"CallSid=" CALL "&AccountSid=" OURS "&CallStatus=completed&Direction=outbound-api"      \
	"&From=%2B14155550100&To=%2B14155550199&SequenceNumber=3"
#define RECORDING_BODY                                                                      \
	"AccountSid=" OURS "&CallSid=" CALL "&RecordingSid=" REC                                \
	"&RecordingUrl=https%3A%2F%2Fapi.twilio.com%2F2010-04-01%2FAccounts%2F" OURS            \
	"%2FRecordings%2F" REC "&RecordingStatus=completed"

static char spool[64];
static struct db *db;

/* Regular files in dir whose name does not start with '.'; -1 without dir. */
static int files_in(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		char p[512];
		struct stat st;

		snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
		if (de->d_name[0] != '.' && stat(p, &st) == 0 && S_ISREG(st.st_mode))
			n++;
	}
	closedir(d);
	return n;
}

static int rejected(void)
{
	char p[128];

	snprintf(p, sizeof p, "%s/rejected", spool);
	return files_in(p) < 0 ? 0 : files_in(p);
}

/* Removes dir and what is in it (one level of subdirectories). */
static void remove_tree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	while (d != NULL && (de = readdir(d)) != NULL) {
		char p[512];
		struct stat st;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
		if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
			remove_tree(p);
		else
			unlink(p);
	}
	if (d != NULL)
		closedir(d);
	rmdir(dir);
}

static int setup(void **state)
{
	(void)state;
	snprintf(spool, sizeof spool, "/tmp/record-test-XXXXXX");
	if (mkdtemp(spool) == NULL)
		return -1;
	fakedb_reset();
	db = db_new("fake", 1);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	remove_tree(spool);
	return 0;
}

/* The call event of EVENT_BODY, as the webhook handler parses it. */
static void parse_event(struct form *f, struct call_event *ev)
{
	char err[FORM_MAX_ERROR], field[64];

	assert_int_equal(form_parse(EVENT_BODY, strlen(EVENT_BODY), f, err, sizeof err), VERR_OK);
	assert_int_equal(callback_parse(f, OURS, ev, field, sizeof field), VERR_OK);
}

static void parse_recording(struct form *f, struct recording_event *rec)
{
	char err[FORM_MAX_ERROR], field[64];

	assert_int_equal(form_parse(RECORDING_BODY, strlen(RECORDING_BODY), f, err, sizeof err),
	                 VERR_OK);
	assert_int_equal(recording_parse(f, OURS, rec, field, sizeof field), VERR_OK);
}

/* What the database answers, what the caller gets, what the spool holds. */
static const struct {
	const char *what;
	struct fakedb_result db;
	enum verr want;
	bool stored, spooled;
	int spool_files;
} answers[] = {
	{ "stored", { .e = VERR_OK, .stored = true }, VERR_OK, true, false, 0 },
	{ "duplicate", { .e = VERR_OK, .stored = false }, VERR_OK, false, false, 0 },
	{ "database down: spooled", { .e = VERR_DB_DOWN }, VERR_OK, true, true, 1 },
	{ "database refused: not spooled", { .e = VERR_DB }, VERR_DB, false, false, 0 },
};
#define NANSWERS (sizeof answers / sizeof answers[0])

static struct call_event the_event;
static struct recording_event the_recording;

static enum verr store_event(bool *stored, bool *spooled)
{
	return record_event(db, spool, &the_event, "tok-1", EVENT_BODY, strlen(EVENT_BODY), stored,
	                    spooled);
}

static enum verr store_recording(bool *stored, bool *spooled)
{
	return record_recording(db, spool, &the_recording, RECORDING_BODY, strlen(RECORDING_BODY),
	                        stored, spooled);
}

/* Runs store against each of answers[]: fn is the database function it
 * must call, with params. */
static void check_answers(enum verr (*store)(bool *, bool *), const char *fn, const char *params)
{
	size_t i;

	for (i = 0; i < NANSWERS; i++) {
		bool stored = !answers[i].stored, spooled = !answers[i].spooled;
		enum verr e;

		remove_tree(spool);
		fakedb_reset();
		fakedb_script(&answers[i].db);
		e = store(&stored, &spooled);
		if (e != answers[i].want)
			fail_msg("%s %s: %s", fn, answers[i].what, verr_strerror(e));
		assert_int_equal(fakedb_calls(), 1);
		assert_string_equal(fakedb_last(), fn);
		assert_string_equal(fakedb_last_params(), params);
		if (e == VERR_OK)
			assert_true(stored == answers[i].stored);
		assert_true(spooled == answers[i].spooled);
		assert_int_equal(files_in(spool) < 0 ? 0 : files_in(spool), answers[i].spool_files);
	}
}

static void test_event(void **state)
{
	struct form f = { 0 };

	(void)state;
	parse_event(&f, &the_event);
	check_answers(store_event, "db_call_event_record",
	              "call_sid=" CALL " status=completed token=tok-1");
	callback_event_free(&the_event);
	form_free(&f);
}

static void test_recording(void **state)
{
	struct form f = { 0 };

	(void)state;
	parse_recording(&f, &the_recording);
	check_answers(store_recording, "db_recording_record",
	              "recording_sid=" REC " call_sid=" CALL " status=completed");
	recording_event_free(&the_recording);
	form_free(&f);
}

/* A call Twilio accepted: stored, else spooled while the database is down,
 * and the caller always gets the call object. */
static void test_call(void **state)
{
	static const struct {
		const char *what;
		struct fakedb_result db;
		enum verr want;
		bool spooled;
		int spool_files;
		const char *json; /* a substring of the call object */
	} cases[] = {
		{ "stored", { .e = VERR_OK, .body = "{\"sid\":\"from the database\"}" }, VERR_OK, false,
		  0, "from the database" },
		{ "database down: spooled", { .e = VERR_DB_DOWN }, VERR_OK, true, 1,
		  "\"sid\":\"" CALL "\"" },
		{ "database refused: not spooled", { .e = VERR_DB }, VERR_DB, false, 0,
		  "\"sid\":\"" CALL "\"" },
	};
	const struct db_call call = { CALL, OURS, "outbound-api", "+14155550100", "+14155550199",
		"queued", "billing" };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct buf json;
		bool spooled = !cases[i].spooled;
		enum verr e;

		remove_tree(spool);
		fakedb_reset();
		fakedb_script(&cases[i].db);
		buf_init(&json, 64 * 1024);
		e = record_call(db, spool, &call, &json, &spooled);
		if (e != cases[i].want)
			fail_msg("%s: %s", cases[i].what, verr_strerror(e));
		assert_string_equal(fakedb_last(), "db_call_insert");
		assert_string_equal(fakedb_last_params(),
		                    "call_sid=" CALL " account_sid=" OURS " direction=outbound-api "
		                    "from=+14155550100 to=+14155550199 status=queued api_key_name=billing");
		assert_true(spooled == cases[i].spooled);
		assert_int_equal(files_in(spool) < 0 ? 0 : files_in(spool), cases[i].spool_files);
		if (strstr(buf_str(&json), cases[i].json) == NULL)
			fail_msg("%s: %s", cases[i].what, buf_str(&json));
		if (e != VERR_OK || cases[i].spooled)
			assert_non_null(strstr(buf_str(&json), "\"created_at\""));
		buf_free(&json);
	}
}

/* A spool that cannot be written: the record is lost to neither, and the
 * caller is told (the webhook answers 503, Twilio retries). */
static void test_spool_fails(void **state)
{
	struct form f = { 0 };
	struct call_event ev;
	bool stored = false, spooled = true;

	(void)state;
	parse_event(&f, &ev);
	fakedb_next(VERR_DB_DOWN);
	assert_int_not_equal(record_event(db, "/dev/null/spool", &ev, "", EVENT_BODY,
	                                  strlen(EVENT_BODY), &stored, &spooled),
	                     VERR_OK);
	assert_false(spooled);
	callback_event_free(&ev);
	form_free(&f);
}

/* Spooled records go into the database once it answers; one it refuses is
 * moved aside for an operator; while it is down they stay. */
static void test_replay(void **state)
{
	const struct db_call call = { CALL, OURS, "outbound-api", "+14155550100", "+14155550199",
		"queued", NULL };
	struct form f = { 0 }, g = { 0 };
	struct call_event ev;
	struct recording_event rec;
	struct buf json;
	bool stored, spooled;

	(void)state;
	buf_init(&json, 64 * 1024);
	parse_event(&f, &ev);
	parse_recording(&g, &rec);
	fakedb_next(VERR_DB_DOWN);
	fakedb_next(VERR_DB_DOWN);
	fakedb_next(VERR_DB_DOWN);
	assert_int_equal(record_event(db, spool, &ev, "tok-9", EVENT_BODY, strlen(EVENT_BODY), &stored,
	                              &spooled), VERR_OK);
	assert_int_equal(record_recording(db, spool, &rec, RECORDING_BODY, strlen(RECORDING_BODY),
	                                  &stored, &spooled), VERR_OK);
	assert_int_equal(record_call(db, spool, &call, &json, &spooled), VERR_OK);
	assert_int_equal(files_in(spool), 3);

	/* the database is back: everything goes in, the callback with its token */
	fakedb_reset();
	record_replay(db, spool, OURS);
	assert_int_equal(fakedb_count("db_call_events_record"), 1);
	assert_int_equal(fakedb_count("db_recording_record"), 1);
	assert_int_equal(fakedb_count("db_call_insert"), 1);
	assert_int_equal(fakedb_calls(), 3);
	assert_false(spool_pending(spool));
	assert_int_equal(files_in(spool), 0);
	assert_int_equal(rejected(), 0);

	/* refused on replay: set aside, not retried */
	fakedb_next(VERR_DB_DOWN);
	assert_int_equal(record_event(db, spool, &ev, "tok-9", EVENT_BODY, strlen(EVENT_BODY), &stored,
	                              &spooled), VERR_OK);
	fakedb_reset();
	fakedb_next(VERR_DB);
	record_replay(db, spool, OURS);
	assert_string_equal(fakedb_last(), "db_call_events_record");
	assert_string_equal(fakedb_last_params(), "call_sid=" CALL " status=completed token=tok-9");
	assert_false(spool_pending(spool));
	assert_int_equal(rejected(), 1);

	/* down again during the replay: kept for the next one */
	fakedb_next(VERR_DB_DOWN);
	assert_int_equal(record_call(db, spool, &call, &json, &spooled), VERR_OK);
	fakedb_reset();
	fakedb_next(VERR_DB_DOWN);
	record_replay(db, spool, OURS);
	assert_int_equal(fakedb_count("db_call_insert"), 1);
	assert_true(spool_pending(spool));
	assert_int_equal(files_in(spool), 1);
	assert_int_equal(rejected(), 1);

	recording_event_free(&rec);
	callback_event_free(&ev);
	form_free(&f);
	form_free(&g);
	buf_free(&json);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_event, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recording, setup, teardown),
		cmocka_unit_test_setup_teardown(test_call, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spool_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replay, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
