#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "http.h"

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
		cmocka_unit_test(test_header_injection_refused),
		cmocka_unit_test(test_content_type),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
