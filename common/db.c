#include "db.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/eventfd.h>

#include <libpq-fe.h>

#include "buf.h"
#include "callback.h"
#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "num.h"
#include "recording.h"

#define DB_ACQUIRE_MS 5000   /* wait for a pool connection, then give up (spool) */
#define DB_DEADLINE_MS 6000  /* one statement or batch, client side: the server's
                              * statement_timeout (5 s) plus a round trip */
#define DB_PROBE_MS 1000     /* while the breaker is open: one probe a second */

/* Every statement the service runs. Prepared lazily, once per connection.
 * retry_safe: may be sent again after the connection broke mid-statement
 * (reads, and writes whose repetition changes nothing). */
enum stmt {
	STMT_PING,
	STMT_APIKEY_FIND,
	STMT_EVENT_RECORD,
	STMT_EVENTS_RECORD,
	STMT_IDEM_CLAIM,
	STMT_IDEM_GET,
	STMT_IDEM_COMPLETE,
	STMT_IDEM_RELEASE,
	STMT_IDEM_PURGE,
	STMT_CALL_INSERT,
	STMT_CALL_GET,
	STMT_CALLS_LIST,
	STMT_CALLS_LIST_OWN,
	STMT_CALL_STATE,
	STMT_RECORDING_RECORD,
	STMT_RECORDING_GET,
	STMT_IDEM_DIALING,
	STMT_RECONCILE_LEASE,
	STMT_RECONCILE_RELEASE,
	STMT_RECONCILE_STALE,
	STMT_RECONCILE_CHECKED,
	STMT_RECONCILE_DIALS,
	STMT_RECONCILE_DIAL_LOOKED,
	STMT_RECONCILE_CALL_STATE,
	STMT_RECONCILE_LINK,
	STMT__COUNT
};

/* A status's rank in Twilio's lifecycle: queued 1 < initiated 2 < ringing 3 <
 * in-progress 4 < the five terminal statuses 5 (array_position counts from
 * 1; the call_status domain of 0003 admits no other value). Inline, not call_status_rank(): an SQL
 * function is inlined again, its body parsed, for every statement; and
 * array_position costs fewer instructions than a CASE (bench/README.md). */
#define RANK(x) "coalesce(array_position('{queued,initiated,ringing,in-progress}'::text[], " x "), 5)"

/* An incoming status (EXCLUDED) replaces the stored one (c) when it ranks
 * higher, or ranks the same with a higher SequenceNumber. */
#define STATUS_WINS                                                                 \
	"((" RANK("EXCLUDED.status") ", coalesce(EXCLUDED.sequence_number, -1))"          \
	" > (" RANK("c.status") ", coalesce(c.sequence_number, -1)))"

/* A callback's (or a batch's combined) write to its calls row: the status
 * only forward, the other fields kept unless the callback has them;
 * updated_at moves only when what the API shows changes (0003: no trigger
 * keeps it). */
#define UPSERT_SET                                                                  \
	"status = CASE WHEN " STATUS_WINS " THEN EXCLUDED.status ELSE c.status END,"      \
	" sequence_number = CASE WHEN " STATUS_WINS                                       \
	"   THEN EXCLUDED.sequence_number ELSE c.sequence_number END,"                    \
	" answered_by = coalesce(EXCLUDED.answered_by, c.answered_by),"                   \
	" duration_seconds = coalesce(EXCLUDED.duration_seconds, c.duration_seconds),"    \
	" sip_response_code = coalesce(EXCLUDED.sip_response_code, c.sip_response_code)," \
	" updated_at = CASE WHEN " STATUS_WINS " OR (c.answered_by, c.duration_seconds,"  \
	"   c.sip_response_code) IS DISTINCT FROM (coalesce(EXCLUDED.answered_by, c.answered_by)," \
	"   coalesce(EXCLUDED.duration_seconds, c.duration_seconds),"                    \
	"   coalesce(EXCLUDED.sip_response_code, c.sip_response_code))"                  \
	"   THEN now() ELSE c.updated_at END"

#define TS(x) DB_TS(x)

/* The API's call object (db.h DB_CALL_OBJECT) as json_build_object's arguments. */
#define CALL_FIELD(key, sql, value) "'" key "', " sql
#define CALL_FIELDS DB_CALL_OBJECT(CALL_FIELD, ", ")

/* The API's recording object (table recordings r). */
#define RECORDING_FIELDS                                                              \
	"'sid', r.recording_sid, 'call_sid', r.call_sid, 'account_sid', r.account_sid,"  \
	" 'status', r.status, 'duration_seconds', r.duration_seconds,"                     \
	" 'channels', r.channels, 'source', r.source, 'track', r.track,"                   \
	" 'media_url', r.media_url, 'error_code', r.error_code,"                           \
	" 'started_at', " TS("r.started_at") ", 'created_at', " TS("r.created_at")         \
	", 'updated_at', " TS("r.updated_at")

/* A call's recordings, oldest first, as a JSON array (c is the call). */
#define CALL_RECORDINGS                                                               \
	"coalesce((SELECT json_agg(json_build_object(" RECORDING_FIELDS ")"                \
	" ORDER BY r.created_at, r.recording_sid) FROM recordings r"                       \
	" WHERE r.call_sid = c.call_sid), '[]'::json)"

/* Who may read call c: $N NULL (a read_all key) or the key's name. */
#define CALL_VISIBLE(n) "(" n "::text IS NULL OR c.api_key_name = " n ")"

#define RECORDING_FINAL "('completed', 'absent', 'failed')"

