/*
 * Twilio call webhook validation (callback_parse): every required parameter
 * missing or malformed, another account's AccountSid, integer ranges, and the
 * stored payload (valid JSON holding every parameter, repeated keys as
 * arrays). Parameters: docs/TWILIO.md, "Status callbacks".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "callback.h"
#include "form.h"

#define OURS "AC0123456789abcdef0123456789abcdef"
#define OTHER "ACfedcba9876543210fedcba9876543210"
#define SID "CA00112233445566778899aabbccddeeff"
#define SID_UPPER "CA00112233445566778899AABBCCDDEEFF"

/* A status callback as Twilio sends it (decoded values). */
static const char *const base[][2] = {
	{ "Called", "+14155550199" },
	{ "ToState", "CA" },
	{ "CallerCountry", "US" },
	{ "Direction", "outbound-api" },
	{ "Timestamp", "Tue, 31 Aug 2010 20:36:28 +0000" },
	{ "CallbackSource", "call-progress-events" },
	{ "CallerState", "CA" },
	{ "ToZip", "" },
	{ "SequenceNumber", "1" },
	{ "CallSid", SID },
	{ "To", "+14155550199" },
	{ "ToCountry", "US" },
	{ "CallerZip", "94105" },
	{ "CalledZip", "" },
	{ "ApiVersion", "2010-04-01" },
	{ "CallStatus", "ringing" },
	{ "From", "+14155550100" },
	{ "AccountSid", OURS },
	{ "Caller", "+14155550100" },
	{ "FromCountry", "US" },
};
#define NBASE (sizeof base / sizeof base[0])

enum opkind { OP_END = 0, OP_SET, OP_DEL, OP_ADD };

/* OP_SET replaces the value of key in base (or appends it when absent),
 * OP_DEL drops every pair with key, OP_ADD appends one more pair. */
struct op {
	enum opkind kind;
	const char *key;
	const char *value;
};

#define MAX_OPS 4

/* Builds base with ops applied into f (zeroed by the caller). */
static void build(struct form *f, const struct op *ops)
{
	size_t i, j;

	for (i = 0; i < NBASE; i++) {
		const char *value = base[i][1];
		bool drop = false;

		for (j = 0; j < MAX_OPS && ops[j].kind != OP_END; j++) {
			if (strcmp(ops[j].key, base[i][0]) != 0)
				continue;
			if (ops[j].kind == OP_DEL)
				drop = true;
			else if (ops[j].kind == OP_SET)
				value = ops[j].value;
		}
		if (!drop)
			assert_int_equal(form_add(f, base[i][0], value), VERR_OK);
	}
	for (j = 0; j < MAX_OPS && ops[j].kind != OP_END; j++) {
		bool in_base = false;

		for (i = 0; i < NBASE; i++)
			if (strcmp(ops[j].key, base[i][0]) == 0)
				in_base = true;
		if (ops[j].kind == OP_ADD || (ops[j].kind == OP_SET && !in_base))
			assert_int_equal(form_add(f, ops[j].key, ops[j].value), VERR_OK);
	}
}

/*
 * The payload must be one JSON object, nothing after it, with exactly one
 * member per distinct key: a string for a key seen once, an array of the
 * values in received order for a repeated key.
 */
static void check_payload(const struct form *f, const char *payload)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *o;
	size_t i, j, distinct = 0;

	assert_non_null(tok);
	assert_non_null(payload);
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, payload, (int)strlen(payload));
	assert_int_equal(json_tokener_get_error(tok), json_tokener_success);
	assert_int_equal(json_tokener_get_parse_end(tok), strlen(payload));
	json_tokener_free(tok);
	assert_non_null(o);
	assert_true(json_object_is_type(o, json_type_object));
	for (i = 0; i < f->n; i++) {
		const char *key = f->params[i].key;
		size_t count = form_count(f, key), seen = 0;
		struct json_object *v;

		assert_true(json_object_object_get_ex(o, key, &v));
		for (j = 0; j < i; j++)
			if (strcmp(f->params[j].key, key) == 0)
				seen++;
		if (seen == 0)
			distinct++;
		if (count == 1) {
			assert_true(json_object_is_type(v, json_type_string));
			assert_string_equal(json_object_get_string(v), f->params[i].value);
		} else {
			struct json_object *item;

			assert_true(json_object_is_type(v, json_type_array));
			assert_int_equal(json_object_array_length(v), count);
			item = json_object_array_get_idx(v, seen);
			assert_true(json_object_is_type(item, json_type_string));
			assert_string_equal(json_object_get_string(item), f->params[i].value);
		}
	}
	assert_int_equal((size_t)json_object_object_length(o), distinct);
	json_object_put(o);
}

