#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "metrics.h"

#define MAX_SAMPLES 4096
#define MAX_FAMILIES 32
#define CHILD_COUNTS 20000

/* One parsed exposition: every sample line as "name{labels}" and value. */
struct sample {
	char series[512];
	char name[96];
	double value;
};
struct expo {
	struct sample s[MAX_SAMPLES];
	size_t n;
	char family[MAX_FAMILIES][96];
	char type[MAX_FAMILIES][16];
	size_t nfam;
};

static struct expo ex;

/* A fresh temporary directory; the metrics file goes inside it. */
static void temp_path(char *path, size_t sz)
{
	char dir[] = "/tmp/metrics-test-XXXXXX";

	assert_non_null(mkdtemp(dir));
	snprintf(path, sz, "%s/workers.shm", dir);
}

static void remove_path(const char *path)
{
	char dir[256];

	unlink(path);
	snprintf(dir, sizeof dir, "%s", path);
	*strrchr(dir, '/') = '\0';
	rmdir(dir);
}

static bool is_name_char(char c, bool first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
	       (!first && c >= '0' && c <= '9');
}

static ssize_t family_index(const char *name)
{
	size_t i;

	for (i = 0; i < ex.nfam; i++)
		if (strcmp(ex.family[i], name) == 0)
			return (ssize_t)i;
	return -1;
}

/* The family a sample belongs to: histogram samples drop their suffix. */
static ssize_t sample_family(const char *name)
{
	static const char *const suffixes[] = { "_bucket", "_sum", "_count" };
	char base[96];
	size_t i, n = strlen(name);
	ssize_t f = family_index(name);

	if (f >= 0)
		return f;
	for (i = 0; i < 3; i++) {
		size_t k = strlen(suffixes[i]);

		if (n > k && strcmp(name + n - k, suffixes[i]) == 0) {
			snprintf(base, sizeof base, "%.*s", (int)(n - k), name);
			f = family_index(base);
			if (f >= 0 && strcmp(ex.type[f], "histogram") == 0)
				return f;
		}
	}
	return -1;
}

/*
 * Parses text exposition format 0.0.4 strictly enough for our output: each
 * family has one HELP then one TYPE before its samples; each sample is
 * name{label="value",...} value, or name value; counters end in _total.
 */
static void parse(const char *text)
{
	const char *p = text;
	int line = 0;

	memset(&ex, 0, sizeof ex);
	while (*p != '\0') {
		const char *eol = strchr(p, '\n');
		char l[512], name[96], *q, *end;
		size_t len, i = 0;
		ssize_t f;

		line++;
		if (eol == NULL)
			fail_msg("line %d has no newline", line);
		len = (size_t)(eol - p);
		assert_true(len < sizeof l);
		memcpy(l, p, len);
		l[len] = '\0';
		p = eol + 1;
		if (strncmp(l, "# HELP ", 7) == 0) {
			q = l + 7;
			end = strchr(q, ' ');
			assert_non_null(end);
			*end = '\0';
			if (family_index(q) >= 0)
				fail_msg("HELP for %s twice", q);
			assert_true(ex.nfam < MAX_FAMILIES);
			snprintf(ex.family[ex.nfam++], sizeof ex.family[0], "%s", q);
			continue;
		}
		if (strncmp(l, "# TYPE ", 7) == 0) {
			q = l + 7;
			end = strchr(q, ' ');
			assert_non_null(end);
			*end = '\0';
			f = family_index(q);
			if (f < 0 || f != (ssize_t)ex.nfam - 1 || ex.type[f][0] != '\0')
				fail_msg("TYPE for %s without its HELP just before, or twice", q);
			if (strcmp(end + 1, "counter") != 0 && strcmp(end + 1, "histogram") != 0)
				fail_msg("unexpected type %s", end + 1);
			snprintf(ex.type[f], sizeof ex.type[0], "%s", end + 1);
			if (strcmp(ex.type[f], "counter") == 0 &&
			    (strlen(q) < 6 || strcmp(q + strlen(q) - 6, "_total") != 0))
				fail_msg("counter %s does not end in _total", q);
			continue;
		}
		if (l[0] == '#')
			fail_msg("unexpected comment: %s", l);
		/* name */
		while (is_name_char(l[i], i == 0))
			i++;
		if (i == 0 || i >= sizeof name)
			fail_msg("line %d: bad metric name: %s", line, l);
		memcpy(name, l, i);
		name[i] = '\0';
		/* labels: {k="v",k="v"} */
		if (l[i] == '{') {
			i++;
			for (;;) {
				size_t k = i;

				while (is_name_char(l[i], i == k))
					i++;
				if (i == k || l[i] != '=' || l[i + 1] != '"')
					fail_msg("line %d: bad label: %s", line, l);
				i += 2;
				while (l[i] != '"' && l[i] != '\0' && l[i] != '\\')
					i++;
				if (l[i] != '"')
					fail_msg("line %d: unterminated label value: %s", line, l);
				i++;
				if (l[i] == ',') {
					i++;
					continue;
				}
				if (l[i] != '}')
					fail_msg("line %d: bad label list: %s", line, l);
				i++;
				break;
			}
		}
		if (l[i] != ' ')
			fail_msg("line %d: no single space before the value: %s", line, l);
		l[i] = '\0';
		assert_true(ex.n < MAX_SAMPLES);
		snprintf(ex.s[ex.n].series, sizeof ex.s[0].series, "%s", l);
		snprintf(ex.s[ex.n].name, sizeof ex.s[0].name, "%s", name);
		ex.s[ex.n].value = strtod(l + i + 1, &end);
		if (end == l + i + 1 || *end != '\0')
			fail_msg("line %d: bad value: %s", line, l + i + 1);
		f = sample_family(name);
		if (f < 0 || f != (ssize_t)ex.nfam - 1 || ex.type[f][0] == '\0')
			fail_msg("line %d: sample %s outside its family's HELP/TYPE block", line, name);
		ex.n++;
	}
}