static const struct {
	const char *name;
	const char *sql;
	int nparams;
	bool retry_safe;
} stmts[STMT__COUNT] = {
	[STMT_PING] = { "ping", "SELECT 1", 0, true },
	[STMT_APIKEY_FIND] = { "apikey_find",
		"SELECT name, read_all FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL", 1,
		true },
	/* FK checks run at the end of the statement, so the event may precede
	 * the calls row it references. The calls upsert runs only for a new
	 * event: a duplicate delivery changes nothing. Returns whether the event
	 * was new (a row of up), the call's status after it (NULL for a
	 * duplicate), and before it (the outer subquery reads the statement's
	 * snapshot, taken before the upsert). updated_at moves only when what the
	 * API shows changes (0003: no trigger keeps it). */
	[STMT_EVENT_RECORD] = { "event_record",
		"WITH ev AS ("
		"  INSERT INTO call_events (call_sid, status, sequence_number, idempotency_token, payload)"
		"  VALUES ($1, $2, $3::integer, $4, $5::jsonb)"
		"  ON CONFLICT DO NOTHING RETURNING 1"
		"), up AS ("
		"  INSERT INTO calls AS c (call_sid, account_sid, direction, from_number, to_number,"
		"    status, sequence_number, answered_by, duration_seconds, sip_response_code)"
		"  SELECT $1, $6, $7, $8, $9, $2, $3::integer, $10, $11::integer, $12::integer FROM ev"
		"  ON CONFLICT (call_sid) DO UPDATE SET " UPSERT_SET
		"  RETURNING c.status"
		") SELECT count(*)::integer, min(status), (SELECT status FROM calls WHERE call_sid = $1)"
		" FROM up", 12, true },
	/*
	 * A batch of callbacks as one statement: event_record's work for each
	 * element of the twelve parameter arrays (event_record's parameters, one
	 * element per callback, in batch order n), with the same outcome as
	 * running event_record for each in order in one transaction:
	 *  - the events are inserted in order; a delivery already stored, or
	 *    stored earlier in the batch, is skipped (ON CONFLICT DO NOTHING);
	 *  - an inserted event is the first callback with its exact values
	 *    (call_events_delivery makes (call_sid, status, sequence) unique);
	 *  - each call's new events become one calls upsert (ON CONFLICT DO
	 *    UPDATE may touch a row once per statement): the status of the
	 *    first of the highest (rank, sequence), and answered_by, duration
	 *    and SIP code from the last event that has them, which is where
	 *    the STATUS_WINS / coalesce rules end up one event at a time; a new
	 *    calls row takes the first event's account, direction and numbers;
	 *  - the rows lock in call sid order (the upsert's ORDER BY, then the
	 *    foreign keys' checks at the end of the statement).
	 * One row per callback, in order: whether it was stored, whether it
	 * decided its call's status (the winner of its call), and for the
	 * winner the call's status after the statement and before it (the
	 * subquery reads the statement's snapshot): event_done's inputs.
	 */
	[STMT_EVENTS_RECORD] = { "events_record",
		"WITH i AS ("
		"  SELECT * FROM unnest($1::text[], $2::text[], $3::integer[], $4::text[], $5::jsonb[],"
		"    $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::integer[],"
		"    $12::integer[]) WITH ORDINALITY AS i(call_sid, status, seq, token, payload,"
		"    account_sid, direction, from_number, to_number, answered_by, duration, sip, n)"
		"), ev AS ("
		"  INSERT INTO call_events (call_sid, status, sequence_number, idempotency_token, payload)"
		"  SELECT call_sid, status, seq, token, payload FROM i ORDER BY n"
		"  ON CONFLICT DO NOTHING RETURNING call_sid, status, sequence_number, idempotency_token"
		"), fresh AS ("
		"  SELECT DISTINCT ON (i.call_sid, i.status, i.seq) i.* FROM ev JOIN i"
		"    ON i.call_sid = ev.call_sid AND i.status = ev.status"
		"    AND i.seq IS NOT DISTINCT FROM ev.sequence_number"
		"    AND i.token IS NOT DISTINCT FROM ev.idempotency_token"
		"  ORDER BY i.call_sid, i.status, i.seq, i.n"
		"), w AS ("
		"  SELECT call_sid,"
		"    (array_agg(n ORDER BY " RANK("status") " DESC, coalesce(seq, -1) DESC, n))[1] AS won,"
		"    (array_agg(status ORDER BY " RANK("status") " DESC, coalesce(seq, -1) DESC, n))[1]"
		"      AS status,"
		"    (array_agg(seq ORDER BY " RANK("status") " DESC, coalesce(seq, -1) DESC, n))[1] AS seq,"
		"    (array_agg(account_sid ORDER BY n))[1] AS account_sid,"
		"    (array_agg(direction ORDER BY n))[1] AS direction,"
		"    (array_agg(from_number ORDER BY n))[1] AS from_number,"
		"    (array_agg(to_number ORDER BY n))[1] AS to_number,"
		"    (array_agg(answered_by ORDER BY n DESC) FILTER (WHERE answered_by IS NOT NULL))[1]"
		"      AS answered_by,"
		"    (array_agg(duration ORDER BY n DESC) FILTER (WHERE duration IS NOT NULL))[1]"
		"      AS duration,"
		"    (array_agg(sip ORDER BY n DESC) FILTER (WHERE sip IS NOT NULL))[1] AS sip"
		"  FROM fresh GROUP BY call_sid"
		"), up AS ("
		"  INSERT INTO calls AS c (call_sid, account_sid, direction, from_number, to_number,"
		"    status, sequence_number, answered_by, duration_seconds, sip_response_code)"
		"  SELECT call_sid, account_sid, direction, from_number, to_number, status, seq,"
		"    answered_by, duration, sip FROM w ORDER BY call_sid"
		"  ON CONFLICT (call_sid) DO UPDATE SET " UPSERT_SET
		"  RETURNING c.call_sid, c.status"
		") SELECT fresh.n IS NOT NULL, w.won IS NOT DISTINCT FROM i.n, up.status,"
		"  CASE WHEN w.won = i.n THEN (SELECT status FROM calls WHERE call_sid = i.call_sid) END"
		" FROM i LEFT JOIN fresh ON fresh.n = i.n LEFT JOIN w ON w.call_sid = i.call_sid"
		" LEFT JOIN up ON up.call_sid = i.call_sid AND w.won = i.n"
		" ORDER BY i.n", 12, true },
	/* an existing key is taken over only once it is older than 24 hours;
	 * the owner holds a pending key for a lease of $4 ms (0006) */
	[STMT_IDEM_CLAIM] = { "idem_claim",
		"INSERT INTO idempotency_keys AS k (api_key_name, idem_key, request_hash, lease_until)"
		" VALUES ($1, $2, $3, now() + $4::integer * interval '1 millisecond')"
		" ON CONFLICT (api_key_name, idem_key) DO UPDATE SET request_hash = EXCLUDED.request_hash,"
		"   state = 'pending', response_status = NULL, response_body = NULL, call_sid = NULL,"
		"   created_at = now(), lease_until = EXCLUDED.lease_until"
		" WHERE k.created_at < now() - interval '24 hours'"
		" RETURNING 1", 4, false },
	/* abandoned: pending past its lease, so its owner died mid-request */
	[STMT_IDEM_GET] = { "idem_get",
		"SELECT request_hash, state, response_status, response_body,"
		" (state = 'pending' AND coalesce(lease_until < now(), true)), coalesce(call_sid, '')"
		" FROM idempotency_keys WHERE api_key_name = $1 AND idem_key = $2", 2, true },
	/* only a pending key: a request that ends after its lease, once
	 * reconciliation linked the real call, must not overwrite that answer */
	[STMT_IDEM_COMPLETE] = { "idem_complete",
		"UPDATE idempotency_keys SET state = 'done', response_status = $3::integer,"
		" response_body = $4, call_sid = $5 WHERE api_key_name = $1 AND idem_key = $2"
		" AND state = 'pending'", 5, true },
	[STMT_IDEM_RELEASE] = { "idem_release",
		"DELETE FROM idempotency_keys WHERE api_key_name = $1 AND idem_key = $2"
		" AND state = 'pending'", 2, true },
	[STMT_IDEM_PURGE] = { "idem_purge",
		"DELETE FROM idempotency_keys WHERE created_at < now() - interval '24 hours'", 0, true },
	[STMT_CALL_INSERT] = { "call_insert",
		"INSERT INTO calls AS c (call_sid, account_sid, direction, from_number, to_number,"
		"   status, api_key_name) VALUES ($1, $2, $3, $4, $5, $6, $7)"
		" ON CONFLICT (call_sid) DO UPDATE SET api_key_name = EXCLUDED.api_key_name"
		" RETURNING json_build_object(" CALL_FIELDS ")::text", 7, true },
	[STMT_CALL_GET] = { "call_get",
		"SELECT json_build_object(" CALL_FIELDS ", 'events', coalesce(("
		"   SELECT json_agg(json_build_object('status', e.status,"
		"     'sequence_number', e.sequence_number, 'received_at', " TS("e.received_at") ","
		"     'payload', e.payload) ORDER BY e.received_at, e.id)"
		"   FROM call_events e WHERE e.call_sid = c.call_sid), '[]'::json),"
		" 'recordings', " CALL_RECORDINGS ")::text"
		" FROM calls c WHERE c.call_sid = $1 AND " CALL_VISIBLE("$2"), 2, true },
	[STMT_CALLS_LIST] = { "calls_list",
		"SELECT json_build_object(" CALL_FIELDS ")::text, " TS("c.created_at") ", c.call_sid"
		" FROM calls c"
		" WHERE ($1::text IS NULL OR c.status = $1) AND ($2::text IS NULL OR c.direction = $2)"
		/* the cursor as one row comparison the index can seek to (no cursor:
		 * ('infinity', '') is after every row), not an OR that a generic
		 * plan can only filter: a deep page stays one index probe */
		"   AND (c.created_at, c.call_sid) < (coalesce($3::timestamptz, 'infinity'), coalesce($4::text, ''))"
		" ORDER BY c.created_at DESC, c.call_sid DESC LIMIT $5::integer", 5, true },
	/* the same for one key's calls: the key's name first, so the seek and
	 * the order are both calls_owner_created's (0004) */
	[STMT_CALLS_LIST_OWN] = { "calls_list_own",
		"SELECT json_build_object(" CALL_FIELDS ")::text, " TS("c.created_at") ", c.call_sid"
		" FROM calls c"
		" WHERE c.api_key_name = $6"
		"   AND ($1::text IS NULL OR c.status = $1) AND ($2::text IS NULL OR c.direction = $2)"
		"   AND (c.created_at, c.call_sid) < (coalesce($3::timestamptz, 'infinity'), coalesce($4::text, ''))"
		" ORDER BY c.created_at DESC, c.call_sid DESC LIMIT $5::integer", 6, true },
	[STMT_CALL_STATE] = { "call_state",
		"SELECT c.status, json_build_object(" CALL_FIELDS ")::text"
		" FROM calls c WHERE c.call_sid = $1 AND " CALL_VISIBLE("$2"), 2, true },
	/* a new recording, or its status moving forward: never away from a
	 * final one, and the same status again (a redelivery) changes nothing */
	[STMT_RECORDING_RECORD] = { "recording_record",
		"INSERT INTO recordings AS r (recording_sid, call_sid, account_sid, status,"
		"   duration_seconds, channels, source, track, media_url, error_code, started_at, payload)"
		" VALUES ($1, $2, $3, $4, $5::integer, $6::smallint, $7, $8, $9, $10::integer,"
		"   $11::timestamptz, $12::jsonb)"
		" ON CONFLICT (recording_sid) DO UPDATE SET status = EXCLUDED.status,"
		"   duration_seconds = coalesce(EXCLUDED.duration_seconds, r.duration_seconds),"
		"   channels = coalesce(EXCLUDED.channels, r.channels),"
		"   source = coalesce(EXCLUDED.source, r.source),"
		"   track = coalesce(EXCLUDED.track, r.track),"
		"   media_url = coalesce(EXCLUDED.media_url, r.media_url),"
		"   error_code = coalesce(EXCLUDED.error_code, r.error_code),"
		"   started_at = coalesce(EXCLUDED.started_at, r.started_at),"
		"   payload = EXCLUDED.payload, updated_at = now()"
		" WHERE r.status NOT IN " RECORDING_FINAL " AND EXCLUDED.status <> r.status"
		" RETURNING 1", 12, true },
	[STMT_RECORDING_GET] = { "recording_get",
		"SELECT json_build_object(" RECORDING_FIELDS ")::text"
		" FROM recordings r LEFT JOIN calls c ON c.call_sid = r.call_sid"
		" WHERE r.recording_sid = $1 AND " CALL_VISIBLE("$2"), 2, true },
	/* what a keyed POST /call sends, written just before it dials, so
	 * reconciliation can find the call if the answer is lost (0005) */
	[STMT_IDEM_DIALING] = { "idem_dialing",
		"UPDATE idempotency_keys SET dial_to = $3, dial_from = $4, dial_started_at = now(),"
		" dial_lookups = 0, dial_looked_at = NULL"
		" WHERE api_key_name = $1 AND idem_key = $2 AND state = 'pending'", 4, true },
	/* the one pass at a time of the deployment: free (expired, or ours),
	 * not paused after a 429, and the last pass at least $3 ms ago */
	[STMT_RECONCILE_LEASE] = { "reconcile_lease",
		"UPDATE reconcile_lease SET holder = $1,"
		"   lease_until = now() + $2::integer * interval '1 millisecond'"
		" WHERE name = 'reconcile' AND (lease_until < now() OR holder = $1)"
		"   AND paused_until <= now()"
		"   AND last_pass_at <= now() - $3::integer * interval '1 millisecond'"
		" RETURNING backoff_s", 3, true },
	[STMT_RECONCILE_RELEASE] = { "reconcile_release",
		"UPDATE reconcile_lease SET lease_until = '-infinity', last_pass_at = now(),"
		"   paused_until = CASE WHEN $2::integer > 0"
		"     THEN now() + $2::integer * interval '1 second' ELSE paused_until END,"
		"   backoff_s = $3::integer"
		" WHERE name = 'reconcile' AND holder = $1", 3, true },
	/* recent calls (calls_created) of our account that are not final and
	 * have not changed nor been fetched for $2 seconds, least recently
	 * looked at first */
	[STMT_RECONCILE_STALE] = { "reconcile_stale",
		"SELECT call_sid, status FROM calls"
		" WHERE created_at > now() - interval '48 hours' AND account_sid = $1"
		"   AND status IN ('queued', 'initiated', 'ringing', 'in-progress')"
		"   AND greatest(updated_at, coalesce(reconciled_at, '-infinity'))"
		"     < now() - $2::integer * interval '1 second'"
		" ORDER BY coalesce(reconciled_at, updated_at) LIMIT $3::integer", 3, true },
	[STMT_RECONCILE_CHECKED] = { "reconcile_checked",
		"UPDATE calls SET reconciled_at = now() WHERE call_sid = $1", 1, true },
	/* keys whose call is unknown: dialed at least $2 s ago (done, or still
	 * pending past their lease (0006): the request died; $3 s after
	 * dialing for a key without one), not looked up in the last $2 s, fewer
	 * than $1 lookups; with StartTime>'s date (5 minutes earlier: clocks
	 * differ) */
	[STMT_RECONCILE_DIALS] = { "reconcile_dials",
		"SELECT api_key_name, idem_key, dial_to, dial_from,"
		"   extract(epoch FROM dial_started_at)::bigint,"
		"   to_char((dial_started_at - interval '5 minutes') AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
		" FROM idempotency_keys"
		" WHERE dial_started_at IS NOT NULL AND call_sid IS NULL"
		"   AND dial_started_at > now() - interval '24 hours'"
		"   AND dial_started_at < now() - $2::integer * interval '1 second'"
		"   AND (state = 'done' OR coalesce(lease_until,"
		"     dial_started_at + $3::integer * interval '1 second') < now())"
		"   AND coalesce(dial_looked_at, '-infinity') < now() - $2::integer * interval '1 second'"
		"   AND dial_lookups < $1::integer"
		" ORDER BY dial_started_at LIMIT $4::integer", 4, true },
	[STMT_RECONCILE_DIAL_LOOKED] = { "reconcile_dial_looked",
		"UPDATE idempotency_keys SET dial_lookups = dial_lookups + 1, dial_looked_at = now()"
		" WHERE api_key_name = $1 AND idem_key = $2", 2, false },
	[STMT_RECONCILE_CALL_STATE] = { "reconcile_call_state",
		"SELECT api_key_name IS NOT NULL, status FROM calls WHERE call_sid = $1", 1, true },
	/* in one statement: the call is recorded (or, known from its callbacks
	 * only, given the key's name) unless a POST /call already owns it, and
	 * then becomes the key's answer, 201 with the call, as if Twilio's reply
	 * had arrived */
	[STMT_RECONCILE_LINK] = { "reconcile_link",
		"WITH k AS ("
		"  SELECT api_key_name FROM idempotency_keys"
		"  WHERE api_key_name = $1 AND idem_key = $2 AND call_sid IS NULL FOR UPDATE"
		"), ins AS ("
		"  INSERT INTO calls AS c (call_sid, account_sid, direction, from_number, to_number,"
		"    status, api_key_name)"
		"  SELECT $3, $4, $5, $6, $7, $8, k.api_key_name FROM k"
		"  ON CONFLICT (call_sid) DO UPDATE SET api_key_name = EXCLUDED.api_key_name"
		"  WHERE c.api_key_name IS NULL"
		"  RETURNING json_build_object(" CALL_FIELDS ")::text AS j"
		"), u AS ("
		"  UPDATE idempotency_keys SET state = 'done', response_status = 201,"
		"    response_body = (SELECT j FROM ins), call_sid = $3,"
		"    dial_lookups = dial_lookups + 1, dial_looked_at = now()"
		"  WHERE api_key_name = $1 AND idem_key = $2 AND EXISTS (SELECT 1 FROM ins) RETURNING 1"
		") SELECT (SELECT count(*) FROM u)::integer", 8, false },
};

