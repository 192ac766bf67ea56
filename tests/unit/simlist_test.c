/*
 * The simulator's Calls list (sim/calllist.c: ListCall's query parameters,
 * filters and pages) and the scenarios reconciliation is tested with
 * (sim/scenario.c: callbacks dropped, reply lost). The sim sources are
 * compiled in directly (twilio_sim is not a library).
 */
#define _XOPEN_SOURCE 700 /* strptime, in sim/calllist.c */
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

#include "../../sim/calllist.c"
#include "../../sim/scenario.c"
#include "../../sim/simerror.c"
#include "../../sim/store.c"

#define ACCOUNT "AC0123456789abcdef0123456789abcdef"

static void test_fault_scenarios(void **state)
{
	static const struct {
		const char *to, *name;
		enum simscen_fault fault;
		bool no_callbacks;
	} cases[] = {
		{ "+14155550180", "callbacks-dropped", SIMFAULT_NONE, true },
		{ "+14155550181", "reply-lost", SIMFAULT_REPLY_LOST, false },
		{ "+14155550182", "reply-lost-quiet", SIMFAULT_REPLY_LOST, true },
		{ "+14155550183", "slow-quiet", SIMFAULT_SLOW, true },
		{ "+14155550184", "answered", SIMFAULT_NONE, false },
		{ "+14155550100", "answered", SIMFAULT_NONE, false },
		{ "+14155550108", "slow", SIMFAULT_SLOW, false },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct simscen s;

		simscen_lookup(cases[i].to, &s);
		assert_string_equal(s.name, cases[i].name);
		assert_int_equal(s.fault, cases[i].fault);
		assert_int_equal(s.no_callbacks, cases[i].no_callbacks);
		assert_int_equal(s.outcome, SIMSCEN_ANSWER);
	}
}

static void test_query_valid(void **state)
{
	struct simlist_query q;
	struct simerror err;

	(void)state;
	assert_int_equal(simlist_query_parse("", &q, &err), VERR_OK);
	assert_int_equal(q.page_size, SIMLIST_DEFAULT_PAGE_SIZE);
	assert_false(q.start_after.set);
	assert_string_equal(q.filters, "");
	/* exactly what our client sends (twilio_calls_query_string) */
	assert_int_equal(simlist_query_parse("To=%2B14155550100&From=%2B14155550199"
	                                     "&StartTime%3E=2024-02-29&PageSize=20", &q, &err),
	                 VERR_OK);
	assert_string_equal(q.to, "+14155550100");
	assert_string_equal(q.from, "+14155550199");
	assert_true(q.start_after.set && q.start_after.day);
	assert_int_equal(q.start_after.t, 1709164800);
	assert_int_equal(q.page_size, 20);
	assert_string_equal(q.filters, "To=%2B14155550100&From=%2B14155550199&StartTime%3E=2024-02-29");
	/* the raw '>' of "StartTime>=2024-02-29" is the same key */
	assert_int_equal(simlist_query_parse("StartTime>=2024-02-29T10:00:00Z&Status=completed"
	                                     "&Page=2&PageToken=PAx", &q, &err),
	                 VERR_OK);
	assert_true(q.start_after.set && !q.start_after.day);
	assert_int_equal(q.start_after.t, 1709164800 + 36000);
	assert_int_equal(q.page, 2);
	assert_string_equal(q.page_token, "PAx");
}

static void test_query_invalid(void **state)
{
	static const struct {
		const char *query;
		int code;
	} cases[] = {
		{ "Foo=1", 20001 },
		{ "StartTime%3E%3D=2024-01-01", 20001 }, /* "StartTime>=" is not a parameter */
		{ "To=%2B1&To=%2B2", 21200 },
		{ "Status=answered", 21200 },
		{ "Status=initiated", 21200 }, /* an event, not a call_enum_status */
		{ "StartTime%3E=2024-1-1", 21200 },
		{ "StartTime%3C=yesterday", 21200 },
		{ "PageSize=0", 21200 },
		{ "PageSize=1001", 21200 },
		{ "Page=-1", 21200 },
		{ "ParentCallSid=CA123", 21200 },
		{ "To=%ZZ", 21200 },
	};
	struct simlist_query q;
	struct simerror err;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		assert_int_equal(simlist_query_parse(cases[i].query, &q, &err), VERR_INVALID);
		assert_int_equal(err.status, 400);
		assert_int_equal(err.code, cases[i].code);
		assert_true(err.message[0] != '\0');
	}
}

static struct json_object *call_obj(const char *sid, const char *to, const char *status,
                                    const char *created, const char *start, const char *end)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "account_sid", json_object_new_string(ACCOUNT));
	json_object_object_add(o, "sid", json_object_new_string(sid));
	json_object_object_add(o, "to", json_object_new_string(to));
	json_object_object_add(o, "from", json_object_new_string("+14155550199"));
	json_object_object_add(o, "status", json_object_new_string(status));
	json_object_object_add(o, "date_created", json_object_new_string(created));
	json_object_object_add(o, "start_time", start ? json_object_new_string(start) : NULL);
	json_object_object_add(o, "end_time", end ? json_object_new_string(end) : NULL);
	json_object_object_add(o, "parent_call_sid", NULL);
	return o;
}

