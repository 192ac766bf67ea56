/*
 * The simulator's log records of form parameters (sim/store.c:
 * simstore_params_json): order and repeats kept, SipAuthPassword redacted.
 * The sim sources are compiled in directly (twilio_sim is not a library).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../sim/store.c"

static void test_params_json(void **state)
{
	static const struct {
		const char *body, *want;
	} cases[] = {
		{ "", "[]" },
		{ "To=%2B14155550100", "[[\"To\",\"+14155550100\"]]" },
		{ "B=2&A=1&B=3", "[[\"B\",\"2\"],[\"A\",\"1\"],[\"B\",\"3\"]]" },
		{ "SipAuthUsername=u&SipAuthPassword=hunter2",
		  "[[\"SipAuthUsername\",\"u\"],[\"SipAuthPassword\",\"[redacted]\"]]" },
		{ "sipauthpassword=kept", "[[\"sipauthpassword\",\"kept\"]]" },
		{ "Empty=", "[[\"Empty\",\"\"]]" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct form f = { 0 };
		struct json_object *arr;
		char err[128];

		assert_int_equal(form_parse(cases[i].body, strlen(cases[i].body), &f, err, sizeof err),
		                 VERR_OK);
		arr = simstore_params_json(&f);
		assert_non_null(arr);
		assert_string_equal(json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN |
		                                                             JSON_C_TO_STRING_NOSLASHESCAPE),
		                    cases[i].want);
		json_object_put(arr);
		form_free(&f);
	}
}

static void test_params_json_null(void **state)
{
	struct json_object *arr = simstore_params_json(NULL);

	(void)state;
	assert_non_null(arr);
	assert_string_equal(json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN), "[]");
	json_object_put(arr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_params_json),
		cmocka_unit_test(test_params_json_null),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