struct valid_case {
	const char *name;
	struct op ops[MAX_OPS];
	const char *status, *direction, *from, *to, *answered_by;
	long long seq, dur, sip;
};

#define LONG64 "sip:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@e.com"
#define LONG65 "sip:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@e.com"
#define AB31 "machine_end_otherxxxxxxxxxxxxxx"
#define AB32 "machine_end_otherxxxxxxxxxxxxxxx"

static const struct valid_case valid[] = {
	{ "base", { { OP_END, NULL, NULL } },
	  "ringing", "outbound-api", "+14155550100", "+14155550199", "", 1, -1, -1 },
	{ "no optional integers", { { OP_DEL, "SequenceNumber", NULL } },
	  "ringing", "outbound-api", "+14155550100", "+14155550199", "", -1, -1, -1 },
	{ "empty SequenceNumber is absent", { { OP_SET, "SequenceNumber", "" } },
	  "ringing", "outbound-api", "+14155550100", "+14155550199", "", -1, -1, -1 },
	{ "queued", { { OP_SET, "CallStatus", "queued" } },
	  "queued", "outbound-api", "+14155550100", "+14155550199", "", 1, -1, -1 },
	{ "initiated", { { OP_SET, "CallStatus", "initiated" }, { OP_SET, "SequenceNumber", "0" } },
	  "initiated", "outbound-api", "+14155550100", "+14155550199", "", 0, -1, -1 },
	{ "in-progress", { { OP_SET, "CallStatus", "in-progress" } },
	  "in-progress", "outbound-api", "+14155550100", "+14155550199", "", 1, -1, -1 },
	{ "completed with duration, sip code, amd",
	  { { OP_SET, "CallStatus", "completed" }, { OP_SET, "CallDuration", "42" },
	    { OP_SET, "SipResponseCode", "200" }, { OP_SET, "AnsweredBy", "machine_end_beep" } },
	  "completed", "outbound-api", "+14155550100", "+14155550199", "machine_end_beep", 1, 42,
	  200 },
	{ "busy 486", { { OP_SET, "CallStatus", "busy" }, { OP_SET, "SipResponseCode", "486" } },
	  "busy", "outbound-api", "+14155550100", "+14155550199", "", 1, -1, 486 },
	{ "failed", { { OP_SET, "CallStatus", "failed" } },
	  "failed", "outbound-api", "+14155550100", "+14155550199", "", 1, -1, -1 },
	{ "no-answer 487", { { OP_SET, "CallStatus", "no-answer" }, { OP_SET, "SipResponseCode", "487" } },
	  "no-answer", "outbound-api", "+14155550100", "+14155550199", "", 1, -1, 487 },
	{ "canceled", { { OP_SET, "CallStatus", "canceled" } },
	  "canceled", "outbound-api", "+14155550100", "+14155550199", "", 1, -1, -1 },
	{ "inbound", { { OP_SET, "Direction", "inbound" } },
	  "ringing", "inbound", "+14155550100", "+14155550199", "", 1, -1, -1 },
	{ "outbound-dial", { { OP_SET, "Direction", "outbound-dial" } },
	  "ringing", "outbound-dial", "+14155550100", "+14155550199", "", 1, -1, -1 },
	{ "trunking-originating", { { OP_SET, "Direction", "trunking-originating" } },
	  "ringing", "trunking-originating", "+14155550100", "+14155550199", "", 1, -1, -1 },
	{ "trunking-terminating", { { OP_SET, "Direction", "trunking-terminating" } },
	  "ringing", "trunking-terminating", "+14155550100", "+14155550199", "", 1, -1, -1 },
	{ "integer lower bounds",
	  { { OP_SET, "SequenceNumber", "0" }, { OP_SET, "CallDuration", "0" },
	    { OP_SET, "SipResponseCode", "100" } },
	  "ringing", "outbound-api", "+14155550100", "+14155550199", "", 0, 0, 100 },
	{ "integer upper bounds",
	  { { OP_SET, "SequenceNumber", "1000000" }, { OP_SET, "CallDuration", "100000000" },
	    { OP_SET, "SipResponseCode", "699" } },
	  "ringing", "outbound-api", "+14155550100", "+14155550199", "", 1000000, 100000000, 699 },
	{ "empty optional integers are absent",
	  { { OP_SET, "CallDuration", "" }, { OP_SET, "SipResponseCode", "" } },
	  "ringing", "outbound-api", "+14155550100", "+14155550199", "", 1, -1, -1 },
	{ "uppercase hex sid", { { OP_SET, "CallSid", SID_UPPER } },
	  "ringing", "outbound-api", "+14155550100", "+14155550199", "", 1, -1, -1 },
	{ "client and sip parties",
	  { { OP_SET, "From", "client:alice" }, { OP_SET, "To", "sip:bob@example.com;transport=tls" } },
	  "ringing", "outbound-api", "client:alice", "sip:bob@example.com;transport=tls", "", 1, -1,
	  -1 },
	{ "anonymous caller, 64-byte to",
	  { { OP_SET, "From", "anonymous" }, { OP_SET, "To", LONG64 } },
	  "ringing", "outbound-api", "anonymous", LONG64, "", 1, -1, -1 },
	{ "31-byte AnsweredBy", { { OP_SET, "AnsweredBy", AB31 } },
	  "ringing", "outbound-api", "+14155550100", "+14155550199", AB31, 1, -1, -1 },
	{ "unknown parameters are kept",
	  { { OP_ADD, "StirVerstat", "TN-Validation-Passed-A" },
	    { OP_ADD, "CallerName", "Jos\xc3\xa9 \"O'Neil\" \\ </script> \xf0\x9f\x98\x80" },
	    { OP_ADD, "Note", "line1\nline2\ttab\r" },
	    { OP_ADD, "", "empty key" } },
	  "ringing", "outbound-api", "+14155550100", "+14155550199", "", 1, -1, -1 },
	{ "repeated keys become arrays",
	  { { OP_ADD, "Extra", "1" }, { OP_ADD, "Extra", "2" }, { OP_ADD, "Extra", "1" },
	    { OP_ADD, "Caller", "+14155550100" } },
	  "ringing", "outbound-api", "+14155550100", "+14155550199", "", 1, -1, -1 },
};

