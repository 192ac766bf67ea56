/*
 * Idempotency-Key (common/idem.h) against the fake database
 * (tests/unit/fakedb.c): the state machine of a key as idem_begin drives it
 * (claimed, answered before and replayed, still in progress, abandoned by a
 * request that died, used with another body, the database unreachable) and
 * how idem_end stores or releases it. Also idem_key_valid.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "fakedb.h"
#include "apierr.h"
#include "idem.h"

#define BODY "{\"to\":\"+14155550199\"}"
/* sha256(BODY), lowercase hex */
#define BODY_HASH "6fe5b90ea7fe13c7f714deeccc378755a176773b52e1bc0cd9859c94bdca1d7e"
#define CALL "CA00112233445566778899aabbccddeeff"
#define MAX_STEPS 4

static struct db *db;

/* The code of the error rc answered, "" for none. */
static const char *code_of(const struct req_ctx *rc)
{
	return rc->error == APIERR_NONE ? "" : apierr_code(rc->error);
}

static void request(struct http_req *req, struct req_ctx *rc, struct http_resp *resp)
{
	memset(req, 0, sizeof *req);
	req->method = "POST";
	req->path = "/call";
	req->body = BODY;
	req->body_len = strlen(BODY);
	req->idempotency_key = "order-1";
	memset(rc, 0, sizeof *rc);
	http_resp_init(resp);
	str_copy(rc->key_name, sizeof rc->key_name, "billing");
}

static bool has_header(const struct http_resp *resp, const char *line)
{
	return strstr(buf_str((struct buf *)&resp->headers), line) != NULL;
}

static int setup(void **state)
{
	(void)state;
	fakedb_reset();
	db = db_new("fake", 1);
	return 0;
}

/* Each case: what db_idem_claim answers, call after call. */
static void test_begin(void **state)
{
	static const struct {
		const char *what;
		struct fakedb_result steps[MAX_STEPS];
		bool dial;            /* idem_begin's result */
		int claims;           /* db_idem_claim calls: the steps taken */
		int status;           /* resp status when not dialing */
		const char *code;     /* error code, or NULL for a replay */
		const char *body;     /* a substring of the body, or NULL */
		const char *header;   /* a header line, or NULL */
		const char *header2;  /* another, or NULL */
		const char *call_sid; /* resp->call_sid afterwards */
	} cases[] = {
		{ "claimed", { { .idem = DB_IDEM_CLAIMED } }, true, 1, 0, NULL, NULL, NULL, NULL, "" },
		{ "done: replayed",
		  { { .idem = DB_IDEM_DONE, .status = 201, .body = "{\"sid\":\"" CALL "\"}" } }, false, 1,
		  201, NULL, "{\"sid\":\"" CALL "\"}", "Idempotent-Replayed: true\r\n", NULL, "" },
		{ "done with a 503: replayed, retry later",
		  { { .idem = DB_IDEM_DONE, .status = 503, .body = "{\"error\":{}}" } }, false, 1, 503,
		  NULL, "{\"error\":{}}", "Idempotent-Replayed: true\r\n",
		  "Retry-After: " IDEM_REPLAY_RETRY_AFTER "\r\n", "" },
		{ "another body", { { .idem = DB_IDEM_MISMATCH } }, false, 1, 422,
		  "idempotency_key_reused", "Idempotency-Key", NULL, NULL, "" },
		{ "abandoned, call linked", { { .idem = DB_IDEM_ABANDONED, .sid = CALL } }, false, 1, 502,
		  "outcome_unknown", "see GET /calls/" CALL, NULL, NULL, CALL },
		{ "abandoned, call unknown", { { .idem = DB_IDEM_ABANDONED } }, false, 1, 502,
		  "outcome_unknown", "may or may not have been placed", NULL, NULL, "" },
		{ "database down", { { .e = VERR_DB_DOWN } }, false, 1, 503, "database_unavailable",
		  NULL, "Retry-After: 5\r\n", NULL, "" },
		{ "database refused", { { .e = VERR_DB } }, false, 1, 503, "database_unavailable", NULL,
		  "Retry-After: 5\r\n", NULL, "" },
		/* a concurrent request holds the key: wait for it, then go on */
		{ "in progress, then released",
		  { { .idem = DB_IDEM_PENDING }, { .idem = DB_IDEM_CLAIMED } }, true, 2, 0, NULL, NULL,
		  NULL, NULL, "" },
		{ "in progress, then answered",
		  { { .idem = DB_IDEM_PENDING },
		    { .idem = DB_IDEM_PENDING },
		    { .idem = DB_IDEM_DONE, .status = 201, .body = "{}" } },
		  false, 3, 201, NULL, "{}", "Idempotent-Replayed: true\r\n", NULL, "" },
		{ "claim raced (conflict), then claimed",
		  { { .e = VERR_CONFLICT }, { .idem = DB_IDEM_CLAIMED } }, true, 2, 0, NULL, NULL, NULL,
		  NULL, "" },
		{ "in progress, then the database went away",
		  { { .idem = DB_IDEM_PENDING }, { .e = VERR_DB_DOWN } }, false, 2, 503,
		  "database_unavailable", NULL, NULL, NULL, "" },
	};
	size_t i, k;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct http_req req;
		struct req_ctx rc;
		struct http_resp resp;
		bool dial;

		fakedb_reset();
		for (k = 0; k < (size_t)cases[i].claims; k++)
			fakedb_script(&cases[i].steps[k]);
		request(&req, &rc, &resp);
		dial = idem_begin(db, &req, &rc, &resp, 30000);
		if (dial != cases[i].dial)
			fail_msg("%s: dial %d", cases[i].what, dial);
		if (fakedb_count("db_idem_claim") != cases[i].claims)
			fail_msg("%s: %d claims, want %d", cases[i].what, fakedb_count("db_idem_claim"),
			         cases[i].claims);
		assert_int_equal(fakedb_calls(), cases[i].claims); /* nothing but claims */
		if (cases[i].steps[cases[i].claims - 1].e == VERR_OK)
			assert_string_equal(fakedb_last_params(), "api_key_name=billing key=order-1 hash="
			                                          BODY_HASH " lease_ms=30000");
		if (!dial) {
			assert_int_equal(resp.status, cases[i].status);
			assert_string_equal(code_of(&rc), cases[i].code != NULL ? cases[i].code : "");
		}
		if (cases[i].body != NULL && strstr(buf_str(&resp.body), cases[i].body) == NULL)
			fail_msg("%s: body %s", cases[i].what, buf_str(&resp.body));
		if (cases[i].header != NULL && !has_header(&resp, cases[i].header))
			fail_msg("%s: no %s", cases[i].what, cases[i].header);
		if (cases[i].header2 != NULL && !has_header(&resp, cases[i].header2))
			fail_msg("%s: no %s", cases[i].what, cases[i].header2);
		if (cases[i].header == NULL)
			assert_false(has_header(&resp, "Idempotent-Replayed"));
		assert_string_equal(rc.call_sid, cases[i].call_sid);
		http_resp_free(&resp);
	}
}

