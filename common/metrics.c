#include "metrics.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "apierr.h"
#include "counterfile.h"
#include "log.h"
#include "route.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* Label values. "other" catches every value not listed; "none" is a
 * Twilio answer without an error code. Routes are common/route.h's. */
static const char *const pools[] = { "call", "webhook", "other" };
static const int status_codes[] = { 200, 201, 204, 400, 401, 403, 404, 405, 409, 413, 415,
	422, 429, 500, 502, 503, 504 };
static const char *const statuses[] = { "200", "201", "204", "400", "401", "403", "404", "405",
	"409", "413", "415", "422", "429", "500", "502", "503", "504", "other" };
/* Histogram bounds in microseconds, and as the le label. */
static const long long bucket_us[] = { 5000, 10000, 25000, 50000, 100000, 250000, 500000,
	1000000, 2500000, 5000000, 10000000, 30000000 };
static const char *const bucket_le[] = { "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5",
	"1", "2.5", "5", "10", "30", "+Inf" };
static const char *const outcomes[] = { "created", "twilio_error", "unavailable", "timeout" };
static const int twilio_codes[] = { 20003, 20429, 21210, 21211, 21212, 21214, 21215, 21216, 21217 };
static const char *const codes[] = { "20003", "20429", "21210", "21211", "21212", "21214",
	"21215", "21216", "21217", "other", "none" };
static const char *const sig_reasons[] = { "missing", "mismatch" };
static const char *const db_kinds[] = { "unavailable", "error" };
static const char *const finals[] = { "completed", "busy", "failed", "no-answer", "canceled" };
static const char *const spool_actions[] = { "spooled", "replayed", "rejected" };
static const char *const reconcile_outcomes[] = { "advanced", "unchanged", "linked", "not_found",
	"ambiguous", "error", "rate_limited" };
static const char *const key_sources[] = { "remembered", "database" };

#define N_POOL NELEM(pools)
#define N_ROUTE ROUTE_COUNT
#define N_STATUS NELEM(statuses)
#define N_BUCKET NELEM(bucket_le) /* including +Inf */
#define N_HIST (N_BUCKET + 1)     /* per-bucket counts (not cumulative), then the sum in us */
#define N_CODE NELEM(codes)

/* Where each family's counters start in the counter file. */
enum {
	OFF_REQUESTS = 0,
	OFF_DURATION = OFF_REQUESTS + N_POOL * N_ROUTE * N_STATUS,
	OFF_TWILIO = OFF_DURATION + N_POOL * N_ROUTE * N_HIST,
	OFF_SIG = OFF_TWILIO + NELEM(outcomes) * N_CODE,
	OFF_DB_ERRORS = OFF_SIG + NELEM(sig_reasons),
	OFF_DB_RECONNECTS = OFF_DB_ERRORS + NELEM(db_kinds),
	OFF_FINAL = OFF_DB_RECONNECTS + 1,
	OFF_SPOOL = OFF_FINAL + NELEM(finals),
	OFF_STARTS = OFF_SPOOL + NELEM(spool_actions),
	OFF_RECONCILE = OFF_STARTS + N_POOL,
	OFF_KEYS = OFF_RECONCILE + NELEM(reconcile_outcomes),
	N_COUNTERS = OFF_KEYS + NELEM(key_sources),
};

_Static_assert(NELEM(bucket_us) + 1 == NELEM(bucket_le), "one le per bound plus +Inf");
_Static_assert(NELEM(status_codes) + 1 == NELEM(statuses), "one label per status plus other");
_Static_assert(NELEM(twilio_codes) + 2 == NELEM(codes), "one label per code plus other, none");
_Static_assert(NELEM(reconcile_outcomes) == METRICS_RECONCILE_RATE_LIMITED + 1,
               "one label per reconcile outcome");
_Static_assert(METRICS_MAX_SLOTS == COUNTERFILE_MAX_SLOTS, "one slot per worker");
_Static_assert(METRICS_MAX_PATH == COUNTERFILE_MAX_PATH, "the same path limit");

static const struct counterfile_layout layout = { METRICS_MAGIC, METRICS_VERSION, N_COUNTERS };