static void test_match(void **state)
{
	struct json_object *c = call_obj("CA00000000000000000000000000000001", "+14155550100",
	                                 "completed", "Thu, 29 Feb 2024 23:59:58 +0000",
	                                 "Fri, 01 Mar 2024 00:00:01 +0000",
	                                 "Fri, 01 Mar 2024 00:00:09 +0000");
	struct json_object *queued = call_obj("CA00000000000000000000000000000002", "+14155550100",
	                                      "queued", "Thu, 29 Feb 2024 23:59:58 +0000", NULL, NULL);
	struct simlist_query q;
	struct simerror err;

	(void)state;
	assert_int_equal(simlist_query_parse("To=%2B14155550100&StartTime%3E=2024-03-01", &q, &err),
	                 VERR_OK);
	assert_true(simlist_match(&q, c));
	assert_false(simlist_match(&q, queued)); /* not started: date_created counts */
	assert_int_equal(simlist_query_parse("StartTime%3E=2024-02-29", &q, &err), VERR_OK);
	assert_true(simlist_match(&q, queued));
	assert_int_equal(simlist_query_parse("StartTime=2024-02-29", &q, &err), VERR_OK);
	assert_false(simlist_match(&q, c));
	assert_int_equal(simlist_query_parse("StartTime%3C=2024-03-01", &q, &err), VERR_OK);
	assert_false(simlist_match(&q, c));
	assert_int_equal(simlist_query_parse("EndTime%3E=2024-03-01", &q, &err), VERR_OK);
	assert_true(simlist_match(&q, c));
	assert_false(simlist_match(&q, queued)); /* not ended */
	assert_int_equal(simlist_query_parse("From=%2B14155550100", &q, &err), VERR_OK);
	assert_false(simlist_match(&q, c));
	assert_int_equal(simlist_query_parse("Status=queued", &q, &err), VERR_OK);
	assert_false(simlist_match(&q, c));
	assert_true(simlist_match(&q, queued));
	json_object_put(c);
	json_object_put(queued);
}

/* Pages over a state directory of 5 matching calls and one other. */
static void test_pages(void **state)
{
	char dir[] = "/tmp/simlist-test-XXXXXX", path[128], err[128];
	struct simcfg cfg;
	struct simlist_query q;
	struct simerror serr;
	struct json_object *page, *v;
	int i;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(simstore_init(dir, err, sizeof err), VERR_OK);
	memset(&cfg, 0, sizeof cfg);
	str_copy(cfg.account_sid, sizeof cfg.account_sid, ACCOUNT);
	str_copy(cfg.state_dir, sizeof cfg.state_dir, dir);
	for (i = 0; i < 6; i++) {
		struct json_object *doc = json_object_new_object();
		char sid[40], created[64];

		snprintf(sid, sizeof sid, "CA%032d", i);
		snprintf(created, sizeof created, "Fri, 01 Mar 2024 00:00:%02d +0000", i);
		json_object_object_add(doc, "call", call_obj(sid, i == 5 ? "+14155550101" : "+14155550100",
		                                             "completed", created, created, NULL));
		assert_int_equal(simstore_call_put(dir, sid, doc), VERR_OK);
		json_object_put(doc);
	}
	assert_int_equal(simlist_query_parse("To=%2B14155550100&PageSize=2", &q, &serr), VERR_OK);
	assert_int_equal(simlist_calls(&cfg, &q, &page), VERR_OK);
	assert_true(json_object_object_get_ex(page, "calls", &v));
	assert_int_equal(json_object_array_length(v), 2);
	/* newest first */
	assert_string_equal(json_object_get_string(json_object_object_get(
	                        json_object_array_get_idx(v, 0), "sid")),
	                    "CA00000000000000000000000000000004");
	assert_true(json_object_object_get_ex(page, "next_page_uri", &v));
	assert_string_equal(json_object_get_string(v),
	                    "/2010-04-01/Accounts/" ACCOUNT "/Calls.json?To=%2B14155550100&PageSize=2"
	                    "&Page=1&PageToken=PACA00000000000000000000000000000003");
	json_object_put(page);
	/* the last page: one call, no next page */
	assert_int_equal(simlist_query_parse("To=%2B14155550100&PageSize=2&Page=2&PageToken=PAx", &q,
	                                     &serr),
	                 VERR_OK);
	assert_int_equal(simlist_calls(&cfg, &q, &page), VERR_OK);
	assert_true(json_object_object_get_ex(page, "calls", &v));
	assert_int_equal(json_object_array_length(v), 1);
	assert_true(json_object_object_get_ex(page, "next_page_uri", &v));
	assert_null(v);
	assert_true(json_object_object_get_ex(page, "start", &v));
	assert_int_equal(json_object_get_int(v), 4);
	json_object_put(page);
	/* nothing matches: an empty page, not a crash */
	assert_int_equal(simlist_query_parse("To=%2B14155550177", &q, &serr), VERR_OK);
	assert_int_equal(simlist_calls(&cfg, &q, &page), VERR_OK);
	assert_true(json_object_object_get_ex(page, "calls", &v));
	assert_int_equal(json_object_array_length(v), 0);
	assert_true(json_object_object_get_ex(page, "next_page_uri", &v));
	assert_null(v);
	json_object_put(page);
	for (i = 0; i < 6; i++) {
		snprintf(path, sizeof path, "%s/calls/CA%032d.json", dir, i);
		unlink(path);
	}
	snprintf(path, sizeof path, "%s/calls", dir);
	rmdir(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fault_scenarios),
		cmocka_unit_test(test_query_valid),
		cmocka_unit_test(test_query_invalid),
		cmocka_unit_test(test_match),
		cmocka_unit_test(test_pages),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
