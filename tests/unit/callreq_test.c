/*
 * POST /call body parsing (callreq_parse) and number normalisation plus
 * policy (callreq_numbers).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "callreq.h"

/* Bodies may hold NUL bytes: len 0 means strlen(body). */
struct valid_case {
	const char *body;
	const char *to, *from, *country, *say, *url;
	int timeout; /* -1: absent */
	bool record, machine_detection;
};

static const struct valid_case valid[] = {
	{ "{\"to\":\"+14155552671\"}", "+14155552671", "", "", "", "", -1, false, false },
	{ " \r\n\t{ \"to\" : \"+14155552671\" } \n", "+14155552671", "", "", "", "", -1, false,
	  false },
	{ "{\"to\":\"(415) 555-2671\",\"country\":\"us\",\"from\":\"+14155550199\","
	  "\"say\":\"Hello\\nworld\\t!\\r\\n\",\"timeout\":30,\"record\":true,"
	  "\"machine_detection\":false}",
	  "(415) 555-2671", "+14155550199", "US", "Hello\nworld\t!\r\n", "", 30, true, false },
	{ "{\"machine_detection\":true,\"record\":false,\"to\":\"+442079460958\","
	  "\"url\":\"https://example.com/twiml?x=1&y=%20#frag\"}",
	  "+442079460958", "", "", "", "https://example.com/twiml?x=1&y=%20#frag", -1, false, true },
	{ "{\"to\":\"+1\",\"timeout\":5}", "+1", "", "", "", "", 5, false, false },
	{ "{\"to\":\"+1\",\"timeout\":600}", "+1", "", "", "", "", 600, false, false },
	{ "{\"to\":\"+1\",\"country\":\"GB\"}", "+1", "", "GB", "", "", -1, false, false },
	/* callreq_parse does not judge numbers: that is callreq_numbers (422) */
	{ "{\"to\":\"\"}", "", "", "", "", "", -1, false, false },
	{ "{\"to\":\"tel:+14155552671\"}", "tel:+14155552671", "", "", "", "", -1, false, false },
	{ "{\"to\":\"+\\u0661\\u0664\"}", "+\xd9\xa1\xd9\xa4", "", "", "", "", -1, false, false },
	/* escaped member names are the same names */
	{ "{\"\\u0074o\":\"+1\"}", "+1", "", "", "", "", -1, false, false },
	/* say: Unicode, XML-safe */
	{ "{\"to\":\"+1\",\"say\":\"Gr\\u00fc\\u00dfe \xf0\x9f\x98\x80 & <b>\"}", "+1", "", "",
	  "Gr\xc3\xbc\xc3\x9f" "e \xf0\x9f\x98\x80 & <b>", "", -1, false, false },
	{ "{\"to\":\"+1\",\"say\":\"\\ud83d\\ude00\"}", "+1", "", "", "\xf0\x9f\x98\x80", "", -1,
	  false, false },
	{ "{\"to\":\"+1\",\"say\":\"x\"}", "+1", "", "", "x", "", -1, false, false },
	/* url forms */
	{ "{\"to\":\"+1\",\"url\":\"HTTPS://Example.COM:8443/a/b\"}", "+1", "", "", "",
	  "HTTPS://Example.COM:8443/a/b", -1, false, false },
	{ "{\"to\":\"+1\",\"url\":\"https://example.com\"}", "+1", "", "", "",
	  "https://example.com", -1, false, false },
	{ "{\"to\":\"+1\",\"url\":\"https://[::1]:443/x\"}", "+1", "", "", "",
	  "https://[::1]:443/x", -1, false, false },
	{ "{\"to\":\"+1\",\"url\":\"https://a.example/x?q=a:b@c/d;e=f!$'()*+,~\"}", "+1", "", "",
	  "", "https://a.example/x?q=a:b@c/d;e=f!$'()*+,~", -1, false, false },
	{ "{\"to\":\"+1\",\"url\":\"https://my_host.internal/\"}", "+1", "", "", "",
	  "https://my_host.internal/", -1, false, false },
};

struct invalid_case {
	const char *body;
	size_t len;
	enum apierr code;
	const char *field;
	const char *message; /* NULL: not checked */
};

