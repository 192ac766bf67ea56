#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "clock.h"

static void test_mono(void **state)
{
	long long a = clock_mono_ms(), us = clock_mono_us(), b = clock_mono_ms();

	(void)state;
	assert_true(a > 0);
	assert_true(b >= a);
	/* the same clock at two resolutions */
	assert_true(us / 1000 >= a && us / 1000 <= b);
}

static void test_real(void **state)
{
	long long before = (long long)time(NULL) * 1000, ms = clock_real_ms();
	long long after = (long long)time(NULL) * 1000 + 1000;

	(void)state;
	assert_true(ms >= before && ms < after);
}

static void test_sleep(void **state)
{
	static const struct {
		long long ms, min, max; /* asked for, then the bounds of the measured time */
	} cases[] = {
		{ -5, 0, 500 },
		{ 0, 0, 500 },
		{ 1, 1, 1000 },
		{ 30, 30, 1000 },
		{ 1100, 1100, 3000 }, /* whole seconds go into tv_sec */
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		long long start = clock_mono_ms(), took;

		clock_sleep_ms(cases[i].ms);
		took = clock_mono_ms() - start;
		assert_true(took >= cases[i].min);
		assert_true(took <= cases[i].max);
	}
}

static void on_alarm(int sig)
{
	(void)sig;
}

/* A handled signal ends the sleep early (what SIGTERM relies on). */
static void test_sleep_signal(void **state)
{
	struct sigaction sa;
	struct itimerval it;
	long long start, took;

	(void)state;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_alarm;
	assert_int_equal(sigaction(SIGALRM, &sa, NULL), 0);
	memset(&it, 0, sizeof it);
	it.it_value.tv_usec = 50000;
	assert_int_equal(setitimer(ITIMER_REAL, &it, NULL), 0);
	start = clock_mono_ms();
	clock_sleep_ms(5000);
	took = clock_mono_ms() - start;
	assert_true(took < 2500);
	sa.sa_handler = SIG_DFL;
	sigaction(SIGALRM, &sa, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mono),
		cmocka_unit_test(test_real),
		cmocka_unit_test(test_sleep),
		cmocka_unit_test(test_sleep_signal),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
