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
		{ "2024-02-29T23:59:59.999999Z", "CA0123456789abcdef0123456789abcdef" }, /* leap year */
		{ "2000-02-29T00:00:00.000000Z", "CA0123456789abcdef0123456789abcdef" }, /* 400 rule */
		{ "9999-12-31T23:59:59.999999Z", "CA0123456789abcdef0123456789abcdef" },
		{ "0001-01-01T00:00:00.000000Z", "CA0123456789abcdef0123456789abcdef" },
	};
	char cur[CURSOR_MAX], ts[CURSOR_MAX_PIECE], sid[CURSOR_MAX_PIECE];
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

/* Well-formed timestamps that name no instant: refused here, so the database
 * never gets to refuse them (which would look like an outage). */
static void test_impossible_dates(void **state)
{
	static const char *const invalid[] = {
		"2026-13-01T00:00:00.000000Z", /* month 13 */
		"2026-00-10T00:00:00.000000Z", /* month 0 */
		"2026-01-00T00:00:00.000000Z", /* day 0 */
		"2026-01-32T00:00:00.000000Z",
		"2026-04-31T00:00:00.000000Z", /* April has 30 days */
		"2026-02-30T00:00:00.000000Z",
		"2025-02-29T00:00:00.000000Z", /* not a leap year */
		"1900-02-29T00:00:00.000000Z", /* century, not divisible by 400 */
		"0000-01-01T00:00:00.000000Z", /* there is no year 0 */
		"2026-01-01T24:00:00.000000Z",
		"2026-01-01T00:60:00.000000Z",
		"2026-01-01T00:00:60.000000Z", /* leap seconds are never issued */
		"2026-01-01T99:99:99.000000Z",
	};
	char cur[CURSOR_MAX], ts[CURSOR_MAX_PIECE], sid[CURSOR_MAX_PIECE];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
		assert_true(cursor_encode(invalid[i], "CA0123456789abcdef0123456789abcdef", cur));
		if (cursor_decode(cur, ts, sid))
			fail_msg("%s was accepted", invalid[i]);
	}
}

static void test_invalid(void **state)
{
	char cur[CURSOR_MAX], ts[CURSOR_MAX_PIECE], sid[CURSOR_MAX_PIECE];
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
		cmocka_unit_test(test_impossible_dates),
		cmocka_unit_test(test_invalid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