struct invalid_case {
	const char *name;
	struct op ops[MAX_OPS];
	enum verr want;
	const char *field;
};

static const struct invalid_case invalid[] = {
	/* required parameters missing */
	{ "no CallSid", { { OP_DEL, "CallSid", NULL } }, VERR_INVALID, "CallSid" },
	{ "no AccountSid", { { OP_DEL, "AccountSid", NULL } }, VERR_INVALID, "AccountSid" },
	{ "no CallStatus", { { OP_DEL, "CallStatus", NULL } }, VERR_INVALID, "CallStatus" },
	{ "no Direction", { { OP_DEL, "Direction", NULL } }, VERR_INVALID, "Direction" },
	{ "no From", { { OP_DEL, "From", NULL } }, VERR_INVALID, "From" },
	{ "no To", { { OP_DEL, "To", NULL } }, VERR_INVALID, "To" },
	/* CallSid */
	{ "empty CallSid", { { OP_SET, "CallSid", "" } }, VERR_INVALID, "CallSid" },
	{ "short CallSid", { { OP_SET, "CallSid", "CA1234567890ABCDE" } }, VERR_INVALID, "CallSid" },
	{ "33 hex CallSid", { { OP_SET, "CallSid", SID "0" } }, VERR_INVALID, "CallSid" },
	{ "31 hex CallSid", { { OP_SET, "CallSid", "CA00112233445566778899aabbccddeef" } },
	  VERR_INVALID, "CallSid" },
	{ "non-hex CallSid", { { OP_SET, "CallSid", "CA00112233445566778899aabbccddeefg" } },
	  VERR_INVALID, "CallSid" },
	{ "CallSid with space", { { OP_SET, "CallSid", "CA00112233445566778899aabbccddeef " } },
	  VERR_INVALID, "CallSid" },
	{ "lowercase prefix", { { OP_SET, "CallSid", "ca00112233445566778899aabbccddeeff" } },
	  VERR_INVALID, "CallSid" },
	{ "wrong prefix", { { OP_SET, "CallSid", "SM00112233445566778899aabbccddeeff" } },
	  VERR_INVALID, "CallSid" },
	{ "account sid as CallSid", { { OP_SET, "CallSid", OURS } }, VERR_INVALID, "CallSid" },
	{ "CallSid repeated", { { OP_ADD, "CallSid", SID } }, VERR_INVALID, "CallSid" },
	{ "two CallSids", { { OP_ADD, "CallSid", SID_UPPER } }, VERR_INVALID, "CallSid" },
	/* AccountSid */
	{ "malformed AccountSid", { { OP_SET, "AccountSid", "AC123" } }, VERR_INVALID, "AccountSid" },
	{ "call sid as AccountSid", { { OP_SET, "AccountSid", SID } }, VERR_INVALID, "AccountSid" },
	{ "empty AccountSid", { { OP_SET, "AccountSid", "" } }, VERR_INVALID, "AccountSid" },
	{ "other account", { { OP_SET, "AccountSid", OTHER } }, VERR_FORBIDDEN, "AccountSid" },
	{ "ours as prefix", { { OP_SET, "AccountSid", OURS "0" } }, VERR_INVALID, "AccountSid" },
	/* CallStatus */
	{ "empty CallStatus", { { OP_SET, "CallStatus", "" } }, VERR_INVALID, "CallStatus" },
	{ "answered is not a CallStatus", { { OP_SET, "CallStatus", "answered" } }, VERR_INVALID,
	  "CallStatus" },
	{ "CallStatus case", { { OP_SET, "CallStatus", "Completed" } }, VERR_INVALID, "CallStatus" },
	{ "CallStatus underscore", { { OP_SET, "CallStatus", "in_progress" } }, VERR_INVALID,
	  "CallStatus" },
	{ "CallStatus trailing space", { { OP_SET, "CallStatus", "completed " } }, VERR_INVALID,
	  "CallStatus" },
	{ "CallStatus prefix", { { OP_SET, "CallStatus", "complete" } }, VERR_INVALID, "CallStatus" },
	{ "CallStatus repeated", { { OP_ADD, "CallStatus", "completed" } }, VERR_INVALID,
	  "CallStatus" },
	/* Direction */
	{ "Direction outbound", { { OP_SET, "Direction", "outbound" } }, VERR_INVALID, "Direction" },
	{ "Direction case", { { OP_SET, "Direction", "Inbound" } }, VERR_INVALID, "Direction" },
	{ "empty Direction", { { OP_SET, "Direction", "" } }, VERR_INVALID, "Direction" },
	/* From / To */
	{ "From with LF", { { OP_SET, "From", "+1415\n5550100" } }, VERR_INVALID, "From" },
	{ "From with DEL", { { OP_SET, "From", "+1415\x7f" } }, VERR_INVALID, "From" },
	{ "65-byte From", { { OP_SET, "From", LONG65 } }, VERR_INVALID, "From" },
	{ "To with TAB", { { OP_SET, "To", "+1415\t5550199" } }, VERR_INVALID, "To" },
	{ "65-byte To", { { OP_SET, "To", LONG65 } }, VERR_INVALID, "To" },
	/* AnsweredBy */
	{ "32-byte AnsweredBy", { { OP_SET, "AnsweredBy", AB32 } }, VERR_INVALID, "AnsweredBy" },
	{ "AnsweredBy with CR", { { OP_SET, "AnsweredBy", "human\r" } }, VERR_INVALID, "AnsweredBy" },
	/* SequenceNumber: 0..1000000 */
	{ "negative SequenceNumber", { { OP_SET, "SequenceNumber", "-1" } }, VERR_INVALID,
	  "SequenceNumber" },
	{ "SequenceNumber too big", { { OP_SET, "SequenceNumber", "1000001" } }, VERR_INVALID,
	  "SequenceNumber" },
	{ "SequenceNumber overflow", { { OP_SET, "SequenceNumber", "18446744073709551617" } },
	  VERR_INVALID, "SequenceNumber" },
	{ "SequenceNumber text", { { OP_SET, "SequenceNumber", "two" } }, VERR_INVALID,
	  "SequenceNumber" },
	{ "SequenceNumber fraction", { { OP_SET, "SequenceNumber", "1.0" } }, VERR_INVALID,
	  "SequenceNumber" },
	{ "SequenceNumber leading zero", { { OP_SET, "SequenceNumber", "01" } }, VERR_INVALID,
	  "SequenceNumber" },
	{ "SequenceNumber plus", { { OP_SET, "SequenceNumber", "+1" } }, VERR_INVALID,
	  "SequenceNumber" },
	{ "SequenceNumber space", { { OP_SET, "SequenceNumber", " 1" } }, VERR_INVALID,
	  "SequenceNumber" },
	{ "SequenceNumber hex", { { OP_SET, "SequenceNumber", "0x1" } }, VERR_INVALID,
	  "SequenceNumber" },
	/* CallDuration: 0..100000000 */
	{ "negative CallDuration", { { OP_SET, "CallDuration", "-1" } }, VERR_INVALID,
	  "CallDuration" },
	{ "CallDuration too big", { { OP_SET, "CallDuration", "100000001" } }, VERR_INVALID,
	  "CallDuration" },
	{ "CallDuration text", { { OP_SET, "CallDuration", "12s" } }, VERR_INVALID, "CallDuration" },
	/* SipResponseCode: 100..699 */
	{ "SipResponseCode 99", { { OP_SET, "SipResponseCode", "99" } }, VERR_INVALID,
	  "SipResponseCode" },
	{ "SipResponseCode 700", { { OP_SET, "SipResponseCode", "700" } }, VERR_INVALID,
	  "SipResponseCode" },
	{ "SipResponseCode 0", { { OP_SET, "SipResponseCode", "0" } }, VERR_INVALID,
	  "SipResponseCode" },
	{ "SipResponseCode text", { { OP_SET, "SipResponseCode", "OK" } }, VERR_INVALID,
	  "SipResponseCode" },
};

