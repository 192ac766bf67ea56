#ifndef VOICE_RECORD_H
#define VOICE_RECORD_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "callback.h"
#include "db.h"
#include "err.h"

/*
 * "Never lose a call record": store in PostgreSQL, or, when it is
 * unreachable, in the local spool (common/spool.h), replayed into the
 * database by record_replay once it answers again.
 */

/*
 * Stores a verified webhook (db_call_event_record). When the database is
 * unreachable the raw form body is spooled instead and *spooled is set.
 * *stored is false for a duplicate delivery. Fails only when neither worked.
 */
enum verr record_event(struct db *db, const char *spool_dir, const struct call_event *ev,
                       const char *token, const char *body, size_t body_len, bool *stored,
                       bool *spooled);

/*
 * Stores a verified recording status callback (db_recording_record). When
 * the database is unreachable the raw form body is spooled instead (kind
 * "recording", replayed like the others) and *spooled is set. *stored is
 * false for a redelivery. Fails only when neither worked.
 */
struct recording_event;
enum verr record_recording(struct db *db, const char *spool_dir,
                           const struct recording_event *rec, const char *body,
                           size_t body_len, bool *stored, bool *spooled);

/* Records a call Twilio accepted (db_call_insert, JSON into json), or spools
 * it and sets *spooled. json always receives the call object: built from
 * call itself (created_at now) when the database did not take it. */
enum verr record_call(struct db *db, const char *spool_dir, const struct db_call *call,
                      struct buf *json, bool *spooled);

/* Replays spooled records into the database in batches (callbacks of a
 * batch in one transaction), for at most RECORD_REPLAY_SLICE_MS per call;
 * after a failure the next call waits RECORD_REPLAY_INTERVAL_MS. Cheap when
 * the spool is empty. account_sid validates spooled webhooks as on arrival.
 * Call it from one thread per process (the worker's background thread). */
#define RECORD_REPLAY_INTERVAL_MS 2000
#define RECORD_REPLAY_SLICE_MS 1000
void record_replay(struct db *db, const char *spool_dir, const char *account_sid);

#endif