static const struct invalid_case invalid[] = {
	/* not JSON, not strict JSON, not an object */
	{ "", 0, APIERR_INVALID_JSON, "", "body is empty" },
	{ " ", 0, APIERR_INVALID_JSON, "", NULL },
	{ "{", 0, APIERR_INVALID_JSON, "", "body is not valid json: unexpected end of body" },
	{ "{\"to\":\"+1\"", 0, APIERR_INVALID_JSON, "", NULL },
	{ "{\"to\":\"+1", 0, APIERR_INVALID_JSON, "", NULL },
	{ "[]", 0, APIERR_INVALID_JSON, "", "body must be a json object" },
	{ "[{\"to\":\"+1\"}]", 0, APIERR_INVALID_JSON, "", "body must be a json object" },
	{ "\"to\"", 0, APIERR_INVALID_JSON, "", "body must be a json object" },
	{ "null", 0, APIERR_INVALID_JSON, "", "body must be a json object" },
	{ "true", 0, APIERR_INVALID_JSON, "", "body must be a json object" },
	{ "{\"to\":\"+1\"} x", 0, APIERR_INVALID_JSON, "", NULL },
	{ "{\"to\":\"+1\"}{}", 0, APIERR_INVALID_JSON, "", NULL },
	{ "{\"to\":\"+1\"}\n{\"to\":\"+2\"}", 0, APIERR_INVALID_JSON, "", NULL },
	{ "{'to':'+1'}", 0, APIERR_INVALID_JSON, "", NULL },
	{ "{\"to\":'+1'}", 0, APIERR_INVALID_JSON, "", NULL },
	{ "{to:\"+1\"}", 0, APIERR_INVALID_JSON, "", NULL },
	{ "{\"to\":\"+1\",}", 0, APIERR_INVALID_JSON, "", NULL },
	{ "{,\"to\":\"+1\"}", 0, APIERR_INVALID_JSON, "", NULL },
	{ "{\"to\":\"+1\" /* c */}", 0, APIERR_INVALID_JSON, "", NULL },
	{ "// c\n{\"to\":\"+1\"}", 0, APIERR_INVALID_JSON, "", NULL },
	{ "{\"to\":\"+1\",\"timeout\":NaN}", 0, APIERR_INVALID_JSON, "", NULL },
	{ "{\"to\":\"+1\",\"timeout\":Infinity}", 0, APIERR_INVALID_JSON, "", NULL },
	{ "{\"to\":\"+1\",\"timeout\":-Infinity}", 0, APIERR_INVALID_JSON, "", NULL },
	{ "{\"to\":\"+1\",\"timeout\":030}", 0, APIERR_INVALID_JSON, "", NULL },
	{ "{\"to\":\"+1\",\"timeout\":+30}", 0, APIERR_INVALID_JSON, "", NULL },
	{ "{\"to\":\"+1\",\"timeout\":0x1e}", 0, APIERR_INVALID_JSON, "", NULL },
	{ "{\"to\":\"+1\",\"record\":True}", 0, APIERR_INVALID_JSON, "", NULL },
	{ "{\"to\":\"+1\",\"say\":\"a\tb\"}", 0, APIERR_INVALID_JSON, "", NULL },
	{ "{\"to\":\"+1\",\"say\":\"a\nb\"}", 0, APIERR_INVALID_JSON, "", NULL },
	{ "{\"to\":\"+1\",\"say\":\"\\x41\"}", 0, APIERR_INVALID_JSON, "", NULL },
	{ "\xef\xbb\xbf{\"to\":\"+1\"}", 0, APIERR_INVALID_JSON, "", NULL },
	{ "{\"to\":\"+1\",\"say\":\"\xff\"}", 0, APIERR_INVALID_JSON, "", NULL },
	{ "{\"to\":\"+1\",\"say\":\"\xc0\xaf\"}", 0, APIERR_INVALID_JSON, "", NULL },
	{ "{\"to\":\"+1\",\"say\":\"\xed\xa0\x80\"}", 0, APIERR_INVALID_JSON, "", NULL },
	{ "{\"to\":\"+1\",\"say\":\"\xe2\x82\"}", 0, APIERR_INVALID_JSON, "", NULL },
	{ "{\"to\":\"+1\",\"x\":[[[[[[[[[[1]]]]]]]]]]}", 0, APIERR_INVALID_JSON, "", NULL },
	{ "{\"to\":\"+1\"}\0", 12, APIERR_INVALID_JSON, "", "body is not valid json: nul byte" },
	{ "{\"to\":\"+1\0\"}", 12, APIERR_INVALID_JSON, "", "body is not valid json: nul byte" },
	{ "\0{\"to\":\"+1\"}", 12, APIERR_INVALID_JSON, "", "body is not valid json: nul byte" },
	/* I-JSON: duplicate members, even when spelled differently */
	{ "{\"to\":\"+1\",\"to\":\"+2\"}", 0, APIERR_INVALID_JSON, "to", "to appears more than once" },
	{ "{\"to\":\"+1\",\"\\u0074o\":\"+2\"}", 0, APIERR_INVALID_JSON, "to", NULL },
	{ "{\"to\":\"+1\",\"record\":true,\"record\":false}", 0, APIERR_INVALID_JSON, "record", NULL },
	{ "{\"to\":\"+1\",\"say\":\"a\",\"\\u0073ay\":\"b\"}", 0, APIERR_INVALID_JSON, "say", NULL },
	/* json-c would cut "to\u0000x" to "to" and let it replace the first */
	{ "{\"to\":\"+1\",\"to\\u0000x\":\"+2\"}", 0, APIERR_INVALID_JSON, "", NULL },
	{ "{\"\\u0000\":1,\"to\":\"+1\"}", 0, APIERR_INVALID_JSON, "", NULL },
	/* unknown members, in body order */
	{ "{\"to\":\"+1\",\"foo\":1}", 0, APIERR_UNKNOWN_FIELD, "foo", "unknown field 'foo'" },
	{ "{\"foo\":1,\"to\":1}", 0, APIERR_UNKNOWN_FIELD, "foo", NULL },
	{ "{\"To\":\"+1\"}", 0, APIERR_UNKNOWN_FIELD, "To", NULL },
	{ "{\"to \":\"+1\"}", 0, APIERR_UNKNOWN_FIELD, "to ", NULL },
	{ "{\"to\":\"+1\",\"\":1}", 0, APIERR_UNKNOWN_FIELD, "", "unknown field ''" },
	{ "{\"to\":\"+1\",\"status_callback\":\"https://evil.example/\"}", 0, APIERR_UNKNOWN_FIELD,
	  "status_callback", NULL },
	{ "{\"to\":\"+1\",\"Twiml\":\"<Response/>\"}", 0, APIERR_UNKNOWN_FIELD, "Twiml", NULL },
	{ "{\"to\":\"+1\",\"application_sid\":\"AP123\"}", 0, APIERR_UNKNOWN_FIELD, "application_sid",
	  NULL },
	{ "{\"to\":\"+1\",\"a_very_long_member_name_beyond_the_field_buffer\":1}", 0,
	  APIERR_UNKNOWN_FIELD, "a_very_long_member_name_beyond_", NULL },
	/* wrong types */
	{ "{\"to\":14155552671}", 0, APIERR_INVALID_TYPE, "to", "to must be a string" },
	{ "{\"to\":null}", 0, APIERR_INVALID_TYPE, "to", NULL },
	{ "{\"to\":[\"+1\"]}", 0, APIERR_INVALID_TYPE, "to", NULL },
	{ "{\"to\":{\"number\":\"+1\"}}", 0, APIERR_INVALID_TYPE, "to", NULL },
	{ "{\"to\":true}", 0, APIERR_INVALID_TYPE, "to", NULL },
	{ "{\"to\":\"+1\",\"from\":false}", 0, APIERR_INVALID_TYPE, "from", NULL },
	{ "{\"to\":\"+1\",\"from\":null}", 0, APIERR_INVALID_TYPE, "from", NULL },
	{ "{\"to\":\"+1\",\"country\":1}", 0, APIERR_INVALID_TYPE, "country", NULL },
	{ "{\"to\":\"+1\",\"say\":1}", 0, APIERR_INVALID_TYPE, "say", NULL },
	{ "{\"to\":\"+1\",\"say\":[\"a\"]}", 0, APIERR_INVALID_TYPE, "say", NULL },
	{ "{\"to\":\"+1\",\"url\":{}}", 0, APIERR_INVALID_TYPE, "url", NULL },
	{ "{\"to\":\"+1\",\"timeout\":\"30\"}", 0, APIERR_INVALID_TYPE, "timeout",
	  "timeout must be an integer" },
	{ "{\"to\":\"+1\",\"timeout\":30.0}", 0, APIERR_INVALID_TYPE, "timeout", NULL },
	{ "{\"to\":\"+1\",\"timeout\":30.5}", 0, APIERR_INVALID_TYPE, "timeout", NULL },
	{ "{\"to\":\"+1\",\"timeout\":3e1}", 0, APIERR_INVALID_TYPE, "timeout", NULL },
	{ "{\"to\":\"+1\",\"timeout\":true}", 0, APIERR_INVALID_TYPE, "timeout", NULL },
	{ "{\"to\":\"+1\",\"timeout\":null}", 0, APIERR_INVALID_TYPE, "timeout", NULL },
	{ "{\"to\":\"+1\",\"timeout\":[30]}", 0, APIERR_INVALID_TYPE, "timeout", NULL },
	{ "{\"to\":\"+1\",\"record\":\"true\"}", 0, APIERR_INVALID_TYPE, "record",
	  "record must be true or false" },
	{ "{\"to\":\"+1\",\"record\":1}", 0, APIERR_INVALID_TYPE, "record", NULL },
	{ "{\"to\":\"+1\",\"record\":null}", 0, APIERR_INVALID_TYPE, "record", NULL },
	{ "{\"to\":\"+1\",\"machine_detection\":\"Enable\"}", 0, APIERR_INVALID_TYPE,
	  "machine_detection", NULL },
	{ "{\"to\":\"+1\",\"machine_detection\":0}", 0, APIERR_INVALID_TYPE, "machine_detection", NULL },
	/* values */
	{ "{\"to\":\"+1\\u00004155552671\"}", 0, APIERR_INVALID_VALUE, "to",
	  "to must not contain nul characters" },
	{ "{\"to\":\"+1\",\"from\":\"+1\\u0000\"}", 0, APIERR_INVALID_VALUE, "from", NULL },
	{ "{\"to\":\"+1 415 555 2671 00000000000000000000000000000000000000000000000000\"}", 0,
	  APIERR_INVALID_VALUE, "to", "to is too long (at most 64 bytes)" },
	{ "{\"to\":\"+1\",\"country\":\"USA\"}", 0, APIERR_INVALID_VALUE, "country", NULL },
	{ "{\"to\":\"+1\",\"country\":\"U\"}", 0, APIERR_INVALID_VALUE, "country",
	  "country must be a two-letter iso 3166 code" },
	{ "{\"to\":\"+1\",\"country\":\"\"}", 0, APIERR_INVALID_VALUE, "country", NULL },
	{ "{\"to\":\"+1\",\"country\":\"1A\"}", 0, APIERR_INVALID_VALUE, "country", NULL },
	{ "{\"to\":\"+1\",\"country\":\"001\"}", 0, APIERR_INVALID_VALUE, "country", NULL },
	{ "{\"to\":\"+1\",\"country\":\"\\u00dcS\"}", 0, APIERR_INVALID_VALUE, "country", NULL },
	{ "{\"to\":\"+1\",\"country\":\"ZZ\"}", 0, APIERR_INVALID_VALUE, "country",
	  "unknown country 'ZZ'" },
	{ "{\"to\":\"+1\",\"country\":\"U\\u0000\"}", 0, APIERR_INVALID_VALUE, "country", NULL },
	{ "{\"to\":\"+1\",\"say\":\"\"}", 0, APIERR_INVALID_VALUE, "say", "say must not be empty" },
	{ "{\"to\":\"+1\",\"say\":\" \\n\\t\\r \"}", 0, APIERR_INVALID_VALUE, "say", NULL },
	{ "{\"to\":\"+1\",\"say\":\"a\\u0000b\"}", 0, APIERR_INVALID_VALUE, "say", NULL },
	{ "{\"to\":\"+1\",\"say\":\"a\\u0007b\"}", 0, APIERR_INVALID_VALUE, "say",
	  "say must not contain control characters other than tab and newline" },
	{ "{\"to\":\"+1\",\"say\":\"a\\u001bb\"}", 0, APIERR_INVALID_VALUE, "say", NULL },
	{ "{\"to\":\"+1\",\"say\":\"a\\bb\"}", 0, APIERR_INVALID_VALUE, "say", NULL },
	{ "{\"to\":\"+1\",\"say\":\"a\\fb\"}", 0, APIERR_INVALID_VALUE, "say", NULL },
	{ "{\"to\":\"+1\",\"say\":\"a\\u007fb\"}", 0, APIERR_INVALID_VALUE, "say", NULL },
	{ "{\"to\":\"+1\",\"say\":\"a\\u0085b\"}", 0, APIERR_INVALID_VALUE, "say", NULL },
	{ "{\"to\":\"+1\",\"say\":\"a\xc2\x9f" "b\"}", 0, APIERR_INVALID_VALUE, "say", NULL },
	{ "{\"to\":\"+1\",\"say\":\"a\\uffffb\"}", 0, APIERR_INVALID_VALUE, "say", NULL },
	{ "{\"to\":\"+1\",\"url\":\"http://example.com/\"}", 0, APIERR_INVALID_VALUE, "url",
	  "url must be an absolute https:// url" },
	{ "{\"to\":\"+1\",\"url\":\"\"}", 0, APIERR_INVALID_VALUE, "url", NULL },
	{ "{\"to\":\"+1\",\"url\":\"https\"}", 0, APIERR_INVALID_VALUE, "url", NULL },
	{ "{\"to\":\"+1\",\"url\":\"https://\"}", 0, APIERR_INVALID_VALUE, "url", NULL },
	{ "{\"to\":\"+1\",\"url\":\"https:///twiml\"}", 0, APIERR_INVALID_VALUE, "url", NULL },
	{ "{\"to\":\"+1\",\"url\":\"https:example.com\"}", 0, APIERR_INVALID_VALUE, "url", NULL },
	{ "{\"to\":\"+1\",\"url\":\"//example.com/\"}", 0, APIERR_INVALID_VALUE, "url", NULL },
	{ "{\"to\":\"+1\",\"url\":\"/twiml\"}", 0, APIERR_INVALID_VALUE, "url", NULL },
	{ "{\"to\":\"+1\",\"url\":\"example.com\"}", 0, APIERR_INVALID_VALUE, "url", NULL },
	{ "{\"to\":\"+1\",\"url\":\"ftp://example.com/\"}", 0, APIERR_INVALID_VALUE, "url", NULL },
	{ "{\"to\":\"+1\",\"url\":\"javascript:alert(1)\"}", 0, APIERR_INVALID_VALUE, "url", NULL },
	{ "{\"to\":\"+1\",\"url\":\" https://example.com/\"}", 0, APIERR_INVALID_VALUE, "url", NULL },
	{ "{\"to\":\"+1\",\"url\":\"https://example.com/ \"}", 0, APIERR_INVALID_VALUE, "url", NULL },
	{ "{\"to\":\"+1\",\"url\":\"https://user:pw@example.com/\"}", 0, APIERR_INVALID_VALUE, "url",
	  "url must not contain credentials" },
	{ "{\"to\":\"+1\",\"url\":\"https://evil.example@example.com/\"}", 0, APIERR_INVALID_VALUE,
	  "url", "url must not contain credentials" },
	{ "{\"to\":\"+1\",\"url\":\"https://exa mple.com/\"}", 0, APIERR_INVALID_VALUE, "url", NULL },
	{ "{\"to\":\"+1\",\"url\":\"https://.example.com/\"}", 0, APIERR_INVALID_VALUE, "url", NULL },
	{ "{\"to\":\"+1\",\"url\":\"https://example.com:/\"}", 0, APIERR_INVALID_VALUE, "url", NULL },
	{ "{\"to\":\"+1\",\"url\":\"https://example.com:0/\"}", 0, APIERR_INVALID_VALUE, "url", NULL },
	{ "{\"to\":\"+1\",\"url\":\"https://example.com:65536/\"}", 0, APIERR_INVALID_VALUE, "url",
	  NULL },
	{ "{\"to\":\"+1\",\"url\":\"https://example.com:443x/\"}", 0, APIERR_INVALID_VALUE, "url", NULL },
	{ "{\"to\":\"+1\",\"url\":\"https://[::1/\"}", 0, APIERR_INVALID_VALUE, "url", NULL },
	{ "{\"to\":\"+1\",\"url\":\"https://[]/\"}", 0, APIERR_INVALID_VALUE, "url", NULL },
	/* refused since the check is url_check's (accepted before): not an IPv6
	 * address; hosts libcurl would rewrite to another IPv4 form */
	{ "{\"to\":\"+1\",\"url\":\"https://[1.2.3.4]/\"}", 0, APIERR_INVALID_VALUE, "url", NULL },
	{ "{\"to\":\"+1\",\"url\":\"https://0x7f.1/\"}", 0, APIERR_INVALID_VALUE, "url", NULL },
	{ "{\"to\":\"+1\",\"url\":\"https://127.0.01/\"}", 0, APIERR_INVALID_VALUE, "url", NULL },
	{ "{\"to\":\"+1\",\"url\":\"https://example.com/a%zzb\"}", 0, APIERR_INVALID_VALUE, "url", NULL },
	{ "{\"to\":\"+1\",\"url\":\"https://example.com/a%2\"}", 0, APIERR_INVALID_VALUE, "url", NULL },
	{ "{\"to\":\"+1\",\"url\":\"https://example.com/a<b>\"}", 0, APIERR_INVALID_VALUE, "url", NULL },
	{ "{\"to\":\"+1\",\"url\":\"https://example.com/a\\\"b\"}", 0, APIERR_INVALID_VALUE, "url",
	  NULL },
	{ "{\"to\":\"+1\",\"url\":\"https://example.com/\\u00e9\"}", 0, APIERR_INVALID_VALUE, "url",
	  NULL },
	{ "{\"to\":\"+1\",\"url\":\"https://ex\\u00e4mple.com/\"}", 0, APIERR_INVALID_VALUE, "url",
	  NULL },
	{ "{\"to\":\"+1\",\"url\":\"https://example.com/a\\\\b\"}", 0, APIERR_INVALID_VALUE, "url",
	  NULL },
	{ "{\"to\":\"+1\",\"url\":\"https://example.com/#a#b\"}", 0, APIERR_INVALID_VALUE, "url", NULL },
	{ "{\"to\":\"+1\",\"url\":\"https://example.com/\\r\\nX: y\"}", 0, APIERR_INVALID_VALUE, "url",
	  NULL },
	{ "{\"to\":\"+1\",\"url\":\"https://example.com/\\u0000\"}", 0, APIERR_INVALID_VALUE, "url",
	  NULL },
	{ "{\"to\":\"+1\",\"timeout\":4}", 0, APIERR_INVALID_VALUE, "timeout",
	  "timeout must be between 5 and 600 seconds" },
	{ "{\"to\":\"+1\",\"timeout\":601}", 0, APIERR_INVALID_VALUE, "timeout", NULL },
	{ "{\"to\":\"+1\",\"timeout\":0}", 0, APIERR_INVALID_VALUE, "timeout", NULL },
	{ "{\"to\":\"+1\",\"timeout\":-0}", 0, APIERR_INVALID_VALUE, "timeout", NULL },
	{ "{\"to\":\"+1\",\"timeout\":-30}", 0, APIERR_INVALID_VALUE, "timeout", NULL },
	{ "{\"to\":\"+1\",\"timeout\":4294967326}", 0, APIERR_INVALID_VALUE, "timeout", NULL },
	{ "{\"to\":\"+1\",\"timeout\":9223372036854775807}", 0, APIERR_INVALID_VALUE, "timeout", NULL },
	{ "{\"to\":\"+1\",\"timeout\":99999999999999999999}", 0, APIERR_INVALID_VALUE, "timeout", NULL },
	{ "{\"to\":\"+1\",\"timeout\":-99999999999999999999}", 0, APIERR_INVALID_VALUE, "timeout",
	  NULL },
	{ "{\"to\":\"+1\",\"say\":\"hi\",\"url\":\"https://example.com/\"}", 0, APIERR_INVALID_VALUE,
	  "url", "say and url cannot be used together" },
	/* required */
	{ "{}", 0, APIERR_MISSING_FIELD, "to", "to is required" },
	{ "{\"from\":\"+14155550199\",\"say\":\"hi\"}", 0, APIERR_MISSING_FIELD, "to", NULL },
};

