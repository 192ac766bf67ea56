#ifndef VOICE_SPOOL_H
#define VOICE_SPOOL_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

/*
 * A durable local queue for records the database could not take, so that no
 * webhook Twilio delivered and no call Twilio accepted is lost while
 * PostgreSQL is unreachable. One file per record in the spool directory
 * (VOICE_SPOOL_DIR), written to a temporary name, fsync'd and renamed into
 * place, so a record is either wholly there or absent. Workers replay the
 * spool once the database answers again; several workers (and hosts sharing
 * the directory) never replay the same record twice at once because a record
 * is claimed by rename first.
 */
#define SPOOL_MAX_RECORD (128 * 1024)

/* Appends one record (copied; any bytes). Creates dir (0700) if needed.
 * VERR_TOOBIG past SPOOL_MAX_RECORD, VERR_IO. */
enum verr spool_put(const char *dir, const void *record, size_t len);

/* One claimed record handed to a spool_batch_fn. */
struct spool_rec {
	const char *data; /* NUL-terminated copy, borrowed for the callback */
	size_t len;
	enum verr result; /* set by the callback, see below */
};

/*
 * Callback for spool_replay: stores the n records (oldest first) and sets
 * each one's result: VERR_OK when stored (the record is deleted),
 * VERR_INVALID when it can never be stored (moved to dir/rejected/ for an
 * operator), anything else to keep it for a later replay.
 */
typedef void (*spool_batch_fn)(struct spool_rec *recs, size_t n, void *ctx);

/* Claims at most max (<= SPOOL_MAX_BATCH) records, oldest first, hands them
 * to fn in one call and disposes of each by its result. *done counts records
 * stored. Returns the first result that kept a record, or VERR_OK. */
#define SPOOL_MAX_BATCH 256
enum verr spool_replay(const char *dir, spool_batch_fn fn, void *ctx, size_t max, size_t *done);

/* True when dir holds records waiting to be replayed (one readdir). */
bool spool_pending(const char *dir);

#endif
