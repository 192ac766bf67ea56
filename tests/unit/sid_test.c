/*
 * Twilio SID shape (sid_valid): two-letter prefix, 32 hex digits of either
 * case, nothing before or after.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "sid.h"

#define CALL "CA00112233445566778899aabbccddeeff"

static void test_valid(void **state)
{
	static const struct {
		const char *s, *prefix;
	} valid[] = {
		{ CALL, "CA" },
		{ "CA00112233445566778899AABBCCDDEEFF", "CA" },
		{ "AC0123456789abcdef0123456789abcdef", "AC" },
		{ "RE0123456789ABCDEFabcdef0123456789", "RE" },
		{ "SK00000000000000000000000000000000", "SK" },
		{ "PNffffffffffffffffffffffffffffffff", "PN" },
		{ CALL, "CA[0-9a-fA-F]{32}$" }, /* only two characters of prefix count */
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof valid / sizeof valid[0]; i++) {
		print_message("valid: '%s' %s\n", valid[i].s, valid[i].prefix);
		assert_true(sid_valid(valid[i].s, valid[i].prefix));
	}
}

static void test_invalid(void **state)
{
	static const struct {
		const char *s, *prefix;
	} invalid[] = {
		{ CALL, "AC" },
		{ "AC0123456789abcdef0123456789abcdef", "CA" },
		{ CALL, "ca" },
		{ "ca00112233445566778899aabbccddeeff", "CA" },
		{ "", "CA" },
		{ "C", "CA" },
		{ "CA", "CA" },
		{ CALL "f", "CA" },
		{ CALL " ", "CA" },
		{ " " CALL, "CA" },
		{ "CA00112233445566778899aabbccddeef", "CA" },
		{ "CA00112233445566778899aabbccddee-f", "CA" },
		{ "CA00112233445566778899aabbccddeeg0", "CA" },
		{ "CA0x112233445566778899aabbccddeeff", "CA" },
		{ "CA0011223344556677889\xc3\xa9" "aabbccddeef", "CA" },
		{ "CA00112233445566778899aabbccddeef\n", "CA" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
		print_message("invalid: '%s' %s\n", invalid[i].s, invalid[i].prefix);
		assert_false(sid_valid(invalid[i].s, invalid[i].prefix));
	}
}

/* An embedded NUL ends the SID early: what follows it does not count. */
static void test_embedded_nul(void **state)
{
	static const char s[] = "CA0011223344556677\0" "8899aabbccddeeff";

	(void)state;
	assert_false(sid_valid(s, "CA"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_embedded_nul),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
