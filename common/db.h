#ifndef VOICE_DB_H
#define VOICE_DB_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

/*
 * All SQL lives here. A struct db is a pool of connections for one worker
 * process, opened lazily after fork and lent to one thread per call: every
 * function below is thread-safe, and a thread waits at most DB_ACQUIRE_MS
 * for a connection (then VERR_DB_DOWN). Statements are prepared once per
 * connection. A lost connection is re-established (and statements
 * re-prepared) on the next call, so a worker survives a PostgreSQL restart
 * without being restarted. Every connection has keepalives, a TCP user
 * timeout, statement_timeout 5 s and lock_timeout 2 s (DATABASE_URL's own
 * settings win), and every call a client-side deadline, so a hung server
 * or a half-open connection never blocks a thread for long. Functions return
 * VERR_DB_DOWN when PostgreSQL cannot be reached and VERR_DB when it answered
 * with an error (detail logged, never returned to clients; both counted in
 * voice_db_errors_total, reconnections in voice_db_reconnects_total).
 */
struct db;

/* Creates a pool of at most nconns (>= 1) connections to conninfo (copied);
 * does not connect. Caller frees with db_free once no thread uses it. NULL
 * on allocation failure. */
struct db *db_new(const char *conninfo, int nconns);
void db_free(struct db *db);

/* Round trip to the database. VERR_OK or VERR_DB_DOWN. */
enum verr db_ping(struct db *db);

/*
 * The circuit breaker's probe, for a background thread: while PostgreSQL is
 * known unreachable every call fails at once with VERR_DB_DOWN (no connect
 * timeout, no deadline paid per request); this tries one round trip at most
 * once a second and closes the breaker when it succeeds. VERR_OK when the
 * breaker is closed (now or already).
 */
enum verr db_probe(struct db *db);

/*
 * Looks up an active (not revoked) API key by the lowercase hex SHA-256 of
 * its secret. Writes the key's name into name. VERR_NOTFOUND, VERR_DB_DOWN,
 * VERR_DB.
 */
#define DB_MAX_KEY_NAME 64
enum verr db_apikey_find(struct db *db, const char *hash_hex, char *name, size_t namesz);

/*
 * Records one call webhook: appends to call_events unless this delivery was
 * stored before (same idempotency_token, or same call, status and sequence
 * number), and creates or advances the calls row. The status never moves
 * backwards: a higher-ranked status wins, and within a rank the higher
 * SequenceNumber. *stored is false for a duplicate delivery (nothing
 * changed). idempotency_token may be "" (none). The first terminal status
 * stored for a call counts in voice_calls_final_total.
 *
 * Group commit: callbacks that arrive together (from this process's
 * threads) are written together, up to DB_MAX_BATCH in one round trip and
 * one transaction; the call returns once its own event is committed. A
 * batch a statement fails in is rolled back and its callbacks are stored
 * one by one, so one bad event fails alone (VERR_DB).
 */
#define DB_MAX_BATCH 64
struct call_event;
enum verr db_call_event_record(struct db *db, const struct call_event *ev,
                               const char *idempotency_token, bool *stored);

/* One callback of db_call_events_record: ev and token in, result out. */
struct db_event {
	const struct call_event *ev; /* borrowed */
	const char *token;           /* "" or NULL: none */
	enum verr result;            /* VERR_OK, VERR_DB (refused), VERR_DB_DOWN */
	bool stored;                 /* false for a duplicate delivery */
};

/* Stores n callbacks as batches of DB_MAX_BATCH on one connection (the
 * spool's replay). Sets every evs[i].result and .stored. */
void db_call_events_record(struct db *db, struct db_event *evs, size_t n);

/* Outcome of claiming an idempotency key. */
enum db_idem {
	DB_IDEM_CLAIMED,  /* this request owns the key: go ahead and dial */
	DB_IDEM_DONE,     /* answered before: replay *status and body */
	DB_IDEM_PENDING,  /* another request with this key is still running */
	DB_IDEM_MISMATCH, /* the key was used with a different request body */
	DB_IDEM_ABANDONED, /* pending past its lease: its request died mid-way */
};

/*
 * Claims (api_key_name, key) for a request whose body hashes to hash_hex
 * (lowercase hex SHA-256). A key older than 24 hours is reclaimed. A claim
 * holds the key pending for lease_ms (the request's whole time budget): a
 * key still pending after that is DB_IDEM_ABANDONED, never claimed again
 * (the first request may have dialed), with call_sid holding the call that
 * reconciliation linked to it, or "". For DB_IDEM_DONE, *status and body
 * receive the stored response.
 */
struct buf;
#define DB_MAX_SID 35
enum verr db_idem_claim(struct db *db, const char *api_key_name, const char *key,
                        const char *hash_hex, long long lease_ms, enum db_idem *outcome,
                        int *status, struct buf *body, char call_sid[DB_MAX_SID]);
/* Stores the final response for a claimed key. */
enum verr db_idem_complete(struct db *db, const char *api_key_name, const char *key, int status,
                           const char *body, const char *call_sid);
/* Releases a claimed key whose request provably dialed nothing, so a retry
 * with the same key may try again. */
enum verr db_idem_release(struct db *db, const char *api_key_name, const char *key);

/* Deletes idempotency keys older than 24 hours (they can no longer match);
 * *deleted receives the count. */
enum verr db_idem_purge(struct db *db, long long *deleted);

/*
 * Records a call Twilio accepted (POST /call) and writes the stored call as
 * a JSON object into json. Callbacks may have created the row first: their
 * status is kept. api_key_name may be NULL.
 */
struct db_call {
	const char *call_sid, *account_sid, *direction, *from, *to, *status, *api_key_name;
};
enum verr db_call_insert(struct db *db, const struct db_call *call, struct buf *json);

/* The call with its events (oldest first) as a JSON object. VERR_NOTFOUND. */
enum verr db_call_get(struct db *db, const char *call_sid, struct buf *json);

/*
 * One page of calls, newest first, as a JSON array in json. status and
 * direction filter when non-NULL; after_created/after_sid (both or neither)
 * continue after a previous page's last row. When more rows follow, *more is
 * true and last_created/last_sid hold this page's last row (for the cursor).
 */
#define DB_MAX_TS 40
struct db_call_filter {
	const char *status, *direction, *after_created, *after_sid;
	int limit;
};
enum verr db_calls_list(struct db *db, const struct db_call_filter *f, struct buf *json,
                        bool *more, char last_created[DB_MAX_TS], char last_sid[DB_MAX_TS]);

#endif
