/*
 * /healthz and /readyz (common/health.h) against the fake database
 * (tests/unit/fakedb.c): liveness never asks the database, readiness is
 * exactly "the database answers", other paths are left to the caller.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "fakedb.h"
#include "apierr.h"
#include "health.h"

static void test_health(void **state)
{
	static const struct {
		const char *method, *path;
		enum verr ping; /* what db_ping answers, if asked */
		bool routed;
		int status;
		bool asks_db;
		const char *code;   /* error code, or NULL */
		const char *header; /* expected in the headers, or NULL */
	} cases[] = {
		{ "GET", "/healthz", VERR_OK, true, 200, false, NULL, NULL },
		{ "GET", "/healthz", VERR_DB_DOWN, true, 200, false, NULL, NULL },
		{ "HEAD", "/healthz", VERR_OK, true, 200, false, NULL, NULL },
		{ "GET", "/readyz", VERR_OK, true, 200, true, NULL, NULL },
		{ "HEAD", "/readyz", VERR_OK, true, 200, true, NULL, NULL },
		{ "GET", "/readyz", VERR_DB_DOWN, true, 503, true, "database_unavailable",
		  "Retry-After: 5\r\n" },
		{ "POST", "/readyz", VERR_OK, true, 405, false, "method_not_allowed",
		  "Allow: GET, HEAD\r\n" },
		{ "DELETE", "/healthz", VERR_OK, true, 405, false, "method_not_allowed",
		  "Allow: GET, HEAD\r\n" },
		{ "GET", "/readyz/", VERR_OK, false, 0, false, NULL, NULL },
		{ "GET", "/health", VERR_OK, false, 0, false, NULL, NULL },
		{ "GET", "/calls", VERR_OK, false, 0, false, NULL, NULL },
	};
	struct db *db = db_new("fake", 1);
	size_t i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct http_req req;
		struct req_ctx rc;
		struct http_resp resp;
		bool routed;

		memset(&req, 0, sizeof req);
		memset(&rc, 0, sizeof rc);
		req.method = cases[i].method;
		req.path = cases[i].path;
		fakedb_reset();
		fakedb_next(cases[i].ping);
		http_resp_init(&resp);
		resp.status = 999;
		routed = health_route(&req, &rc, &resp, db);
		if (routed != cases[i].routed)
			fail_msg("%s %s: routed %d", cases[i].method, cases[i].path, routed);
		assert_int_equal(fakedb_calls(), cases[i].asks_db ? 1 : 0);
		if (!routed) {
			assert_int_equal(resp.status, 999); /* left alone */
			assert_int_equal(resp.body.len, 0);
		} else {
			assert_int_equal(resp.status, cases[i].status);
			if (cases[i].asks_db)
				assert_string_equal(fakedb_last(), "db_ping");
			if (cases[i].code != NULL)
				assert_string_equal(apierr_code(rc.error), cases[i].code);
			else
				assert_string_equal(buf_str(&resp.body), "{\"status\":\"ok\"}\n");
			if (cases[i].header != NULL)
				assert_non_null(strstr(buf_str(&resp.headers), cases[i].header));
		}
		http_resp_free(&resp);
	}
	db_free(db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_health),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
