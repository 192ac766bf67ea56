#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "config.h"
#include "twilioerr.h"

/* ---- Twilio's failures as our API's errors (docs/API.md, Error codes) ---- */

static const struct {
	enum verr kind;
	int http_status, code;
	enum apierr want;
	const char *want_field; /* for TWILIOERR_CREATE; never for TWILIOERR_UPDATE */
} map_rows[] = {
	{ VERR_UPSTREAM, 400, 21211, APIERR_INVALID_PHONE_NUMBER, "to" },
	{ VERR_UPSTREAM, 400, 21212, APIERR_INVALID_PHONE_NUMBER, "from" },
	{ VERR_UPSTREAM, 400, 21214, APIERR_INVALID_PHONE_NUMBER, "to" },
	{ VERR_UPSTREAM, 400, 21217, APIERR_INVALID_PHONE_NUMBER, "to" },
	{ VERR_UPSTREAM, 400, 21210, APIERR_CALLER_ID_NOT_VERIFIED, "from" },
	{ VERR_UPSTREAM, 400, 21215, APIERR_DESTINATION_NOT_ALLOWED, "to" },
	{ VERR_UPSTREAM, 400, 21216, APIERR_DESTINATION_NOT_ALLOWED, "to" },
	{ VERR_UPSTREAM, 401, 20003, APIERR_TWILIO_AUTH_FAILED, NULL },
	{ VERR_UPSTREAM, 429, 20429, APIERR_TWILIO_UNAVAILABLE, NULL },
	{ VERR_UPSTREAM, 429, 0, APIERR_TWILIO_UNAVAILABLE, NULL },
	{ VERR_UPSTREAM, 500, 0, APIERR_TWILIO_UNAVAILABLE, NULL },
	{ VERR_UPSTREAM, 503, 20500, APIERR_TWILIO_UNAVAILABLE, NULL },
	{ VERR_UPSTREAM, 599, 0, APIERR_TWILIO_UNAVAILABLE, NULL },
	{ VERR_UPSTREAM, 404, 20404, APIERR_TWILIO_ERROR, NULL },
	{ VERR_UPSTREAM, 400, 21205, APIERR_TWILIO_ERROR, NULL },
	{ VERR_UPSTREAM, 400, 0, APIERR_TWILIO_ERROR, NULL },
	{ VERR_UPSTREAM, 301, 0, APIERR_TWILIO_ERROR, NULL },
	{ VERR_UPSTREAM, 201, 0, APIERR_TWILIO_ERROR, NULL }, /* unreadable 2xx, not created */
	{ VERR_UPSTREAM_DOWN, 0, 0, APIERR_TWILIO_UNAVAILABLE, NULL },
	{ VERR_TIMEOUT, 0, 0, APIERR_TWILIO_TIMEOUT, NULL },
	{ VERR_INVALID, 0, 0, APIERR_INTERNAL, NULL },
	{ VERR_NOMEM, 0, 0, APIERR_INTERNAL, NULL },
};

static void test_map(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof map_rows / sizeof map_rows[0]; i++) {
		struct twilio_error e = { .kind = map_rows[i].kind,
		                          .http_status = map_rows[i].http_status,
		                          .code = map_rows[i].code };
		struct apierr_detail d;

		twilioerr_map(&e, TWILIOERR_CREATE, &d);
		if (d.code != map_rows[i].want)
			fail_msg("row %zu (%d/%d): got %s", i, map_rows[i].http_status, map_rows[i].code,
			         apierr_code(d.code));
		if (map_rows[i].want_field == NULL)
			assert_null(d.field);
		else
			assert_string_equal(d.field, map_rows[i].want_field);
		assert_int_equal(d.twilio_code, map_rows[i].code);
		twilioerr_map(&e, TWILIOERR_UPDATE, &d);
		assert_int_equal(d.code, map_rows[i].want);
		assert_null(d.field); /* fields are POST /call's */
	}
}