static void add(size_t counter, uint64_t n)
{
	counterfile_add(counter, n);
}

static size_t pool_index(const char *pool)
{
	size_t i;

	for (i = 0; i + 1 < N_POOL; i++)
		if (pool != NULL && strcmp(pool, pools[i]) == 0)
			return i;
	return N_POOL - 1;
}

static size_t status_index(int status)
{
	size_t i;

	for (i = 0; i < NELEM(status_codes); i++)
		if (status_codes[i] == status)
			return i;
	return N_STATUS - 1;
}

static size_t code_index(int code)
{
	size_t i;

	if (code == 0)
		return N_CODE - 1;
	for (i = 0; i < NELEM(twilio_codes); i++)
		if (twilio_codes[i] == code)
			return i;
	return N_CODE - 2;
}

enum verr metrics_init(const char *path, const char *pool)
{
	struct counterfile_error err;
	bool replaced = false;
	enum verr e;

	if (counterfile_owned())
		return VERR_OK;
	counterfile_close(); /* a forked child's inherited mapping */
	if (path == NULL || path[0] == '\0' || strlen(path) > METRICS_MAX_PATH) {
		log_warn("metrics disabled: no usable metrics file path");
		return VERR_INVALID;
	}
	e = counterfile_open(path, &layout, &replaced, &err);
	if (replaced)
		log_warn("replaced a metrics file of another layout; counters restart",
		         LF_STR("path", path));
	if (e == VERR_FORBIDDEN) {
		char ms[16];

		/* the caller refuses to start */
		snprintf(ms, sizeof ms, "%04llo", (unsigned long long)err.mode);
		log_error("metrics file refused: it must belong to this service's user and have "
		          "mode 0600; remove it, or fix its owner and mode",
		          LF_STR("path", path), LF_STR("error", err.why), LF_INT("owner_uid", err.owner_uid),
		          LF_STR("mode", ms), LF_INT("service_uid", (long long)geteuid()));
		return e;
	}
	if (e == VERR_TOOBIG) {
		log_warn("metrics disabled: every metrics slot belongs to a live process",
		         LF_STR("path", path), LF_INT("slots", METRICS_MAX_SLOTS));
		return e;
	}
	if (e != VERR_OK) {
		log_warn("metrics disabled: could not set up the metrics file", LF_STR("path", path),
		         LF_STR("error", err.why));
		return e;
	}
	add(OFF_STARTS + pool_index(pool), 1);
	log_debug("metrics enabled", LF_STR("path", path), LF_INT("slot", counterfile_slot()));
	return VERR_OK;
}

void metrics_close(void)
{
	counterfile_close();
}

int metrics_slot(void)
{
	return counterfile_slot();
}

void metrics_count_request(const char *pool, const char *path, int status, long long usec)
{
	size_t pr = pool_index(pool) * N_ROUTE + (size_t)route_match(path, NULL);

	add(OFF_REQUESTS + pr * N_STATUS + status_index(status), 1);
	counterfile_observe(OFF_DURATION + pr * N_HIST, bucket_us, NELEM(bucket_us), usec);
}

void metrics_count_twilio(enum metrics_twilio outcome, int code)
{
	if ((size_t)outcome < NELEM(outcomes))
		add(OFF_TWILIO + (size_t)outcome * N_CODE + code_index(code), 1);
}

void metrics_count_sig_failure(enum metrics_sig reason)
{
	if ((size_t)reason < NELEM(sig_reasons))
		add(OFF_SIG + (size_t)reason, 1);
}

void metrics_count_db_error(enum verr kind)
{
	if (kind == VERR_DB_DOWN)
		add(OFF_DB_ERRORS + 0, 1);
	else if (kind == VERR_DB)
		add(OFF_DB_ERRORS + 1, 1);
}

void metrics_count_db_reconnect(void)
{
	add(OFF_DB_RECONNECTS, 1);
}

bool metrics_status_final(const char *status)
{
	size_t i;

	for (i = 0; status != NULL && i < NELEM(finals); i++)
		if (strcmp(status, finals[i]) == 0)
			return true;
	return false;
}

