#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cursor.h"

static void test_round_trip(void **state)
{
	static const struct {
		const char *ts, *sid;
	} valid[] = {
		{ "2026-11-24T01:27:42.858661Z", "CA0123456789abcdef0123456789abcdef" },
		{ "1999-01-01T00:00:00.000000Z", "CAFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF" },
	};
	char cur[CURSOR_MAX], ts[DB_MAX_TS], sid[DB_MAX_TS];
	size_t i, j;

	(void)state;
	for (i = 0; i < sizeof valid / sizeof valid[0]; i++) {
		assert_true(cursor_encode(valid[i].ts, valid[i].sid, cur));
		for (j = 0; cur[j] != '\0'; j++) /* URL-safe: no + / = */
			assert_null(strchr("+/=", cur[j]));
		assert_true(cursor_decode(cur, ts, sid));
		assert_string_equal(ts, valid[i].ts);
		assert_string_equal(sid, valid[i].sid);
	}
}

static void test_invalid(void **state)
{
	char cur[CURSOR_MAX], ts[DB_MAX_TS], sid[DB_MAX_TS];
	static const char *const invalid[] = {
		"", "a", "!!!!", "abc=", "Zm9v", /* "foo": no separator */
		"MjAyNi0xMS0yNFQwMToyNzo0Mi44NTg2NjFafENBMDE", /* truncated sid */
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof invalid / sizeof invalid[0]; i++)
		assert_false(cursor_decode(invalid[i], ts, sid));
	/* well-formed base64 of wrong content */
	assert_true(cursor_encode("2026-11-24 01:27:42", "CA0123456789abcdef0123456789abcdef", cur));
	assert_false(cursor_decode(cur, ts, sid));
	assert_true(cursor_encode("2026-11-24T01:27:42.858661Z", "XX0123456789abcdef0123456789abcdef", cur));
	assert_false(cursor_decode(cur, ts, sid));
	assert_true(cursor_encode("2026-11-24T01:27:42.858661Z", "CA0123456789abcdef0123456789abcdef'", cur));
	assert_false(cursor_decode(cur, ts, sid));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_invalid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