/* A 2xx Twilio may have acted on but we could not read: the call may exist. */
static void test_map_may_exist(void **state)
{
	struct twilio_error e = { .kind = VERR_UPSTREAM, .http_status = 201, .may_exist = true };
	struct apierr_detail d;

	(void)state;
	twilioerr_map(&e, TWILIOERR_CREATE, &d);
	assert_int_equal(d.code, APIERR_OUTCOME_UNKNOWN);
}

/* Twilio's Retry-After when it gave one; else a few seconds for a 503 from
 * POST /call, and none for cancel and hang up. */
static void test_retry_after(void **state)
{
	static const struct {
		enum verr kind;
		int http_status, retry_after;
		enum twilioerr_op op;
		int want;
	} rows[] = {
		{ VERR_UPSTREAM, 429, 7, TWILIOERR_CREATE, 7 },
		{ VERR_UPSTREAM, 429, 7, TWILIOERR_UPDATE, 7 },
		{ VERR_UPSTREAM, 503, 0, TWILIOERR_CREATE, TWILIOERR_RETRY_S },
		{ VERR_UPSTREAM, 503, 0, TWILIOERR_UPDATE, 0 },
		{ VERR_UPSTREAM_DOWN, 0, 0, TWILIOERR_CREATE, TWILIOERR_RETRY_S },
		{ VERR_UPSTREAM_DOWN, 0, 0, TWILIOERR_UPDATE, 0 },
		{ VERR_TIMEOUT, 0, 0, TWILIOERR_CREATE, 0 },
		{ VERR_UPSTREAM, 400, 0, TWILIOERR_CREATE, 0 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct twilio_error e = { .kind = rows[i].kind, .http_status = rows[i].http_status,
		                          .retry_after = rows[i].retry_after };
		struct apierr_detail d;

		twilioerr_map(&e, rows[i].op, &d);
		if (d.retry_after != rows[i].want)
			fail_msg("row %zu: retry_after %d, want %d", i, d.retry_after, rows[i].want);
	}
}

/* ---- What clients are told ---- */

/* Only Twilio's refusal of the request (a 4xx with a code) is passed on;
 * every other message is a fixed sentence, whatever err->message holds. */
static const struct {
	enum verr kind;
	int http_status, code;
	bool may_exist;
	const char *message, *want; /* want NULL: message itself */
} message_rows[] = {
	{ VERR_UPSTREAM, 400, 21211, false, "The 'To' number 123 is not a valid phone number.", NULL },
	{ VERR_UPSTREAM, 401, 20003, false, "Authenticate", NULL },
	{ VERR_UPSTREAM, 429, 20429, false, "Too Many Requests", NULL },
	{ VERR_UPSTREAM, 429, 0, false, "twilio answered http 429",
	  "twilio is rate limiting requests; try again later" },
	{ VERR_UPSTREAM, 500, 20500, true, "Internal Server Error at edge 10.2.3.4",
	  "twilio failed or answered unreadably; the call may or may not have been placed" },
	{ VERR_UPSTREAM, 503, 0, true, "<html>proxy 10.2.3.4</html>",
	  "twilio failed or answered unreadably; the call may or may not have been placed" },
	{ VERR_UPSTREAM, 201, 0, true, "twilio answered http 201 with an unreadable call resource",
	  "twilio failed or answered unreadably; the call may or may not have been placed" },
	{ VERR_UPSTREAM, 302, 0, false, "twilio answered http 302",
	  "twilio answered with an unexpected response" },
	{ VERR_UPSTREAM, 400, 21211, false, "", "twilio answered with an unexpected response" },
	{ VERR_UPSTREAM_DOWN, 0, 0, false,
	  "could not reach twilio: Failed to connect to 127.0.0.1 port 8089 after 0 ms: Couldn't connect to server",
	  "twilio could not be reached; no call was placed" },
	{ VERR_TIMEOUT, 0, 0, true,
	  "no answer from twilio after sending: Operation timed out after 3001 milliseconds with 0 bytes received",
	  "twilio did not answer in time; the call may or may not have been placed" },
	{ VERR_NOMEM, 0, 0, false, "could not set up a twilio client", "the call could not be placed" },
	{ VERR_INVALID, 0, 0, false, "could not build the call request: invalid input",
	  "the call could not be placed" },
};

static void test_message(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof message_rows / sizeof message_rows[0]; i++) {
		struct twilio_error e = { .kind = message_rows[i].kind,
		                          .http_status = message_rows[i].http_status,
		                          .code = message_rows[i].code,
		                          .may_exist = message_rows[i].may_exist };
		const char *want = message_rows[i].want ? message_rows[i].want : message_rows[i].message;
		struct apierr_detail d;

		snprintf(e.message, sizeof e.message, "%s", message_rows[i].message);
		twilioerr_map(&e, TWILIOERR_CREATE, &d);
		if (strcmp(d.message, want) != 0)
			fail_msg("row %zu: %s", i, d.message);
	}
}

