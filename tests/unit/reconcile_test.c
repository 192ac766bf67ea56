/*
 * Reconciliation's pure parts: reading Twilio's Call resource and Calls list
 * page (twilio_api_v2010.json, FetchCall / ListCall), the list query we
 * send, RFC 2822 dates, which listed call matches a lost POST /call, when a
 * fetched status is worth storing, the event stored, and the setting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "callback.h"
#include "form.h"
#include "reconcile.h"
#include "twilio.h"

#define ACCOUNT "AC0123456789abcdef0123456789abcdef"
#define SID1 "CAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SID2 "CAbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

/* A Call resource as Twilio's OAS example writes it (trimmed of the
 * subresource URIs), with the fields given. */
static void call_json(char *out, size_t outsz, const char *sid, const char *status,
                      const char *created, const char *to, const char *duration)
{
	snprintf(out, outsz,
	         "{\"account_sid\":\"" ACCOUNT "\",\"answered_by\":null,\"api_version\":\"2010-04-01\","
	         "\"caller_name\":null,\"date_created\":\"%s\",\"date_updated\":\"%s\","
	         "\"direction\":\"outbound-api\",\"duration\":%s,\"end_time\":null,"
	         "\"forwarded_from\":null,\"from\":\"+14155550199\",\"from_formatted\":\"(415) 555-0199\","
	         "\"group_sid\":null,\"parent_call_sid\":null,\"phone_number_sid\":null,\"price\":null,"
	         "\"price_unit\":\"USD\",\"sid\":\"%s\",\"start_time\":\"%s\",\"status\":\"%s\","
	         "\"subresource_uris\":{\"events\":\"/x\"},\"to\":\"%s\",\"to_formatted\":\"x\","
	         "\"trunk_sid\":null,\"uri\":\"/2010-04-01/Accounts/" ACCOUNT "/Calls/%s.json\","
	         "\"queue_time\":\"0\"}",
	         created, created, duration, sid, created, status, to, sid);
}

static void test_info_parse(void **state)
{
	struct twilio_call_info c;
	char body[2048];

	(void)state;
	call_json(body, sizeof body, SID1, "completed", "Fri, 18 Oct 2019 17:00:00 +0000",
	          "+14155550100", "\"4\"");
	assert_int_equal(twilio_call_info_parse(body, strlen(body), &c), VERR_OK);
	assert_string_equal(c.call.sid, SID1);
	assert_string_equal(c.call.status, "completed");
	assert_string_equal(c.call.account_sid, ACCOUNT);
	assert_string_equal(c.call.to, "+14155550100");
	assert_string_equal(c.start_time, "Fri, 18 Oct 2019 17:00:00 +0000");
	assert_string_equal(c.end_time, "");
	assert_string_equal(c.answered_by, "");
	assert_int_equal(c.duration, 4);

	call_json(body, sizeof body, SID1, "queued", "x", "+14155550100", "null");
	assert_int_equal(twilio_call_info_parse(body, strlen(body), &c), VERR_OK);
	assert_int_equal(c.duration, -1);
}

static void test_info_parse_invalid(void **state)
{
	static const struct {
		const char *status, *duration;
	} bad[] = {
		{ "answered", "\"4\"" }, /* not a CallStatus (an event name) */
		{ "", "\"4\"" },         /* no status */
		{ "completed", "\"-4\"" },
		{ "completed", "\"4s\"" },
		{ "completed", "true" },
		{ "completed", "\"99999999999\"" },
	};
	struct twilio_call_info c;
	char body[2048];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		call_json(body, sizeof body, SID1, bad[i].status, "x", "+14155550100", bad[i].duration);
		assert_int_equal(twilio_call_info_parse(body, strlen(body), &c), VERR_INVALID);
		assert_int_equal(c.duration, -1);
		assert_string_equal(c.call.sid, "");
	}
	call_json(body, sizeof body, "CA123", "completed", "x", "+14155550100", "\"4\"");
	assert_int_equal(twilio_call_info_parse(body, strlen(body), &c), VERR_INVALID);
	assert_int_equal(twilio_call_info_parse("[]", 2, &c), VERR_INVALID);
	assert_int_equal(twilio_call_info_parse("", 0, &c), VERR_INVALID);
}

/* A list page of n calls (SID1 first) with next_page_uri next (a JSON
 * value: null or a quoted string). */
