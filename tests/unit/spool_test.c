#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
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

/* ---- claims are leases ---- */

/* The one entry of dir whose name contains part (the test's spool holds one
 * record); "" when none. */
static void find_entry(const char *dir, const char *part, char *out, size_t outsz)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	assert_non_null(d);
	out[0] = '\0';
	while ((de = readdir(d)) != NULL)
		if (strstr(de->d_name, part) != NULL)
			snprintf(out, outsz, "%s", de->d_name);
	closedir(d);
}

/* Sets dir/name's mtime to ago seconds in the past. */
static void age(const char *dir, const char *name, long ago)
{
	char path[512];
	struct timespec t[2];

	snprintf(path, sizeof path, "%s/%s", dir, name);
	clock_gettime(CLOCK_REALTIME, &t[0]);
	t[0].tv_sec -= ago;
	t[1] = t[0];
	assert_int_equal(utimensat(AT_FDCWD, path, t, 0), 0);
}

static void rename_in(const char *dir, const char *from, const char *to)
{
	char a[512], b[512];

	snprintf(a, sizeof a, "%s/%s", dir, from);
	snprintf(b, sizeof b, "%s/%s", dir, to);
	assert_int_equal(rename(a, b), 0);
}

/* Replays and returns how many records were stored. */
static size_t replay(const char *dir)
{
	struct seen s = { .fail_at = -1, .reject_at = -1 };
	size_t done = 0;

	assert_int_equal(spool_replay(dir, collect_batch, &s, 10, &done), VERR_OK);
	return done;
}

static int ready_fd = -1;

/* A batch callback that reports it holds its claims, then hangs until
 * killed: a live worker in the middle of a replay. */
static void hang_batch(struct spool_rec *recs, size_t n, void *arg)
{
	(void)recs;
	(void)n;
	(void)arg;
	if (write(ready_fd, "x", 1) != 1)
		_exit(3);
	for (;;)
		pause();
}

/* A batch callback that dies: a worker killed in the middle of a replay. */
static void die_batch(struct spool_rec *recs, size_t n, void *arg)
{
	(void)recs;
	(void)n;
	(void)arg;
	_exit(0);
}

/* A child process that claims the spool's one record with fn, then either
 * dies or hangs; returns its pid once the claim exists. */
static pid_t child_claims(const char *dir, spool_batch_fn fn)
{
	int p[2];
	char c;
	pid_t pid;

	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		size_t done;

		close(p[0]);
		ready_fd = p[1];
		alarm(60); /* never outlive a test that failed before killing us */
		spool_replay(dir, fn, NULL, 10, &done);
		_exit(2);
	}
	close(p[1]);
	if (fn == hang_batch)
		assert_int_equal(read(p[0], &c, 1), 1);
	else
		assert_int_equal(waitpid(pid, NULL, 0), pid);
	close(p[0]);
	return pid;
}

/* A worker that died holding a claim: its record waits for the lease to
 * run out, then goes back to the queue and is replayed once. */
static void test_dead_owner_after_lease(void **state)
{
	char dir[64] = "/tmp/spool-test-XXXXXX", name[256], claimed[256];
	struct seen s = { .fail_at = -1, .reject_at = -1 };
	size_t done = 0;
	char host[70] = "", want[80];

	(void)state;
	make_dir(dir);
	assert_int_equal(spool_put(dir, "orphan", 6), VERR_OK);
	find_entry(dir, ".rec", name, sizeof name);
	child_claims(dir, die_batch);
	find_entry(dir, ".rec.", claimed, sizeof claimed);
	assert_true(claimed[0] != '\0');
	/* the claim names the record, a pid, a start time and this host */
	assert_int_equal(strncmp(claimed, name, strlen(name)), 0);
	gethostname(host, sizeof host - 1);
	snprintf(want, sizeof want, "@%s", host);
	assert_non_null(strstr(claimed, want));
	assert_true(spool_pending(dir));
	/* within the lease the claim is left alone, even though its owner is gone */
	assert_int_equal(replay(dir), 0);
	age(dir, claimed, SPOOL_LEASE_S - 30);
	assert_int_equal(replay(dir), 0);
	/* past it, the record is back and replayed */
	age(dir, claimed, SPOOL_LEASE_S + 1);
	assert_int_equal(replay(dir), 0); /* this pass puts it back ... */
	assert_int_equal(spool_replay(dir, collect_batch, &s, 10, &done), VERR_OK);
	assert_int_equal(done, 1); /* ... the next replays it */
	assert_string_equal(s.records[0], "orphan");
	assert_false(spool_pending(dir));
}