/*
 * A typed parameter given twice is ambiguous: the stored field would take the
 * first value while the payload records both (e.g. AccountSid=<ours> followed
 * by AccountSid=<another account>), so every typed parameter given twice is
 * VERR_INVALID naming it.
 */
static const struct invalid_case repeated[] = {
	{ "other account added after ours", { { OP_ADD, "AccountSid", OTHER } }, VERR_INVALID,
	  "AccountSid" },
	{ "Direction repeated", { { OP_ADD, "Direction", "inbound" } }, VERR_INVALID, "Direction" },
	{ "From repeated", { { OP_ADD, "From", "+14155550111" } }, VERR_INVALID, "From" },
	{ "To repeated", { { OP_ADD, "To", "+14155550111" } }, VERR_INVALID, "To" },
	{ "SequenceNumber repeated", { { OP_ADD, "SequenceNumber", "3" } }, VERR_INVALID,
	  "SequenceNumber" },
	{ "CallDuration repeated", { { OP_SET, "CallDuration", "5" }, { OP_ADD, "CallDuration", "7" } },
	  VERR_INVALID, "CallDuration" },
	{ "SipResponseCode repeated",
	  { { OP_SET, "SipResponseCode", "200" }, { OP_ADD, "SipResponseCode", "487" } },
	  VERR_INVALID, "SipResponseCode" },
	{ "AnsweredBy repeated", { { OP_SET, "AnsweredBy", "human" }, { OP_ADD, "AnsweredBy", "fax" } },
	  VERR_INVALID, "AnsweredBy" },
};

