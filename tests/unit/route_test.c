#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "route.h"

#define LONG_SID "CA0123456789abcdef0123456789abcdef0123" /* 38 */
#define TOO_LONG_SID LONG_SID "45"                       /* 40 */

/* What the handlers route and the metrics label: each path's route and the
 * sid segment it carries. */
static void test_match(void **state)
{
	static const struct {
		const char *path;
		enum route want;
		const char *sid;
	} cases[] = {
		{ "/call", ROUTE_CALL, "" },
		{ "/calls", ROUTE_CALLS, "" },
		{ "/calls/CA1", ROUTE_CALL_ONE, "CA1" },
		{ "/calls/", ROUTE_CALL_ONE, "" },
		{ "/calls/" LONG_SID "9", ROUTE_CALL_ONE, LONG_SID "9" },
		{ "/calls/" TOO_LONG_SID, ROUTE_CALL_ONE, "" },
		{ "/calls/CA1/cancel", ROUTE_CALL_CANCEL, "CA1" },
		{ "/calls/CA2/hangup", ROUTE_CALL_HANGUP, "CA2" },
		{ "/calls/" TOO_LONG_SID "/hangup", ROUTE_CALL_HANGUP, "" },
		{ "/recordings/RE1", ROUTE_RECORDING, "RE1" },
		{ "/recordings/", ROUTE_RECORDING, "" },
		{ "/twilio/webhook", ROUTE_TWILIO_WEBHOOK, "" },
		{ "/twilio/voice", ROUTE_TWILIO_VOICE, "" },
		{ "/twilio/recording", ROUTE_TWILIO_RECORDING, "" },
		{ "/healthz", ROUTE_HEALTHZ, "" },
		{ "/readyz", ROUTE_READYZ, "" },
		{ "/metrics", ROUTE_METRICS, "" },
		/* no such endpoint */
		{ "", ROUTE_OTHER, "" },
		{ "/", ROUTE_OTHER, "" },
		{ "/call/", ROUTE_OTHER, "" },
		{ "/callsx", ROUTE_OTHER, "" },
		{ "/calls/CA1/stop", ROUTE_OTHER, "" },
		{ "/calls/CA1/cancel/", ROUTE_OTHER, "" },
		{ "/calls/CA1/hangupx", ROUTE_OTHER, "" },
		{ "/recordings", ROUTE_OTHER, "" },
		{ "/recordings/RE1/x", ROUTE_OTHER, "" },
		{ "/twilio/webhook/", ROUTE_OTHER, "" },
		{ "/metrics?x", ROUTE_OTHER, "" },
		{ "/Metrics", ROUTE_OTHER, "" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char sid[ROUTE_MAX_SID] = "junk";

		if (route_match(cases[i].path, sid) != cases[i].want)
			fail_msg("%s: route %d, want %d", cases[i].path, route_match(cases[i].path, NULL),
			         cases[i].want);
		assert_string_equal(sid, cases[i].sid);
		assert_int_equal(route_match(cases[i].path, NULL), cases[i].want);
	}
	assert_int_equal(route_match(NULL, NULL), ROUTE_OTHER);
}

/* The names are the metrics' route label values, in /metrics order. */
static void test_names(void **state)
{
	static const char *const want[] = { "/call", "/calls", "/calls/{sid}",
		"/calls/{sid}/cancel", "/calls/{sid}/hangup", "/recordings/{sid}", "/twilio/webhook",
		"/twilio/voice", "/twilio/recording", "/healthz", "/readyz", "/metrics", "other" };
	size_t i;

	(void)state;
	assert_int_equal(sizeof want / sizeof want[0], ROUTE_COUNT);
	for (i = 0; i < ROUTE_COUNT; i++)
		assert_string_equal(route_name((enum route)i), want[i]);
	assert_string_equal(route_name((enum route)99), "other");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_match),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
