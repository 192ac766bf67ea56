/*
 * Unit tests for the simulator's pure logic: scenario table, Calls create
 * parameter validation (against the OAS list), TwiML answer check. The sim
 * sources are compiled into this test directly (twilio_sim is not a library).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../sim/params.c"
#include "../../sim/scenario.c"
#include "../../sim/simerror.c"
#include "../../sim/twimlcheck.c"

static void test_scenarios(void **state)
{
	static const struct {
		const char *to;
		enum simscen_outcome outcome;
		enum simscen_fault fault;
		bool reverse, duplicate;
		long long talk_ms;
	} cases[] = {
		{ "+14155550100", SIMSCEN_ANSWER, SIMFAULT_NONE, false, false, 5000 },
		{ "+14155550101", SIMSCEN_BUSY, SIMFAULT_NONE, false, false, 5000 },
		{ "+14155550102", SIMSCEN_NO_ANSWER, SIMFAULT_NONE, false, false, 5000 },
		{ "+14155550103", SIMSCEN_FAILED, SIMFAULT_NONE, false, false, 5000 },
		{ "+14155550104", SIMSCEN_ANSWER, SIMFAULT_NONE, true, false, 5000 },
		{ "+14155550105", SIMSCEN_ANSWER, SIMFAULT_NONE, false, true, 5000 },
		{ "+14155550106", SIMSCEN_ANSWER, SIMFAULT_429, false, false, 5000 },
		{ "+14155550107", SIMSCEN_ANSWER, SIMFAULT_500, false, false, 5000 },
		{ "+14155550108", SIMSCEN_ANSWER, SIMFAULT_SLOW, false, false, 5000 },
		{ "+14155550109", SIMSCEN_ANSWER, SIMFAULT_NONE, false, false, 600000 },
		{ "+14155550110", SIMSCEN_ANSWER, SIMFAULT_NONE, false, false, 0 },
		{ "+14155550117", SIMSCEN_ANSWER, SIMFAULT_NONE, false, false, 7000 },
		{ "+14155550120", SIMSCEN_ANSWER, SIMFAULT_NONE, false, false, 5000 },
		{ "+441632960961", SIMSCEN_ANSWER, SIMFAULT_NONE, false, false, 5000 },
		{ "+141555501011", SIMSCEN_ANSWER, SIMFAULT_NONE, false, false, 5000 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct simscen s;

		simscen_lookup(cases[i].to, &s);
		assert_int_equal(s.outcome, cases[i].outcome);
		assert_int_equal(s.fault, cases[i].fault);
		assert_int_equal(s.reverse, cases[i].reverse);
		assert_int_equal(s.duplicate, cases[i].duplicate);
		assert_int_equal(s.talk_ms, cases[i].talk_ms);
		assert_non_null(s.name);
	}
}

/* Every documented scenario number must be a number our validation accepts
 * (libphonenumber-valid), so the service can dial it. */
static void test_scenario_numbers_valid(void **state)
{
	const struct simscen_row *tbl;
	size_t n, i;

	(void)state;
	tbl = simscen_table(&n);
	assert_true(n >= 9);
	for (i = 0; i < n; i++) {
		char num[20];
		struct phone_number pn;
		char why[PHONE_MAX_REASON];

		str_copy(num, sizeof num, tbl[i].number);
		if (num[strlen(num) - 1] == 'N')
			num[strlen(num) - 1] = '5';
		assert_int_equal(phone_parse(num, NULL, &pn, why, sizeof why), VERR_OK);
	}
}

struct vcase {
	const char *body;
	int code; /* 0: valid */
};