/* One PostgreSQL connection of the pool. */
struct conn {
	PGconn *pg;
	bool prepared[STMT__COUNT];
	bool connected_once; /* a later connection is a reconnect */
};

/*
 * A thread waiting for a connection. A connection that comes back goes
 * straight to the oldest waiter, and only that thread is woken: with a
 * shared condition variable every return woke all the waiting threads
 * (perf under POST /call load: 40 % of call_fcgi's time in futex wake-ups
 * and context switches of threads that found nothing to take).
 */
struct waiter {
	pthread_cond_t cv;
	struct conn *c;             /* handed over, not yet taken */
	struct waiter *prev, *next; /* in db->waiters while queued */
	bool queued;
};

struct op;

/* A write (a callback, a call's row) waiting in group_commit: to lead the
 * next batch, or, once in a batch, for its result (cv is signalled when it
 * may lead, when the breaker opens, and when done). */
struct pending {
	struct op *op;
	struct pending *next;
	pthread_cond_t cv;
	bool taken; /* in a batch that a leader is running */
	bool done;
};

/*
 * The pool: nconns connections, opened lazily, lent to one thread at a time.
 * mu guards everything below conns: the idle list, the waiters (oldest
 * first) and the callback queue.
 */
struct db {
	char *conninfo;
	pthread_mutex_t mu;
	struct conn *conns;
	int *idle; /* indexes of idle connections */
	int nconns, nidle;
	struct waiter *whead, *wtail; /* threads waiting for a connection */
	struct pending *head, *tail; /* callbacks not yet in a batch, oldest first */
	bool leading; /* a batch is being gathered or run: one at a time */
	/* circuit breaker: once PostgreSQL is unreachable (no connection, or no
	 * answer in time), calls fail at once instead of each paying the
	 * connect timeout or the deadline, until db_probe reaches it again */
	bool open;
	long long next_probe_ms;
	/* db_keys_watch: the thread, its connection (out of conns, never
	 * idle), the eventfd that stops it; keys_gen and keys_live are atomics */
	pthread_t watcher;
	struct conn *watch;
	int watch_stop;
	bool watch_quit;
	bool keyed_only; /* db_keyed_only */
	unsigned long long keys_gen;
	bool keys_live;
};

struct db *db_new(const char *conninfo, int nconns)
{
	struct db *db = calloc(1, sizeof *db);
	int i;

	if (db == NULL || nconns < 1)
		goto fail;
	db->conninfo = strdup(conninfo);
	db->conns = calloc((size_t)nconns, sizeof *db->conns);
	db->idle = calloc((size_t)nconns, sizeof *db->idle);
	if (db->conninfo == NULL || db->conns == NULL || db->idle == NULL)
		goto fail;
	pthread_mutex_init(&db->mu, NULL);
	for (i = 0; i < nconns; i++)
		db->idle[i] = nconns - 1 - i;
	db->nconns = db->nidle = nconns;
	return db;
fail:
	if (db != NULL) {
		free(db->conninfo);
		free(db->conns);
		free(db->idle);
		free(db);
	}
	return NULL;
}

void db_keyed_only(struct db *db)
{
	db->keyed_only = true;
}

static void conn_close(struct conn *c)
{
	PQfinish(c->pg);
	c->pg = NULL;
	memset(c->prepared, 0, sizeof c->prepared);
}

void db_free(struct db *db)
{
	int i;

	if (db == NULL)
		return;
	if (db->watch != NULL) {
		uint64_t one = 1;

		/* the flag alone stops it within DB_KEYS_PROBE_MS; the eventfd at once */
		__atomic_store_n(&db->watch_quit, true, __ATOMIC_SEQ_CST);
		if (write(db->watch_stop, &one, sizeof one) != (ssize_t)sizeof one)
			log_warn("could not wake the api key watch to stop it");
		pthread_join(db->watcher, NULL);
		close(db->watch_stop);
	}
	for (i = 0; i < db->nconns; i++)
		conn_close(&db->conns[i]);
	pthread_mutex_destroy(&db->mu);
	free(db->conns);
	free(db->idle);
	free(db->conninfo);
	free(db);
}

/* The first line of a libpq message, without the trailing newline. */
static void first_line(const char *msg, char *out, size_t outsz)
{
	str_copy(out, outsz, msg != NULL ? msg : "");
	out[strcspn(out, "\r\n")] = '\0';
}

/* libpq's default notice processor prints the server's messages as plain
 * text on stderr; route them through the logger so stderr stays JSON lines. */
static void db_notice(void *arg, const PGresult *r)
{
	const char *sev = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
	const char *text = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
	bool loud = sev != NULL && (strcmp(sev, "WARNING") == 0 || strcmp(sev, "ERROR") == 0 ||
	                            strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0);
	char msg[256];

	(void)arg;
	first_line(text, msg, sizeof msg);
	log_emit(loud ? LOG_WARN : LOG_DEBUG, "database notice", LF_STR("severity", sev),
	         LF_STR("sqlstate", PQresultErrorField(r, PG_DIAG_SQLSTATE)), LF_STR("message", msg),
	         LF_END);
}

/* An absolute CLOCK_MONOTONIC time, for pthread_cond_timedwait on a
 * waiter's cv. */
static struct timespec abs_ms(long long at_ms)
{
	struct timespec ts = { (time_t)(at_ms / 1000), (long)(at_ms % 1000) * 1000000L };

	return ts;
}

/* A condition variable whose timed waits take abs_ms times. */
static void cond_init_mono(pthread_cond_t *cv)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(cv, &ca);
	pthread_condattr_destroy(&ca);
}

static void waiter_init(struct waiter *w)
{
	cond_init_mono(&w->cv);
	w->c = NULL;
	w->prev = w->next = NULL;
	w->queued = false;
}

/* The caller holds db->mu (also for the two below). */
static void waiter_enqueue(struct db *db, struct waiter *w)
{
	w->prev = db->wtail;
	w->next = NULL;
	if (db->wtail != NULL)
		db->wtail->next = w;
	else
		db->whead = w;
	db->wtail = w;
	w->queued = true;
}

static void waiter_remove(struct db *db, struct waiter *w)
{
	if (!w->queued)
		return;
	if (w->prev != NULL)
		w->prev->next = w->next;
	else
		db->whead = w->next;
	if (w->next != NULL)
		w->next->prev = w->prev;
	else
		db->wtail = w->prev;
	w->queued = false;
}

/* Wakes every waiter to look at the breaker again. */
static void waiters_wake(struct db *db)
{
	struct waiter *w;

	for (w = db->whead; w != NULL; w = w->next)
		pthread_cond_signal(&w->cv);
}

/* Opens the breaker (PostgreSQL unreachable); logged once per outage. */
static void breaker_trip(struct db *db)
{
	bool was;

	pthread_mutex_lock(&db->mu);
	was = db->open;
	db->open = true;
	db->next_probe_ms = clock_mono_ms() + DB_PROBE_MS;
	waiters_wake(db); /* waiting requests and callbacks: give up now */
	for (struct pending *p = db->head; p != NULL; p = p->next)
		pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&db->mu);
	if (!was)
		log_warn("database unreachable: failing fast until a probe reaches it",
		         LF_INT("probe_every_ms", DB_PROBE_MS));
}

static bool breaker_open(struct db *db)
{
	return __atomic_load_n(&db->open, __ATOMIC_RELAXED);
}

/* Borrows an idle connection, waiting until deadline (clock_mono_ms) at
 * most; NULL (counted as "unavailable") when none came back in time, or at
 * once while the breaker is open (unless probing). */
static void conn_put_locked(struct db *db, struct conn *c);

static struct conn *conn_take(struct db *db, bool probing, long long deadline)
{
	struct conn *c = NULL;

	pthread_mutex_lock(&db->mu);
	if (db->nidle > 0 && (probing || !db->open)) {
		c = &db->conns[db->idle[--db->nidle]];
	} else if (probing || !db->open) {
		struct timespec ts = abs_ms(deadline);
		struct waiter w;

		waiter_init(&w);
		waiter_enqueue(db, &w);
		while (w.c == NULL && (probing || !db->open))
			if (pthread_cond_timedwait(&w.cv, &db->mu, &ts) == ETIMEDOUT)
				break;
		waiter_remove(db, &w);
		c = w.c;
		if (c != NULL && !probing && db->open) {
			conn_put_locked(db, c); /* the breaker opened meanwhile */
			c = NULL;
		}
		pthread_cond_destroy(&w.cv);
	}
	pthread_mutex_unlock(&db->mu);
	if (c == NULL && !probing) {
		if (!breaker_open(db))
			log_warn("no database connection came free in time",
			         LF_INT("connections", db->nconns));
		metrics_count_db_error(VERR_DB_DOWN);
	}
	return c;
}

/*
 * Leaves c outside any transaction: a failed batch leaves its BEGIN open
 * and aborted (the server skipped to the Sync, COMMIT included), so roll it
 * back. A connection that still is not idle is closed. True when c is idle.
 */
static PGresult *conn_finish(struct conn *c, long long deadline, bool *late);

