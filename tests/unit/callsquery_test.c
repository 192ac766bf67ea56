#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "callsquery.h"
#include "cursor.h"

static void test_valid(void **state)
{
	static const struct {
		const char *query, *status, *direction;
		int limit;
	} valid[] = {
		{ "", NULL, NULL, 20 },
		{ "limit=1", NULL, NULL, 1 },
		{ "limit=100", NULL, NULL, 100 },
		{ "status=completed", "completed", NULL, 20 },
		{ "status=no-answer&direction=outbound-api&limit=5", "no-answer", "outbound-api", 5 },
		{ "direction=inbound", NULL, "inbound", 20 },
		{ "status=in-progress", "in-progress", NULL, 20 },
	};
	struct callsquery q;
	struct callsquery_error err;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof valid / sizeof valid[0]; i++) {
		assert_int_equal(callsquery_parse(valid[i].query, &q, &err), VERR_OK);
		assert_int_equal(q.filter.limit, valid[i].limit);
		if (valid[i].status == NULL)
			assert_null(q.filter.status);
		else
			assert_string_equal(q.filter.status, valid[i].status);
		if (valid[i].direction == NULL)
			assert_null(q.filter.direction);
		else
			assert_string_equal(q.filter.direction, valid[i].direction);
		assert_null(q.filter.after_created);
	}
}

static void test_cursor(void **state)
{
	char cur[CURSOR_MAX], query[CURSOR_MAX + 16];
	struct callsquery q;
	struct callsquery_error err;

	(void)state;
	assert_true(cursor_encode("2026-11-24T01:27:42.858661Z", "CA0123456789abcdef0123456789abcdef", cur));
	snprintf(query, sizeof query, "cursor=%s", cur);
	assert_int_equal(callsquery_parse(query, &q, &err), VERR_OK);
	assert_string_equal(q.filter.after_created, "2026-11-24T01:27:42.858661Z");
	assert_string_equal(q.filter.after_sid, "CA0123456789abcdef0123456789abcdef");
	/* the shape of ours, a date that does not exist: the client's error (400) */
	assert_true(cursor_encode("2026-13-01T00:00:00.000000Z", "CA0123456789abcdef0123456789abcdef", cur));
	snprintf(query, sizeof query, "cursor=%s", cur);
	memset(&err, 0, sizeof err);
	assert_int_equal(callsquery_parse(query, &q, &err), VERR_INVALID);
	assert_int_equal(err.code, APIERR_INVALID_VALUE);
	assert_string_equal(err.field, "cursor");
}

static void test_invalid(void **state)
{
	static const struct {
		const char *query;
		enum apierr code;
		const char *field;
	} invalid[] = {
		{ "limit=0", APIERR_INVALID_VALUE, "limit" },
		{ "limit=101", APIERR_INVALID_VALUE, "limit" },
		{ "limit=ten", APIERR_INVALID_VALUE, "limit" },
		{ "limit=", APIERR_INVALID_VALUE, "limit" },
		{ "limit=5&limit=6", APIERR_INVALID_QUERY, "limit" },
		{ "status=done", APIERR_INVALID_VALUE, "status" },
		{ "status=", APIERR_INVALID_VALUE, "status" },
		{ "direction=sideways", APIERR_INVALID_VALUE, "direction" },
		{ "direction=trunking-originating", APIERR_INVALID_VALUE, "direction" },
		{ "cursor=abc", APIERR_INVALID_VALUE, "cursor" },
		{ "colour=blue", APIERR_UNKNOWN_FIELD, "colour" },
		{ "status=%zz", APIERR_INVALID_QUERY, "" },
	};
	struct callsquery q;
	struct callsquery_error err;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
		memset(&err, 0, sizeof err);
		assert_int_equal(callsquery_parse(invalid[i].query, &q, &err), VERR_INVALID);
		assert_int_equal(err.code, invalid[i].code);
		assert_string_equal(err.field, invalid[i].field);
		assert_true(err.message[0] != '\0');
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_cursor),
		cmocka_unit_test(test_invalid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
