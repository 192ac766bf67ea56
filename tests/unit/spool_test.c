#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "spool.h"

struct seen {
	char records[8][64];
	int n;
	int fail_at; /* return VERR_DB_DOWN for this call index, -1 never */
	int reject_at;
	int calls;
};

static enum verr collect(const char *record, size_t len, void *arg)
{
	struct seen *s = arg;
	int i = s->calls++;

	if (i == s->fail_at)
		return VERR_DB_DOWN;
	if (i == s->reject_at)
		return VERR_INVALID;
	assert_true(len < sizeof s->records[0]);
	memcpy(s->records[s->n], record, len);
	s->records[s->n++][len] = '\0';
	return VERR_OK;
}

/* spool_batch_fn: collect() on each record in order; once one fails, the
 * rest of the batch fails the same way (as a lost database would). */
static void collect_batch(struct spool_rec *recs, size_t n, void *arg)
{
	enum verr fail = VERR_OK;
	size_t i;

	for (i = 0; i < n; i++) {
		recs[i].result = fail != VERR_OK ? fail : collect(recs[i].data, recs[i].len, arg);
		if (recs[i].result != VERR_OK && recs[i].result != VERR_INVALID)
			fail = recs[i].result;
	}
}

static void make_dir(char *dir)
{
	assert_non_null(mkdtemp(dir));
	strcat(dir, "/spool"); /* spool_put creates it */
}

static void test_put_replay_in_order(void **state)
{
	char dir[64] = "/tmp/spool-test-XXXXXX";
	struct seen s = { .fail_at = -1, .reject_at = -1 };
	size_t done = 0;

	(void)state;
	make_dir(dir);
	assert_false(spool_pending(dir));
	assert_int_equal(spool_put(dir, "first", 5), VERR_OK);
	assert_int_equal(spool_put(dir, "second\0bin", 10), VERR_OK);
	assert_int_equal(spool_put(dir, "third", 5), VERR_OK);
	assert_true(spool_pending(dir));
	assert_int_equal(spool_replay(dir, collect_batch, &s, 10, &done), VERR_OK);
	assert_int_equal(done, 3);
	assert_string_equal(s.records[0], "first");
	assert_string_equal(s.records[1], "second");
	assert_string_equal(s.records[2], "third");
	assert_false(spool_pending(dir));
}

static void test_failure_keeps_records(void **state)
{
	char dir[64] = "/tmp/spool-test-XXXXXX";
	struct seen s = { .fail_at = 1, .reject_at = -1 };
	size_t done = 0;

	(void)state;
	make_dir(dir);
	spool_put(dir, "a", 1);
	spool_put(dir, "b", 1);
	spool_put(dir, "c", 1);
	/* the database goes away at the second record: it and the rest stay */
	assert_int_equal(spool_replay(dir, collect_batch, &s, 10, &done), VERR_DB_DOWN);
	assert_int_equal(done, 1);
	assert_true(spool_pending(dir));
	memset(&s, 0, sizeof s);
	s.fail_at = -1;
	s.reject_at = -1;
	assert_int_equal(spool_replay(dir, collect_batch, &s, 10, &done), VERR_OK);
	assert_int_equal(done, 2);
	assert_string_equal(s.records[0], "b");
	assert_string_equal(s.records[1], "c");
	assert_false(spool_pending(dir));
}

static void test_poison_set_aside_and_limits(void **state)
{
	char dir[64] = "/tmp/spool-test-XXXXXX", path[128];
	struct seen s = { .fail_at = -1, .reject_at = 0 };
	size_t done = 0;
	static char big[SPOOL_MAX_RECORD + 1];

	(void)state;
	make_dir(dir);
	assert_int_equal(spool_put(dir, big, sizeof big), VERR_TOOBIG);
	spool_put(dir, "poison", 6);
	spool_put(dir, "good", 4);
	assert_int_equal(spool_replay(dir, collect_batch, &s, 10, &done), VERR_OK);
	assert_int_equal(done, 1); /* the poison record is set aside, not counted */
	assert_string_equal(s.records[0], "good");
	assert_false(spool_pending(dir));
	snprintf(path, sizeof path, "%s/rejected", dir);
	assert_int_equal(access(path, F_OK), 0);
	assert_int_equal(spool_put("/proc/no/such/dir", "x", 1), VERR_IO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_replay_in_order),
		cmocka_unit_test(test_failure_keeps_records),
		cmocka_unit_test(test_poison_set_aside_and_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
