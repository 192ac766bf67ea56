#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"

#include "form.h"
#include "twilio.h"
#include "twiml.h"

#define EVENTS                                                                          \
	"&StatusCallbackEvent=initiated&StatusCallbackEvent=ringing"                    \
	"&StatusCallbackEvent=answered&StatusCallbackEvent=completed"

/* ---- Calls create body: exact bytes (twilio-python's urlencode) ---- */

static const struct {
	const char *name;
	struct twilio_call_params p;
	const char *want;
} body_valid[] = {
	{ "url only",
	  { .to = "+14155550100", .from = "+14155550199", .url = "https://example.com/twilio/voice" },
	  "To=%2B14155550100&From=%2B14155550199&Url=https%3A%2F%2Fexample.com%2Ftwilio%2Fvoice" },
	{ "everything",
	  { .to = "+14155550100", .from = "+14155550199",
	    .url = "https://app.example.com/voice?b=two words&a=1~x",
	    .status_callback = "https://app.example.com/twilio/webhook", .timeout = 30,
	    .record = true, .machine_detection = true },
	  "To=%2B14155550100&From=%2B14155550199"
	  "&Url=https%3A%2F%2Fapp.example.com%2Fvoice%3Fb%3Dtwo+words%26a%3D1~x"
	  "&StatusCallback=https%3A%2F%2Fapp.example.com%2Ftwilio%2Fwebhook"
	  "&StatusCallbackMethod=POST" EVENTS "&Timeout=30&Record=true&MachineDetection=Enable" },
	{ "inline twiml with characters to encode",
	  { .to = "+442071838750", .from = "+14155550199",
	    .twiml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Say>Hi &amp; bye, "
	             "it&apos;s 50% off \xe2\x80\x94 \xc3\xbcn\xc3\xaf" "code</Say></Response>",
	    .status_callback = "https://h/cb" },
	  "To=%2B442071838750&From=%2B14155550199"
	  "&Twiml=%3C%3Fxml+version%3D%221.0%22+encoding%3D%22UTF-8%22%3F%3E%3CResponse%3E%3CSay%3E"
	  "Hi+%26amp%3B+bye%2C+it%26apos%3Bs+50%25+off+%E2%80%94+%C3%BCn%C3%AFcode%3C%2FSay%3E"
	  "%3C%2FResponse%3E&StatusCallback=https%3A%2F%2Fh%2Fcb&StatusCallbackMethod=POST" EVENTS },
	{ "bounds of timeout, flags off",
	  { .to = "+14155550100", .from = "+14155550199", .url = "https://e/x", .timeout = 600 },
	  "To=%2B14155550100&From=%2B14155550199&Url=https%3A%2F%2Fe%2Fx&Timeout=600" },
	{ "recorded, with its recording status callback",
	  { .to = "+14155550100", .from = "+14155550199", .url = "https://e/x", .record = true,
	    .recording_status_callback = "https://app.example.com/twilio/recording" },
	  "To=%2B14155550100&From=%2B14155550199&Url=https%3A%2F%2Fe%2Fx&Record=true"
	  "&RecordingStatusCallback=https%3A%2F%2Fapp.example.com%2Ftwilio%2Frecording"
	  "&RecordingStatusCallbackMethod=POST&RecordingStatusCallbackEvent=in-progress"
	  "&RecordingStatusCallbackEvent=completed&RecordingStatusCallbackEvent=absent" },
	{ "a recording callback without record sends nothing of it",
	  { .to = "+14155550100", .from = "+14155550199", .url = "https://e/x",
	    .recording_status_callback = "https://app.example.com/twilio/recording" },
	  "To=%2B14155550100&From=%2B14155550199&Url=https%3A%2F%2Fe%2Fx" },
	{ "minimum timeout, record only",
	  { .to = "+14155550100", .from = "+14155550199", .url = "https://e/x", .timeout = 1,
	    .record = true },
	  "To=%2B14155550100&From=%2B14155550199&Url=https%3A%2F%2Fe%2Fx&Timeout=1&Record=true" },
};

