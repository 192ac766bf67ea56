#ifndef VOICE_DB_H
#define VOICE_DB_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

/*
 * All SQL lives here. One connection per worker process, opened lazily after
 * fork; statements are prepared once per connection. A lost connection is
 * re-established (and statements re-prepared) on the next call, so a worker
 * survives a PostgreSQL restart without being restarted. Functions return
 * VERR_DB_DOWN when PostgreSQL cannot be reached and VERR_DB when it answered
 * with an error (detail logged, never returned to clients).
 */
struct db;

/* Creates a handle for conninfo (copied); does not connect. Caller frees
 * with db_free. NULL on allocation failure. */
struct db *db_new(const char *conninfo);
void db_free(struct db *db);

/* Round trip to the database. VERR_OK or VERR_DB_DOWN. */
enum verr db_ping(struct db *db);

/*
 * Looks up an active (not revoked) API key by the lowercase hex SHA-256 of
 * its secret. Writes the key's name into name. VERR_NOTFOUND, VERR_DB_DOWN,
 * VERR_DB.
 */
#define DB_MAX_KEY_NAME 64
enum verr db_apikey_find(struct db *db, const char *hash_hex, char *name, size_t namesz);

#endif