static void page_json(struct buf *b, size_t n, const char *next)
{
	char one[2048];
	size_t i;

	buf_reset(b);
	assert_int_equal(buf_puts(b, "{\"calls\":["), VERR_OK);
	for (i = 0; i < n; i++) {
		char sid[40];

		snprintf(sid, sizeof sid, "CA%032zx", i + 0xaa);
		call_json(one, sizeof one, sid, "completed", "Fri, 18 Oct 2019 17:00:00 +0000",
		          "+14155550100", "\"4\"");
		assert_int_equal(buf_printf(b, "%s%s", i ? "," : "", one), VERR_OK);
	}
	assert_int_equal(buf_printf(b, "],\"end\":0,\"first_page_uri\":\"/x\",\"next_page_uri\":%s,"
	                               "\"page\":0,\"page_size\":20,\"previous_page_uri\":null,"
	                               "\"start\":0,\"uri\":\"/x\"}", next),
	                 VERR_OK);
}

static void test_page_parse(void **state)
{
	struct twilio_call_page *p = calloc(1, sizeof *p);
	struct buf b;
	char next[256];

	(void)state;
	assert_non_null(p);
	buf_init(&b, TWILIO_MAX_RESPONSE);
	page_json(&b, 0, "null");
	assert_int_equal(twilio_call_page_parse(b.data, b.len, ACCOUNT, p), VERR_OK);
	assert_int_equal(p->n, 0);
	assert_string_equal(p->next_page_uri, "");

	snprintf(next, sizeof next, "\"/2010-04-01/Accounts/%s/Calls.json?To=%%2B14155550100"
	                            "&PageSize=20&Page=1&PageToken=PAabc\"", ACCOUNT);
	page_json(&b, TWILIO_MAX_PAGE, next);
	assert_int_equal(twilio_call_page_parse(b.data, b.len, ACCOUNT, p), VERR_OK);
	assert_int_equal(p->n, TWILIO_MAX_PAGE);
	assert_string_equal(p->calls[0].call.sid, "CA000000000000000000000000000000aa");
	assert_memory_equal(p->next_page_uri, next + 1, strlen(next) - 2);

	/* the credentials go wherever next_page_uri points: only our list */
	page_json(&b, 1, "\"https://evil.example/2010-04-01/Accounts/" ACCOUNT "/Calls.json?x=1\"");
	assert_int_equal(twilio_call_page_parse(b.data, b.len, ACCOUNT, p), VERR_INVALID);
	page_json(&b, 1, "\"/2010-04-01/Accounts/AC00000000000000000000000000000000/Calls.json?x=1\"");
	assert_int_equal(twilio_call_page_parse(b.data, b.len, ACCOUNT, p), VERR_INVALID);
	page_json(&b, 1, "\"/2010-04-01/Accounts/" ACCOUNT "/Calls.json?x=1 2\"");
	assert_int_equal(twilio_call_page_parse(b.data, b.len, ACCOUNT, p), VERR_INVALID);
	/* a call of another account */
	page_json(&b, 1, "null");
	assert_int_equal(twilio_call_page_parse(b.data, b.len, "AC00000000000000000000000000000000", p),
	                 VERR_INVALID);
	assert_int_equal(p->n, 0);
	/* more than asked for */
	page_json(&b, TWILIO_MAX_PAGE + 1, "null");
	assert_int_equal(twilio_call_page_parse(b.data, b.len, ACCOUNT, p), VERR_TOOBIG);
	assert_int_equal(twilio_call_page_parse("{\"calls\":{}}", 12, ACCOUNT, p), VERR_INVALID);
	assert_int_equal(twilio_call_page_parse("{}", 2, ACCOUNT, p), VERR_INVALID);
	buf_free(&b);
	free(p);
}