static bool conn_idle(struct conn *c)
{
	PGTransactionStatusType ts;

	if (c->pg == NULL)
		return true;
	ts = PQtransactionStatus(c->pg);
	if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR) {
		bool late = false;

		if (PQsendQuery(c->pg, "ROLLBACK") == 1)
			PQclear(conn_finish(c, clock_mono_ms() + DB_DEADLINE_MS, &late));
		ts = late ? PQTRANS_UNKNOWN : PQtransactionStatus(c->pg);
	}
	if (ts != PQTRANS_IDLE) {
		conn_close(c);
		return false;
	}
	return true;
}

/* Gives c back (never inside a transaction) to the oldest waiter, or to
 * the idle list; the caller holds db->mu. */
static void conn_put_locked(struct db *db, struct conn *c)
{
	struct waiter *w = db->whead;

	if (w == NULL) {
		db->idle[db->nidle++] = (int)(c - db->conns);
		return;
	}
	waiter_remove(db, w);
	w->c = c;
	pthread_cond_signal(&w->cv);
}

static void conn_put(struct db *db, struct conn *c)
{
	conn_idle(c);
	pthread_mutex_lock(&db->mu);
	conn_put_locked(db, c);
	pthread_mutex_unlock(&db->mu);
}

/* The connection's effective connect_timeout in milliseconds (the
 * non-blocking connect below must enforce it itself). */
static long long connect_timeout_ms(PGconn *conn)
{
	PQconninfoOption *opts = PQconninfo(conn), *o;
	long long secs = 5;

	for (o = opts; o != NULL && o->keyword != NULL; o++)
		if (strcmp(o->keyword, "connect_timeout") == 0 && o->val != NULL)
			num_parse(o->val, 1, 3600, &secs);
	PQconninfoFree(opts);
	return secs * 1000;
}

static struct conn *conn_get(struct db *db)
{
	return conn_take(db, false, clock_mono_ms() + DB_ACQUIRE_MS);
}

/*
 * Connects c without blocking past connect_timeout, with the notice receiver
 * installed before the startup exchange so even its messages are logged as
 * JSON. VERR_DB_DOWN when the server cannot be reached.
 */
#define DB_OPTIONS                                       \
	"-c statement_timeout=5000 -c lock_timeout=2000" \
	" -c idle_in_transaction_session_timeout=30000"

static enum verr conn_open(const struct db *db, struct conn *c)
{
	/* conninfo comes last so that its own settings (e.g. connect_timeout,
	 * sslmode=require for Supabase, or options) win over these defaults:
	 * no statement may wait on a lock or run for long, and a connection
	 * whose peer vanished (failover, half-open TCP) is noticed in seconds */
	const char *const keys[] = { "connect_timeout", "application_name", "keepalives",
		"keepalives_idle", "keepalives_interval", "keepalives_count", "tcp_user_timeout",
		"options", "dbname", NULL };
	const char *const vals[] = { "5", "twilio-voice", "1", "10", "5", "3", "10000",
		db->keyed_only ? DB_OPTIONS " -c enable_seqscan=off" : DB_OPTIONS, db->conninfo, NULL };
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	long long deadline;
	char msg[256];

	if (c->pg != NULL && PQstatus(c->pg) == CONNECTION_OK)
		return VERR_OK;
	conn_close(c);
	c->pg = PQconnectStartParams(keys, vals, 1);
	if (c->pg == NULL)
		return VERR_NOMEM;
	PQsetNoticeReceiver(c->pg, db_notice, NULL);
	deadline = clock_mono_ms() + connect_timeout_ms(c->pg);
	str_copy(msg, sizeof msg, "timed out");
	while (PQstatus(c->pg) != CONNECTION_BAD && st != PGRES_POLLING_OK &&
	       st != PGRES_POLLING_FAILED) {
		struct pollfd pfd = { PQsocket(c->pg),
			(short)(st == PGRES_POLLING_READING ? POLLIN : POLLOUT), 0 };
		long long left = deadline - clock_mono_ms();
		int n;

		if (left <= 0)
			break;
		n = poll(&pfd, 1, (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		st = PQconnectPoll(c->pg);
	}
	if (st != PGRES_POLLING_OK || PQstatus(c->pg) != CONNECTION_OK) {
		if (PQstatus(c->pg) == CONNECTION_BAD || st == PGRES_POLLING_FAILED)
			first_line(PQerrorMessage(c->pg), msg, sizeof msg);
		log_warn("could not connect to the database", LF_STR("error", msg));
		conn_close(c);
		return VERR_DB_DOWN;
	}
	log_info("connected to the database", LF_INT("server_version", PQserverVersion(c->pg)));
	if (c->connected_once)
		metrics_count_db_reconnect();
	c->connected_once = true;
	return VERR_OK;
}

/*
 * Waits until libpq holds a whole result (PQgetResult will not block), at
 * most until deadline (clock_mono_ms). false on timeout: the server did not answer
 * in time (hung, or a half-open connection); the caller closes c.
 */
static bool conn_await(struct conn *c, long long deadline)
{
	while (PQisBusy(c->pg)) {
		struct pollfd pfd = { PQsocket(c->pg), POLLIN, 0 };
		long long left = deadline - clock_mono_ms();
		int n;

		if (left <= 0)
			return false;
		n = poll(&pfd, 1, (int)left);
		if (n < 0 && errno != EINTR)
			return true; /* PQgetResult reports the broken connection */
		if (n > 0 && PQconsumeInput(c->pg) == 0)
			return true;
	}
	return true;
}

/* The next result of c within deadline; NULL with *late set when the server
 * did not answer in time. */
static PGresult *conn_result(struct conn *c, long long deadline, bool *late)
{
	if (!conn_await(c, deadline)) {
		*late = true;
		return NULL;
	}
	return PQgetResult(c->pg);
}

/* Every result of the command just sent, the first returned (the rest
 * cleared). NULL with *late set on timeout. */
static PGresult *conn_finish(struct conn *c, long long deadline, bool *late)
{
	PGresult *res = conn_result(c, deadline, late), *more;

	while (res != NULL && (more = conn_result(c, deadline, late)) != NULL)
		PQclear(more);
	if (*late) {
		PQclear(res);
		return NULL;
	}
	return res;
}

/*
 * What an error result means: VERR_DB when the same statement would be
 * refused again (SQLSTATE class 22, data exception, and 23, integrity
 * constraint violation: the data is at fault); VERR_DB_DOWN for everything
 * else, which passes (a read-only standby after a failover 25006, a
 * statement or lock timeout 57014/55P03, too many connections 53xxx, a
 * serialization failure or deadlock 40xxx, a shutdown 57P0x...).
 */
static enum verr classify(const PGresult *res)
{
	const char *st = PQresultErrorField(res, PG_DIAG_SQLSTATE);

	if (st != NULL && (strncmp(st, "22", 2) == 0 || strncmp(st, "23", 2) == 0))
		return VERR_DB;
	return VERR_DB_DOWN;
}

static enum verr conn_prepare(struct conn *c, enum stmt id)
{
	PGresult *res = NULL;
	char msg[256];
	enum verr e = VERR_OK;
	bool late = false;

	if (c->prepared[id])
		return VERR_OK;
	if (PQsendPrepare(c->pg, stmts[id].name, stmts[id].sql, stmts[id].nparams, NULL) == 1)
		res = conn_finish(c, clock_mono_ms() + DB_DEADLINE_MS, &late);
	if (late) {
		log_warn("the database did not answer in time", LF_STR("statement", stmts[id].name),
		         LF_INT("deadline_ms", DB_DEADLINE_MS));
		conn_close(c);
		return VERR_DB_DOWN;
	}
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		first_line(PQerrorMessage(c->pg), msg, sizeof msg);
		e = PQstatus(c->pg) == CONNECTION_OK ? classify(res) : VERR_DB_DOWN;
		/* a lost connection is retried by the caller: not an error yet */
		log_emit(e == VERR_DB ? LOG_ERROR : LOG_WARN,
		         e == VERR_DB ? "could not prepare statement" : "lost the database connection",
		         LF_STR("statement", stmts[id].name), LF_STR("error", msg), LF_END);
	} else {
		c->prepared[id] = true;
	}
	PQclear(res);
	return e;
}

/* Connects c if needed and prepares statement id on it. */
static enum verr conn_ready(const struct db *db, struct conn *c, enum stmt id)
{
	enum verr e = conn_open(db, c);

	return e == VERR_OK ? conn_prepare(c, id) : e;
}

/*
 * Runs prepared statement id with params on c; on success *out holds a
 * result whose status is want (caller frees with PQclear). A connection lost
 * before or during the statement is re-established, and the statement sent
 * once more if it is retry_safe. No answer within DB_DEADLINE_MS closes the
 * connection. VERR_DB_DOWN (unreachable, too slow, or a passing error, see
 * classify), VERR_DB (refused for good); both logged.
 */
static enum verr conn_run(const struct db *db, struct conn *c, enum stmt id,
                          const char *const *params, ExecStatusType want, PGresult **out)
{
	int attempt;
	char msg[256];

	*out = NULL;
	for (attempt = 0; attempt < 2; attempt++) {
		PGresult *res = NULL;
		bool late = false;
		enum verr e = conn_ready(db, c, id);

		if (e == VERR_DB_DOWN && attempt == 0 && c->pg != NULL) {
			conn_close(c);
			continue;
		}
		if (e != VERR_OK) {
			metrics_count_db_error(e);
			return e;
		}
		if (PQsendQueryPrepared(c->pg, stmts[id].name, stmts[id].nparams, params, NULL, NULL, 0) == 1)
			res = conn_finish(c, clock_mono_ms() + DB_DEADLINE_MS, &late);
		if (late) {
			log_warn("the database did not answer in time", LF_STR("statement", stmts[id].name),
			         LF_INT("deadline_ms", DB_DEADLINE_MS));
			conn_close(c);
			metrics_count_db_error(VERR_DB_DOWN);
			return VERR_DB_DOWN;
		}
		if (PQresultStatus(res) == want) {
			*out = res;
			return VERR_OK;
		}
		first_line(PQerrorMessage(c->pg), msg, sizeof msg);
		if (PQstatus(c->pg) != CONNECTION_OK) {
			PQclear(res);
			conn_close(c);
			log_warn("lost the database connection", LF_STR("statement", stmts[id].name),
			         LF_STR("error", msg));
			if (attempt == 0 && stmts[id].retry_safe)
				continue;
			metrics_count_db_error(VERR_DB_DOWN);
			return VERR_DB_DOWN;
		}
		e = classify(res);
		log_emit(e == VERR_DB ? LOG_ERROR : LOG_WARN, "database statement failed",
		         LF_STR("statement", stmts[id].name), LF_STR("error", msg),
		         LF_STR("sqlstate", PQresultErrorField(res, PG_DIAG_SQLSTATE)),
		         LF_STR("kind", e == VERR_DB ? "refused" : "transient"), LF_END);
		PQclear(res);
		metrics_count_db_error(e);
		return e;
	}
	metrics_count_db_error(VERR_DB_DOWN);
	return VERR_DB_DOWN;
}

/* conn_run on a connection borrowed from the pool for this one statement
 * (a PGresult outlives its connection). */
static enum verr db_run(struct db *db, enum stmt id, const char *const *params,
                        ExecStatusType want, PGresult **out)
{
	struct conn *c = conn_get(db);
	enum verr e;

	*out = NULL;
	if (c == NULL)
		return VERR_DB_DOWN;
	e = conn_run(db, c, id, params, want, out);
	if (e == VERR_DB_DOWN && c->pg == NULL)
		breaker_trip(db); /* unreachable or hung, not a passing SQL error */
	conn_put(db, c);
	return e;
}

enum verr db_probe(struct db *db)
{
	struct conn *c;
	PGresult *res;
	enum verr e;