void metrics_count_call_final(const char *status)
{
	size_t i;

	for (i = 0; status != NULL && i < NELEM(finals); i++)
		if (strcmp(status, finals[i]) == 0)
			add(OFF_FINAL + i, 1);
}

void metrics_count_spool(enum metrics_spool action)
{
	if ((size_t)action < NELEM(spool_actions))
		add(OFF_SPOOL + (size_t)action, 1);
}

void metrics_count_reconcile(enum metrics_reconcile outcome)
{
	if ((size_t)outcome < NELEM(reconcile_outcomes))
		add(OFF_RECONCILE + (size_t)outcome, 1);
}

void metrics_count_apikey(bool remembered)
{
	add(OFF_KEYS + (remembered ? 0 : 1), 1);
}

/* Rendering works on a private sum of every slot, so one scrape is one
 * consistent-enough snapshot and each counter is read once per slot. */
struct totals {
	uint64_t c[N_COUNTERS];
};

static enum verr family(struct buf *out, const char *name, const char *type, const char *help)
{
	return buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A counter family with a single label: its HELP and TYPE lines, then one
 * sample for each label value. */
static enum verr one_label(struct buf *out, const struct totals *t, const char *name,
                           const char *help, const char *label, const char *const *values,
                           size_t n, size_t off)
{
	enum verr e = family(out, name, "counter", help);
	size_t i;

	for (i = 0; e == VERR_OK && i < n; i++)
		e = buf_printf(out, "%s{%s=\"%s\"} %llu\n", name, label, values[i],
		               (unsigned long long)t->c[off + i]);
	return e;
}

static enum verr render_http(struct buf *out, const struct totals *t)
{
	enum verr e;
	size_t p, r, s, b;

	e = family(out, "voice_http_requests_total", "counter",
	           "HTTP requests answered, by worker pool, route template and status code.");
	for (p = 0; e == VERR_OK && p < N_POOL; p++)
		for (r = 0; e == VERR_OK && r < N_ROUTE; r++)
			for (s = 0; e == VERR_OK && s < N_STATUS; s++) {
				uint64_t v = t->c[OFF_REQUESTS + (p * N_ROUTE + r) * N_STATUS + s];

				if (v > 0)
					e = buf_printf(out,
					               "voice_http_requests_total{pool=\"%s\",route=\"%s\","
					               "status=\"%s\"} %llu\n",
					               pools[p], route_name((enum route)r), statuses[s],
					               (unsigned long long)v);
			}
	if (e == VERR_OK)
		e = family(out, "voice_http_request_duration_seconds", "histogram",
		           "Time from reading a request to writing its response, in seconds.");
	for (p = 0; e == VERR_OK && p < N_POOL; p++)
		for (r = 0; e == VERR_OK && r < N_ROUTE; r++) {
			const uint64_t *h = &t->c[OFF_DURATION + (p * N_ROUTE + r) * N_HIST];
			const char *route = route_name((enum route)r);
			uint64_t cum = 0;

			for (b = 0; b < N_BUCKET; b++)
				cum += h[b];
			if (cum == 0)
				continue;
			cum = 0;
			for (b = 0; e == VERR_OK && b < N_BUCKET; b++) {
				cum += h[b];
				e = buf_printf(out,
				               "voice_http_request_duration_seconds_bucket{pool=\"%s\","
				               "route=\"%s\",le=\"%s\"} %llu\n",
				               pools[p], route, bucket_le[b], (unsigned long long)cum);
			}
			if (e == VERR_OK)
				e = buf_printf(out,
				               "voice_http_request_duration_seconds_sum{pool=\"%s\",route=\"%s\"}"
				               " %llu.%06llu\n"
				               "voice_http_request_duration_seconds_count{pool=\"%s\",route=\"%s\"}"
				               " %llu\n",
				               pools[p], route, (unsigned long long)(h[N_BUCKET] / 1000000),
				               (unsigned long long)(h[N_BUCKET] % 1000000), pools[p], route,
				               (unsigned long long)cum);
		}
	return e;
}

static enum verr render_twilio(struct buf *out, const struct totals *t)
{
	enum verr e = family(out, "voice_twilio_requests_total", "counter",
	                     "HTTP requests to the Twilio REST API (each attempt), by outcome and "
	                     "Twilio error code.");
	size_t o, c;