static const struct {
	const char *name;
	struct twilio_call_params p;
	enum verr want;
} body_invalid[] = {
	{ "no to", { .from = "+14155550199", .url = "https://e/x" }, VERR_INVALID },
	{ "empty to", { .to = "", .from = "+14155550199", .url = "https://e/x" }, VERR_INVALID },
	{ "no from", { .to = "+14155550100", .url = "https://e/x" }, VERR_INVALID },
	{ "empty from", { .to = "+14155550100", .from = "", .url = "https://e/x" }, VERR_INVALID },
	{ "neither url nor twiml", { .to = "+14155550100", .from = "+14155550199" }, VERR_INVALID },
	{ "both url and twiml",
	  { .to = "+14155550100", .from = "+14155550199", .url = "https://e/x", .twiml = "<Response />" },
	  VERR_INVALID },
	{ "empty url", { .to = "+14155550100", .from = "+14155550199", .url = "" }, VERR_INVALID },
	{ "timeout over 600",
	  { .to = "+14155550100", .from = "+14155550199", .url = "https://e/x", .timeout = 601 },
	  VERR_INVALID },
	{ "negative timeout",
	  { .to = "+14155550100", .from = "+14155550199", .url = "https://e/x", .timeout = -1 },
	  VERR_INVALID },
};

static void test_body_valid(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(body_valid) / sizeof(body_valid[0]); i++) {
		struct buf b;

		buf_init(&b, TWILIO_MAX_REQUEST);
		if (twilio_call_body(&body_valid[i].p, &b) != VERR_OK)
			fail_msg("%s: failed", body_valid[i].name);
		if (strcmp(buf_str(&b), body_valid[i].want) != 0)
			fail_msg("%s: got %s", body_valid[i].name, buf_str(&b));
		buf_free(&b);
	}
}

static void test_body_invalid(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(body_invalid) / sizeof(body_invalid[0]); i++) {
		struct buf b;

		buf_init(&b, TWILIO_MAX_REQUEST);
		assert_int_equal(buf_puts(&b, "keep"), VERR_OK);
		if (twilio_call_body(&body_invalid[i].p, &b) != body_invalid[i].want)
			fail_msg("%s: wrong result", body_invalid[i].name);
		assert_string_equal(buf_str(&b), "keep");
		buf_free(&b);
	}
}

/* Inline TwiML is capped at TWIML_MAX_INLINE (Twilio: 4000 characters). */
static void test_body_twiml_cap(void **state)
{
	char *twiml = malloc(TWIML_MAX_INLINE + 2);
	struct twilio_call_params p = { .to = "+14155550100", .from = "+14155550199" };
	struct buf b;

	(void)state;
	assert_non_null(twiml);
	memset(twiml, 'x', TWIML_MAX_INLINE + 1);
	twiml[TWIML_MAX_INLINE + 1] = '\0';
	p.twiml = twiml;
	buf_init(&b, TWILIO_MAX_REQUEST);
	assert_int_equal(twilio_call_body(&p, &b), VERR_TOOBIG);
	assert_int_equal(b.len, 0);
	twiml[TWIML_MAX_INLINE] = '\0';
	assert_int_equal(twilio_call_body(&p, &b), VERR_OK);
	buf_free(&b);

	/* the request buffer's own max is honoured and leaves it unchanged */
	buf_init(&b, 40);
	assert_int_equal(twilio_call_body(&p, &b), VERR_TOOBIG);
	assert_int_equal(b.len, 0);
	buf_free(&b);
	free(twiml);
}

/* What Twilio decodes: every event exactly once, in firing order. */
static void test_body_round_trip(void **state)
{
	struct buf b;
	struct form f = { 0 };
	static const char *const events[] = { "initiated", "ringing", "answered", "completed" };
	size_t i, k = 0;

	(void)state;
	buf_init(&b, TWILIO_MAX_REQUEST);
	assert_int_equal(twilio_call_body(&body_valid[1].p, &b), VERR_OK);
	assert_int_equal(form_parse(b.data, b.len, &f, NULL, 0), VERR_OK);
	assert_string_equal(form_get(&f, "Url"), "https://app.example.com/voice?b=two words&a=1~x");
	assert_string_equal(form_get(&f, "To"), "+14155550100");
	assert_int_equal(form_count(&f, "StatusCallbackEvent"), 4);
	for (i = 0; i < f.n; i++) {
		if (strcmp(f.params[i].key, "StatusCallbackEvent") == 0)
			assert_string_equal(f.params[i].value, events[k++]);
	}
	assert_null(form_get(&f, "Twiml"));
	form_free(&f);
	buf_free(&b);
}