/* Cancel and hang up say what happened to the call, not to a placement. */
static void test_message_update(void **state)
{
	static const struct {
		enum verr kind;
		int http_status;
		const char *want;
	} rows[] = {
		{ VERR_TIMEOUT, 0,
		  "twilio did not answer in time; the call may or may not have changed: retry" },
		{ VERR_UPSTREAM_DOWN, 0, "twilio could not be reached; the call was not changed" },
		{ VERR_UPSTREAM, 429, "twilio is rate limiting requests; try again later" },
		{ VERR_UPSTREAM, 500, "twilio answered with an unexpected response; retry" },
		{ VERR_NOMEM, 0, "the call could not be changed" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct twilio_error e = { .kind = rows[i].kind, .http_status = rows[i].http_status };
		struct apierr_detail d;

		snprintf(e.message, sizeof e.message, "libcurl detail");
		twilioerr_map(&e, TWILIOERR_UPDATE, &d);
		if (strcmp(d.message, rows[i].want) != 0)
			fail_msg("row %zu: %s", i, d.message);
	}
}

/* A real attempt at a port that refuses connections: the client's message is
 * the fixed one, never libcurl's text with the address and port. */
static void test_message_unreachable(void **state)
{
	struct sockaddr_in sa;
	socklen_t salen = sizeof sa;
	struct config cfg;
	struct twilio *tw;
	struct twilio_call_params p = { .to = "+14155550100", .from = "+14155550199",
	                                .url = "https://example.com/twilio/voice" };
	struct twilio_call call;
	struct twilio_error err;
	struct apierr_detail d;
	char port[16];
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	(void)state;
	/* bound but not listening: connect() is refused, and no one else gets it */
	assert_true(fd >= 0);
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &salen), 0);
	snprintf(port, sizeof port, "%u", (unsigned)ntohs(sa.sin_port));

	memset(&cfg, 0, sizeof cfg);
	snprintf(cfg.account_sid, sizeof cfg.account_sid, "AC%032d", 0);
	snprintf(cfg.auth_token, sizeof cfg.auth_token, "%032d", 1);
	snprintf(cfg.api_base_url, sizeof cfg.api_base_url, "http://127.0.0.1:%s", port);
	cfg.twilio_timeout_ms = 3000;
	cfg.twilio_connect_timeout_ms = 1000;
	tw = twilio_new(&cfg);
	assert_non_null(tw);
	assert_int_equal(twilio_call_create(tw, &p, &call, &err), VERR_UPSTREAM_DOWN);
	/* the detail is there for the log ... */
	assert_non_null(strstr(err.message, port));
	/* ... and not in what the client is told */
	twilioerr_map(&err, TWILIOERR_CREATE, &d);
	assert_int_equal(d.code, APIERR_TWILIO_UNAVAILABLE);
	assert_string_equal(d.message, "twilio could not be reached; no call was placed");
	assert_null(strstr(d.message, port));
	assert_null(strstr(d.message, "127.0.0.1"));
	twilio_free(tw);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_map),
		cmocka_unit_test(test_map_may_exist),
		cmocka_unit_test(test_retry_after),
		cmocka_unit_test(test_message),
		cmocka_unit_test(test_message_update),
		cmocka_unit_test(test_message_unreachable),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