static void expect_str(size_t i, const char *what, const char *got, const char *want)
{
	if (strcmp(got, want) != 0)
		fail_msg("case %zu: %s '%s', want '%s'", i, what, got, want);
}

static const char *code_name(enum apierr e)
{
	return e == APIERR_NONE ? "(none)" : apierr_code(e);
}

static void expect_code(size_t i, enum apierr got, enum apierr want)
{
	if (got != want)
		fail_msg("case %zu: code %s, want %s", i, code_name(got), code_name(want));
}

static void test_valid(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof valid / sizeof valid[0]; i++) {
		const struct valid_case *c = &valid[i];
		struct call_request r;
		struct callreq_error err;
		enum verr e = callreq_parse(c->body, strlen(c->body), &r, &err);

		if (e != VERR_OK)
			fail_msg("case %zu %s: %s %s %s", i, c->body, code_name(err.code), err.field,
			         err.message);
		expect_str(i, "to", r.to, c->to);
		expect_str(i, "from", r.from, c->from);
		assert_int_equal(r.has_from, c->from[0] != '\0');
		expect_str(i, "country", r.country, c->country);
		expect_str(i, "say", r.say, c->say);
		expect_str(i, "url", r.url, c->url);
		assert_int_equal(r.has_timeout, c->timeout >= 0);
		if (c->timeout >= 0)
			assert_int_equal(r.timeout, c->timeout);
		assert_int_equal(r.record, c->record);
		assert_int_equal(r.machine_detection, c->machine_detection);
		expect_code(i, err.code, APIERR_NONE);
	}
}

