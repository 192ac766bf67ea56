#ifndef VOICE_DB_H
#define VOICE_DB_H

#include <stdbool.h>
#include <stddef.h>

#include "callsquery.h"
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

/*
 * For a pool whose every statement finds its rows by a unique key (the
 * webhook pool): its connections, opened from now on, set enable_seqscan
 * off. PostgreSQL caches a generic plan per prepared statement; one made
 * while calls was nearly empty (a fresh or truncated table) scans it
 * sequentially, in event_record's lookup and in call_events' foreign key
 * check, and keeps doing so until the next ANALYZE replans it: seen as
 * 40,000 sequential scans of calls reading 122 million rows in a 10 s
 * callback run, at a quarter of the usual rate. Call before any thread
 * uses db.
 */
void db_keyed_only(struct db *db);

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
 * its secret. Writes the key's name into name and into *read_all whether it
 * reads every call (api_keys.read_all) rather than only those placed with
 * its name. VERR_NOTFOUND, VERR_DB_DOWN, VERR_DB.
 */
#define DB_MAX_KEY_NAME 64
enum verr db_apikey_find(struct db *db, const char *hash_hex, char *name, size_t namesz,
                         bool *read_all);

/*
 * Watching api_keys, so that a worker may remember the keys it found
 * (common/apikey.h) and still refuse a revoked one at once. A thread with a
 * connection of its own, taken from the pool's nconns (so the cap holds)
 * LISTENs on "voice_api_keys", which migration 0008's trigger notifies after
 * every change to api_keys. db_keys_watch starts it; false (and nothing
 * started) for a pool of one connection, or if the thread cannot start.
 *
 * db_keys_generation is 0 whenever a change could go unseen: not yet
 * connected, the connection lost, the trigger missing or disabled, or the
 * NOTIFY the watcher sends itself every DB_KEYS_PROBE_MS not back within
 * DB_KEYS_PROBE_MS (a pooler that drops notifications, a half-open
 * connection). Otherwise it is a number that changes with every notification
 * and every reconnection: an answer read under generation g is good while
 * db_keys_generation() still returns g. Thread-safe; without a watch, 0.
 */
#define DB_KEYS_CHANNEL "voice_api_keys"
#define DB_KEYS_PROBE_MS 2000
bool db_keys_watch(struct db *db);
unsigned long long db_keys_generation(struct db *db);

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
 * one transaction, one batch at a time per process (db_call_insert's rows
 * join the same batches); the call returns once its own event is
 * committed. A
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
 * status is kept. api_key_name may be NULL. Group-committed like the
 * callbacks (db_call_event_record): the rows of calls placed together go in
 * one transaction, with whatever callbacks are queued in this process.
 */
struct db_call {
	const char *call_sid, *account_sid, *direction, *from, *to, *status, *api_key_name;
};

/* A timestamp in API output, in SQL: RFC 3339 UTC with microseconds (the
 * format of log_timestamp(..., true)). */
#define DB_TS(x) "to_char((" x ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

/*
 * The API's call object, defined once for both places that build it: its
 * fields in output order, each X(key, sql, value), sep between two.
 *   sql    the value in SQL over the calls row c; every statement of db.c
 *          that returns a call builds it with json_build_object from these.
 *   value  the value in C for a call the database has not taken
 *          (record_call): a string over c (const struct db_call *) and now
 *          (the current time, in DB_TS's format), or NULL for JSON null.
 */
#define DB_CALL_OBJECT(X, sep)                                     \
	X("sid", "c.call_sid", c->call_sid) sep                          \
	X("account_sid", "c.account_sid", c->account_sid) sep            \
	X("status", "c.status", c->status) sep                           \
	X("direction", "c.direction", c->direction) sep                  \
	X("from", "c.from_number", c->from) sep                          \
	X("to", "c.to_number", c->to) sep                                \
	X("sequence_number", "c.sequence_number", NULL) sep              \
	X("answered_by", "c.answered_by", NULL) sep                      \
	X("duration_seconds", "c.duration_seconds", NULL) sep            \
	X("sip_response_code", "c.sip_response_code", NULL) sep          \
	X("created_at", DB_TS("c.created_at"), now) sep                  \
	X("updated_at", DB_TS("c.updated_at"), now)

enum verr db_call_insert(struct db *db, const struct db_call *call, struct buf *json);

/*
 * Who may read a call: owner is the name of the API key asking, and such a
 * key sees only the calls placed with that name (calls.api_key_name); NULL
 * means every call (a read_all key). A call the owner may not read is
 * VERR_NOTFOUND, exactly as one that does not exist.
 */

/* The call with its events and its recordings (both oldest first) as a JSON
 * object. VERR_NOTFOUND, VERR_DB_DOWN, VERR_DB. */
enum verr db_call_get(struct db *db, const char *call_sid, const char *owner, struct buf *json);

/*
 * The call's current status (a Twilio CallStatus) into status and the call
 * object (without events) into json, for cancel and hang up. VERR_NOTFOUND,
 * VERR_DB_DOWN, VERR_DB.
 */
#define DB_MAX_STATUS 16
enum verr db_call_state(struct db *db, const char *call_sid, const char *owner,
                        char status[DB_MAX_STATUS], struct buf *json);