	if (!breaker_open(db) || clock_mono_ms() < __atomic_load_n(&db->next_probe_ms, __ATOMIC_RELAXED))
		return breaker_open(db) ? VERR_DB_DOWN : VERR_OK;
	c = conn_take(db, true, clock_mono_ms() + DB_ACQUIRE_MS);
	if (c == NULL)
		return VERR_DB_DOWN;
	e = conn_run(db, c, STMT_PING, NULL, PGRES_TUPLES_OK, &res);
	PQclear(res);
	conn_put(db, c);
	pthread_mutex_lock(&db->mu);
	if (e == VERR_OK)
		db->open = false;
	else
		db->next_probe_ms = clock_mono_ms() + DB_PROBE_MS;
	pthread_mutex_unlock(&db->mu);
	if (e == VERR_OK)
		log_info("database reachable again");
	return e;
}

enum verr db_ping(struct db *db)
{
	PGresult *res;
	enum verr e = db_run(db, STMT_PING, NULL, PGRES_TUPLES_OK, &res);

	PQclear(res);
	return e == VERR_OK ? VERR_OK : VERR_DB_DOWN;
}

enum verr db_apikey_find(struct db *db, const char *hash_hex, char *name, size_t namesz,
                         bool *read_all)
{
	const char *params[1] = { hash_hex };
	PGresult *res;
	enum verr e = db_run(db, STMT_APIKEY_FIND, params, PGRES_TUPLES_OK, &res);

	*read_all = false;
	if (e == VERR_OK) {
		if (PQntuples(res) == 0) {
			e = VERR_NOTFOUND;
		} else {
			str_copy(name, namesz, PQgetvalue(res, 0, 0));
			*read_all = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
		}
	}
	PQclear(res);
	return e;
}

#define KEYS_RETRY_MS 1000        /* reconnect the watch, doubling while the */
#define KEYS_RETRY_MAX_MS 30000   /* database stays unreachable, up to this */
#define KEYS_NO_TRIGGER_MS 5000   /* look for a missing trigger again */

/* A new generation either way, so nothing read under the old one stays
 * good; live first when going down, last when coming up. */
static void keys_set_live(struct db *db, bool live)
{
	if (!live)
		__atomic_store_n(&db->keys_live, false, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&db->keys_gen, 1, __ATOMIC_SEQ_CST);
	if (live)
		__atomic_store_n(&db->keys_live, true, __ATOMIC_SEQ_CST);
}

unsigned long long db_keys_generation(struct db *db)
{
	if (!__atomic_load_n(&db->keys_live, __ATOMIC_SEQ_CST))
		return 0;
	return __atomic_load_n(&db->keys_gen, __ATOMIC_SEQ_CST);
}

/* Connects the watch and LISTENs; VERR_NOTFOUND when migration 0008's
 * trigger is missing or disabled (then notifications would never come). */
static enum verr keys_listen(const struct db *db, struct conn *c)
{
	PGresult *res;
	enum verr e = conn_open(db, c);

	if (e != VERR_OK)
		return e;
	/* origin ('O') and always ('A') triggers fire in a normal session */
	res = PQexec(c->pg, "LISTEN " DB_KEYS_CHANNEL ";"
	                    " SELECT count(*) FROM pg_trigger WHERE tgname = 'api_keys_notify'"
	                    " AND tgrelid = to_regclass('api_keys') AND tgenabled IN ('O', 'A')");
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		e = VERR_DB_DOWN;
	else if (strcmp(PQgetvalue(res, 0, 0), "1") != 0)
		e = VERR_NOTFOUND;
	PQclear(res);
	if (e != VERR_OK)
		conn_close(c);
	return e;
}

/* Reads what arrived: results of the probe, notifications. A change to
 * api_keys starts a new generation; the watch's own probe coming back
 * clears *probe_sent. false when the connection is lost. */
static bool keys_read(struct db *db, struct conn *c, long long *probe_sent)
{
	PGnotify *n;
	bool changed = false;

	if (PQconsumeInput(c->pg) != 1)
		return false;
	while (!PQisBusy(c->pg)) {
		PGresult *r = PQgetResult(c->pg);

		if (r == NULL)
			break;
		PQclear(r);
	}
	while ((n = PQnotifies(c->pg)) != NULL) {
		if (strcmp(n->extra, "probe") != 0)
			changed = true;
		else if (n->be_pid == PQbackendPID(c->pg))
			*probe_sent = 0;
		PQfreemem(n);
	}
	if (changed)
		keys_set_live(db, true);
	return PQstatus(c->pg) == CONNECTION_OK;
}

/*
 * The watch thread: (re)connects and LISTENs, then waits for notifications
 * and, every DB_KEYS_PROBE_MS, NOTIFYs itself: a probe not back within
 * DB_KEYS_PROBE_MS means notifications are not getting through, so the
 * connection is dropped and made again (generation 0 meanwhile).
 */
static void *keys_watch(void *arg)
{
	struct db *db = arg;
	struct conn *c = db->watch;
	long long probe_sent = 0, next_probe = 0, retry_at = 0, backoff = KEYS_RETRY_MS;
	bool live = false, warned = false;

	while (!__atomic_load_n(&db->watch_quit, __ATOMIC_SEQ_CST)) {
		struct pollfd pfd[2] = { { db->watch_stop, POLLIN, 0 }, { -1, POLLIN, 0 } };
		long long now = clock_mono_ms(), wake;
		const char *lost = NULL;

		if (!live && now >= retry_at) {
			enum verr e = keys_listen(db, c);

			if (e == VERR_OK) {
				live = true;
				probe_sent = 0;
				next_probe = now + DB_KEYS_PROBE_MS;
				keys_set_live(db, true);
				backoff = KEYS_RETRY_MS;
				if (warned)
					log_info("api keys are remembered again: the key watch is back");
				warned = false;
			} else {
				if (!warned)
					log_warn(e == VERR_NOTFOUND
					             ? "api keys are looked up on every request: the trigger "
					               "api_keys_notify (migration 0008) is missing or disabled"
					             : "api keys are looked up on every request until the key "
					               "watch reaches the database");
				warned = true;
				retry_at = now + (e == VERR_NOTFOUND ? KEYS_NO_TRIGGER_MS : backoff);
				if (e != VERR_NOTFOUND)
					backoff = backoff * 2 < KEYS_RETRY_MAX_MS ? backoff * 2 : KEYS_RETRY_MAX_MS;
			}
		}
		wake = !live ? retry_at : probe_sent ? probe_sent + DB_KEYS_PROBE_MS : next_probe;
		if (live)
			pfd[1].fd = PQsocket(c->pg);
		wake -= now;
		if (poll(pfd, 2, (int)(wake < 0 ? 0 : wake > DB_KEYS_PROBE_MS ? DB_KEYS_PROBE_MS : wake)) <
		        0 &&
		    errno != EINTR)
			break;
		if (pfd[0].revents != 0)
			break;
		if (!live)
			continue;
		now = clock_mono_ms();
		if (pfd[1].revents != 0 && !keys_read(db, c, &probe_sent))
			lost = "lost its connection";
		else if (probe_sent != 0 && now - probe_sent >= DB_KEYS_PROBE_MS)
			lost = "got no answer to its probe";
		else if (probe_sent == 0 && now >= next_probe) {
			if (PQsendQuery(c->pg, "NOTIFY " DB_KEYS_CHANNEL ", 'probe'") != 1)
				lost = "could not send its probe";
			probe_sent = now;
			next_probe = now + DB_KEYS_PROBE_MS;
		}
		if (lost != NULL) {
			log_warn("api keys are looked up on every request: the key watch failed",
			         LF_STR("error", lost));
			warned = true;
			live = false;
			keys_set_live(db, false);
			conn_close(c);
			retry_at = now + KEYS_RETRY_MS;
		}
	}
	keys_set_live(db, false);
	return NULL;
}

bool db_keys_watch(struct db *db)
{
	pthread_mutex_lock(&db->mu);
	if (db->watch != NULL || db->nidle < 2) {
		pthread_mutex_unlock(&db->mu);
		return false;
	}
	db->watch = &db->conns[db->idle[--db->nidle]];
	pthread_mutex_unlock(&db->mu);
	db->watch_stop = eventfd(0, EFD_CLOEXEC);
	if (db->watch_stop >= 0 && pthread_create(&db->watcher, NULL, keys_watch, db) == 0)
		return true;
	if (db->watch_stop >= 0)
		close(db->watch_stop);
	pthread_mutex_lock(&db->mu);
	conn_put_locked(db, db->watch);
	db->watch = NULL;
	pthread_mutex_unlock(&db->mu);
	return false;
}

/* A long long in decimal: up to 19 digits, a sign and the NUL. */
#define DB_MAX_INT_TEXT 21

/* Decimal text for an optional integer: NULL (SQL NULL) when negative. */
static const char *opt_int(long long v, char out[DB_MAX_INT_TEXT])
{
	if (v < 0)
		return NULL;
	snprintf(out, DB_MAX_INT_TEXT, "%lld", v);
	return out;
}

/* STMT_EVENT_RECORD's parameters for one callback; text points into t. */
struct event_text {
	char seq[DB_MAX_INT_TEXT], dur[DB_MAX_INT_TEXT], sip[DB_MAX_INT_TEXT];
};

static void event_params(const struct db_event *d, struct event_text *t, const char *params[12])
{
	const struct call_event *ev = d->ev;

	params[0] = ev->call_sid;
	params[1] = ev->status;
	params[2] = opt_int(ev->sequence_number, t->seq);
	params[3] = d->token != NULL && d->token[0] ? d->token : NULL;
	params[4] = ev->payload;
	params[5] = ev->account_sid;
	params[6] = ev->direction;
	params[7] = ev->from;
	params[8] = ev->to;
	params[9] = ev->answered_by[0] ? ev->answered_by : NULL;
	params[10] = opt_int(ev->duration_seconds, t->dur);
	params[11] = opt_int(ev->sip_response_code, t->sip);
}

/* Sets d's committed outcome (stored: the event was new; after and before:
 * its call's status after and before it, NULL when unknown) and counts the
 * call's first terminal status: the event is new, its status won, and the
 * call had no terminal status before. */
static void event_done(struct db_event *d, bool stored, const char *after, const char *before)
{
	const char *status = d->ev->status;

	d->result = VERR_OK;
	d->stored = stored;
	if (stored && after != NULL && strcmp(after, status) == 0 && metrics_status_final(status) &&
	    (before == NULL || !metrics_status_final(before)))
		metrics_count_call_final(status);
}

/* A result column as a C string, NULL for SQL NULL. */
static const char *col(const PGresult *res, int row, int k)
{
	return PQgetisnull(res, row, k) ? NULL : PQgetvalue(res, row, k);
}

/*
 * One write of a group commit: a status callback (ev: STMT_EVENT_RECORD,
 * its result in ev), the row of a call Twilio accepted (call:
 * STMT_CALL_INSERT, its call object into json), or several callbacks joined
 * into one STMT_EVENTS_RECORD (evs, with its parameter arrays in cols).
 * Each locks its calls rows, so a batch orders them by call sid.
 */
struct op {
	struct db_event *ev;
	const struct db_call *call;
	struct buf *json;
	struct op **evs;
	size_t nevs;
	struct buf *cols;
	enum verr result;
};

#define OP_MAX_PARAMS 12

static const char *op_sid(const struct op *o)
{
	return o->ev != NULL ? o->ev->ev->call_sid : o->call->call_sid;
}

static enum stmt op_stmt(const struct op *o)
{
	return o->evs != NULL ? STMT_EVENTS_RECORD
	       : o->ev != NULL ? STMT_EVENT_RECORD
	                       : STMT_CALL_INSERT;
}

/* o's statement parameters (text in t). */
static void op_params(const struct op *o, struct event_text *t, const char *params[OP_MAX_PARAMS])
{
	const struct db_call *c = o->call;
	int k;

	if (o->evs != NULL) {
		for (k = 0; k < OP_MAX_PARAMS; k++)
			params[k] = buf_str(&o->cols[k]);
		return;
	}
	if (o->ev != NULL) {
		event_params(o->ev, t, params);
		return;
	}
	params[0] = c->call_sid;
	params[1] = c->account_sid;
	params[2] = c->direction;
	params[3] = c->from;
	params[4] = c->to;
	params[5] = c->status;
	params[6] = c->api_key_name;
}

static void op_fail(struct op *o, enum verr e)
{
	size_t i;

	o->result = e;
	if (o->ev != NULL) {
		o->ev->result = e;
		o->ev->stored = false;
	}
	for (i = 0; i < o->nevs; i++)
		op_fail(o->evs[i], e);
}

/* o's committed result. */
static void op_result(struct op *o, const PGresult *res)
{
	size_t i;

	o->result = VERR_OK;
	if (o->evs != NULL) {
		if ((size_t)PQntuples(res) != o->nevs) { /* cannot happen: one row per element */
			op_fail(o, VERR_DB);
			return;
		}
		for (i = 0; i < o->nevs; i++) {
			int r = (int)i;

			o->evs[i]->result = VERR_OK;
			event_done(o->evs[i]->ev, strcmp(PQgetvalue(res, r, 0), "t") == 0,
			           strcmp(PQgetvalue(res, r, 1), "t") == 0 ? col(res, r, 2) : NULL,
			           col(res, r, 3));
		}
		return;
	}
	if (o->ev != NULL) {
		event_done(o->ev, strcmp(PQgetvalue(res, 0, 0), "0") != 0, col(res, 0, 1),
		           col(res, 0, 2));
		return;
	}
	buf_reset(o->json);
	o->result = PQntuples(res) == 1 ? buf_puts(o->json, PQgetvalue(res, 0, 0)) : VERR_NOTFOUND;
}

/* Appends v to the array literal a as an element ("…" with \\ and \"
 * escaped; NULL unquoted for SQL NULL). */
static enum verr array_add(struct buf *a, const char *v)
{
	enum verr e = buf_putc(a, a->len == 0 ? '{' : ',');

