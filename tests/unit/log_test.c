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

#define M "\xe2\x80\xa2\xe2\x80\xa2\xe2\x80\xa2" /* "•••" */

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
		/* E.164: the country code and the last 4, 3 or 2 digits */
		{ "+14155550100", "+1" M "0100" },       /* NANP */
		{ "+79161234567", "+7" M "4567" },       /* RU */
		{ "+442079460958", "+44" M "0958" },     /* GB */
		{ "+4930123456", "+49" M "456" },        /* DE, 8 digits after the code */
		{ "+33142685300", "+33" M "5300" },      /* FR */
		{ "+8613812345678", "+86" M "5678" },    /* CN, 11 digits after the code */
		{ "+3545511234", "+354" M "234" },       /* IS: a 3-digit code, 7 digits */
		{ "+35319876543", "+353" M "543" },      /* IE */
		{ "+2693123456", "+269" M "456" },       /* KM: 3-digit code starting 26 */
		{ "+6831234", "+683" M "34" },           /* NU: 4 digits after the code */
		{ "+80012345678", "+800" M "678" },      /* non-geographic freephone */
		{ "+12345", "+1" M "45" },
		{ "+1234", "+1" M },                     /* too short to show any */
		{ "+999123456789012", "+999" M "9012" }, /* unassigned: 3 digits */
		/* not E.164: at most the last two characters */
		{ "client:alice", M "ce" },
		{ "anonymous", M "us" },
		{ "266696687", M "87" },
		{ "+0123456789", M "89" },               /* no country code starts with 0 */
		{ "+1415555010a", M "0a" },
		{ "sip:bob@example.com/", M },
		{ "12345", M },
		{ "caf\xc3\xa9s", M },
		{ "1", M },
		{ "", M },
	};
	char out[LOG_MASKED_MAX];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		log_mask_phone(cases[i].in, out, sizeof out);
		if (strcmp(out, cases[i].want) != 0)
			fail_msg("%s: %s, want %s", cases[i].in, out, cases[i].want);
	}
	log_mask_phone(NULL, out, sizeof out);
	assert_string_equal(out, "");
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