/* A key still pending after IDEM_WAIT_MS (its request still running): 409,
 * and the caller is told to retry shortly. Takes IDEM_WAIT_MS. */
static void test_still_in_progress(void **state)
{
	struct fakedb_result pending = { .idem = DB_IDEM_PENDING };
	struct http_req req;
	struct req_ctx rc;
	struct http_resp resp;

	(void)state;
	fakedb_default(&pending);
	request(&req, &rc, &resp);
	assert_false(idem_begin(db, &req, &rc, &resp, 30000));
	assert_int_equal(resp.status, 409);
	assert_int_equal(rc.error, APIERR_IDEMPOTENCY_KEY_IN_PROGRESS);
	assert_true(has_header(&resp, "Retry-After: 1\r\n"));
	/* polled every IDEM_POLL_MS, give or take the scheduler */
	assert_true(fakedb_count("db_idem_claim") >= IDEM_WAIT_MS / IDEM_POLL_MS / 2);
	assert_true(fakedb_count("db_idem_claim") <= IDEM_WAIT_MS / IDEM_POLL_MS + 2);
	http_resp_free(&resp);
}

/* The end of a claimed key: its answer stored, or the key released when
 * nothing was dialed. A failure is logged, nothing else. */
static void test_end(void **state)
{
	struct http_req req;
	struct req_ctx rc;
	struct http_resp resp;

	(void)state;
	request(&req, &rc, &resp);
	assert_int_equal(http_resp_set(&resp, 201, "application/json", "{\"sid\":\"" CALL "\"}",
	                               strlen("{\"sid\":\"" CALL "\"}")), VERR_OK);
	str_copy(rc.call_sid, sizeof rc.call_sid, CALL);
	idem_end(db, &req, &rc, &resp, false);
	assert_int_equal(fakedb_calls(), 1);
	assert_string_equal(fakedb_last(), "db_idem_complete");
	assert_string_equal(fakedb_last_params(), "api_key_name=billing key=order-1 status=201 "
	                                          "call_sid=" CALL " body={\"sid\":\"" CALL "\"}");

	/* an error answer has no call */
	fakedb_reset();
	apierr_reply(&rc, &resp, APIERR_TWILIO_ERROR, "x", NULL);
	rc.call_sid[0] = '\0';
	idem_end(db, &req, &rc, &resp, false);
	assert_string_equal(fakedb_last(), "db_idem_complete");
	assert_non_null(strstr(fakedb_last_params(), "status=502 call_sid=(null) body="));

	fakedb_reset();
	fakedb_next(VERR_DB_DOWN); /* logged, not fatal */
	idem_end(db, &req, &rc, &resp, true);
	assert_int_equal(fakedb_calls(), 1);
	assert_string_equal(fakedb_last(), "db_idem_release");
	assert_string_equal(fakedb_last_params(), "api_key_name=billing key=order-1");
	http_resp_free(&resp);
}

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
		cmocka_unit_test_setup(test_begin, setup),
		cmocka_unit_test_setup(test_still_in_progress, setup),
		cmocka_unit_test_setup(test_end, setup),
		cmocka_unit_test(test_idem_key),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
