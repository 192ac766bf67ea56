#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"

static void test_append_and_cap(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 8);
	assert_string_equal(buf_str(&b), "");
	assert_int_equal(buf_puts(&b, "abcd"), VERR_OK);
	assert_int_equal(buf_printf(&b, "%d", 123), VERR_OK);
	assert_string_equal(buf_str(&b), "abcd123");
	assert_int_equal(buf_putc(&b, 'x'), VERR_OK);      /* exactly at max */
	assert_int_equal(buf_putc(&b, 'y'), VERR_TOOBIG);  /* one past */
	assert_int_equal(buf_printf(&b, "%s", "zz"), VERR_TOOBIG);
	assert_string_equal(buf_str(&b), "abcd123x");      /* unchanged */
	assert_int_equal(b.len, 8);
	buf_reset(&b);
	assert_string_equal(buf_str(&b), "");
	assert_int_equal(buf_append(&b, "a\0b", 3), VERR_OK);
	assert_int_equal(b.len, 3);
	assert_memory_equal(b.data, "a\0b", 3);
	buf_free(&b);
	buf_free(NULL);
}

static void test_growth(void **state)
{
	struct buf b;
	size_t i;

	(void)state;
	buf_init(&b, 100000);
	for (i = 0; i < 10000; i++)
		assert_int_equal(buf_puts(&b, "0123456789"), VERR_OK);
	assert_int_equal(b.len, 100000);
	assert_int_equal(buf_putc(&b, 'x'), VERR_TOOBIG);
	buf_free(&b);
}

static void test_truncate(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 64);
	buf_truncate(&b, 0); /* never allocated: a no-op */
	assert_string_equal(buf_str(&b), "");
	assert_int_equal(buf_puts(&b, "keep+drop"), VERR_OK);
	buf_truncate(&b, 4);
	assert_int_equal(b.len, 4);
	assert_string_equal(buf_str(&b), "keep");
	buf_truncate(&b, 10); /* never grows */
	assert_string_equal(buf_str(&b), "keep");
	buf_free(&b);
}

static void test_str_copy(void **state)
{
	char small[4];

	(void)state;
	assert_true(str_copy(small, sizeof small, "abc"));
	assert_string_equal(small, "abc");
	assert_false(str_copy(small, sizeof small, "abcd"));
	assert_string_equal(small, "abc");
	assert_false(str_copy(small, 0, "a"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_append_and_cap),
		cmocka_unit_test(test_growth),
		cmocka_unit_test(test_truncate),
		cmocka_unit_test(test_str_copy),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