static void test_query_string(void **state)
{
	struct twilio_calls_query q = { "+14155550100", "+14155550199", "2024-02-29", NULL };
	struct buf b;
	struct form f = { 0 };

	(void)state;
	buf_init(&b, 1024);
	assert_int_equal(twilio_calls_query_string(&q, &b), VERR_OK);
	assert_string_equal(buf_str(&b),
	                    "To=%2B14155550100&From=%2B14155550199&StartTime%3E=2024-02-29&PageSize=20");
	/* what Twilio reads back: exactly ListCall's parameter names */
	assert_int_equal(form_parse(b.data, b.len, &f, NULL, 0), VERR_OK);
	assert_int_equal(f.n, 4);
	assert_string_equal(form_get(&f, "StartTime>"), "2024-02-29");
	form_free(&f);
	buf_reset(&b);
	q.started_on_or_after = "2024-2-29";
	assert_int_equal(twilio_calls_query_string(&q, &b), VERR_INVALID);
	q.started_on_or_after = "2024-02-2x";
	assert_int_equal(twilio_calls_query_string(&q, &b), VERR_INVALID);
	q.started_on_or_after = "2024-02-29";
	q.from = "";
	assert_int_equal(twilio_calls_query_string(&q, &b), VERR_INVALID);
	assert_int_equal(b.len, 0);
	buf_free(&b);
}

static void test_rfc2822(void **state)
{
	static const struct {
		const char *s;
		long long epoch;
	} valid[] = {
		{ "Thu, 01 Jan 1970 00:00:00 +0000", 0 },
		{ "Tue, 31 Aug 2010 20:36:28 +0000", 1283286988 },
		{ "31 Aug 2010 20:36:28 +0000", 1283286988 },
		{ "Tue, 31 Aug 2010 22:36:28 +0200", 1283286988 },
		{ "Tue, 31 Aug 2010 15:36:28 -0500", 1283286988 },
		{ "Thu, 29 Feb 2024 23:59:59 +0000", 1709251199 },
		{ "Fri, 1 Mar 2024 00:00 +0000", 1709251200 },
	};
	static const char *const invalid[] = { "", "Tue, 31 Aug 2010", "Tue, 31 Foo 2010 20:36:28 +0000",
		"Tue, 31 Aug 2010 20:36:28", "Tue, 31 Aug 2010 20:36:28 GMT", "Tue, 31 Aug 2010 24:00:00 +0000",
		"Tue, 31 Aug 2010 20:36:28 +0000 ", "2010-08-31T20:36:28Z", "Tue, 00 Aug 2010 20:36:28 +0000" };
	long long e;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof valid / sizeof valid[0]; i++) {
		assert_true(reconcile_rfc2822(valid[i].s, &e));
		assert_int_equal(e, valid[i].epoch);
	}
	for (i = 0; i < sizeof invalid / sizeof invalid[0]; i++)
		assert_false(reconcile_rfc2822(invalid[i], &e));
	assert_false(reconcile_rfc2822(NULL, &e));
}

static void test_advances(void **state)
{
	(void)state;
	assert_true(reconcile_advances("queued", "initiated"));
	assert_true(reconcile_advances("ringing", "completed"));
	assert_true(reconcile_advances("in-progress", "no-answer"));
	assert_true(reconcile_advances("", "queued")); /* unknown here */
	assert_false(reconcile_advances("in-progress", "ringing")); /* never backwards */
	assert_false(reconcile_advances("ringing", "ringing"));
	assert_false(reconcile_advances("completed", "busy")); /* one terminal rank */
	assert_false(reconcile_advances("queued", "answered"));
}

/* A page of calls created at the given offsets from base (newest first),
 * all to/from the same numbers except where marked. */
static void test_matches(void **state)
{
	static const long long offsets[] = { 900, 30, 5, -100, -200, -4000 };
	struct twilio_call_page *p = calloc(1, sizeof *p);
	const long long base = 1283286988; /* Tue, 31 Aug 2010 20:36:28 +0000 */
	size_t idx[8], n, i;
	bool older;

	(void)state;
	assert_non_null(p);
	for (i = 0; i < sizeof offsets / sizeof offsets[0]; i++) {
		struct twilio_call *c = &p->calls[i].call;
		long long t = base + offsets[i];
		long long s = t % 60, m = t / 60 % 60, h = t / 3600 % 24;

		snprintf(c->sid, sizeof c->sid, "CA%032zx", i);
		snprintf(c->date_created, sizeof c->date_created, "Tue, 31 Aug 2010 %02lld:%02lld:%02lld +0000",
		         h, m, s);
		str_copy(c->to, sizeof c->to, i == 2 ? "+14155550101" : "+14155550100");
		str_copy(c->from, sizeof c->from, "+14155550199");
	}
	p->n = sizeof offsets / sizeof offsets[0];
	n = reconcile_matches(p, "+14155550100", "+14155550199", base, idx, 8, &older);
	/* 900 s later: too late; 30 s: yes; 5 s: another To; -100 s: yes
	 * (clocks); -200 s: before the window; -4000: before */
	assert_int_equal(n, 2);
	assert_int_equal(idx[0], 1);
	assert_int_equal(idx[1], 3);
	assert_true(older);
	n = reconcile_matches(p, "+14155550100", "+14155550199", base, idx, 1, &older);
	assert_int_equal(n, 2); /* all are counted, max are written */
	p->n = 2;
	n = reconcile_matches(p, "+14155550100", "+14155550199", base, idx, 8, &older);
	assert_int_equal(n, 1);
	assert_false(older);
	free(p);
}