static void test_invalid(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
		const struct invalid_case *c = &invalid[i];
		size_t len = c->len ? c->len : strlen(c->body);
		struct call_request r;
		struct callreq_error err;
		enum verr e = callreq_parse(c->body, len, &r, &err);

		if (e != VERR_INVALID)
			fail_msg("case %zu %s: %s", i, c->body, e == VERR_OK ? "accepted"
			                                                     : verr_strerror(e));
		expect_code(i, err.code, c->code);
		expect_str(i, "field", err.field, c->field);
		if (c->message != NULL)
			expect_str(i, "message", err.message, c->message);
		if (err.message[0] == '\0')
			fail_msg("case %zu: empty message", i);
		/* nothing half-parsed is left behind */
		expect_str(i, "to after failure", r.to, "");
	}
}

/* Bodies built at run time: lengths at and past each limit. */
static char *body_with(const char *prefix, const char *unit, size_t count, const char *suffix)
{
	size_t pl = strlen(prefix), ul = strlen(unit), sl = strlen(suffix), i;
	char *b = malloc(pl + ul * count + sl + 1), *p;

	assert_non_null(b);
	memcpy(b, prefix, pl);
	p = b + pl;
	for (i = 0; i < count; i++, p += ul)
		memcpy(p, unit, ul);
	memcpy(p, suffix, sl + 1);
	return b;
}

