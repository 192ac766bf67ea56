/*
 * The API's call object as db.h DB_CALL_OBJECT defines it, expanded the two
 * ways db.c and record.c expand it: the json_build_object arguments of the
 * statements, and the object of a call the database has not taken. Field
 * order, nulls and timestamp format are what API clients rely on
 * (docs/API.md).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "db.h"

#define SQL_FIELD(key, sql, value) "'" key "', " sql

static void test_sql(void **state)
{
	static const char want[] =
		"'sid', c.call_sid, 'account_sid', c.account_sid, 'status', c.status,"
		" 'direction', c.direction, 'from', c.from_number, 'to', c.to_number,"
		" 'sequence_number', c.sequence_number, 'answered_by', c.answered_by,"
		" 'duration_seconds', c.duration_seconds, 'sip_response_code', c.sip_response_code,"
		" 'created_at', to_char((c.created_at) AT TIME ZONE 'UTC',"
		" 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),"
		" 'updated_at', to_char((c.updated_at) AT TIME ZONE 'UTC',"
		" 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')";

	(void)state;
	assert_string_equal(DB_CALL_OBJECT(SQL_FIELD, ", "), want);
}

static void add(struct json_object *o, const char *key, const char *value)
{
	json_object_object_add(o, key, value != NULL ? json_object_new_string(value) : NULL);
}

static void test_c(void **state)
{
	static const struct {
		struct db_call call;
		const char *want;
	} cases[] = {
		{ { "CA00112233445566778899aabbccddeeff", "AC0123456789abcdef0123456789abcdef",
		    "outbound-api", "+14155550100", "+14155550199", "queued", "ops" },
		  "{\"sid\":\"CA00112233445566778899aabbccddeeff\","
		  "\"account_sid\":\"AC0123456789abcdef0123456789abcdef\",\"status\":\"queued\","
		  "\"direction\":\"outbound-api\",\"from\":\"+14155550100\",\"to\":\"+14155550199\","
		  "\"sequence_number\":null,\"answered_by\":null,\"duration_seconds\":null,"
		  "\"sip_response_code\":null,\"created_at\":\"2026-11-30T07:50:54.123456Z\","
		  "\"updated_at\":\"2026-11-30T07:50:54.123456Z\"}" },
		/* api_key_name is not part of the object */
		{ { "CAffffffffffffffffffffffffffffffff", "ACffffffffffffffffffffffffffffffff",
		    "inbound", "client:alice", "+442071838750", "ringing", NULL },
		  "{\"sid\":\"CAffffffffffffffffffffffffffffffff\","
		  "\"account_sid\":\"ACffffffffffffffffffffffffffffffff\",\"status\":\"ringing\","
		  "\"direction\":\"inbound\",\"from\":\"client:alice\",\"to\":\"+442071838750\","
		  "\"sequence_number\":null,\"answered_by\":null,\"duration_seconds\":null,"
		  "\"sip_response_code\":null,\"created_at\":\"2026-11-30T07:50:54.123456Z\","
		  "\"updated_at\":\"2026-11-30T07:50:54.123456Z\"}" },
	};
	static const char now[] = "2026-11-30T07:50:54.123456Z";
	size_t i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct db_call *c = &cases[i].call;
		struct json_object *o = json_object_new_object();

		assert_non_null(o);
#define C_FIELD(key, sql, value) add(o, key, value);
		DB_CALL_OBJECT(C_FIELD, )
#undef C_FIELD
		assert_string_equal(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
		                    cases[i].want);
		json_object_put(o);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sql),
		cmocka_unit_test(test_c),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
