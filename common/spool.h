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
 *
 * A claim is a lease. A claimed record is "<record>.<pid>.<start>@<host>":
 * the claiming process's id, its start time (field 22 of /proc/PID/stat, so
 * a later process that gets the same id is told apart) and the host name
 * (letters, digits, '.' and '-'; anything else becomes '_'). Its mtime is
 * set when it is claimed. Another worker puts a claimed record back only
 * when the claim is older than SPOOL_LEASE_S and, if it names this host, its
 * process is gone (no such process, a zombie, or another start time); a
 * claim of another host is trusted until the lease runs out. A replay batch
 * must therefore finish well within the lease (it is one database
 * transaction, bounded by the database's timeouts). Claims of older versions
 * ("<record>.<pid>") are put back once older than the lease. Temporary files
 * (".tmp-*", see file_write_atomic) older than SPOOL_TMP_MAX_AGE_S are left
 * by a writer that died and are removed.
 */
#define SPOOL_MAX_RECORD (128 * 1024)
#define SPOOL_LEASE_S 300         /* a claim older than this may be taken back */
#define SPOOL_TMP_MAX_AGE_S 600   /* a temporary file older than this is removed */

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

/* True when dir holds records waiting to be replayed, claimed records or
 * temporary files (which a replay may have to take back or remove); one
 * readdir. */
bool spool_pending(const char *dir);

#endif
