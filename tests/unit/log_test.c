#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "log.h"

/* Runs the logger with stderr redirected to a temporary file; returns the
 * text written (caller frees). */
static char *capture_begin(int *saved)
{
	FILE *tmp = tmpfile();

	assert_non_null(tmp);
	*saved = dup(STDERR_FILENO);
	dup2(fileno(tmp), STDERR_FILENO);
	return (char *)tmp;
}

static char *capture_end(int saved, char *handle)
{
	FILE *tmp = (FILE *)handle;
	char *out = calloc(1, 65536);
	size_t n;

	dup2(saved, STDERR_FILENO);
	close(saved);
	rewind(tmp);
	n = fread(out, 1, 65535, tmp);
	out[n] = '\0';
	fclose(tmp);
	return out;
}

static void test_mask(void **state)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ "+14155550100", "+1415\xe2\x80\xa2\xe2\x80\xa2\xe2\x80\xa2" "0100" },
		{ "+442079460958", "+4420\xe2\x80\xa2\xe2\x80\xa2\xe2\x80\xa2" "0958" },
		{ "12345", "\xe2\x80\xa2\xe2\x80\xa2\xe2\x80\xa2" "45" },
		{ "1", "\xe2\x80\xa2\xe2\x80\xa2\xe2\x80\xa2" },
		{ "", "\xe2\x80\xa2\xe2\x80\xa2\xe2\x80\xa2" },
	};
	char out[LOG_MASKED_MAX];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		log_mask_phone(cases[i].in, out, sizeof out);
		assert_string_equal(out, cases[i].want);
	}
}

static void test_line_is_json_with_fields(void **state)
{
	int saved;
	char *h, *out;
	struct json_object *o, *v;

	(void)state;
	log_set_level(LOG_DEBUG);
	log_set_request_id("req-1");
	h = capture_begin(&saved);
	log_info("call \"placed\"\n", LF_STR("route", "/call"), LF_INT("status", 201),
	         LF_PHONE("to", "+14155550100"), LF_STR("absent", NULL));
	out = capture_end(saved, h);
	log_set_request_id(NULL);
	assert_non_null(strchr(out, '\n'));
	assert_ptr_equal(strchr(out, '\n'), out + strlen(out) - 1); /* exactly one line */
	o = json_tokener_parse(out);
	assert_non_null(o);
	assert_true(json_object_object_get_ex(o, "msg", &v));
	assert_string_equal(json_object_get_string(v), "call \"placed\"\n");
	assert_true(json_object_object_get_ex(o, "request_id", &v));
	assert_string_equal(json_object_get_string(v), "req-1");
	assert_true(json_object_object_get_ex(o, "status", &v));
	assert_int_equal(json_object_get_int(v), 201);
	assert_true(json_object_object_get_ex(o, "to", &v));
	assert_null(strstr(json_object_get_string(v), "5550100"));
	assert_false(json_object_object_get_ex(o, "absent", &v));
	assert_true(json_object_object_get_ex(o, "level", &v));
	assert_string_equal(json_object_get_string(v), "info");
	json_object_put(o);
	free(out);
}

static void test_level_filter(void **state)
{
	int saved;
	char *h, *out;
	enum log_level l;

	(void)state;
	assert_true(log_level_parse("warn", &l));
	assert_false(log_level_parse("verbose", &l));
	log_set_level(LOG_WARN);
	h = capture_begin(&saved);
	log_info("hidden");
	log_debug("hidden");
	log_warn("shown");
	out = capture_end(saved, h);
	assert_null(strstr(out, "hidden"));
	assert_non_null(strstr(out, "shown"));
	free(out);
	log_set_level(LOG_DEBUG);
}

static void test_secrets_redacted(void **state)
{
	int saved;
	char *h, *out;

	(void)state;
	log_add_secret("0123456789abcdef0123456789abcdef");
	log_add_secret("short1");
	h = capture_begin(&saved);
	log_error("oops", LF_STR("detail", "token=0123456789abcdef0123456789abcdef and short1 again short1"));
	log_error("0123456789abcdef0123456789abcdef");
	out = capture_end(saved, h);
	assert_null(strstr(out, "0123456789abcdef0123456789abcdef"));
	assert_null(strstr(out, "short1"));
	assert_non_null(strstr(out, "token=[redacted]"));
	free(out);
}

static void test_control_chars_escaped(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 100);
	assert_int_equal(log_json_string(&b, "a\x01\x7f\"\\"), VERR_OK);
	assert_string_equal(buf_str(&b), "\"a\\u0001\\u007f\\\"\\\\\"");
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mask),
		cmocka_unit_test(test_line_is_json_with_fields),
		cmocka_unit_test(test_level_filter),
		cmocka_unit_test(test_secrets_redacted),
		cmocka_unit_test(test_control_chars_escaped),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