static void test_valid(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof valid / sizeof valid[0]; i++) {
		const struct valid_case *c = &valid[i];
		struct form f = { 0 };
		struct call_event ev;
		char field[64] = "";
		const char *sid;

		print_message("valid: %s\n", c->name);
		build(&f, c->ops);
		assert_int_equal(callback_parse(&f, OURS, &ev, field, sizeof field), VERR_OK);
		sid = form_get(&f, "CallSid");
		assert_string_equal(ev.call_sid, sid);
		assert_string_equal(ev.account_sid, OURS);
		assert_string_equal(ev.status, c->status);
		assert_string_equal(ev.direction, c->direction);
		assert_string_equal(ev.from, c->from);
		assert_string_equal(ev.to, c->to);
		assert_string_equal(ev.answered_by, c->answered_by);
		assert_int_equal(ev.sequence_number, c->seq);
		assert_int_equal(ev.duration_seconds, c->dur);
		assert_int_equal(ev.sip_response_code, c->sip);
		check_payload(&f, ev.payload);
		callback_event_free(&ev);
		assert_null(ev.payload);
		callback_event_free(&ev); /* twice is safe */
		form_free(&f);
	}
}

/* Runs every case, reports each mismatch, and fails once at the end. */
static size_t run_invalid(const struct invalid_case *cases, size_t n, const char *label)
{
	size_t i, failed = 0;

	for (i = 0; i < n; i++) {
		const struct invalid_case *c = &cases[i];
		struct form f = { 0 };
		struct call_event ev;
		char field[64] = "";
		enum verr e;

		build(&f, c->ops);
		e = callback_parse(&f, OURS, &ev, field, sizeof field);
		if (e != c->want || strcmp(field, c->field) != 0 || (e != VERR_OK && ev.payload != NULL)) {
			print_message("FAIL %s: %s: got %s field '%s', want %s field '%s'\n", label,
			              c->name, verr_strerror(e), field, verr_strerror(c->want), c->field);
			failed++;
		}
		callback_event_free(&ev);
		form_free(&f);
	}
	return failed;
}