	if (v == NULL)
		return e == VERR_OK ? buf_puts(a, "NULL") : e;
	e = e == VERR_OK ? buf_putc(a, '"') : e;
	while (e == VERR_OK && *v != '\0') {
		size_t run = strcspn(v, "\"\\");

		e = buf_append(a, v, run);
		v += run;
		if (e == VERR_OK && *v != '\0') {
			e = buf_putc(a, '\\');
			if (e == VERR_OK)
				e = buf_putc(a, *v++);
		}
	}
	return e == VERR_OK ? buf_putc(a, '"') : e;
}

#define DB_BATCH_ARRAY_MAX (16u << 20) /* one parameter array of a joined batch */

/* Joins the callbacks ops[0..n) into j, one STMT_EVENTS_RECORD: each of its
 * parameters an array of event_record's, in batch order. VERR_INVALID when
 * the batch holds anything else (a call's row: the call pool). cols:
 * OP_MAX_PARAMS buffers, freed by the caller with buf_free whatever the
 * outcome. */
static enum verr join_events(struct op *j, struct op **ops, size_t n, struct buf *cols)
{
	enum verr e = VERR_OK;
	size_t i;
	int k;

	for (k = 0; k < OP_MAX_PARAMS; k++)
		buf_init(&cols[k], DB_BATCH_ARRAY_MAX);
	for (i = 0; i < n; i++)
		if (ops[i]->ev == NULL)
			return VERR_INVALID;
	*j = (struct op){ .evs = ops, .nevs = n, .cols = cols, .result = VERR_DB_DOWN };
	for (i = 0; e == VERR_OK && i < n; i++) {
		struct event_text t;
		const char *params[OP_MAX_PARAMS];

		event_params(ops[i]->ev, &t, params);
		for (k = 0; e == VERR_OK && k < OP_MAX_PARAMS; k++)
			e = array_add(&cols[k], params[k]);
	}
	for (k = 0; e == VERR_OK && k < OP_MAX_PARAMS; k++)
		e = buf_putc(&cols[k], '}');
	return e;
}

/* One write on its own (its own transaction). */
static void op_one(const struct db *db, struct conn *c, struct op *o)
{
	struct event_text t;
	const char *params[OP_MAX_PARAMS];
	PGresult *res;
	enum verr e;

	op_params(o, &t, params);
	e = conn_run(db, c, op_stmt(o), params, PGRES_TUPLES_OK, &res);
	if (e == VERR_OK)
		op_result(o, res);
	else
		op_fail(o, e);
	PQclear(res);
}

/* Sends "BEGIN" or "COMMIT" into the pipeline. */
static bool send_simple(PGconn *pg, const char *sql)
{
	return PQsendQueryParams(pg, sql, 0, NULL, NULL, NULL, NULL, 0) == 1;
}

/*
 * The batch in one round trip and one commit: BEGIN, the statements, COMMIT
 * and one Sync, in libpq's pipeline mode. Results are applied only once the
 * COMMIT succeeded. VERR_OK (every result set), VERR_DB when a statement
 * failed (the server rolled the whole batch back), VERR_DB_DOWN when the
 * connection broke, VERR_TIMEOUT when the server did not answer within
 * DB_DEADLINE_MS (whether it committed is unknown in both; c is closed).
 */
static enum verr pipeline(struct conn *c, struct op **ops, size_t n)
{
	PGresult **res = calloc(n, sizeof *res);
	PGconn *pg = c->pg;
	size_t writes = n == 1 && ops[0]->nevs > 0 ? ops[0]->nevs : n; /* for the log */
	long long deadline = clock_mono_ms() + DB_DEADLINE_MS;
	enum verr e = VERR_OK;
	bool sent, late = false;
	size_t i, cmd;
	char msg[256];

	if (res == NULL)
		return VERR_NOMEM;
	if (PQenterPipelineMode(pg) != 1) {
		free(res);
		return VERR_DB_DOWN;
	}
	sent = send_simple(pg, "BEGIN");
	for (i = 0; sent && i < n; i++) {
		struct event_text t;
		const char *params[OP_MAX_PARAMS];
		enum stmt id = op_stmt(ops[i]);

		op_params(ops[i], &t, params);
		sent = PQsendQueryPrepared(pg, stmts[id].name, stmts[id].nparams, params, NULL, NULL,
		                           0) == 1;
	}
	sent = sent && send_simple(pg, "COMMIT") && PQpipelineSync(pg) == 1;
	if (!sent) {
		e = VERR_DB_DOWN;
		goto out;
	}
	/* BEGIN, n statements, COMMIT: one result then NULL each; then the Sync */
	for (cmd = 0; cmd < n + 2; cmd++) {
		PGresult *r = conn_result(c, deadline, &late), *end;
		ExecStatusType st = PQresultStatus(r);

		if (r == NULL) {
			e = late ? VERR_TIMEOUT : VERR_DB_DOWN;
			goto out;
		}
		if (st != (cmd >= 1 && cmd <= n ? PGRES_TUPLES_OK : PGRES_COMMAND_OK) && e == VERR_OK) {
			e = VERR_DB;
			if (st != PGRES_PIPELINE_ABORTED) {
				first_line(PQresultErrorMessage(r), msg, sizeof msg);
				log_warn("a batch of writes was rolled back; storing them one by one",
				         LF_INT("batch", (long long)writes), LF_STR("error", msg),
				         LF_STR("sqlstate", PQresultErrorField(r, PG_DIAG_SQLSTATE)));
			}
		}
		if (cmd >= 1 && cmd <= n && st == PGRES_TUPLES_OK)
			res[cmd - 1] = r;
		else
			PQclear(r);
		end = conn_result(c, deadline, &late);
		if (end != NULL || late) { /* not the end of this command: protocol confusion */
			PQclear(end);
			e = late ? VERR_TIMEOUT : VERR_DB_DOWN;
			goto out;
		}
	}
	{
		PGresult *sync = conn_result(c, deadline, &late);
		bool ok = PQresultStatus(sync) == PGRES_PIPELINE_SYNC;

		PQclear(sync);
		if (!ok || PQexitPipelineMode(pg) != 1) {
			e = late ? VERR_TIMEOUT : VERR_DB_DOWN;
			goto out;
		}
	}
	if (e == VERR_OK)
		for (i = 0; i < n; i++)
			op_result(ops[i], res[i]);
out:
	for (i = 0; i < n; i++)
		PQclear(res[i]);
	free(res);
	if (e == VERR_TIMEOUT || PQstatus(pg) != CONNECTION_OK) {
		if (e != VERR_TIMEOUT)
			e = VERR_DB_DOWN;
		conn_close(c);
	} else if (e == VERR_DB && !conn_idle(c)) {
		e = VERR_DB_DOWN; /* could not roll back: closed, the caller reconnects */
	}
	return e;
}

/* Orders a batch by call sid (stable: a call's writes keep their order),
 * so concurrent batches lock calls rows in one order and never deadlock. */
static void sort_by_call(struct op **ops, size_t n)
{
	size_t i, j;

	for (i = 1; i < n; i++) {
		struct op *x = ops[i];

		for (j = i; j > 0 && strcmp(op_sid(ops[j - 1]), op_sid(x)) > 0; j--)
			ops[j] = ops[j - 1];
		ops[j] = x;
	}
}

/* Opens c and prepares every statement the batch uses. */
static enum verr batch_ready(const struct db *db, struct conn *c, struct op **ops, size_t n)
{
	enum verr e = VERR_OK;
	size_t i;