static void expect_parse(char *body, enum verr want, enum apierr code, const char *field)
{
	struct call_request r;
	struct callreq_error err;
	enum verr e = callreq_parse(body, strlen(body), &r, &err);

	if (e != want)
		fail_msg("%.60s…: %s (%s %s), want %s", body, verr_strerror(e), code_name(err.code),
		         err.message, verr_strerror(want));
	expect_code(0, err.code, code);
	expect_str(0, "field", err.field, field);
	free(body);
}

static void test_limits(void **state)
{
	(void)state;
	/* say: 1000 characters of 1, 2 and 4 bytes pass; 1001 do not */
	expect_parse(body_with("{\"to\":\"+1\",\"say\":\"", "a", 1000, "\"}"), VERR_OK, APIERR_NONE, "");
	expect_parse(body_with("{\"to\":\"+1\",\"say\":\"", "\xc3\xa9", 1000, "\"}"), VERR_OK, APIERR_NONE,
	             "");
	expect_parse(body_with("{\"to\":\"+1\",\"say\":\"", "\xf0\x9f\x98\x80", 1000, "\"}"),
	             VERR_OK, APIERR_NONE, "");
	expect_parse(body_with("{\"to\":\"+1\",\"say\":\"", "\\ud83d\\ude00", 1000, "\"}"), VERR_OK,
	             APIERR_NONE, "");
	expect_parse(body_with("{\"to\":\"+1\",\"say\":\"", "a", 1001, "\"}"), VERR_INVALID,
	             APIERR_INVALID_VALUE, "say");
	expect_parse(body_with("{\"to\":\"+1\",\"say\":\"", "\xc3\xa9", 1001, "\"}"), VERR_INVALID,
	             APIERR_INVALID_VALUE, "say");
	expect_parse(body_with("{\"to\":\"+1\",\"say\":\"", "\xf0\x9f\x98\x80", 1001, "\"}"),
	             VERR_INVALID, APIERR_INVALID_VALUE, "say");
	/* url: 1024 bytes pass, 1025 do not ("https://e.example/" is 18) */
	expect_parse(body_with("{\"to\":\"+1\",\"url\":\"https://e.example/", "a", 1024 - 18, "\"}"),
	             VERR_OK, APIERR_NONE, "");
	expect_parse(body_with("{\"to\":\"+1\",\"url\":\"https://e.example/", "a", 1025 - 18, "\"}"),
	             VERR_INVALID, APIERR_INVALID_VALUE, "url");
	/* to: 64 bytes pass this layer, 65 do not */
	expect_parse(body_with("{\"to\":\"+", "1", 63, "\"}"), VERR_OK, APIERR_NONE, "");
	expect_parse(body_with("{\"to\":\"+", "1", 64, "\"}"), VERR_INVALID, APIERR_INVALID_VALUE, "to");
	/* body: at most CALLREQ_MAX_BODY bytes */
	expect_parse(body_with("{\"to\":\"+1\"}", " ", CALLREQ_MAX_BODY - 11, ""), VERR_OK,
	             APIERR_NONE, "");
	expect_parse(body_with("{\"to\":\"+1\"}", " ", CALLREQ_MAX_BODY - 10, ""), VERR_TOOBIG,
	             APIERR_PAYLOAD_TOO_LARGE, "");
}

