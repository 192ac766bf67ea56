/*
 * The shared counter file (common/counterfile.h) on its own, with a layout
 * of its test's making: counting and summing, histograms, the limits of a
 * file of another magic or layout. The service's use of it, across
 * processes, is tests/unit/metrics_test.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "counterfile.h"

#define NCOUNTERS 9
#define MAGIC 0x74657374u /* "test" */

static const struct counterfile_layout layout = { MAGIC, 1, NCOUNTERS };
static char dir[64], path[128];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "/tmp/counterfile-test-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(path, sizeof path, "%s/counters", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	counterfile_close();
	unlink(path);
	rmdir(dir);
	return 0;
}

static void test_count_and_sum(void **state)
{
	static const long long bounds[] = { 10, 100, 1000 };
	static const struct {
		long long value;
		size_t bucket;
	} observed[] = { { -5, 0 }, { 0, 0 }, { 10, 0 }, { 11, 1 }, { 100, 1 }, { 999, 2 },
		             { 1001, 3 }, { 5000, 3 } };
	uint64_t t[NCOUNTERS], want[NCOUNTERS] = { 0 };
	struct counterfile_error err;
	bool replaced = true;
	size_t i;

	(void)state;
	counterfile_add(0, 1); /* not open: nothing, no crash */
	assert_int_equal(counterfile_sum(t, NCOUNTERS), VERR_IO);
	assert_int_equal(counterfile_slot(), -1);
	assert_int_equal(counterfile_open(path, &layout, &replaced, &err), VERR_OK);
	assert_false(replaced);
	assert_true(counterfile_owned());
	assert_true(counterfile_slot() >= 0);
	assert_int_equal(counterfile_open(path, &layout, NULL, &err), VERR_OK); /* again: no-op */

	counterfile_add(0, 3);
	counterfile_add(0, 4);
	counterfile_add(NCOUNTERS, 1); /* out of range: ignored */
	want[0] = 7;
	/* a histogram in counters 1..5: 4 buckets, then the sum */
	for (i = 0; i < sizeof observed / sizeof observed[0]; i++) {
		counterfile_observe(1, bounds, 3, observed[i].value);
		want[1 + observed[i].bucket]++;
		want[5] += (uint64_t)(observed[i].value > 0 ? observed[i].value : 0);
	}
	assert_int_equal(counterfile_sum(t, NCOUNTERS - 1), VERR_INVALID);
	assert_int_equal(counterfile_sum(t, NCOUNTERS), VERR_OK);
	for (i = 0; i < NCOUNTERS; i++)
		if (t[i] != want[i])
			fail_msg("counter %zu: %llu, want %llu", i, (unsigned long long)t[i],
			         (unsigned long long)want[i]);

	/* reopened: the same slot, the counts kept */
	counterfile_close();
	assert_int_equal(counterfile_slot(), -1);
	assert_int_equal(counterfile_open(path, &layout, NULL, &err), VERR_OK);
	assert_int_equal(counterfile_sum(t, NCOUNTERS), VERR_OK);
	assert_true(t[0] == 7);
}

static void test_other_files(void **state)
{
	const struct counterfile_layout other_magic = { MAGIC + 1, 1, NCOUNTERS };
	const struct counterfile_layout bigger = { MAGIC, 1, NCOUNTERS + 1 };
	const struct counterfile_layout none = { MAGIC, 1, 0 };
	struct counterfile_error err;
	bool replaced = false;
	uint64_t t[NCOUNTERS + 1];
	FILE *f;

	(void)state;
	assert_int_equal(counterfile_open(path, &layout, NULL, &err), VERR_OK);
	counterfile_add(2, 5);
	counterfile_close();
	/* another kind of file at path: left alone */
	assert_int_equal(counterfile_open(path, &other_magic, NULL, &err), VERR_CONFLICT);
	assert_non_null(err.why);
	/* the same magic, another layout: replaced, counters restart */
	assert_int_equal(counterfile_open(path, &bigger, &replaced, &err), VERR_OK);
	assert_true(replaced);
	assert_int_equal(counterfile_sum(t, NCOUNTERS + 1), VERR_OK);
	assert_true(t[2] == 0);
	counterfile_close();

	assert_int_equal(counterfile_open(path, &none, NULL, &err), VERR_INVALID);
	assert_int_equal(counterfile_open("", &layout, NULL, &err), VERR_INVALID);
	assert_int_equal(counterfile_open(NULL, &layout, NULL, &err), VERR_INVALID);
	assert_int_equal(counterfile_open("/nonexistent-dir/x", &layout, NULL, &err), VERR_IO);

	/* a file others may write: refused, with its owner and mode */
	unlink(path);
	f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(counterfile_open(path, &layout, NULL, &err), VERR_FORBIDDEN);
	assert_int_equal(err.mode, 0644);
	assert_int_equal(err.owner_uid, (long long)geteuid());
	assert_int_equal(counterfile_slot(), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_count_and_sum, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_files, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
