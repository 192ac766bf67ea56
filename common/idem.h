#ifndef VOICE_IDEM_H
#define VOICE_IDEM_H

#include <stdbool.h>

#include "db.h"
#include "http.h"
#include "reqctx.h"

/*
 * Idempotency-Key for POST /call (docs/API.md, "Idempotency"): the same key
 * from the same API key within 24 h returns the first response and never
 * dials again; the same key with a different body is 422
 * idempotency_key_reused. The key is held in the database (db_idem_*), so
 * this works across workers and hosts.
 */
#define IDEM_MAX_KEY 255
#define IDEM_WAIT_MS 10000  /* how long a duplicate waits for the first request */
#define IDEM_POLL_MS 100
#define IDEM_MAX_WAITERS 16 /* duplicates waiting at once per process; more get 409 at once */
#define IDEM_REPLAY_RETRY_AFTER "5" /* seconds, on a replayed 503 */

/* True for 1..IDEM_MAX_KEY printable ASCII characters. */
bool idem_key_valid(const char *key);

/*
 * Claims req->idempotency_key for the API key named in rc->key_name, for
 * this request body. Returns true when this request owns the key and
 * should dial. Otherwise false with resp holding the answer: the stored
 * response (with Idempotent-Replayed: true), 422 idempotency_key_reused, 409
 * idempotency_key_in_progress after waiting IDEM_WAIT_MS for a concurrent
 * request with the same key, 502 outcome_unknown at once when the request
 * that claimed the key died mid-way (its lease_ms, the time budget it
 * claimed the key with, ran out), or 503 when the database is unreachable. The
 * wait holds a request thread but no database connection; at most
 * IDEM_MAX_WAITERS requests of a process wait at once, so duplicates can
 * never take the threads other requests need: the rest get the 409 at once.
 */
bool idem_begin(struct db *db, const struct http_req *req, struct req_ctx *rc,
                struct http_resp *resp, long long lease_ms);

/*
 * Ends a claimed key: stores resp (status, body) and rc->call_sid as the
 * key's answer, or, with release, frees the key because nothing was dialed
 * so a retry may try again. Failures are logged.
 */
void idem_end(struct db *db, const struct http_req *req, const struct req_ctx *rc,
              const struct http_resp *resp, bool release);

#endif
