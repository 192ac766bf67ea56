#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <limits.h>

#include <cmocka.h>

#include "num.h"

static void test_valid(void **state)
{
	static const struct {
		const char *in;
		long long min, max, want;
	} valid[] = {
		{ "0", 0, 10, 0 },
		{ "10", 0, 10, 10 },
		{ "5", 5, 600, 5 },
		{ "600", 5, 600, 600 },
		{ "-1", -5, 5, -1 },
		{ "9223372036854775807", 0, LLONG_MAX, LLONG_MAX },
		{ "-9223372036854775808", LLONG_MIN, 0, LLONG_MIN },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof valid / sizeof valid[0]; i++) {
		long long out = 12345;

		assert_true(num_parse(valid[i].in, valid[i].min, valid[i].max, &out));
		assert_int_equal(out, valid[i].want);
	}
}

static void test_invalid(void **state)
{
	static const struct {
		const char *in;
		long long min, max;
	} invalid[] = {
		{ "", 0, 10 },   { "11", 0, 10 },  { "4", 5, 600 },   { "601", 5, 600 },
		{ "+1", 0, 10 }, { " 1", 0, 10 },  { "1 ", 0, 10 },   { "01", 0, 10 },
		{ "1.0", 0, 10 }, { "1e3", 0, 9999 }, { "-", -5, 5 }, { "-0", -5, 5 },
		{ "-1", 0, 10 }, { "0x10", 0, 100 }, { "abc", 0, 10 },
		{ "9223372036854775808", 0, LLONG_MAX },
		{ "-9223372036854775809", LLONG_MIN, 0 },
		{ "99999999999999999999999", 0, LLONG_MAX },
	};
	size_t i;

	(void)state;
	assert_false(num_parse(NULL, 0, 1, &(long long){ 0 }));
	for (i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
		long long out = 77;

		assert_false(num_parse(invalid[i].in, invalid[i].min, invalid[i].max, &out));
		assert_int_equal(out, 77); /* untouched on failure */
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_invalid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