/* A live worker's claim is never taken on its own host, however old; a
 * process that only has the same pid (another start time) does not count. */
static void test_live_owner_keeps_claim(void **state)
{
	char dir[64] = "/tmp/spool-test-XXXXXX", claimed[256], reused[300];
	char *at, *dot;
	pid_t pid;

	(void)state;
	make_dir(dir);
	assert_int_equal(spool_put(dir, "busy", 4), VERR_OK);
	pid = child_claims(dir, hang_batch);
	find_entry(dir, ".rec.", claimed, sizeof claimed);
	assert_true(claimed[0] != '\0');
	age(dir, claimed, SPOOL_LEASE_S * 10);
	assert_int_equal(replay(dir), 0);
	assert_int_equal(replay(dir), 0);
	find_entry(dir, ".rec.", reused, sizeof reused);
	assert_string_equal(reused, claimed);
	/* the same pid with another start time: the pid was reused */
	at = strchr(claimed, '@');
	assert_non_null(at);
	dot = at - 1;
	while (*dot != '.')
		dot--;
	snprintf(reused, sizeof reused, "%.*s.1%s", (int)(dot - claimed), claimed, at);
	rename_in(dir, claimed, reused);
	age(dir, reused, SPOOL_LEASE_S + 1);
	assert_int_equal(replay(dir), 0);
	assert_int_equal(replay(dir), 1);
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	assert_false(spool_pending(dir));
}

/* Another host's claim (its pids mean nothing here), and a claim of an
 * older version ("<record>.<pid>"), are trusted for the lease, then taken. */
static void test_foreign_and_old_claims(void **state)
{
	static const char *const suffix[] = {
		".4242.99@other-host.example", /* another host sharing the spool */
		".1",                         /* an older version's claim, pid 1 alive */
		".12.34@",                    /* malformed: the lease alone */
	};
	char dir[64] = "/tmp/spool-test-XXXXXX", name[256], claimed[300];
	size_t i;

	(void)state;
	make_dir(dir);
	for (i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
		assert_int_equal(spool_put(dir, "remote", 6), VERR_OK);
		find_entry(dir, ".rec", name, sizeof name);
		snprintf(claimed, sizeof claimed, "%s%s", name, suffix[i]);
		rename_in(dir, name, claimed);
		age(dir, claimed, 10);
		assert_int_equal(replay(dir), 0);
		age(dir, claimed, SPOOL_LEASE_S + 1);
		assert_int_equal(replay(dir), 0);
		if (replay(dir) != 1)
			fail_msg("%s: not replayed after the lease", suffix[i]);
		assert_false(spool_pending(dir));
	}
}

/* Temporary files a writer left when it died are removed once old; a
 * fresh one (a write in progress) is left alone. */
static void test_stale_temporary_files(void **state)
{
	char dir[64] = "/tmp/spool-test-XXXXXX", path[512];
	int fd;

	(void)state;
	make_dir(dir);
	assert_int_equal(spool_put(dir, "x", 1), VERR_OK);
	assert_int_equal(replay(dir), 1);
	snprintf(path, sizeof path, "%s/.tmp-123-old.rec", dir);
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	close(fd);
	age(dir, ".tmp-123-old.rec", SPOOL_TMP_MAX_AGE_S + 1);
	snprintf(path, sizeof path, "%s/.tmp-124-new.rec", dir);
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_true(spool_pending(dir)); /* so a replay pass comes to clean up */
	assert_int_equal(replay(dir), 0);
	snprintf(path, sizeof path, "%s/.tmp-123-old.rec", dir);
	assert_int_equal(access(path, F_OK), -1);
	snprintf(path, sizeof path, "%s/.tmp-124-new.rec", dir);
	assert_int_equal(access(path, F_OK), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_replay_in_order),
		cmocka_unit_test(test_failure_keeps_records),
		cmocka_unit_test(test_poison_set_aside_and_limits),
		cmocka_unit_test(test_dead_owner_after_lease),
		cmocka_unit_test(test_live_owner_keeps_claim),
		cmocka_unit_test(test_foreign_and_old_claims),
		cmocka_unit_test(test_stale_temporary_files),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
