/*
 * Cancel and hang up (common/callctl.h): the body rule (empty or an empty
 * JSON object). Linked with the fake database (tests/unit/fakedb.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "apierr.h"
#include "callctl.h"

static void test_control_body(void **state)
{
	static const struct {
		const char *body;
		int status; /* 0: accepted */
		const char *code;
	} cases[] = {
		{ "", 0, NULL },
		{ "{}", 0, NULL },
		{ " \n{ }\t", 0, NULL },
		{ "{\"reason\":\"x\"}", 400, "unknown_field" },
		{ "[]", 400, "invalid_json" },
		{ "{} {}", 400, "invalid_json" },
		{ "{", 400, "invalid_json" },
		{ "null", 400, "invalid_json" },
		{ "Status=canceled", 400, "invalid_json" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct http_req req;
		struct req_ctx rc;
		struct http_resp resp;
		bool ok;

		memset(&req, 0, sizeof req);
		memset(&rc, 0, sizeof rc);
		req.body = cases[i].body;
		req.body_len = strlen(cases[i].body);
		http_resp_init(&resp);
		ok = callctl_body_ok(&req, &rc, &resp);
		if (ok != (cases[i].status == 0))
			fail_msg("body %s: ok %d", cases[i].body, ok);
		if (!ok) {
			assert_int_equal(resp.status, cases[i].status);
			assert_string_equal(apierr_code(rc.error), cases[i].code);
		}
		http_resp_free(&resp);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_control_body),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