/* ---- Call resource parsing ---- */

#define SID "CA0123456789abcdefABCDEF0123456789"
#define ACC "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

/* The OAS example (shortened) plus fields we do not read. */
static const char call_ok[] =
	"{\"account_sid\": \"" ACC "\", \"answered_by\": null, \"api_version\": \"2010-04-01\","
	" \"date_created\": \"Tue, 31 Aug 2010 20:36:28 +0000\", \"direction\": \"outbound-api\","
	" \"duration\": null, \"from\": \"+14155550199\", \"from_formatted\": \"(415) 555-0199\","
	" \"sid\": \"" SID "\", \"status\": \"queued\", \"to\": \"+14155550100\","
	" \"subresource_uris\": {\"events\": \"/x\"}, \"price\": null, \"queue_time\": \"0\","
	" \"new_field_twilio_added\": [1, 2, {\"a\": true}]}\n";

static void test_call_parse_valid(void **state)
{
	struct twilio_call c;

	(void)state;
	assert_int_equal(twilio_call_parse(call_ok, strlen(call_ok), &c), VERR_OK);
	assert_string_equal(c.sid, SID);
	assert_string_equal(c.status, "queued");
	assert_string_equal(c.direction, "outbound-api");
	assert_string_equal(c.from, "+14155550199");
	assert_string_equal(c.to, "+14155550100");
	assert_string_equal(c.account_sid, ACC);
	assert_string_equal(c.date_created, "Tue, 31 Aug 2010 20:36:28 +0000");

	/* only sid is required; null and absent fields are "" */
	static const char minimal[] = "{\"sid\":\"" SID "\",\"status\":null}";
	assert_int_equal(twilio_call_parse(minimal, strlen(minimal), &c), VERR_OK);
	assert_string_equal(c.sid, SID);
	assert_string_equal(c.status, "");
	assert_string_equal(c.to, "");
}

static const struct {
	const char *name, *body;
	enum verr want;
} call_invalid[] = {
	{ "empty", "", VERR_INVALID },
	{ "missing sid", "{\"status\":\"queued\"}", VERR_INVALID },
	{ "null sid", "{\"sid\":null}", VERR_INVALID },
	{ "numeric sid", "{\"sid\":12}", VERR_INVALID },
	{ "wrong prefix", "{\"sid\":\"CB0123456789abcdefABCDEF0123456789\"}", VERR_INVALID },
	{ "short sid", "{\"sid\":\"CA0123456789abcdefABCDEF012345678\"}", VERR_INVALID },
	{ "long sid", "{\"sid\":\"CA0123456789abcdefABCDEF01234567890\"}", VERR_INVALID },
	{ "non-hex sid", "{\"sid\":\"CA0123456789abcdefABCDEF012345678g\"}", VERR_INVALID },
	{ "bad account sid", "{\"sid\":\"" SID "\",\"account_sid\":\"AC12\"}", VERR_INVALID },
	{ "status not a string", "{\"sid\":\"" SID "\",\"status\":1}", VERR_INVALID },
	{ "to too long",
	  "{\"sid\":\"" SID "\",\"to\":\"+1111111111111111111111111111111111111111111111111111111111"
	  "11111111111111111111111111111111111111111111111111111111111111111111111111111\"}",
	  VERR_INVALID },
	{ "escaped nul", "{\"sid\":\"" SID "\",\"status\":\"q\\u0000ueued\"}", VERR_INVALID },
	{ "not json", "<html>Bad Gateway</html>", VERR_INVALID },
	{ "array", "[{\"sid\":\"" SID "\"}]", VERR_INVALID },
	{ "truncated", "{\"sid\":\"" SID "\"", VERR_INVALID },
	{ "trailing garbage", "{\"sid\":\"" SID "\"} x", VERR_INVALID },
	{ "two objects", "{\"sid\":\"" SID "\"}{}", VERR_INVALID },
	{ "single quotes", "{'sid':'" SID "'}", VERR_INVALID },
};