static void test_invalid(void **state)
{
	(void)state;
	assert_int_equal(run_invalid(invalid, sizeof invalid / sizeof invalid[0], "invalid"), 0);
}

static void test_repeated_typed_params(void **state)
{
	(void)state;
	assert_int_equal(run_invalid(repeated, sizeof repeated / sizeof repeated[0], "repeated"), 0);
}

/* Every required parameter, dropped in turn from a body that has only the
 * required ones, names itself. */
static void test_each_required_missing(void **state)
{
	static const char *const req[][2] = {
		{ "CallSid", SID }, { "AccountSid", OURS }, { "CallStatus", "completed" },
		{ "Direction", "inbound" }, { "From", "+14155550100" }, { "To", "+14155550199" },
	};
	size_t n = sizeof req / sizeof req[0], drop, i;

	(void)state;
	for (drop = 0; drop <= n; drop++) {
		struct form f = { 0 };
		struct call_event ev;
		char field[64] = "";

		for (i = 0; i < n; i++)
			if (i != drop)
				assert_int_equal(form_add(&f, req[i][0], req[i][1]), VERR_OK);
		if (drop == n) {
			assert_int_equal(callback_parse(&f, OURS, &ev, field, sizeof field), VERR_OK);
			assert_string_equal(ev.status, "completed");
			assert_int_equal(ev.sequence_number, -1);
			check_payload(&f, ev.payload);
		} else {
			assert_int_equal(callback_parse(&f, OURS, &ev, field, sizeof field),
			                 VERR_INVALID);
			assert_string_equal(field, req[drop][0]);
		}
		callback_event_free(&ev);
		form_free(&f);
	}
}