/* The value of one series, -1 when absent. */
static double value(const char *series)
{
	size_t i;

	for (i = 0; i < ex.n; i++)
		if (strcmp(ex.s[i].series, series) == 0)
			return ex.s[i].value;
	return -1;
}

/* Every histogram: buckets non-decreasing with le ascending, ending in
 * le="+Inf" equal to _count, and _sum present. */
static void check_histograms(void)
{
	size_t i;

	for (i = 0; i < ex.n; i++) {
		const char *le;
		char key[512], want[600];
		double prev = -1, inf = -1;
		size_t j;

		if (strstr(ex.s[i].name, "_count") == NULL)
			continue;
		/* key: the labels of this _count series, e.g. pool="call",route="/call" */
		snprintf(key, sizeof key, "%s", strchr(ex.s[i].series, '{') + 1);
		key[strlen(key) - 1] = '\0';
		for (j = 0; j < ex.n; j++) {
			if (strstr(ex.s[j].name, "_bucket") == NULL)
				continue;
			snprintf(want, sizeof want, "{%s,le=", key);
			if (strstr(ex.s[j].series, want) == NULL)
				continue;
			if (ex.s[j].value < prev)
				fail_msg("bucket %s decreases", ex.s[j].series);
			prev = ex.s[j].value;
			le = strstr(ex.s[j].series, "le=\"") + 4;
			if (strncmp(le, "+Inf\"", 5) == 0)
				inf = ex.s[j].value;
			else if (inf >= 0)
				fail_msg("bucket %s after +Inf", ex.s[j].series);
		}
		if (inf != ex.s[i].value)
			fail_msg("%s: +Inf bucket %g != count %g", key, inf, ex.s[i].value);
		snprintf(want, sizeof want, "voice_http_request_duration_seconds_sum{%s}", key);
		assert_true(value(want) >= 0);
	}
}

static void render_and_parse(void)
{
	struct buf b;

	buf_init(&b, METRICS_MAX_TEXT);
	assert_int_equal(metrics_render(&b), VERR_OK);
	parse(buf_str(&b));
	check_histograms();
	buf_free(&b);
}

/* Child: waits until start_fd closes, counts CHILD_COUNTS of several
 * metrics, says so on done_fd and stays alive (holding its slot) until
 * exit_fd closes. Exits 100 + its slot, or 1. Never returns. */