static void test_call_parse_invalid(void **state)
{
	struct twilio_call c;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(call_invalid) / sizeof(call_invalid[0]); i++) {
		const char *b = call_invalid[i].body;

		if (twilio_call_parse(b, strlen(b), &c) != call_invalid[i].want)
			fail_msg("%s: accepted", call_invalid[i].name);
		assert_string_equal(c.sid, "");
	}
}

static void test_call_parse_limits(void **state)
{
	static const char nul[] = "{\"sid\":\"" SID "\"}\0";
	struct twilio_call c;
	char *big;
	size_t n = TWILIO_MAX_RESPONSE + 1, k;

	(void)state;
	/* a raw NUL inside the length */
	assert_int_equal(twilio_call_parse(nul, sizeof(nul) - 1, &c), VERR_INVALID);
	assert_int_equal(twilio_call_parse(NULL, 0, &c), VERR_INVALID);

	/* a valid object padded past the cap is refused for its size */
	big = malloc(n + 1);
	assert_non_null(big);
	k = strlen(call_ok);
	memcpy(big, call_ok, k);
	memset(big + k, ' ', n - k);
	big[n] = '\0';
	assert_int_equal(twilio_call_parse(big, n, &c), VERR_TOOBIG);
	/* exactly at the cap it is fine */
	assert_int_equal(twilio_call_parse(big, n - 1, &c), VERR_OK);
	assert_string_equal(c.sid, SID);
	free(big);

	/* deep nesting is refused by the depth limit, not the stack */
	big = malloc(4002);
	assert_non_null(big);
	memset(big, '[', 2000);
	memset(big + 2000, ']', 2000);
	big[4000] = '\0';
	assert_int_equal(twilio_call_parse(big, 4000, &c), VERR_INVALID);
	free(big);
}

/* ---- error body parsing ---- */

static const struct {
	const char *name;
	int http_status;
	const char *body;
	int want_code;
	const char *want_message;
} error_rows[] = {
	{ "twilio shape", 400,
	  "{\"code\": 21211, \"message\": \"The 'To' number +1415555 is not a valid phone number.\","
	  " \"more_info\": \"https://www.twilio.com/docs/errors/21211\", \"status\": 400}",
	  21211, "The 'To' number +1415555 is not a valid phone number." },
	{ "twilio shape with details", 429,
	  "{\"code\":20429,\"message\":\"Too Many Requests\",\"more_info\":\"x\",\"status\":429,"
	  "\"details\":{\"a\":1}}",
	  20429, "Too Many Requests" },
	{ "rfc 9457", 400,
	  "{\"type\":\"https://www.twilio.com/docs/errors/21217\",\"title\":\"Invalid phone number\","
	  "\"status\":400,\"code\":21217,\"detail\":\"Phone number does not appear to be valid\","
	  "\"instance\":\"/x\"}",
	  21217, "Phone number does not appear to be valid" },
	{ "rfc 9457 title only", 401, "{\"type\":\"about:blank\",\"title\":\"Unauthorized\",\"status\":401}",
	  0, "Unauthorized" },
	{ "code as string", 401, "{\"code\":\"20003\",\"message\":\"Authenticate\"}", 20003,
	  "Authenticate" },
	{ "code out of range", 400, "{\"code\":-5,\"message\":\"m\"}", 0, "m" },
	{ "code not a number", 400, "{\"code\":\"2x\",\"message\":\"m\"}", 0, "m" },
	{ "control characters", 400, "{\"code\":21211,\"message\":\"a\\nb\\u001bc\\td\"}", 21211,
	  "a b c d" },
	{ "html", 502, "<html><body>Bad Gateway</body></html>", 0, "twilio answered http 502" },
	{ "empty", 503, "", 0, "twilio answered http 503" },
	{ "truncated json", 500, "{\"code\":20500,\"message\":\"Inter", 0, "twilio answered http 500" },
	{ "json array", 400, "[1,2]", 0, "twilio answered http 400" },
	{ "message wrong type", 400, "{\"code\":21211,\"message\":7}", 21211,
	  "twilio answered http 400" },
};