/* A real encoded body (as nginx hands it over) through form_parse. */
static void test_encoded_body(void **state)
{
	static const char body[] =
		"Called=%2B14155550199&ToState=CA&CallerCountry=US&Direction=outbound-api"
		"&Timestamp=Tue%2C+31+Aug+2010+20%3A36%3A28+%2B0000&CallbackSource=call-progress-events"
		"&SequenceNumber=3&CallSid=" SID "&To=%2B14155550199&CallStatus=completed"
		"&CallDuration=17&SipResponseCode=200&Duration=1&From=%2B14155550100"
		"&AccountSid=" OURS "&CallerName=Jos%C3%A9+%22Q%22&Tag=a&Tag=b";
	struct form f = { 0 };
	struct call_event ev;
	struct json_object *o, *v;
	char field[64] = "", err[FORM_MAX_ERROR];

	(void)state;
	assert_int_equal(form_parse(body, sizeof body - 1, &f, err, sizeof err), VERR_OK);
	assert_int_equal(callback_parse(&f, OURS, &ev, field, sizeof field), VERR_OK);
	assert_string_equal(ev.status, "completed");
	assert_string_equal(ev.from, "+14155550100");
	assert_int_equal(ev.sequence_number, 3);
	assert_int_equal(ev.duration_seconds, 17);
	assert_int_equal(ev.sip_response_code, 200);
	check_payload(&f, ev.payload);
	o = json_tokener_parse(ev.payload);
	assert_non_null(o);
	assert_true(json_object_object_get_ex(o, "Timestamp", &v));
	assert_string_equal(json_object_get_string(v), "Tue, 31 Aug 2010 20:36:28 +0000");
	assert_true(json_object_object_get_ex(o, "CallerName", &v));
	assert_string_equal(json_object_get_string(v), "Jos\xc3\xa9 \"Q\"");
	assert_true(json_object_object_get_ex(o, "Tag", &v));
	assert_true(json_object_is_type(v, json_type_array));
	assert_int_equal(json_object_array_length(v), 2);
	assert_string_equal(json_object_get_string(json_object_array_get_idx(v, 0)), "a");
	assert_string_equal(json_object_get_string(json_object_array_get_idx(v, 1)), "b");
	json_object_put(o);
	callback_event_free(&ev);
	form_free(&f);
}

/* The most pairs a form can hold, mostly repeats of one key. */
static void test_many_params(void **state)
{
	struct form f = { 0 };
	struct call_event ev;
	char field[64] = "", key[32];
	size_t i;

	(void)state;
	build(&f, (const struct op[MAX_OPS]){ { OP_END, NULL, NULL } });
	for (i = 0; f.n < FORM_MAX_PARAMS; i++) {
		if (i % 2)
			snprintf(key, sizeof key, "K%zu", i);
		else
			snprintf(key, sizeof key, "Rep");
		assert_int_equal(form_add(&f, key, "v"), VERR_OK);
	}
	assert_int_equal(callback_parse(&f, OURS, &ev, field, sizeof field), VERR_OK);
	check_payload(&f, ev.payload);
	callback_event_free(&ev);
	form_free(&f);
}

/* A small field buffer gets a truncated, terminated name; none at all is fine. */
static void test_field_buffer(void **state)
{
	struct form f = { 0 };
	struct call_event ev;
	char field[5];

	(void)state;
	build(&f, (const struct op[MAX_OPS]){ { OP_SET, "SequenceNumber", "x" } });
	memset(field, 'z', sizeof field);
	assert_int_equal(callback_parse(&f, OURS, &ev, field, sizeof field), VERR_INVALID);
	assert_string_equal(field, "Sequ");
	callback_event_free(&ev);
	form_free(&f);
}

static void test_empty_form(void **state)
{
	struct form f = { 0 };
	struct call_event ev;
	char field[64] = "";

	(void)state;
	assert_int_equal(callback_parse(&f, OURS, &ev, field, sizeof field), VERR_INVALID);
	assert_string_equal(field, "CallSid");
	callback_event_free(&ev);
	callback_event_free(NULL);
}

struct pred_case {
	const char *s;
	bool want;
};

static void test_status_valid(void **state)
{
	static const struct pred_case cases[] = {
		{ "queued", true }, { "initiated", true }, { "ringing", true },
		{ "in-progress", true }, { "completed", true }, { "busy", true },
		{ "failed", true }, { "no-answer", true }, { "canceled", true },
		{ "", false }, { "answered", false }, { "cancelled", false },
		{ "RINGING", false }, { "ringing ", false }, { "in-progres", false },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		print_message("status: '%s'\n", cases[i].s);
		assert_int_equal(callback_status_valid(cases[i].s), cases[i].want);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_repeated_typed_params),
		cmocka_unit_test(test_each_required_missing),
		cmocka_unit_test(test_encoded_body),
		cmocka_unit_test(test_many_params),
		cmocka_unit_test(test_field_buffer),
		cmocka_unit_test(test_empty_form),
		cmocka_unit_test(test_status_valid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