static void child_count(const char *path, int start_fd, int done_fd, int exit_fd)
{
	char c = 'x';
	int i;

	if (read(start_fd, &c, 1) < 0)
		_exit(1);
	if (metrics_init(path, "call") != VERR_OK)
		_exit(1);
	for (i = 0; i < CHILD_COUNTS; i++) {
		metrics_count_request("call", "/call", 201, 1000 * (i % 40));
		metrics_count_twilio(METRICS_TWILIO_CREATED, 0);
		metrics_count_spool(METRICS_SPOOL_SPOOLED);
	}
	if (write(done_fd, &c, 1) != 1 || read(exit_fd, &c, 1) < 0)
		_exit(1);
	_exit(100 + metrics_slot());
}

static int wait_exit(pid_t pid)
{
	int st;

	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

/* Several processes create (race on O_EXCL) and fill one file at once. */
static void test_processes_sum_exactly(void **state)
{
	enum { NCHILD = 4 };
	char path[256];
	pid_t pids[NCHILD];
	int start[2], done[2], quit[2], slots[NCHILD], i, j;
	char series[256], c;

	(void)state;
	temp_path(path, sizeof path);
	assert_int_equal(pipe(start), 0);
	assert_int_equal(pipe(done), 0);
	assert_int_equal(pipe(quit), 0);
	for (i = 0; i < NCHILD; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			close(start[1]);
			close(quit[1]);
			child_count(path, start[0], done[1], quit[0]);
		}
	}
	close(start[0]);
	close(done[1]);
	close(quit[0]);
	close(start[1]); /* every child's read returns now: they start together */
	for (i = 0; i < NCHILD; i++)
		assert_int_equal(read(done[0], &c, 1), 1); /* all counted, all alive */
	close(done[0]);
	close(quit[1]);
	for (i = 0; i < NCHILD; i++) {
		slots[i] = wait_exit(pids[i]) - 100;
		assert_true(slots[i] >= 0 && slots[i] < METRICS_MAX_SLOTS);
		for (j = 0; j < i; j++)
			assert_int_not_equal(slots[i], slots[j]);
	}

	assert_int_equal(metrics_init(path, "webhook"), VERR_OK);
	render_and_parse();
	snprintf(series, sizeof series,
	         "voice_http_requests_total{pool=\"call\",route=\"/call\",status=\"201\"}");
	assert_true(value(series) == NCHILD * CHILD_COUNTS);
	assert_true(value("voice_http_request_duration_seconds_count{pool=\"call\",route=\"/call\"}") ==
	            NCHILD * CHILD_COUNTS);
	/* latencies 0..39 ms: 0-5 ms is 6 of every 40 */
	assert_true(value("voice_http_request_duration_seconds_bucket{pool=\"call\",route=\"/call\","
	                  "le=\"0.005\"}") == NCHILD * CHILD_COUNTS / 40 * 6);
	assert_true(value("voice_twilio_requests_total{outcome=\"created\",code=\"none\"}") ==
	            NCHILD * CHILD_COUNTS);
	assert_true(value("voice_spool_records_total{action=\"spooled\"}") == NCHILD * CHILD_COUNTS);
	assert_true(value("voice_worker_starts_total{pool=\"call\"}") == NCHILD);
	assert_true(value("voice_worker_starts_total{pool=\"webhook\"}") == 1);
	metrics_close();
	remove_path(path);
}

/* Child: counts n requests and dies without freeing its slot. */
static void child_crash(const char *path, int n)
{
	int i;

	if (metrics_init(path, "webhook") != VERR_OK)
		_exit(1);
	for (i = 0; i < n; i++)
		metrics_count_request("webhook", "/twilio/webhook", 204, 2000);
	metrics_count_db_error(VERR_DB_DOWN);
	_exit(100 + metrics_slot());
}

