#ifndef VOICE_METRICS_H
#define VOICE_METRICS_H

#include <stdbool.h>

#include "buf.h"
#include "err.h"
#include "http.h"
#include "reqctx.h"

/*
 * Prometheus metrics shared by every worker process of both pools on a host:
 * the service's metric families and their rendering. The counters live in
 * one counter file (common/counterfile.h, VOICE_METRICS_FILE) mapped by every
 * worker, one slot per worker, so counting takes no lock and no system call;
 * totals survive worker restarts. GET /metrics sums every slot. Counters are
 * zero only in a new file; they restart from zero when the file is removed
 * (a reboot, for /dev/shm), which Prometheus' rate() treats as a reset.
 *
 * Every label has a fixed set of values (unknown ones become "other"), so the
 * number of series is bounded; route is a template of common/route.h. The
 * families, in the text exposition format version 0.0.4
 * (prometheus.io/docs/instrumenting/exposition_formats):
 *   voice_http_requests_total{pool,route,status}
 *   voice_http_request_duration_seconds{pool,route}  histogram
 *   voice_twilio_requests_total{outcome,code}
 *   voice_webhook_signature_failures_total{reason}
 *   voice_db_errors_total{kind}
 *   voice_db_reconnects_total
 *   voice_calls_final_total{status}
 *   voice_spool_records_total{action}
 *   voice_worker_starts_total{pool}
 *   voice_reconcile_total{outcome}
 *   voice_api_key_lookups_total{source}
 *
 * metrics_init and metrics_close are not thread-safe: a worker calls them
 * before its request threads start and after they end. Counting and
 * metrics_render may run on any thread at once (relaxed atomic adds, a
 * private sum per render); safe across processes. Until metrics_init
 * succeeds every metrics_count_* call does nothing, so a worker without
 * metrics serves requests as before.
 */

#define METRICS_MAGIC 0x766d7472u /* "vmtr" */
#define METRICS_VERSION 4u        /* bump whenever the layout changes */
#define METRICS_MAX_SLOTS 256     /* worker processes per host, both pools */
#define METRICS_MAX_TEXT (192 * 1024) /* the /metrics body, all series non-zero */
#define METRICS_MAX_PATH 1024
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/*
 * Opens the shared file at path, creating it (mode 0600) when it does not
 * exist. Workers starting at once serialise on the file's flock: one sizes
 * and initialises a new file (or one whose creator died half-way), and a
 * file of an older build's layout (our magic, another version) is replaced
 * by a new one, atomically by rename; its counters restart. Then claims a
 * slot for this pid (a dead worker's, else a free one) and counts
 * voice_worker_starts_total{pool}. pool is "call", "webhook" or anything
 * else ("other"); not kept. On failure logs one warn line, leaves metrics
 * disabled in this process and returns:
 *   VERR_FORBIDDEN the file is not this process's effective user's, or its
 *                  mode is not 0600 (logged as an error, left alone): anyone
 *                  else who can write it can shrink it under the workers'
 *                  mapping (SIGBUS in every worker) or forge counters, so a
 *                  worker must refuse to start rather than serve without
 *                  metrics
 *   VERR_IO        the file cannot be created, opened, locked, sized, read
 *                  or mapped (a missing directory, no permission, ...)
 *   VERR_CONFLICT  path names something that is not a metrics file (left
 *                  alone)
 *   VERR_TOOBIG    every slot belongs to a live process
 *   VERR_INVALID   path is NULL, empty or longer than METRICS_MAX_PATH
 * Calling it again while enabled returns VERR_OK and does nothing.
 */
enum verr metrics_init(const char *path, const char *pool);

/* Frees this process's slot for the next worker (its counts stay) and
 * unmaps the file; metrics are disabled afterwards. Safe when disabled, and
 * in a forked child (the parent's slot is left alone). */
void metrics_close(void);

/* The slot this process counts into, or -1 when metrics are disabled. */
int metrics_slot(void);

/* One request answered: pool as for metrics_init, path the request path
 * (mapped to its route template), status the HTTP status, usec its latency
 * in microseconds. */
void metrics_count_request(const char *pool, const char *path, int status, long long usec);