static void test_error_parse(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(error_rows) / sizeof(error_rows[0]); i++) {
		struct twilio_error e;
		const char *b = error_rows[i].body;

		memset(&e, 0x5a, sizeof(e));
		twilio_error_parse(error_rows[i].http_status, b, strlen(b), &e);
		assert_int_equal(e.kind, VERR_UPSTREAM);
		assert_int_equal(e.http_status, error_rows[i].http_status);
		assert_int_equal(e.retry_after, 0);
		assert_int_equal(e.may_exist, error_rows[i].http_status >= 500);
		if (e.code != error_rows[i].want_code)
			fail_msg("%s: code %d", error_rows[i].name, e.code);
		if (strcmp(e.message, error_rows[i].want_message) != 0)
			fail_msg("%s: message %s", error_rows[i].name, e.message);
	}
}

/* A long message is cut to fit, never inside a UTF-8 sequence. */
static void test_error_parse_long(void **state)
{
	struct buf b;
	struct twilio_error e;
	size_t i, n;

	(void)state;
	buf_init(&b, TWILIO_MAX_RESPONSE);
	assert_int_equal(buf_puts(&b, "{\"code\":21211,\"message\":\"x"), VERR_OK);
	for (i = 0; i < TWILIO_MAX_MESSAGE; i++)
		assert_int_equal(buf_puts(&b, "\xc3\xa9"), VERR_OK); /* é */
	assert_int_equal(buf_puts(&b, "\"}"), VERR_OK);
	twilio_error_parse(400, b.data, b.len, &e);
	n = strlen(e.message);
	assert_true(n < TWILIO_MAX_MESSAGE);
	assert_true(n >= TWILIO_MAX_MESSAGE - 3);
	/* "x" then whole two-byte sequences only */
	assert_int_equal(e.message[0], 'x');
	assert_int_equal((n - 1) % 2, 0);
	assert_int_equal((unsigned char)e.message[n - 1], 0xa9);
	buf_free(&b);

	/* raw bytes that are not UTF-8 become '?' */
	static const char bad[] = "{\"code\":1,\"message\":\"a\xff" "b\"}";
	twilio_error_parse(400, bad, strlen(bad), &e);
	assert_string_equal(e.message, "a?b");
}

/* ---- Account and phone number lists (the credential check) ---- */

static void test_account_parse(void **state)
{
	static const char ok[] =
		"{\"auth_token\": null, \"date_created\": \"Thu, 30 Jul 2015 20:00:00 +0000\","
		" \"friendly_name\": \"Acme\\u0007 Support\", \"owner_account_sid\": \"" ACC "\","
		" \"sid\": \"" ACC "\", \"status\": \"active\", \"subresource_uris\": {},"
		" \"type\": \"Full\", \"uri\": \"/2010-04-01/Accounts/" ACC ".json\", \"new\": 1}";
	static const char *const bad[] = {
		"[]", "{}", "{\"sid\": \"" ACC "\"}",                      /* no status */
		"{\"sid\": \"CA0\", \"status\": \"active\"}",             /* not an AC sid */
		"{\"sid\": \"" ACC "\", \"status\": 1}",                    /* wrong type */
		"{\"sid\": \"" ACC "\", \"status\": \"active\"} x",         /* trailing data */
	};
	struct twilio_account a;
	size_t i;

	(void)state;
	assert_int_equal(twilio_account_parse(ok, strlen(ok), &a), VERR_OK);
	assert_string_equal(a.sid, ACC);
	assert_string_equal(a.status, "active");
	assert_string_equal(a.type, "Full");
	/* for display: the control character is a space */
	assert_string_equal(a.friendly_name, "Acme  Support");
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (twilio_account_parse(bad[i], strlen(bad[i]), &a) != VERR_INVALID)
			fail_msg("accepted %s", bad[i]);
		assert_string_equal(a.sid, "");
	}
}

#define PN "PN0123456789abcdef0123456789abcdef"

