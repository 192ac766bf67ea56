#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "apierr.h"
#include "reqctx.h"

/* Every entry: an error status, a snake_case code no other entry has, and a
 * default message. */
static void test_catalogue(void **state)
{
	int e, f;

	(void)state;
	for (e = APIERR_NONE + 1; e < APIERR__COUNT; e++) {
		const char *c = apierr_code((enum apierr)e), *p;

		if (apierr_status((enum apierr)e) < 400 || apierr_status((enum apierr)e) > 599)
			fail_msg("%s: status %d", c, apierr_status((enum apierr)e));
		assert_true(c[0] >= 'a' && c[0] <= 'z');
		for (p = c; *p != '\0'; p++)
			if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
				fail_msg("%s: not snake_case", c);
		assert_true(apierr_message((enum apierr)e)[0] != '\0');
		for (f = APIERR_NONE + 1; f < e; f++)
			if (strcmp(c, apierr_code((enum apierr)f)) == 0)
				fail_msg("%s: listed twice", c);
	}
	/* what is not an entry reads as internal_error */
	assert_int_equal(apierr_status(APIERR_NONE), 500);
	assert_string_equal(apierr_code(APIERR__COUNT), apierr_code(APIERR_INTERNAL));
}

static struct json_object *error_of(const struct http_resp *r)
{
	struct json_object *o = json_tokener_parse(buf_str(&r->body)), *err;

	assert_non_null(o);
	assert_true(json_object_object_get_ex(o, "error", &err));
	json_object_get(err);
	json_object_put(o);
	return err;
}

static const char *member(struct json_object *o, const char *name)
{
	struct json_object *v;

	return json_object_object_get_ex(o, name, &v) ? json_object_get_string(v) : NULL;
}

static void test_send(void **state)
{
	const struct apierr_detail d = { APIERR_INVALID_PHONE_NUMBER, "the 'to' number is \"bad\"",
	                                 "to", 21211, 0 };
	struct req_ctx rc;
	struct http_resp r;
	struct json_object *err;

	(void)state;
	memset(&rc, 0, sizeof rc);
	http_resp_init(&r);
	assert_int_equal(http_resp_header(&r, "X-Earlier", "1"), VERR_OK);
	apierr_send(&rc, &r, &d);
	assert_int_equal(r.status, apierr_status(APIERR_INVALID_PHONE_NUMBER));
	assert_string_equal(r.content_type, "application/json; charset=utf-8");
	assert_string_equal(buf_str(&r.headers), ""); /* replaced, not added to */
	assert_int_equal(rc.error, APIERR_INVALID_PHONE_NUMBER);
	assert_int_equal(rc.twilio_code, 21211);
	assert_true(buf_str(&r.body)[r.body.len - 1] == '\n');
	err = error_of(&r);
	assert_string_equal(member(err, "code"), apierr_code(APIERR_INVALID_PHONE_NUMBER));
	assert_string_equal(member(err, "message"), "the 'to' number is \"bad\"");
	assert_string_equal(member(err, "field"), "to");
	assert_string_equal(member(err, "twilio_code"), "21211");
	json_object_put(err);
	http_resp_free(&r);
}

/* No message: the catalogue's; no field, no twilio_code: members left out. */
static void test_reply_defaults(void **state)
{
	struct req_ctx rc;
	struct http_resp r;
	struct json_object *err;

	(void)state;
	memset(&rc, 0, sizeof rc);
	rc.twilio_code = 20003; /* an earlier error's */
	http_resp_init(&r);
	apierr_reply(&rc, &r, APIERR_UNAUTHORIZED, NULL, NULL);
	assert_int_equal(r.status, 401);
	assert_int_equal(rc.error, APIERR_UNAUTHORIZED);
	assert_int_equal(rc.twilio_code, 0);
	err = error_of(&r);
	assert_string_equal(member(err, "message"), apierr_message(APIERR_UNAUTHORIZED));
	assert_null(member(err, "field"));
	assert_null(member(err, "twilio_code"));
	json_object_put(err);
	/* without a context: the same answer */
	apierr_reply(NULL, &r, APIERR_NOT_FOUND, "no call with that sid", NULL);
	assert_int_equal(r.status, 404);
	http_resp_free(&r);
}

/* Retry-After: the caller's when it gives one, else the catalogue's. */
static void test_retry_after(void **state)
{
	const struct apierr_detail twilio = { APIERR_TWILIO_UNAVAILABLE, NULL, NULL, 0, 7 };
	struct http_resp r;

	(void)state;
	http_resp_init(&r);
	apierr_send(NULL, &r, &twilio);
	assert_int_equal(r.status, 503);
	assert_string_equal(buf_str(&r.headers), "Retry-After: 7\r\n");
	apierr_reply(NULL, &r, APIERR_TWILIO_UNAVAILABLE, NULL, NULL);
	assert_string_equal(buf_str(&r.headers), ""); /* none in the catalogue */
	apierr_reply(NULL, &r, APIERR_DATABASE_UNAVAILABLE, NULL, NULL);
	assert_string_equal(buf_str(&r.headers), "Retry-After: 5\r\n");
	apierr_reply(NULL, &r, APIERR_NOT_FOUND, NULL, NULL);
	assert_string_equal(buf_str(&r.headers), "");
	http_resp_free(&r);
}

/* A body that cannot be held becomes 500 internal_error. */
static void test_resp_set(void **state)
{
	struct req_ctx rc;
	struct http_resp r;
	char *big = calloc(1, HTTP_MAX_RESPONSE + 1);
	struct json_object *err;

	(void)state;
	assert_non_null(big);
	memset(&rc, 0, sizeof rc);
	http_resp_init(&r);
	apierr_resp_set(&rc, &r, 200, "text/plain", "ok", 2);
	assert_int_equal(r.status, 200);
	assert_string_equal(buf_str(&r.body), "ok");
	assert_int_equal(rc.error, APIERR_NONE);
	apierr_resp_set(&rc, &r, 200, "text/plain", big, HTTP_MAX_RESPONSE + 1);
	assert_int_equal(r.status, 500);
	assert_int_equal(rc.error, APIERR_INTERNAL);
	err = error_of(&r);
	assert_string_equal(member(err, "code"), apierr_code(APIERR_INTERNAL));
	json_object_put(err);
	http_resp_free(&r);
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_catalogue),
		cmocka_unit_test(test_send),
		cmocka_unit_test(test_reply_defaults),
		cmocka_unit_test(test_retry_after),
		cmocka_unit_test(test_resp_set),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