static void test_event(void **state)
{
	struct twilio_call_info c;
	struct call_event ev;
	char token[RECONCILE_MAX_TOKEN], body[2048];

	(void)state;
	call_json(body, sizeof body, SID2, "completed", "Tue, 31 Aug 2010 20:36:28 +0000",
	          "+14155550100", "\"7\"");
	assert_int_equal(twilio_call_info_parse(body, strlen(body), &c), VERR_OK);
	assert_int_equal(reconcile_event(&c, &ev, token), VERR_OK);
	assert_string_equal(token, "reconcile:" SID2 ":completed");
	assert_string_equal(ev.call_sid, SID2);
	assert_string_equal(ev.status, "completed");
	assert_string_equal(ev.direction, "outbound-api");
	assert_int_equal(ev.sequence_number, -1);
	assert_int_equal(ev.duration_seconds, 7);
	assert_non_null(strstr(ev.payload, "\"source\":\"reconciliation\""));
	assert_non_null(strstr(ev.payload, "\"CallStatus\":\"completed\""));
	assert_non_null(strstr(ev.payload, "\"CallDuration\":\"7\""));
	assert_null(strstr(ev.payload, "AnsweredBy")); /* null at Twilio: left out */
	callback_event_free(&ev);

	/* a live status carries no duration */
	str_copy(c.call.status, sizeof c.call.status, "in-progress");
	assert_int_equal(reconcile_event(&c, &ev, token), VERR_OK);
	assert_int_equal(ev.duration_seconds, -1);
	assert_null(strstr(ev.payload, "CallDuration"));
	callback_event_free(&ev);

	/* what a callback could not carry is refused */
	str_copy(c.call.direction, sizeof c.call.direction, "");
	assert_int_equal(reconcile_event(&c, &ev, token), VERR_INVALID);
	assert_null(ev.payload);
	callback_event_free(&ev);
}

static void test_settings(void **state)
{
	static const struct {
		const char *v;
		int after;
	} valid[] = { { NULL, RECONCILE_DEFAULT_AFTER_S }, { "", RECONCILE_DEFAULT_AFTER_S },
		      { "0", 0 }, { "1", 1 }, { "600", 600 }, { "86400", 86400 } };
	static const char *const invalid[] = { "-1", "86401", "10m", " 5", "05" };
	struct reconcile_settings s;
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof valid / sizeof valid[0]; i++) {
		if (valid[i].v == NULL)
			unsetenv("VOICE_RECONCILE_AFTER_S");
		else
			setenv("VOICE_RECONCILE_AFTER_S", valid[i].v, 1);
		assert_int_equal(reconcile_settings_load(&s, err, sizeof err), VERR_OK);
		assert_int_equal(s.after_s, valid[i].after);
	}
	for (i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
		setenv("VOICE_RECONCILE_AFTER_S", invalid[i], 1);
		assert_int_equal(reconcile_settings_load(&s, err, sizeof err), VERR_CONFIG);
		assert_non_null(strstr(err, "VOICE_RECONCILE_AFTER_S"));
	}
	unsetenv("VOICE_RECONCILE_AFTER_S");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_info_parse),
		cmocka_unit_test(test_info_parse_invalid),
		cmocka_unit_test(test_page_parse),
		cmocka_unit_test(test_query_string),
		cmocka_unit_test(test_rfc2822),
		cmocka_unit_test(test_advances),
		cmocka_unit_test(test_matches),
		cmocka_unit_test(test_event),
		cmocka_unit_test(test_settings),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