static void test_not_terminated(void **state)
{
	/* body is a length-delimited buffer: no reading past len */
	static const char buf[] = "{\"to\":\"+14155552671\"}garbage";
	struct call_request r;
	struct callreq_error err;

	(void)state;
	assert_int_equal(callreq_parse(buf, 21, &r, &err), VERR_OK);
	assert_string_equal(r.to, "+14155552671");
	assert_int_equal(callreq_parse(buf, 20, &r, &err), VERR_INVALID);
	assert_int_equal(callreq_parse(buf, sizeof buf - 1, &r, &err), VERR_INVALID);
	assert_int_equal(callreq_parse(NULL, 0, &r, &err), VERR_INVALID);
}

/* Error text is UTF-8 even when a member name is cut short. */
static void test_error_utf8(void **state)
{
	static const char body[] = "{\"to\":\"+1\",\"abcdefghijklmnopqrstuvwxyz1234\xc3\xa9\xc3\xa9\":1}";
	struct call_request r;
	struct callreq_error err;

	(void)state;
	assert_int_equal(callreq_parse(body, sizeof body - 1, &r, &err), VERR_INVALID);
	assert_int_equal(err.code, APIERR_UNKNOWN_FIELD);
	/* 30 ASCII + 'é' would be 32 bytes: the field stops before it */
	assert_string_equal(err.field, "abcdefghijklmnopqrstuvwxyz1234");
	assert_string_equal(err.message, "unknown field 'abcdefghijklmnopqrstuvwxyz1234'");
}

