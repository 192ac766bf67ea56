#ifndef VOICE_FAKEDB_H
#define VOICE_FAKEDB_H

#include <stdbool.h>

#include "db.h"

/*
 * A link-time fake of common/db.h for unit tests of the modules above the
 * database (record, idem, apikey, health, callctl, reconcile): a test links
 * tests/unit/fakedb.c instead of voice_db. No SQL, no connection: each db_*
 * call takes the next scripted result (else the default: VERR_OK, nothing
 * found or changed), and the fake remembers which function was called last
 * and with what parameters. Not thread-safe: one test thread.
 */

/* One scripted answer. Fields a function has no use for are ignored. */
struct fakedb_result {
	enum verr e;          /* returned; VERR_DB_DOWN: unreachable, VERR_DB: refused */
	enum db_idem idem;    /* db_idem_claim's outcome */
	int status;           /* db_idem_claim: the stored status of DB_IDEM_DONE */
	const char *body;     /* db_idem_claim: the stored body; db_call_*: the JSON */
	const char *sid;      /* db_idem_claim: the call linked to an abandoned key */
	const char *name;     /* db_apikey_find: the key's name */
	bool read_all;        /* db_apikey_find */
	bool stored;          /* db_call_event_record, db_recording_record */
	unsigned long long keys_gen; /* db_apikey_find: not 0: what db_keys_generation
	                              * returns from then on (a change seen meanwhile) */
};
/* Reconciliation's functions read the same fields: stored is *taken of
 * db_reconcile_lease, *known of db_reconcile_call_state and *linked of
 * db_reconcile_link; read_all is *taken of db_reconcile_call_state; status
 * is *backoff_s; sid is the status string of db_call_state and
 * db_reconcile_call_state. */

/* Forgets the script, the calls seen and the counts. */
void fakedb_reset(void);

/* Appends one answer to the script (copied; its strings are borrowed until
 * the call that takes it). At most 64 queued. */
void fakedb_script(const struct fakedb_result *r);

/* The answer of every call once the script is used up (else all zero:
 * VERR_OK, DB_IDEM_CLAIMED). Copied; strings borrowed until the reset. */
void fakedb_default(const struct fakedb_result *r);

/* Shorthand: the next call returns e with nothing else scripted. */
void fakedb_next(enum verr e);

/* How many db_* calls (db_new and db_free excluded) since the reset; how
 * many of them were fn ("db_idem_claim"). */
int fakedb_calls(void);
int fakedb_count(const char *fn);

/* The last call: its function's name and its parameters as
 * "name=value name=value" ("" before any call). Static until the next call. */
const char *fakedb_last(void);
const char *fakedb_last_params(void);

/* What db_keys_generation returns (0 after a reset: no watch). Not a
 * counted call, nor is db_keys_watch. */
void fakedb_keys_generation(unsigned long long gen);

/* Scripted answers not yet taken. */
int fakedb_pending(void);

#endif