	for (i = 0; e == VERR_OK && i < n; i++)
		e = conn_ready(db, c, op_stmt(ops[i])); /* prepares each once */
	return e;
}

/*
 * Stores a batch on c: one pipelined transaction, retried once on a fresh
 * connection if the connection broke (every statement is idempotent);
 * when a statement fails, each write on its own so one bad write fails
 * alone. Callbacks are joined into one statement (STMT_EVENTS_RECORD):
 * perf under callback load put a sixth of PostgreSQL's time in starting
 * each event_record (executor start, plan checks) and sending its result,
 * once per callback. Sets every result.
 */
static void run_batch(const struct db *db, struct conn *c, struct op **ops, size_t n)
{
	struct buf cols[OP_MAX_PARAMS];
	struct op joined, *one[1] = { &joined }, **run = ops;
	size_t i, nrun = n;
	enum verr e = VERR_DB_DOWN;
	int attempt, k;

	if (n == 1) {
		op_one(db, c, ops[0]);
		return;
	}
	sort_by_call(ops, n);
	if (join_events(&joined, ops, n, cols) == VERR_OK) {
		run = one;
		nrun = 1;
	}
	for (attempt = 0; attempt < 2; attempt++) {
		e = batch_ready(db, c, run, nrun);
		if (e == VERR_DB_DOWN && attempt == 0 && c->pg != NULL) {
			conn_close(c); /* a stale connection: once more on a new one */
			continue;
		}
		if (e != VERR_OK)
			break;
		e = pipeline(c, run, nrun);
		if (e == VERR_TIMEOUT) {
			log_warn("the database did not answer in time", LF_STR("statement", "batch"),
			         LF_INT("deadline_ms", DB_DEADLINE_MS));
			e = VERR_DB_DOWN;
			break; /* a hung server would hang the retry too */
		}
		if (e != VERR_DB_DOWN)
			break;
		log_warn("lost the database connection", LF_STR("statement", "batch"));
	}
	for (k = 0; k < OP_MAX_PARAMS; k++)
		buf_free(&cols[k]);
	if (e == VERR_DB) {
		for (i = 0; i < n; i++)
			op_one(db, c, ops[i]);
		return;
	}
	if (e != VERR_OK) {
		metrics_count_db_error(e == VERR_DB_DOWN ? VERR_DB_DOWN : VERR_DB);
		for (i = 0; i < n; i++)
			op_fail(ops[i], e);
	}
}

void db_call_events_record(struct db *db, struct db_event *evs, size_t n)
{
	struct op ops[DB_MAX_BATCH], *batch[DB_MAX_BATCH];
	struct conn *c = conn_get(db);
	size_t i, k;

	for (i = 0; c == NULL && i < n; i++)
		evs[i].result = VERR_DB_DOWN;
	for (i = 0; c != NULL && i < n; i += k) {
		for (k = 0; k < DB_MAX_BATCH && i + k < n; k++) {
			ops[k] = (struct op){ .ev = &evs[i + k], .result = VERR_DB_DOWN };
			batch[k] = &ops[k];
		}
		run_batch(db, c, batch, k);
		if (c->pg == NULL && ops[0].result == VERR_DB_DOWN) {
			breaker_trip(db);
			for (i += k, k = 0; i < n; i++)
				evs[i].result = VERR_DB_DOWN;
		}
	}
	if (c != NULL)
		conn_put(db, c);
}

/*
 * Group commit, one batch at a time per process: the write joins the
 * queue; when no batch is under way, the oldest waiting write leads the
 * next one: it borrows a connection (waiting its turn with the other
 * statements), takes everything queued by then (up to DB_MAX_BATCH) and
 * runs it as one transaction while the others wait for their result; when
 * it is done, the oldest write still queued leads the next. One batch in
 * flight, not one per connection: perf and the peer harness showed that a
 * second concurrent batch only split the same writes over more
 * transactions (more commits, more PostgreSQL CPU, longer tails), and the
 * other connections stay free for the pool's other statements and the
 * spool's replay. A write that no batch took within DB_ACQUIRE_MS gives up
 * with VERR_DB_DOWN (the caller spools it).
 */
static void lead_batch(struct db *db, long long deadline)
{
	struct conn *c;

	db->leading = true;
	pthread_mutex_unlock(&db->mu);
	c = conn_take(db, false, deadline);
	pthread_mutex_lock(&db->mu);
	if (c != NULL) {
		struct op *batch[DB_MAX_BATCH];
		struct pending *taken[DB_MAX_BATCH];
		size_t n = 0, i;

		while (db->head != NULL && n < DB_MAX_BATCH) {
			struct pending *p = db->head;

			db->head = p->next;
			p->taken = true;
			taken[n] = p;
			batch[n++] = p->op;
		}
		if (db->head == NULL)
			db->tail = NULL;
		pthread_mutex_unlock(&db->mu);
		run_batch(db, c, batch, n);
		if (c->pg == NULL && batch[0]->result == VERR_DB_DOWN)
			breaker_trip(db);
		conn_idle(c);
		pthread_mutex_lock(&db->mu);
		for (i = 0; i < n; i++) {
			taken[i]->done = true;
			pthread_cond_signal(&taken[i]->cv);
		}
		conn_put_locked(db, c);
	}
	db->leading = false;
	if (db->head != NULL)
		pthread_cond_signal(&db->head->cv); /* leads the next batch */
}

/* Queues o for the group commit and waits for its result (o->result). */
static void group_commit(struct db *db, struct op *o)
{
	struct pending me = { .op = o }, **pp;
	long long deadline = clock_mono_ms() + DB_ACQUIRE_MS;

	op_fail(o, VERR_DB_DOWN); /* unless a batch stores it */
	cond_init_mono(&me.cv);
	pthread_mutex_lock(&db->mu);
	if (db->tail != NULL)
		db->tail->next = &me;
	else
		db->head = &me;
	db->tail = &me;
	while (!me.done) {
		struct timespec ts;

		if (!me.taken && !db->leading && !db->open && clock_mono_ms() < deadline) {
			lead_batch(db, deadline);
			continue;
		}
		if (!me.taken && (db->open || clock_mono_ms() >= deadline)) {
			/* still queued: leave the queue and let the caller spool it */
			for (pp = &db->head; *pp != &me; pp = &(*pp)->next)
				;
			*pp = me.next;
			if (db->tail == &me) {
				db->tail = NULL;
				for (pp = &db->head; *pp != NULL; pp = &(*pp)->next)
					db->tail = *pp;
			}
			if (!db->leading && db->head != NULL)
				pthread_cond_signal(&db->head->cv);
			metrics_count_db_error(VERR_DB_DOWN);
			if (!db->open)
				log_warn("no database connection came free in time for a write",
				         LF_INT("waited_ms", DB_ACQUIRE_MS));
			break;
		}
		ts = abs_ms(me.taken ? clock_mono_ms() + 1000 : deadline);
		pthread_cond_timedwait(&me.cv, &db->mu, &ts);
	}
	pthread_mutex_unlock(&db->mu);
	pthread_cond_destroy(&me.cv);
}

enum verr db_call_event_record(struct db *db, const struct call_event *ev,
                               const char *idempotency_token, bool *stored)
{
	struct db_event d = { ev, idempotency_token, VERR_DB_DOWN, false };
	struct op o = { .ev = &d };

	group_commit(db, &o);
	*stored = d.stored;
	return d.result;
}

enum verr db_idem_claim(struct db *db, const char *api_key_name, const char *key,
                        const char *hash_hex, long long lease_ms, enum db_idem *outcome,
                        int *status, struct buf *body, char call_sid[DB_MAX_SID])
{
	char lease[24];
	const char *params[4] = { api_key_name, key, hash_hex, lease };
	PGresult *res = NULL;
	enum verr e;
	int attempt;

	snprintf(lease, sizeof lease, "%lld", lease_ms);
	call_sid[0] = '\0';
	/* claim, else read what holds the key; a key released between the two
	 * statements is claimed again (bounded) */
	for (attempt = 0; attempt < 3; attempt++) {
		e = db_run(db, STMT_IDEM_CLAIM, params, PGRES_TUPLES_OK, &res);
		if (e != VERR_OK)
			return e;
		if (PQntuples(res) == 1) {
			PQclear(res);
			*outcome = DB_IDEM_CLAIMED;
			return VERR_OK;
		}
		PQclear(res);
		e = db_run(db, STMT_IDEM_GET, params, PGRES_TUPLES_OK, &res);
		if (e != VERR_OK)
			return e;
		if (PQntuples(res) == 1)
			break;
		PQclear(res);
		res = NULL;
	}
	if (res == NULL)
		return VERR_CONFLICT;
	if (strcmp(PQgetvalue(res, 0, 0), hash_hex) != 0) {
		*outcome = DB_IDEM_MISMATCH;
	} else if (strcmp(PQgetvalue(res, 0, 1), "done") == 0) {
		long long st = 500;

		*outcome = DB_IDEM_DONE;
		num_parse(PQgetvalue(res, 0, 2), 100, 599, &st); /* the schema checks the range */
		*status = (int)st;
		buf_reset(body);
		e = buf_puts(body, PQgetvalue(res, 0, 3));
	} else if (strcmp(PQgetvalue(res, 0, 4), "t") == 0) {
		*outcome = DB_IDEM_ABANDONED;
		str_copy(call_sid, DB_MAX_SID, PQgetvalue(res, 0, 5));
	} else {
		*outcome = DB_IDEM_PENDING;
	}
	PQclear(res);
	return e;
}

enum verr db_idem_complete(struct db *db, const char *api_key_name, const char *key, int status,
                           const char *body, const char *call_sid)
{
	char st[16];
	const char *params[5] = { api_key_name, key, st, body, call_sid };
	PGresult *res;
	enum verr e;

	snprintf(st, sizeof st, "%d", status);
	e = db_run(db, STMT_IDEM_COMPLETE, params, PGRES_COMMAND_OK, &res);
	PQclear(res);
	return e;
}

enum verr db_idem_release(struct db *db, const char *api_key_name, const char *key)
{
	const char *params[2] = { api_key_name, key };
	PGresult *res;
	enum verr e = db_run(db, STMT_IDEM_RELEASE, params, PGRES_COMMAND_OK, &res);

	PQclear(res);
	return e;
}

enum verr db_idem_purge(struct db *db, long long *deleted)
{
	PGresult *res;
	enum verr e = db_run(db, STMT_IDEM_PURGE, NULL, PGRES_COMMAND_OK, &res);
	long long n = 0;

