#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "http.h"

static void test_error_shape(void **state)
{
	struct http_resp r;
	struct json_object *o, *err, *v;

	(void)state;
	http_resp_init(&r);
	http_resp_error_twilio(&r, 422, "invalid_phone_number", "the 'to' number is \"bad\"", "to", 21211);
	assert_int_equal(r.status, 422);
	assert_string_equal(r.content_type, "application/json; charset=utf-8");
	assert_string_equal(r.error_code, "invalid_phone_number");
	assert_int_equal(r.twilio_code, 21211);
	o = json_tokener_parse(buf_str(&r.body));
	assert_non_null(o);
	assert_true(json_object_object_get_ex(o, "error", &err));
	assert_true(json_object_object_get_ex(err, "code", &v));
	assert_string_equal(json_object_get_string(v), "invalid_phone_number");
	assert_true(json_object_object_get_ex(err, "message", &v));
	assert_string_equal(json_object_get_string(v), "the 'to' number is \"bad\"");
	assert_true(json_object_object_get_ex(err, "field", &v));
	assert_string_equal(json_object_get_string(v), "to");
	assert_true(json_object_object_get_ex(err, "twilio_code", &v));
	assert_int_equal(json_object_get_int(v), 21211);
	json_object_put(o);

	http_resp_error(&r, 401, "unauthorized", "no key", NULL);
	o = json_tokener_parse(buf_str(&r.body));
	assert_true(json_object_object_get_ex(o, "error", &err));
	assert_false(json_object_object_get_ex(err, "field", &v));
	assert_false(json_object_object_get_ex(err, "twilio_code", &v));
	json_object_put(o);
	http_resp_free(&r);
}

static void test_header_injection_refused(void **state)
{
	struct http_resp r;

	(void)state;
	http_resp_init(&r);
	assert_int_equal(http_resp_header(&r, "Retry-After", "5"), VERR_OK);
	assert_int_equal(http_resp_header(&r, "X-Bad", "a\r\nSet-Cookie: x"), VERR_INVALID);
	assert_int_equal(http_resp_header(&r, "Bad Name", "v"), VERR_INVALID);
	assert_int_equal(http_resp_header(&r, "", "v"), VERR_INVALID);
	assert_string_equal(buf_str(&r.headers), "Retry-After: 5\r\n");
	http_resp_free(&r);
}

static void test_content_type(void **state)
{
	static const struct {
		const char *ct;
		bool json;
	} cases[] = {
		{ "application/json", true },
		{ "application/json; charset=utf-8", true },
		{ "Application/JSON;charset=UTF-8", true },
		{ "application/jsonx", false },
		{ "text/plain", false },
		{ "", false },
		{ "application/x-www-form-urlencoded", false },
	};
	struct http_req req;
	size_t i;

	(void)state;
	memset(&req, 0, sizeof req);
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		req.content_type = cases[i].ct;
		assert_int_equal(http_content_type_is(&req, "application/json"), cases[i].json);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_error_shape),
		cmocka_unit_test(test_header_injection_refused),
		cmocka_unit_test(test_content_type),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