/*
 * One HTTP request to Twilio's REST API (each attempt counts):
 *   METRICS_TWILIO_CREATED      2xx with a readable call resource
 *   METRICS_TWILIO_ERROR        Twilio answered anything else (VERR_UPSTREAM)
 *   METRICS_TWILIO_UNAVAILABLE  not reached, nothing sent (VERR_UPSTREAM_DOWN)
 *   METRICS_TWILIO_TIMEOUT      sent, no complete answer (VERR_TIMEOUT)
 * code is Twilio's error code (0 when none); codes outside the fixed list
 * (20003 20429 21210 21211 21212 21214 21215 21216 21217) are "other".
 */
enum metrics_twilio {
	METRICS_TWILIO_CREATED,
	METRICS_TWILIO_ERROR,
	METRICS_TWILIO_UNAVAILABLE,
	METRICS_TWILIO_TIMEOUT,
};
void metrics_count_twilio(enum metrics_twilio outcome, int code);

/* A webhook refused before any work: no X-Twilio-Signature, or a bad one. */
enum metrics_sig { METRICS_SIG_MISSING, METRICS_SIG_MISMATCH };
void metrics_count_sig_failure(enum metrics_sig reason);

/* A database statement failed: PostgreSQL unreachable (VERR_DB_DOWN), or it
 * answered with an error (VERR_DB). Other values are ignored. */
void metrics_count_db_error(enum verr kind);
/* A lost database connection was established again. */
void metrics_count_db_reconnect(void);

/* A call reached its final status (stored, and the first terminal status of
 * that call). status is a Twilio CallStatus; non-terminal ones are ignored. */
void metrics_count_call_final(const char *status);
/* True for the terminal CallStatus values: completed, busy, failed,
 * no-answer, canceled. */
bool metrics_status_final(const char *status);

/* A record spooled because the database was unreachable, replayed into it,
 * or rejected by it on replay (moved aside for an operator). */
enum metrics_spool { METRICS_SPOOL_SPOOLED, METRICS_SPOOL_REPLAYED, METRICS_SPOOL_REJECTED };
void metrics_count_spool(enum metrics_spool action);

/*
 * What one step of reconciliation (common/reconcile.h) found:
 *   METRICS_RECONCILE_ADVANCED      a call not final here was further at
 *                                   Twilio: its status was stored
 *   METRICS_RECONCILE_UNCHANGED     Twilio says what we have
 *   METRICS_RECONCILE_LINKED        a POST /call whose answer was lost was
 *                                   found and linked to its Idempotency-Key
 *   METRICS_RECONCILE_NOT_FOUND     Twilio has no such call (404), or its
 *                                   call list has none that matches
 *   METRICS_RECONCILE_AMBIGUOUS     more than one call matches: not linked
 *   METRICS_RECONCILE_ERROR         Twilio or the database failed the step
 *   METRICS_RECONCILE_RATE_LIMITED  Twilio answered 429 / 20429: pass paused
 */
enum metrics_reconcile {
	METRICS_RECONCILE_ADVANCED,
	METRICS_RECONCILE_UNCHANGED,
	METRICS_RECONCILE_LINKED,
	METRICS_RECONCILE_NOT_FOUND,
	METRICS_RECONCILE_AMBIGUOUS,
	METRICS_RECONCILE_ERROR,
	METRICS_RECONCILE_RATE_LIMITED,
};
void metrics_count_reconcile(enum metrics_reconcile outcome);

/* An API key checked: answered from what the worker remembered
 * (common/apikey.h), or looked up in the database. */
void metrics_count_apikey(bool remembered);

/*
 * Appends the sum of every slot to out in the text exposition format 0.0.4:
 * # HELP and # TYPE once per family, counters ending in _total, histograms
 * with cumulative _bucket{le=...} series up to le="+Inf", then _sum and
 * _count. Series that never counted are left out, except for the small
 * families (every label value) and one zero series per outcome, so alert
 * expressions have something to match. VERR_IO when metrics are disabled;
 * VERR_TOOBIG, VERR_NOMEM from out (whose max should be METRICS_MAX_TEXT or
 * more); out may then hold a partial text.
 */
enum verr metrics_render(struct buf *out);

/*
 * Answers GET or HEAD /metrics with metrics_render (200, METRICS_CONTENT_TYPE),
 * 503 metrics_unavailable when metrics are disabled, 405 for other methods.
 * No authentication: nginx allows /metrics from loopback only. Returns false,
 * leaving resp alone, for any other path so the caller routes it.
 */
bool metrics_route(const struct http_req *req, struct req_ctx *rc, struct http_resp *resp);

#endif