	if (e == VERR_OK)
		num_parse(PQcmdTuples(res), 0, 1LL << 62, &n);
	*deleted = n;
	PQclear(res);
	return e;
}

/* Runs a statement returning one text column in one row into json. */
static enum verr db_json_row(struct db *db, enum stmt id, const char *const *params,
                             struct buf *json)
{
	PGresult *res;
	enum verr e = db_run(db, id, params, PGRES_TUPLES_OK, &res);

	if (e == VERR_OK) {
		buf_reset(json);
		e = PQntuples(res) == 1 ? buf_puts(json, PQgetvalue(res, 0, 0)) : VERR_NOTFOUND;
	}
	PQclear(res);
	return e;
}

enum verr db_call_insert(struct db *db, const struct db_call *call, struct buf *json)
{
	struct op o = { .call = call, .json = json };

	group_commit(db, &o);
	return o.result;
}

enum verr db_call_get(struct db *db, const char *call_sid, const char *owner, struct buf *json)
{
	const char *params[2] = { call_sid, owner };

	return db_json_row(db, STMT_CALL_GET, params, json);
}

enum verr db_call_state(struct db *db, const char *call_sid, const char *owner,
                        char status[DB_MAX_STATUS], struct buf *json)
{
	const char *params[2] = { call_sid, owner };
	PGresult *res;
	enum verr e = db_run(db, STMT_CALL_STATE, params, PGRES_TUPLES_OK, &res);

	status[0] = '\0';
	if (e == VERR_OK) {
		buf_reset(json);
		if (PQntuples(res) != 1) {
			e = VERR_NOTFOUND;
		} else {
			str_copy(status, DB_MAX_STATUS, PQgetvalue(res, 0, 0));
			e = buf_puts(json, PQgetvalue(res, 0, 1));
		}
	}
	PQclear(res);
	return e;
}

enum verr db_calls_list(struct db *db, const struct callsquery_filter *f, struct buf *json,
                        bool *more, char last_created[CURSOR_MAX_PIECE],
                        char last_sid[CURSOR_MAX_PIECE])
{
	char limit[16];
	const char *params[6] = { f->status, f->direction, f->after_created, f->after_sid, limit,
		f->owner };
	PGresult *res;
	enum verr e;
	int i, n;

	/* one extra row tells whether another page follows */
	snprintf(limit, sizeof limit, "%d", f->limit + 1);
	e = db_run(db, f->owner != NULL ? STMT_CALLS_LIST_OWN : STMT_CALLS_LIST, params,
	           PGRES_TUPLES_OK, &res);
	if (e != VERR_OK)
		return e;
	n = PQntuples(res);
	*more = n > f->limit;
	if (*more)
		n = f->limit;
	buf_reset(json);
	e = buf_putc(json, '[');
	for (i = 0; e == VERR_OK && i < n; i++) {
		if (i > 0)
			e = buf_putc(json, ',');
		if (e == VERR_OK)
			e = buf_puts(json, PQgetvalue(res, i, 0));
	}
	if (e == VERR_OK)
		e = buf_putc(json, ']');
	if (e == VERR_OK && *more) {
		str_copy(last_created, CURSOR_MAX_PIECE, PQgetvalue(res, n - 1, 1));
		str_copy(last_sid, CURSOR_MAX_PIECE, PQgetvalue(res, n - 1, 2));
	}
	PQclear(res);
	return e;
}

enum verr db_recording_record(struct db *db, const struct recording_event *rec, bool *stored)
{
	char dur[DB_MAX_INT_TEXT], chan[DB_MAX_INT_TEXT], code[DB_MAX_INT_TEXT];
	const char *params[12] = {
		rec->recording_sid, rec->call_sid, rec->account_sid, rec->status,
		opt_int(rec->duration_seconds, dur),
		opt_int(rec->channels > 0 ? rec->channels : -1, chan),
		rec->source[0] ? rec->source : NULL,
		rec->track[0] ? rec->track : NULL,
		rec->media_url[0] ? rec->media_url : NULL,
		opt_int(rec->error_code, code),
		rec->started_at[0] ? rec->started_at : NULL,
		rec->payload,
	};
	PGresult *res;
	enum verr e = db_run(db, STMT_RECORDING_RECORD, params, PGRES_TUPLES_OK, &res);

	*stored = e == VERR_OK && PQntuples(res) == 1;
	PQclear(res);
	return e;
}

enum verr db_recording_get(struct db *db, const char *recording_sid, const char *owner,
                           struct buf *json)
{
	const char *params[2] = { recording_sid, owner };

	return db_json_row(db, STMT_RECORDING_GET, params, json);
}

/* ---- Reconciliation (common/reconcile.h) ------------------------------ */

enum verr db_idem_dialing(struct db *db, const char *api_key_name, const char *key,
                          const char *to, const char *from)
{
	const char *params[4] = { api_key_name, key, to, from };
	PGresult *res;
	enum verr e = db_run(db, STMT_IDEM_DIALING, params, PGRES_COMMAND_OK, &res);

	PQclear(res);
	return e;
}

enum verr db_reconcile_lease(struct db *db, const char *holder, int lease_ms, int every_ms,
                             bool *taken, int *backoff_s)
{
	char lease[16], every[16];
	const char *params[3] = { holder, lease, every };
	PGresult *res;
	enum verr e;
	long long b = 0;

	snprintf(lease, sizeof lease, "%d", lease_ms);
	snprintf(every, sizeof every, "%d", every_ms);
	*taken = false;
	*backoff_s = 0;
	e = db_run(db, STMT_RECONCILE_LEASE, params, PGRES_TUPLES_OK, &res);
	if (e == VERR_OK && PQntuples(res) == 1) {
		*taken = true;
		num_parse(PQgetvalue(res, 0, 0), 0, 1 << 30, &b); /* the schema checks >= 0 */
		*backoff_s = (int)b;
	}
	PQclear(res);
	return e;
}

enum verr db_reconcile_release(struct db *db, const char *holder, int pause_s, int backoff_s)
{
	char pause[16], backoff[16];
	const char *params[3] = { holder, pause, backoff };
	PGresult *res;
	enum verr e;

	snprintf(pause, sizeof pause, "%d", pause_s);
	snprintf(backoff, sizeof backoff, "%d", backoff_s);
	e = db_run(db, STMT_RECONCILE_RELEASE, params, PGRES_COMMAND_OK, &res);
	PQclear(res);
	return e;
}

enum verr db_reconcile_stale(struct db *db, const char *account_sid, int after_s,
                             struct db_stale_call *out, int max, int *n)
{
	char after[16], limit[16];
	const char *params[3] = { account_sid, after, limit };
	PGresult *res;
	enum verr e;
	int i;

	snprintf(after, sizeof after, "%d", after_s);
	snprintf(limit, sizeof limit, "%d", max);
	*n = 0;
	e = db_run(db, STMT_RECONCILE_STALE, params, PGRES_TUPLES_OK, &res);
	for (i = 0; e == VERR_OK && i < PQntuples(res) && i < max; i++) {
		str_copy(out[i].call_sid, sizeof out[i].call_sid, PQgetvalue(res, i, 0));
		str_copy(out[i].status, sizeof out[i].status, PQgetvalue(res, i, 1));
		*n = i + 1;
	}
	PQclear(res);
	return e;
}

void db_reconcile_checked(struct db *db, const char *call_sid)
{
	const char *params[1] = { call_sid };
	PGresult *res;
	enum verr e = db_run(db, STMT_RECONCILE_CHECKED, params, PGRES_COMMAND_OK, &res);

	PQclear(res);
	if (e != VERR_OK)
		log_warn("could not note a reconciled call; it will be fetched again sooner",
		         LF_STR("call_sid", call_sid), LF_STR("error", verr_strerror(e)));
}

enum verr db_reconcile_dials(struct db *db, int after_s, int grace_s, int max_lookups,
                             struct db_dial *out, int max, int *n)
{
	char lookups[16], after[16], grace[16], limit[16];
	const char *params[4] = { lookups, after, grace, limit };
	PGresult *res;
	enum verr e;
	int i, k = 0;

	snprintf(lookups, sizeof lookups, "%d", max_lookups);
	snprintf(after, sizeof after, "%d", after_s);
	snprintf(grace, sizeof grace, "%d", grace_s);
	snprintf(limit, sizeof limit, "%d", max);
	*n = 0;
	e = db_run(db, STMT_RECONCILE_DIALS, params, PGRES_TUPLES_OK, &res);
	for (i = 0; e == VERR_OK && i < PQntuples(res) && k < max; i++) {
		struct db_dial *d = &out[k];

		/* a value that does not fit cannot be looked up: skip the row */
		if (!str_copy(d->api_key_name, sizeof d->api_key_name, PQgetvalue(res, i, 0)) ||
		    !str_copy(d->idem_key, sizeof d->idem_key, PQgetvalue(res, i, 1)) ||
		    !str_copy(d->to, sizeof d->to, PQgetvalue(res, i, 2)) ||
		    !str_copy(d->from, sizeof d->from, PQgetvalue(res, i, 3)) ||
		    !num_parse(PQgetvalue(res, i, 4), 0, 1LL << 40, &d->started_epoch) ||
		    !str_copy(d->start_date, sizeof d->start_date, PQgetvalue(res, i, 5)))
			continue;
		*n = ++k;
	}
	PQclear(res);
	return e;
}

void db_reconcile_dial_looked(struct db *db, const char *api_key_name, const char *key)
{
	const char *params[2] = { api_key_name, key };
	PGresult *res;
	enum verr e = db_run(db, STMT_RECONCILE_DIAL_LOOKED, params, PGRES_COMMAND_OK, &res);

	PQclear(res);
	if (e != VERR_OK)
		log_warn("could not count a lookup of a lost call; it may be looked up once more",
		         LF_STR("api_key", api_key_name), LF_STR("error", verr_strerror(e)));
}

enum verr db_reconcile_call_state(struct db *db, const char *call_sid, bool *known, bool *taken,
                                  char status[DB_MAX_CALL_STATUS])
{
	const char *params[1] = { call_sid };
	PGresult *res;
	enum verr e = db_run(db, STMT_RECONCILE_CALL_STATE, params, PGRES_TUPLES_OK, &res);

	*known = e == VERR_OK && PQntuples(res) == 1;
	*taken = *known && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	str_copy(status, DB_MAX_CALL_STATUS, *known ? PQgetvalue(res, 0, 1) : "");
	PQclear(res);
	return e;
}

enum verr db_reconcile_link(struct db *db, const char *api_key_name, const char *key,
                            const struct db_call *call, bool *linked)
{
	const char *params[8] = { api_key_name, key, call->call_sid, call->account_sid,
		call->direction, call->from, call->to, call->status };
	PGresult *res;
	enum verr e = db_run(db, STMT_RECONCILE_LINK, params, PGRES_TUPLES_OK, &res);

	*linked = e == VERR_OK && PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "1") == 0;
	PQclear(res);
	return e;
}