static void test_dead_slot_reused_counts_kept(void **state)
{
	char path[256];
	pid_t a, b;
	int slot_a, slot_b;

	(void)state;
	temp_path(path, sizeof path);
	a = fork();
	assert_true(a >= 0);
	if (a == 0)
		child_crash(path, 7);
	slot_a = wait_exit(a) - 100; /* reaped: kill(a, 0) is ESRCH now */
	b = fork();
	assert_true(b >= 0);
	if (b == 0)
		child_crash(path, 5);
	slot_b = wait_exit(b) - 100;
	assert_true(slot_a >= 0);
	assert_int_equal(slot_b, slot_a);

	assert_int_equal(metrics_init(path, "call"), VERR_OK);
	assert_int_equal(metrics_slot(), slot_a); /* b is dead too */
	/* a live process's slot is not taken, not even by its forked child */
	b = fork();
	assert_true(b >= 0);
	if (b == 0)
		child_crash(path, 1);
	slot_b = wait_exit(b) - 100;
	assert_true(slot_b >= 0);
	assert_int_not_equal(slot_b, slot_a);
	render_and_parse();
	assert_true(value("voice_http_requests_total{pool=\"webhook\",route=\"/twilio/webhook\","
	                  "status=\"204\"}") == 13);
	assert_true(value("voice_db_errors_total{kind=\"unavailable\"}") == 3);
	assert_true(value("voice_worker_starts_total{pool=\"webhook\"}") == 3);
	assert_true(value("voice_worker_starts_total{pool=\"call\"}") == 1);
	metrics_close();
	remove_path(path);
}

/* Every label value of every family, so the output's shape and size are
 * checked at their largest. */