static void test_validate(void **state)
{
	static const struct vcase cases[] = {
		{ "To=%2B14155550100&From=%2B14155550199&Url=https%3A%2F%2Fx.example%2Fv", 0 },
		{ "To=%2B14155550100&From=%2B14155550199&Twiml=%3CResponse%2F%3E", 0 },
		{ "To=%2B14155550100&From=%2B14155550199&ApplicationSid=AP0123456789abcdef0123456789abcdef", 0 },
		{ "To=%2B14155550100&From=%2B14155550199&Url=http%3A%2F%2F127.0.0.1%3A9%2Fv&StatusCallbackEvent=initiated&StatusCallbackEvent=answered&Timeout=600", 0 },
		{ "To=%2B14155550100&From=%2B15005550006&Twiml=%3CResponse%2F%3E", 0 },
		{ "From=%2B14155550199&Url=https%3A%2F%2Fx%2F", 21201 },
		{ "To=%2B14155550100&Url=https%3A%2F%2Fx%2F", 21213 },
		{ "To=%2B14155550100&From=%2B14155550199", 21205 },
		{ "To=4155550100&From=%2B14155550199&Url=https%3A%2F%2Fx%2F", 21211 },
		{ "To=%2B1415&From=%2B14155550199&Url=https%3A%2F%2Fx%2F", 21211 },
		{ "To=%2B14155550100&From=abc&Url=https%3A%2F%2Fx%2F", 21212 },
		{ "To=%2B14155550100&From=%2B15005550001&Url=https%3A%2F%2Fx%2F", 21212 },
		{ "To=%2B14155550100&From=%2B15005550000&Url=https%3A%2F%2Fx%2F", 21210 },
		{ "To=%2B15005550001&From=%2B14155550199&Url=https%3A%2F%2Fx%2F", 21217 },
		{ "To=%2B15005550002&From=%2B14155550199&Url=https%3A%2F%2Fx%2F", 21214 },
		{ "To=%2B15005550003&From=%2B14155550199&Url=https%3A%2F%2Fx%2F", 21215 },
		{ "To=%2B15005550004&From=%2B14155550199&Url=https%3A%2F%2Fx%2F", 21216 },
		{ "To=%2B14155550100&From=%2B14155550199&Url=https%3A%2F%2Fx%2F&Timeout=0", 21208 },
		{ "To=%2B14155550100&From=%2B14155550199&Url=https%3A%2F%2Fx%2F&Timeout=601", 21208 },
		{ "To=%2B14155550100&From=%2B14155550199&Url=https%3A%2F%2Fx%2F&Method=PUT", 21209 },
		{ "To=%2B14155550100&From=%2B14155550199&Url=https%3A%2F%2Fx%2F&StatusCallbackMethod=get", 21209 },
		{ "To=%2B14155550100&From=%2B14155550199&Url=ftp%3A%2F%2Fx%2F", 21205 },
		{ "To=%2B14155550100&From=%2B14155550199&Url=https%3A%2F%2Fx%2F&SendDigits=12x", 21206 },
		{ "To=%2B14155550100&From=%2B14155550199&Url=https%3A%2F%2Fx%2F&Bogus=1", 20001 },
		{ "To=%2B14155550100&From=%2B14155550199&Url=https%3A%2F%2Fx%2F&url=https%3A%2F%2Fx%2F", 20001 },
		{ "To=%2B14155550100&To=%2B14155550101&From=%2B14155550199&Url=https%3A%2F%2Fx%2F", 21200 },
		{ "To=%2B14155550100&From=%2B14155550199&Url=https%3A%2F%2Fx%2F&StatusCallbackEvent=hangup", 21200 },
		{ "To=%2B14155550100&From=%2B14155550199&Url=https%3A%2F%2Fx%2F&Record=yes", 21200 },
		{ "To=%2B14155550100&From=%2B14155550199&Url=https%3A%2F%2Fx%2F&ApplicationSid=AP12", 21200 },
		{ "To=%2B14155550100&From=%2B14155550199&Url=https%3A%2F%2Fx%2F&StatusCallback=https%3A%2F%2Fa_b%2F", 21200 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct form f = { 0 };
		struct simcall_req req;
		struct simerror err;
		enum verr e;

		assert_int_equal(form_parse(cases[i].body, strlen(cases[i].body), &f, NULL, 0), VERR_OK);
		e = simparams_validate(&f, &req, &err);
		if (cases[i].code == 0) {
			if (e != VERR_OK)
				fail_msg("case %zu refused: %d %s", i, err.code, err.message);
		} else {
			assert_int_equal(e, VERR_INVALID);
			if (err.code != cases[i].code)
				fail_msg("case %zu: code %d, expected %d", i, err.code, cases[i].code);
			assert_int_equal(err.status, 400);
			assert_true(err.message[0] != '\0');
		}
		form_free(&f);
	}
}

static void test_validate_defaults(void **state)
{
	static const char body[] = "To=%2B14155550100&From=%2B14155550199&Url=https%3A%2F%2Fx%2F"
	                           "&StatusCallbackEvent=ringing&StatusCallbackEvent=completed";
	struct form f = { 0 };
	struct simcall_req req;
	struct simerror err;

	(void)state;
	assert_int_equal(form_parse(body, strlen(body), &f, NULL, 0), VERR_OK);
	assert_int_equal(simparams_validate(&f, &req, &err), VERR_OK);
	assert_string_equal(req.to, "+14155550100");
	assert_string_equal(req.method, "POST");
	assert_string_equal(req.status_callback_method, "POST");
	assert_int_equal(req.timeout, 60);
	assert_int_equal(req.events, SIMEV_RINGING | SIMEV_COMPLETED);
	assert_false(req.test_credentials);
	form_free(&f);
}

static void test_twiml(void **state)
{
	static const struct {
		const char *doc;
		bool ok;
		const char *first;
	} cases[] = {
		{ "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response />", true, "" },
		{ "<Response><Say>Hello &amp; bye</Say></Response>", true, "Say" },
		{ "\n<Response>\n  <!-- hi --><Hangup/>\n</Response>\n", true, "Hangup" },
		{ "<Response><Reject reason=\"busy\" /></Response>", true, "Reject" },
		{ "<Response><Dial><Number>+14155550100</Number></Dial></Response>", true, "Dial" },
		{ "<Response><Say><![CDATA[a < b]]></Say></Response>", true, "Say" },
		{ "", false, "" },
		{ "hello", false, "" },
		{ "<Respons/>", false, "" },
		{ "<Response><Say></Response>", false, "" },
		{ "<Response><Say>a & b</Say></Response>", false, "" },
		{ "<Response></Response><Response/>", false, "" },
		{ "<!DOCTYPE x [<!ENTITY a \"b\">]><Response/>", false, "" },
		{ "<Response><Say a=b/></Response>", false, "" },
		{ "{\"ok\":true}", false, "" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct simtwiml tw;
		bool ok = simtwiml_check(cases[i].doc, strlen(cases[i].doc), &tw);

		if (ok != cases[i].ok)
			fail_msg("case %zu: got %d (%s)", i, ok, tw.why);
		if (ok)
			assert_string_equal(tw.first_verb, cases[i].first);
		else
			assert_true(tw.why[0] != '\0');
	}
	{
		struct simtwiml tw;
		const char *d = "<Response><Reject/></Response>";

		assert_true(simtwiml_check(d, strlen(d), &tw));
		assert_string_equal(tw.reject_reason, "rejected");
	}
}

static void test_url_and_format(void **state)
{
	char out[SIMPARAMS_MAX_FORMATTED];

	(void)state;
	assert_true(simparams_url_ok("https://example.com/x?y=1"));
	assert_true(simparams_url_ok("http://127.0.0.1:8443/twilio/webhook#rc=2"));
	assert_true(simparams_url_ok("https://[::1]:8443/"));
	assert_false(simparams_url_ok("https://"));
	assert_false(simparams_url_ok("https://a_b.example/"));
	assert_false(simparams_url_ok("https://user@example.com/"));
	assert_false(simparams_url_ok("https://example.com:0/"));
	assert_false(simparams_url_ok("https://example.com/a b"));
	assert_false(simparams_url_ok("javascript:alert(1)"));
	/* since the check is url_check's: a port's leading zeros are accepted;
	 * a name starting with '-', characters RFC 3986 does not allow in a
	 * path, a bad percent-escape and an address that is not IPv6 are not */
	assert_true(simparams_url_ok("https://example.com:00443/"));
	assert_false(simparams_url_ok("https://-a.example/"));
	assert_false(simparams_url_ok("https://example.com/a<b>"));
	assert_false(simparams_url_ok("https://example.com/a%zz"));
	assert_false(simparams_url_ok("https://[1.2.3.4]/"));
	simparams_format_number("+14155550100", out);
	assert_string_equal(out, "(415) 555-0100");
	simparams_format_number("+442071838750", out);
	assert_string_equal(out, "+442071838750");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scenarios),
		cmocka_unit_test(test_scenario_numbers_valid),
		cmocka_unit_test(test_validate),
		cmocka_unit_test(test_validate_defaults),
		cmocka_unit_test(test_twiml),
		cmocka_unit_test(test_url_and_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