/* ---- callreq_numbers ---- */

struct numbers_case {
	const char *body;
	const char *default_from;
	const char *allowed;
	enum verr rc;
	enum apierr code;
	const char *field, *message;
	const char *to, *from; /* E.164 on success */
};

static const struct numbers_case numbers[] = {
	{ "{\"to\":\"+14155552671\"}", "+14155550199", NULL, VERR_OK, APIERR_NONE, "", "", "+14155552671",
	  "+14155550199" },
	{ "{\"to\":\"(415) 555-2671\",\"country\":\"US\"}", "+14155550199", NULL, VERR_OK, APIERR_NONE, "",
	  "", "+14155552671", "+14155550199" },
	{ "{\"to\":\"020 7946 0958\",\"country\":\"gb\",\"from\":\"+1 415 555 0199\"}", NULL, NULL,
	  VERR_OK, APIERR_NONE, "", "", "+442079460958", "+14155550199" },
	{ "{\"to\":\"020 7946 0958\",\"country\":\"GB\",\"from\":\"07400 123456\"}", "+14155550199",
	  NULL, VERR_OK, APIERR_NONE, "", "", "+442079460958", "+447400123456" },
	{ "{\"to\":\"+14155552671\",\"from\":\"+15005550006\"}", "", "US", VERR_OK, APIERR_NONE, "", "",
	  "+14155552671", "+15005550006" },
	/* the caller id is Twilio's business, not the destination policy's */
	{ "{\"to\":\"+14155552671\",\"from\":\"+442079460958\"}", NULL, "US", VERR_OK, APIERR_NONE, "", "",
	  "+14155552671", "+442079460958" },
	/* 422 on to */
	{ "{\"to\":\"tel:+14155552671\"}", "+14155550199", NULL, VERR_INVALID,
	  APIERR_INVALID_PHONE_NUMBER, "to", "to: only digits, spaces and + ( ) - . are allowed", NULL,
	  NULL },
	{ "{\"to\":\"+1 800 FLOWERS\"}", "+14155550199", NULL, VERR_INVALID, APIERR_INVALID_PHONE_NUMBER,
	  "to", NULL, NULL, NULL },
	{ "{\"to\":\"+\\u0661\\u0664\\u0661\\u0665\\u0665\\u0665\\u0665\\u0662\\u0666\\u0667\\u0661\"}",
	  "+14155550199", NULL, VERR_INVALID, APIERR_INVALID_PHONE_NUMBER, "to", NULL, NULL, NULL },
	{ "{\"to\":\"\"}", "+14155550199", NULL, VERR_INVALID, APIERR_INVALID_PHONE_NUMBER, "to",
	  "to: phone number is empty", NULL, NULL },
	{ "{\"to\":\"4155552671\"}", "+14155550199", NULL, VERR_INVALID, APIERR_INVALID_PHONE_NUMBER,
	  "to", "to: country is required for a national number", NULL, NULL },
	{ "{\"to\":\"+1 415 555 267\"}", "+14155550199", NULL, VERR_INVALID, APIERR_INVALID_PHONE_NUMBER,
	  "to", "to: not a valid phone number", NULL, NULL },
	/* 422 on from */
	{ "{\"to\":\"+14155552671\",\"from\":\"Alice\"}", "+14155550199", NULL, VERR_INVALID,
	  APIERR_INVALID_PHONE_NUMBER, "from", "from: only digits, spaces and + ( ) - . are allowed",
	  NULL, NULL },
	{ "{\"to\":\"+14155552671\",\"from\":\"\"}", "+14155550199", NULL, VERR_INVALID,
	  APIERR_INVALID_PHONE_NUMBER, "from", NULL, NULL, NULL },
	{ "{\"to\":\"+14155552671\",\"from\":\"4155550199\"}", "+14155550199", NULL, VERR_INVALID,
	  APIERR_INVALID_PHONE_NUMBER, "from", "from: country is required for a national number", NULL,
	  NULL },
	/* no caller id at all */
	{ "{\"to\":\"+14155552671\"}", NULL, NULL, VERR_INVALID, APIERR_MISSING_FIELD, "from", NULL,
	  NULL, NULL },
	{ "{\"to\":\"+14155552671\"}", "", NULL, VERR_INVALID, APIERR_MISSING_FIELD, "from", NULL, NULL,
	  NULL },
	/* a bad configured caller id is ours, not the client's */
	{ "{\"to\":\"+14155552671\"}", "not a number", NULL, VERR_CONFIG, APIERR_INTERNAL, "",
	  NULL, NULL, NULL },
	/* 403 */
	{ "{\"to\":\"+449012345678\"}", "+14155550199", NULL, VERR_FORBIDDEN,
	  APIERR_DESTINATION_NOT_ALLOWED, "to", "calls to premium rate numbers are not allowed", NULL,
	  NULL },
	{ "{\"to\":\"0901 234 5678\",\"country\":\"GB\"}", "+14155550199", NULL, VERR_FORBIDDEN,
	  APIERR_DESTINATION_NOT_ALLOWED, "to", NULL, NULL, NULL },
	{ "{\"to\":\"+33612345678\"}", "+14155550199", "US,CA", VERR_FORBIDDEN,
	  APIERR_DESTINATION_NOT_ALLOWED, "to", "calls to FR are not allowed", NULL, NULL },
	{ "{\"to\":\"+88 1612345678\"}", "+14155550199", NULL, VERR_FORBIDDEN,
	  APIERR_DESTINATION_NOT_ALLOWED, "to", "calls to non-geographic numbers are not allowed", NULL,
	  NULL },
	/* to is judged before from */
	{ "{\"to\":\"+449012345678\",\"from\":\"bad\"}", "+14155550199", NULL, VERR_FORBIDDEN,
	  APIERR_DESTINATION_NOT_ALLOWED, "to", NULL, NULL, NULL },
};