static void test_exposition_parses(void **state)
{
	static const char *const pools[] = { "call", "webhook", "sim" };
	static const char *const paths[] = { "/call", "/calls", "/calls/CA0123", "/twilio/webhook",
		"/twilio/voice", "/healthz", "/readyz", "/metrics", "/nope" };
	static const int statuses[] = { 200, 201, 204, 400, 401, 403, 404, 405, 409, 413, 415, 422,
		429, 500, 502, 503, 504, 418 };
	static const long long usecs[] = { 0, 5000, 5001, 9000, 20000, 40000, 99000, 200000, 400000,
		900000, 2000000, 4000000, 9000000, 29000000, 31000000 };
	static const int codes[] = { 0, 20003, 20429, 21210, 21211, 21212, 21214, 21215, 21216,
		21217, 30001 };
	static const char *const finals[] = { "completed", "busy", "failed", "no-answer", "canceled",
		"ringing" };
	char path[256];
	struct buf b;
	size_t p, r, s, u;

	(void)state;
	temp_path(path, sizeof path);
	assert_int_equal(metrics_init(path, "call"), VERR_OK);
	assert_int_equal(metrics_init(path, "call"), VERR_OK); /* again: no second slot */
	for (p = 0; p < 3; p++)
		for (r = 0; r < 9; r++) {
			for (s = 0; s < sizeof statuses / sizeof statuses[0]; s++)
				metrics_count_request(pools[p], paths[r], statuses[s], 1000);
			for (u = 0; u < sizeof usecs / sizeof usecs[0]; u++)
				metrics_count_request(pools[p], paths[r], 200, usecs[u]);
		}
	for (s = 0; s < 4; s++)
		for (u = 0; u < sizeof codes / sizeof codes[0]; u++)
			metrics_count_twilio((enum metrics_twilio)s, codes[u]);
	metrics_count_sig_failure(METRICS_SIG_MISSING);
	metrics_count_sig_failure(METRICS_SIG_MISMATCH);
	metrics_count_sig_failure(METRICS_SIG_MISMATCH);
	metrics_count_db_error(VERR_DB);
	metrics_count_db_error(VERR_NOTFOUND); /* not a database error: ignored */
	metrics_count_db_reconnect();
	for (s = 0; s < sizeof finals / sizeof finals[0]; s++)
		metrics_count_call_final(finals[s]);
	metrics_count_spool(METRICS_SPOOL_REPLAYED);
	metrics_count_spool(METRICS_SPOOL_REJECTED);
	for (s = 0; s <= METRICS_RECONCILE_RATE_LIMITED; s++)
		metrics_count_reconcile((enum metrics_reconcile)s);
	metrics_count_reconcile(METRICS_RECONCILE_LINKED);
	metrics_count_reconcile((enum metrics_reconcile)99); /* not an outcome: ignored */
	metrics_count_apikey(true);
	metrics_count_apikey(true);
	metrics_count_apikey(false);

	render_and_parse();
	/* every family, with HELP and TYPE (checked once each by parse) */
	assert_int_equal(ex.nfam, 11);
	assert_true(value("voice_api_key_lookups_total{source=\"remembered\"}") == 2);
	assert_true(value("voice_api_key_lookups_total{source=\"database\"}") == 1);
	assert_true(value("voice_reconcile_total{outcome=\"linked\"}") == 2);
	assert_true(value("voice_reconcile_total{outcome=\"rate_limited\"}") == 1);
	assert_true(value("voice_http_requests_total{pool=\"other\",route=\"/calls/{sid}\","
	                  "status=\"other\"}") == 1);
	assert_true(value("voice_http_requests_total{pool=\"call\",route=\"other\",status=\"200\"}") ==
	            1 + 15);
	assert_true(value("voice_http_request_duration_seconds_bucket{pool=\"webhook\","
	                  "route=\"/metrics\",le=\"0.005\"}") == 18 + 2);
	assert_true(value("voice_http_request_duration_seconds_bucket{pool=\"webhook\","
	                  "route=\"/metrics\",le=\"30\"}") == 18 + 14);
	assert_true(value("voice_http_request_duration_seconds_bucket{pool=\"webhook\","
	                  "route=\"/metrics\",le=\"+Inf\"}") == 18 + 15);
	assert_true(value("voice_http_request_duration_seconds_sum{pool=\"webhook\","
	                  "route=\"/metrics\"}") > 75.0);
	assert_true(value("voice_twilio_requests_total{outcome=\"timeout\",code=\"other\"}") == 1);
	assert_true(value("voice_twilio_requests_total{outcome=\"twilio_error\",code=\"21211\"}") == 1);
	assert_true(value("voice_webhook_signature_failures_total{reason=\"mismatch\"}") == 2);
	assert_true(value("voice_db_errors_total{kind=\"error\"}") == 1);
	assert_true(value("voice_db_errors_total{kind=\"unavailable\"}") == 0);
	assert_true(value("voice_db_reconnects_total") == 1);
	assert_true(value("voice_calls_final_total{status=\"no-answer\"}") == 1);
	assert_true(value("voice_calls_final_total{status=\"ringing\"}") == -1);
	assert_true(value("voice_spool_records_total{action=\"spooled\"}") == 0);
	assert_true(value("voice_worker_starts_total{pool=\"call\"}") == 1);
	assert_true(metrics_status_final("canceled"));
	assert_false(metrics_status_final("in-progress"));

	/* an untouched file: every zero series is there, none for requests */
	metrics_close();
	remove_path(path);
	temp_path(path, sizeof path);
	assert_int_equal(metrics_init(path, "webhook"), VERR_OK);
	buf_init(&b, METRICS_MAX_TEXT);
	assert_int_equal(metrics_render(&b), VERR_OK);
	parse(buf_str(&b));
	assert_true(value("voice_twilio_requests_total{outcome=\"unavailable\",code=\"none\"}") == 0);
	assert_true(value("voice_calls_final_total{status=\"completed\"}") == 0);
	assert_true(value("voice_worker_starts_total{pool=\"webhook\"}") == 1);
	buf_free(&b);
	metrics_close();
	remove_path(path);
}

/* Call control, recordings and the recording callback have routes of their
 * own; another path under a call is "other". */