/*
 * One page of calls, newest first, as a JSON array in json. status and
 * direction filter when non-NULL; after_created/after_sid (both or neither)
 * continue after a previous page's last row; owner as above (NULL: every
 * call), filtered in the statement through the index calls_owner_created.
 * When more rows follow, *more is true and last_created/last_sid hold this
 * page's last row (for the cursor).
 */
enum verr db_calls_list(struct db *db, const struct callsquery_filter *f, struct buf *json,
                        bool *more, char last_created[CURSOR_MAX_PIECE],
                        char last_sid[CURSOR_MAX_PIECE]);

/*
 * Stores one recording status callback (common/recording.h): creates the
 * recordings row, or moves its status forward. A recording's status never
 * leaves a final one (completed, absent, failed), and a delivery whose
 * status the row already has changes nothing: *stored is false for such a
 * redelivery (or a late, stale one). VERR_DB_DOWN, VERR_DB.
 */
struct recording_event;
enum verr db_recording_record(struct db *db, const struct recording_event *rec, bool *stored);

/* One recording as a JSON object, when owner may read its call (owner as
 * above; a recording of a call the service has no row for is visible to
 * read_all keys only). VERR_NOTFOUND, VERR_DB_DOWN, VERR_DB. */
enum verr db_recording_get(struct db *db, const char *recording_sid, const char *owner,
                           struct buf *json);

/*
 * Reconciliation (common/reconcile.h; tables of migration 0005). Every
 * function below is one statement, thread-safe like the rest; errors are
 * VERR_DB_DOWN and VERR_DB as above.
 */

/* Stores what a POST /call that claimed (api_key_name, key) is about to
 * send to Twilio (E.164 to and from) with the database's time, just before
 * it dials, so a call whose answer gets lost can be found in Twilio's call
 * list. Changes nothing unless the key is pending. */
enum verr db_idem_dialing(struct db *db, const char *api_key_name, const char *key,
                          const char *to, const char *from);

/*
 * Takes the deployment's one reconciliation lease for holder (a string
 * unique to this worker, at most 64 bytes) for lease_ms, when it is free
 * (expired, or holder's), no backoff is running, and the last pass ended at
 * least every_ms ago. *taken says whether it was; *backoff_s receives the
 * backoff the last rate-limited pass left (0 after a clean one).
 */
enum verr db_reconcile_lease(struct db *db, const char *holder, int lease_ms, int every_ms,
                             bool *taken, int *backoff_s);
/* Ends holder's pass: frees the lease, notes the time, and when pause_s > 0
 * keeps every worker from starting a pass for pause_s seconds; stores
 * backoff_s for the next holder. Nothing when holder lost the lease. */
enum verr db_reconcile_release(struct db *db, const char *holder, int pause_s, int backoff_s);

/* A call that is not final, as stored. */
struct db_stale_call {
	char call_sid[35];
	char status[16];
};
/* At most max calls of account_sid created in the last 48 hours whose
 * status is not final and that neither changed nor were fetched in the last
 * after_s seconds, least recently looked at first, into out; *n how many. */
enum verr db_reconcile_stale(struct db *db, const char *account_sid, int after_s,
                             struct db_stale_call *out, int max, int *n);
/* Notes that call_sid was just fetched (its next fetch waits after_s). A
 * failure is logged and otherwise ignored: the call is fetched again sooner. */
void db_reconcile_checked(struct db *db, const char *call_sid);

/* A keyed POST /call whose call is unknown (its answer was lost). */
#define DB_MAX_IDEM_KEY 256
struct db_dial {
	char api_key_name[DB_MAX_KEY_NAME + 1];
	char idem_key[DB_MAX_IDEM_KEY];
	char to[65], from[65];       /* E.164, as sent to Twilio */
	long long started_epoch;     /* when it dialed, Unix seconds (database clock) */
	char start_date[11];         /* YYYY-MM-DD (UTC) of 5 minutes before that */
};
/* At most max such keys, oldest first, into out (*n): dialed in the last
 * 24 hours and at least after_s seconds ago, answered (a stored 502, 503 or
 * 504) or still pending past its lease (its request died; grace_s seconds
 * after dialing when it has none), looked up fewer than max_lookups times
 * and not in the last after_s seconds. */
enum verr db_reconcile_dials(struct db *db, int after_s, int grace_s, int max_lookups,
                             struct db_dial *out, int max, int *n);
/* Counts one lookup of a key that found nothing to link. A failure is logged
 * and otherwise ignored: the key is looked up once more than max_lookups. */
void db_reconcile_dial_looked(struct db *db, const char *api_key_name, const char *key);
/* What is stored of call_sid: *known whether it is at all; *taken whether a
 * POST /call placed it (it has an API key name), so it answers no other
 * request; status its status ("" when unknown). */
#define DB_MAX_CALL_STATUS 16
enum verr db_reconcile_call_state(struct db *db, const char *call_sid, bool *known, bool *taken,
                                  char status[DB_MAX_CALL_STATUS]);
/*
 * Links the call Twilio created (call; its api_key_name is ignored) to the
 * key (api_key_name, key) in one statement: records the call with the key's
 * name unless a POST /call already owns it, and stores 201 with the call
 * object as the key's answer, so a retry with the key returns it. *linked is
 * false when the key already names a call or the call is owned by another
 * request (nothing changed).
 */
enum verr db_reconcile_link(struct db *db, const char *api_key_name, const char *key,
                            const struct db_call *call, bool *linked);

#endif