	for (o = 0; e == VERR_OK && o < NELEM(outcomes); o++)
		for (c = 0; e == VERR_OK && c < N_CODE; c++) {
			uint64_t v = t->c[OFF_TWILIO + o * N_CODE + c];

			/* every outcome has a code="none" series, zero or not */
			if (v > 0 || c == N_CODE - 1)
				e = buf_printf(out, "voice_twilio_requests_total{outcome=\"%s\",code=\"%s\"} %llu\n",
				               outcomes[o], codes[c], (unsigned long long)v);
		}
	return e;
}

/* The counter families with one label, rendered in this order. */
struct one_label_family {
	const char *name, *help, *label;
	const char *const *values;
	size_t n, off;
};
static const struct one_label_family one_label_families[] = {
	{ "voice_webhook_signature_failures_total",
	  "Twilio webhooks refused for a missing or mismatching X-Twilio-Signature.", "reason",
	  sig_reasons, NELEM(sig_reasons), OFF_SIG },
	{ "voice_db_errors_total",
	  "Database statements that failed: unreachable (unavailable) or refused (error).", "kind",
	  db_kinds, NELEM(db_kinds), OFF_DB_ERRORS },
	{ "voice_calls_final_total",
	  "Calls that reached a final status, counted when that status is stored.", "status",
	  finals, NELEM(finals), OFF_FINAL },
	{ "voice_spool_records_total",
	  "Records spooled while the database was unreachable, replayed, or rejected.", "action",
	  spool_actions, NELEM(spool_actions), OFF_SPOOL },
	{ "voice_worker_starts_total", "Worker processes started, by pool.", "pool", pools, N_POOL,
	  OFF_STARTS },
	{ "voice_reconcile_total",
	  "Reconciliation steps (a call fetched from Twilio, or a lost POST /call looked up in its "
	  "call list), by outcome.",
	  "outcome", reconcile_outcomes, NELEM(reconcile_outcomes), OFF_RECONCILE },
	{ "voice_api_key_lookups_total",
	  "API keys checked: from what the worker remembered, or looked up in the database.",
	  "source", key_sources, NELEM(key_sources), OFF_KEYS },
};

enum verr metrics_render(struct buf *out)
{
	struct totals t;
	enum verr e;
	size_t i;

	e = counterfile_sum(t.c, N_COUNTERS);
	if (e != VERR_OK)
		return VERR_IO; /* disabled */
	e = render_http(out, &t);
	if (e == VERR_OK)
		e = render_twilio(out, &t);
	for (i = 0; e == VERR_OK && i < NELEM(one_label_families); i++) {
		const struct one_label_family *f = &one_label_families[i];

		e = one_label(out, &t, f->name, f->help, f->label, f->values, f->n, f->off);
	}
	if (e == VERR_OK)
		e = family(out, "voice_db_reconnects_total", "counter",
		           "Lost database connections established again.");
	if (e == VERR_OK)
		e = buf_printf(out, "voice_db_reconnects_total %llu\n",
		               (unsigned long long)t.c[OFF_DB_RECONNECTS]);
	return e;
}

bool metrics_route(const struct http_req *req, struct req_ctx *rc, struct http_resp *resp)
{
	enum verr e;

	if (route_match(req->path, NULL) != ROUTE_METRICS)
		return false;
	if (!apierr_get_only(req, rc, resp))
		return true;
	buf_reset(&resp->body);
	e = metrics_render(&resp->body);
	if (e != VERR_OK) {
		apierr_reply(rc, resp, e == VERR_IO ? APIERR_METRICS_UNAVAILABLE : APIERR_INTERNAL,
		             e == VERR_IO ? NULL : "the metrics text is too large", NULL);
		return true;
	}
	resp->status = 200;
	resp->content_type = METRICS_CONTENT_TYPE;
	return true;
}