static void test_control_routes(void **state)
{
	char path[METRICS_MAX_PATH];

	(void)state;
	temp_path(path, sizeof path);
	assert_int_equal(metrics_init(path, "call"), VERR_OK);
	metrics_count_request("call", "/calls/CA1/cancel", 200, 1000);
	metrics_count_request("call", "/calls/CA1/hangup", 200, 1000);
	metrics_count_request("call", "/calls/CA2/hangup", 200, 1000);
	metrics_count_request("call", "/calls/CA1", 200, 1000);
	metrics_count_request("call", "/recordings/RE1", 404, 1000);
	metrics_count_request("webhook", "/twilio/recording", 204, 1000);
	metrics_count_request("call", "/calls/CA1/stop", 404, 1000);
	render_and_parse();
	assert_true(value("voice_http_requests_total{pool=\"call\",route=\"/calls/{sid}/cancel\","
	                  "status=\"200\"}") == 1);
	assert_true(value("voice_http_requests_total{pool=\"call\",route=\"/calls/{sid}/hangup\","
	                  "status=\"200\"}") == 2);
	assert_true(value("voice_http_requests_total{pool=\"call\",route=\"/calls/{sid}\","
	                  "status=\"200\"}") == 1);
	assert_true(value("voice_http_requests_total{pool=\"call\",route=\"/recordings/{sid}\","
	                  "status=\"404\"}") == 1);
	assert_true(value("voice_http_requests_total{pool=\"webhook\",route=\"/twilio/recording\","
	                  "status=\"204\"}") == 1);
	assert_true(value("voice_http_requests_total{pool=\"call\",route=\"other\","
	                  "status=\"404\"}") == 1);
	metrics_close();
	remove_path(path);
}

static void test_route(void **state)
{
	struct http_req req;
	struct http_resp resp;
	char path[256];

	(void)state;
	temp_path(path, sizeof path);
	assert_int_equal(metrics_init(path, "call"), VERR_OK);
	memset(&req, 0, sizeof req);
	req.method = "GET";
	req.path = "/calls";
	http_resp_init(&resp);
	assert_false(metrics_route(&req, NULL, &resp));
	req.path = "/metrics";
	assert_true(metrics_route(&req, NULL, &resp));
	assert_int_equal(resp.status, 200);
	assert_string_equal(resp.content_type, "text/plain; version=0.0.4; charset=utf-8");
	parse(buf_str(&resp.body));
	http_resp_free(&resp);

	http_resp_init(&resp);
	req.method = "POST";
	assert_true(metrics_route(&req, NULL, &resp));
	assert_int_equal(resp.status, 405);
	http_resp_free(&resp);
	metrics_close();
	remove_path(path);
}

/* A file whose creator died before sizing it, or one of an older build's
 * layout, is set up again instead of disabling metrics for good. */
static void test_repairs_file(void **state)
{
	uint32_t old[16] = { METRICS_MAGIC, 0 /* version 0 */, 4, 4 };
	char path[256];
	FILE *f;

	(void)state;
	temp_path(path, sizeof path);
	f = fopen(path, "w"); /* empty: a creator that died right after open */
	assert_non_null(f);
	fclose(f);
	assert_int_equal(chmod(path, 0600), 0); /* as metrics_init creates it */
	assert_int_equal(metrics_init(path, "call"), VERR_OK);
	metrics_count_spool(METRICS_SPOOL_REJECTED);
	render_and_parse();
	assert_true(value("voice_spool_records_total{action=\"rejected\"}") == 1);
	metrics_close();
	unlink(path);

	f = fopen(path, "w"); /* our magic, another version */
	assert_non_null(f);
	assert_int_equal(fwrite(old, sizeof old, 1, f), 1);
	fclose(f);
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(metrics_init(path, "webhook"), VERR_OK);
	render_and_parse();
	assert_true(value("voice_worker_starts_total{pool=\"webhook\"}") == 1);
	metrics_close();
	remove_path(path);
}

/* Metrics that cannot be set up are off: counting does nothing, /metrics
 * answers 503, nothing fails. */