static void test_numbers(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof numbers / sizeof numbers[0]; i++) {
		const struct numbers_case *c = &numbers[i];
		struct call_request r;
		struct callreq_error err;
		struct phone_policy pol;
		struct phone_number to, from;
		char perr[PHONE_MAX_REASON];
		enum verr e;

		if (callreq_parse(c->body, strlen(c->body), &r, &err) != VERR_OK)
			fail_msg("case %zu: parse: %s", i, err.message);
		/* no list here means every country ("*"); the default is phone_test's */
		assert_int_equal(phone_policy_parse(c->allowed != NULL ? c->allowed : "*", NULL, NULL,
		                                    &pol, perr, sizeof perr),
		                 VERR_OK);
		e = callreq_numbers(&r, c->default_from, &pol, &to, &from, &err);
		if (e != c->rc)
			fail_msg("case %zu %s: %s (%s %s), want %s", i, c->body, verr_strerror(e),
			         code_name(err.code), err.message, verr_strerror(c->rc));
		expect_code(i, err.code, c->code);
		expect_str(i, "field", err.field, c->field);
		if (c->message != NULL)
			expect_str(i, "message", err.message, c->message);
		if (e == VERR_OK) {
			expect_str(i, "to", to.e164, c->to);
			expect_str(i, "from", from.e164, c->from);
		} else if (err.message[0] == '\0') {
			fail_msg("case %zu: empty message", i);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_not_terminated),
		cmocka_unit_test(test_error_utf8),
		cmocka_unit_test(test_numbers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