static void test_number_parse(void **state)
{
	static const char incoming[] =
		"{\"end\": 0, \"incoming_phone_numbers\": [{\"phone_number\": \"+14155550198\","
		" \"sid\": \"PNffffffffffffffffffffffffffffffff\"}, {\"phone_number\": \"+14155550199\","
		" \"sid\": \"" PN "\", \"capabilities\": {\"voice\": false, \"sms\": true}}],"
		" \"next_page_uri\": null, \"page\": 0}";
	static const char callers[] =
		"{\"outgoing_caller_ids\": [{\"phone_number\": \"+14155550199\", \"sid\": \"" PN "\"}]}";
	static const char empty[] = "{\"incoming_phone_numbers\": []}";
	static const struct {
		const char *body;
		enum twilio_number_kind kind;
	} bad[] = {
		{ "{}", TWILIO_NUMBER_INCOMING },
		{ "{\"outgoing_caller_ids\": []}", TWILIO_NUMBER_INCOMING }, /* the other list */
		{ "{\"incoming_phone_numbers\": {}}", TWILIO_NUMBER_INCOMING },
		{ "{\"incoming_phone_numbers\": [1]}", TWILIO_NUMBER_INCOMING },
		{ "{\"incoming_phone_numbers\": [{\"phone_number\": \"+14155550199\", \"sid\": \"XX1\"}]}",
		  TWILIO_NUMBER_INCOMING },
	};
	struct twilio_number n;
	size_t i;

	(void)state;
	assert_int_equal(twilio_number_parse(incoming, strlen(incoming), TWILIO_NUMBER_INCOMING,
	                                     "+14155550199", &n), VERR_OK);
	assert_true(n.found);
	assert_string_equal(n.sid, PN);
	assert_false(n.voice);
	/* an entry for another number (a looser filter) is not a match */
	assert_int_equal(twilio_number_parse(incoming, strlen(incoming), TWILIO_NUMBER_INCOMING,
	                                     "+1415555019", &n), VERR_OK);
	assert_false(n.found);
	assert_int_equal(twilio_number_parse(callers, strlen(callers), TWILIO_NUMBER_CALLER_ID,
	                                     "+14155550199", &n), VERR_OK);
	assert_true(n.found);
	assert_true(n.voice);
	assert_int_equal(twilio_number_parse(empty, strlen(empty), TWILIO_NUMBER_INCOMING,
	                                     "+14155550199", &n), VERR_OK);
	assert_false(n.found);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (twilio_number_parse(bad[i].body, strlen(bad[i].body), bad[i].kind, "+14155550199",
		                        &n) != VERR_INVALID)
			fail_msg("accepted %s", bad[i].body);
}

/* Nothing is sent for a request that cannot be right. */
static void test_update_refuses_bad_arguments(void **state)
{
	struct config cfg;
	struct twilio *tw;
	struct twilio_call call;
	struct twilio_error err;
	struct twilio_number num;

	(void)state;
	memset(&cfg, 0, sizeof cfg);
	snprintf(cfg.account_sid, sizeof cfg.account_sid, "AC%032d", 0);
	snprintf(cfg.auth_token, sizeof cfg.auth_token, "%032d", 1);
	/* nothing listens there; a request sent would fail differently */
	snprintf(cfg.api_base_url, sizeof cfg.api_base_url, "http://127.0.0.1:9");
	cfg.twilio_timeout_ms = 1000;
	cfg.twilio_connect_timeout_ms = 500;
	tw = twilio_new(&cfg);
	assert_non_null(tw);
	assert_int_equal(twilio_call_update(tw, "CA123", "canceled", &call, &err), VERR_INVALID);
	assert_int_equal(err.kind, VERR_INVALID);
	assert_int_equal(twilio_call_update(tw, SID, "in-progress", &call, &err), VERR_INVALID);
	assert_int_equal(twilio_call_update(tw, SID, NULL, &call, &err), VERR_INVALID);
	assert_int_equal(twilio_number_find(tw, TWILIO_NUMBER_INCOMING, "14155550199", &num, &err),
	                 VERR_INVALID);
	/* a valid one is sent, and fails to connect */
	assert_int_equal(twilio_call_update(tw, SID, "canceled", &call, &err), VERR_UPSTREAM_DOWN);
	assert_false(err.may_exist);
	twilio_free(tw);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_body_valid),
		cmocka_unit_test(test_body_invalid),
		cmocka_unit_test(test_body_twiml_cap),
		cmocka_unit_test(test_body_round_trip),
		cmocka_unit_test(test_call_parse_valid),
		cmocka_unit_test(test_call_parse_invalid),
		cmocka_unit_test(test_call_parse_limits),
		cmocka_unit_test(test_error_parse),
		cmocka_unit_test(test_error_parse_long),
		cmocka_unit_test(test_account_parse),
		cmocka_unit_test(test_number_parse),
		cmocka_unit_test(test_update_refuses_bad_arguments),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