static void test_disabled(void **state)
{
	char path[256], bad[300];
	struct http_req req;
	struct http_resp resp;
	struct buf b;
	FILE *f;

	(void)state;
	assert_int_equal(metrics_init("/nonexistent-dir/voice/workers.shm", "call"), VERR_IO);
	assert_int_equal(metrics_slot(), -1);
	temp_path(path, sizeof path);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "%0100d", 7); /* larger than a header, but not ours */
	fclose(f);
	assert_int_equal(chmod(path, 0600), 0);
	/* a path under a regular file cannot be created */
	snprintf(bad, sizeof bad, "%s/workers.shm", path);
	assert_int_equal(metrics_init(bad, "call"), VERR_IO);
	/* an existing file that is not ours is left alone */
	assert_int_equal(metrics_init(path, "call"), VERR_CONFLICT);
	assert_int_equal(metrics_init("", "call"), VERR_INVALID);
	assert_int_equal(metrics_init(NULL, "call"), VERR_INVALID);
	assert_int_equal(metrics_slot(), -1);

	metrics_count_request("call", "/call", 201, 1000);
	metrics_count_twilio(METRICS_TWILIO_TIMEOUT, 0);
	metrics_count_sig_failure(METRICS_SIG_MISSING);
	metrics_count_db_error(VERR_DB);
	metrics_count_db_reconnect();
	metrics_count_call_final("completed");
	metrics_count_spool(METRICS_SPOOL_SPOOLED);
	metrics_close();

	buf_init(&b, METRICS_MAX_TEXT);
	assert_int_equal(metrics_render(&b), VERR_IO);
	buf_free(&b);
	memset(&req, 0, sizeof req);
	req.method = "GET";
	req.path = "/metrics";
	http_resp_init(&resp);
	assert_true(metrics_route(&req, NULL, &resp));
	assert_int_equal(resp.status, 503);
	http_resp_free(&resp);
	remove_path(path);
}

/* A metrics file that anyone but this process's user could write (another
 * owner, or a mode other than 0600) is refused and left alone: whoever can
 * write it can shrink it under every worker's mapping (SIGBUS). */
static void test_refuses_unsafe_file(void **state)
{
	static const struct {
		const char *name;
		mode_t mode;
		bool other_owner; /* chown to nobody (needs root) */
		bool ours_first;  /* a valid metrics file, set up by metrics_init */
	} unsafe[] = {
		{ "group and others may read", 0644, false, false },
		{ "everyone may write", 0666, false, false },
		{ "group may read", 0640, false, false },
		{ "a valid file made readable", 0604, false, true },
		{ "a valid file of another user", 0600, true, true },
		{ "an empty file of another user", 0600, true, false },
	};
	char path[256];
	struct stat before, after;
	size_t i;
	mode_t old_umask;
	FILE *f;

	(void)state;
	for (i = 0; i < sizeof unsafe / sizeof unsafe[0]; i++) {
		if (unsafe[i].other_owner && geteuid() != 0) {
			print_message("skipped (not root): %s\n", unsafe[i].name);
			continue;
		}
		temp_path(path, sizeof path);
		if (unsafe[i].ours_first) {
			assert_int_equal(metrics_init(path, "call"), VERR_OK);
			metrics_close();
		} else {
			f = fopen(path, "w");
			assert_non_null(f);
			fclose(f);
		}
		assert_int_equal(chmod(path, unsafe[i].mode), 0);
		if (unsafe[i].other_owner)
			assert_int_equal(chown(path, 65534, 65534), 0);
		assert_int_equal(stat(path, &before), 0);
		if (metrics_init(path, "webhook") != VERR_FORBIDDEN)
			fail_msg("%s: not refused", unsafe[i].name);
		assert_int_equal(metrics_slot(), -1);
		assert_int_equal(stat(path, &after), 0); /* left alone */
		assert_int_equal(after.st_size, before.st_size);
		assert_int_equal(after.st_mode, before.st_mode);
		assert_int_equal(after.st_uid, before.st_uid);
		remove_path(path);
	}
	/* a file metrics_init creates is 0600 whatever the umask */
	temp_path(path, sizeof path);
	old_umask = umask(0277);
	assert_int_equal(metrics_init(path, "call"), VERR_OK);
	umask(old_umask);
	metrics_close();
	assert_int_equal(stat(path, &after), 0);
	assert_int_equal(after.st_mode & 07777, 0600);
	assert_int_equal(metrics_init(path, "call"), VERR_OK);
	metrics_close();
	remove_path(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_processes_sum_exactly),
		cmocka_unit_test(test_dead_slot_reused_counts_kept),
		cmocka_unit_test(test_exposition_parses),
		cmocka_unit_test(test_control_routes),
		cmocka_unit_test(test_route),
		cmocka_unit_test(test_repairs_file),
		cmocka_unit_test(test_disabled),
		cmocka_unit_test(test_refuses_unsafe_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
