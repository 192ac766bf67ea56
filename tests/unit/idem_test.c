/* Idempotency-Key (common/idem.h): idem_key_valid. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "idem.h"

static void test_idem_key(void **state)
{
	char longest[IDEM_MAX_KEY + 2];

	(void)state;
	assert_true(idem_key_valid("a"));
	assert_true(idem_key_valid("order-1234:retry/ok~"));
	memset(longest, 'k', IDEM_MAX_KEY);
	longest[IDEM_MAX_KEY] = '\0';
	assert_true(idem_key_valid(longest));
	longest[IDEM_MAX_KEY] = 'k';
	longest[IDEM_MAX_KEY + 1] = '\0';
	assert_false(idem_key_valid(longest));
	assert_false(idem_key_valid(""));
	assert_false(idem_key_valid("has space"));
	assert_false(idem_key_valid("tab\there"));
	assert_false(idem_key_valid("caf\xc3\xa9"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_idem_key),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
