#ifndef VOICE_RECONCILE_H
#define VOICE_RECONCILE_H

#include <stdbool.h>
#include <stddef.h>

#include "callback.h"
#include "db.h"
#include "err.h"
#include "twilio.h"

/*
 * Reconciliation: asks Twilio what the status callbacks and the REST
 * answers did not tell us (docs/OPERATIONS.md, "Reconciliation").
 *
 * 1. A call that is not final and has not changed for VOICE_RECONCILE_AFTER_S
 *    is fetched (Calls fetch). When Twilio has it further along, that status
 *    is stored as an event (payload "source": "reconciliation") through
 *    db_call_event_record, under the callbacks' rules: the status never
 *    moves backwards, and a re-fetch is stored once (idempotency token
 *    "reconcile:<CallSid>:<status>").
 * 2. A POST /call with an Idempotency-Key whose answer was lost (504
 *    twilio_timeout, a 5xx or unreadable 2xx, or a request that died with
 *    the key pending) is looked for in Twilio's call list (To, From,
 *    StartTime>, created within RECONCILE_MATCH_WINDOW_S of the dial). Exactly
 *    one unclaimed match is recorded and linked to the key (db_reconcile_link):
 *    a retry with the key then gets 201 with that call.
 *
 * One worker of the deployment runs a pass at a time (db_reconcile_lease),
 * passes start at most every min(VOICE_RECONCILE_AFTER_S, 30 s), and a pass
 * sends at most RECONCILE_BUDGET Twilio requests, one at a time, one
 * candidate per reconcile_tick. A 429 / 20429 ends the pass and pauses every
 * worker (Retry-After, else a backoff doubling from RECONCILE_BACKOFF_MIN_S
 * to RECONCILE_BACKOFF_MAX_S). Outcomes count in voice_reconcile_total.
 */
#define RECONCILE_DEFAULT_AFTER_S 600
#define RECONCILE_MAX_AFTER_S 86400
#define RECONCILE_BUDGET 20            /* Twilio requests per pass */
#define RECONCILE_MAX_PASS_MS 60000    /* a pass ends after this, done or not */
#define RECONCILE_LEASE_MS 120000      /* a pass's lease: its bound plus a request */
#define RECONCILE_MAX_EVERY_MS 30000   /* passes start at most this far apart */
#define RECONCILE_DIAL_DELAY_MAX_S 60  /* a lost answer is looked up this long after the dial */
#define RECONCILE_DIAL_LOOKUPS 5       /* ... at most this many times, as far apart */
#define RECONCILE_OWNER_GRACE_S 60     /* a key pending this long after dialing lost its request */
#define RECONCILE_MATCH_WINDOW_S 120   /* a listed call this close to the dial matches (clocks) */
#define RECONCILE_MAX_PAGES 3          /* list pages per lookup */
#define RECONCILE_MAX_MATCHES 8
#define RECONCILE_BACKOFF_MIN_S 30
#define RECONCILE_BACKOFF_MAX_S 900
#define RECONCILE_SOURCE "reconciliation"
#define RECONCILE_MAX_TOKEN (sizeof "reconcile:" + CALLBACK_MAX_SID + CALLBACK_MAX_STATUS)

/* VOICE_RECONCILE_AFTER_S: seconds; 0 turns reconciliation off. */
struct reconcile_settings {
	int after_s;
};

/*
 * Reads VOICE_RECONCILE_AFTER_S (config_get: the environment, then the .env
 * file of the last config_load): unset or empty is
 * RECONCILE_DEFAULT_AFTER_S, 0 is off, else 1..RECONCILE_MAX_AFTER_S.
 * VERR_CONFIG with one line naming the variable in err.
 */
enum verr reconcile_settings_load(struct reconcile_settings *s, char *err, size_t errsz);

struct reconcile;

/*
 * The reconciler of one worker process. db and tw are borrowed (they must
 * outlive it); account_sid is copied. NULL when out of memory. Not
 * thread-safe: one thread (the worker's tick thread) calls reconcile_tick;
 * reconcile_free after that thread stopped.
 */
struct reconcile *reconcile_new(struct db *db, struct twilio *tw, const char *account_sid,
                                const struct reconcile_settings *s);
/* Ends a pass in progress (frees the lease for another worker) and frees r;
 * r may be NULL. */
void reconcile_free(struct reconcile *r);

/*
 * One step, for the worker's background thread: starts a pass when it is
 * time and this worker gets the lease, or handles one candidate of the pass
 * (one Twilio request, up to RECONCILE_MAX_PAGES for a lookup), or ends it.
 * Returns within a few Twilio request timeouts (TWILIO_MAX_FETCH_MS each);
 * does nothing when off. Failures are logged and counted, never fatal.
 */
void reconcile_tick(struct reconcile *r);

/* ---- pure helpers (unit-tested) ---- */

/* Parses an RFC 2822 date as Twilio writes it ("Tue, 31 Aug 2010 20:36:28
 * +0000"; the weekday is optional, any numeric zone) into Unix seconds.
 * False for anything else. */
bool reconcile_rfc2822(const char *s, long long *epoch);

/* True when Twilio's status theirs is further along than ours under the
 * callbacks' rule (rank queued < initiated < ringing < in-progress < the
 * terminal ones): only then is a fetched status worth an event. */
bool reconcile_advances(const char *ours, const char *theirs);

/*
 * The calls of page that may be the one dialed to/from at dialed_epoch:
 * same To and From, created (date_created) within RECONCILE_MATCH_WINDOW_S
 * before the dial or TWILIO_MAX_TOTAL_MS / 1000 + RECONCILE_MATCH_WINDOW_S
 * after it. Writes their indexes (at most max) into idx and returns how many
 * matched in all. *older is set when the page reaches calls created before
 * the window (Twilio lists newest first: no later page can match).
 */
size_t reconcile_matches(const struct twilio_call_page *page, const char *to, const char *from,
                         long long dialed_epoch, size_t *idx, size_t max, bool *older);

/*
 * Builds the event reconciliation stores for a fetched or listed call:
 * status, direction, parties, answered_by, duration (terminal statuses
 * only), no SequenceNumber, and a payload with the callback's parameter
 * names plus "source": "reconciliation". token receives
 * "reconcile:<CallSid>:<status>" (RECONCILE_MAX_TOKEN bytes). VERR_INVALID
 * when a field does not fit a callback's bounds; VERR_NOMEM. The caller
 * frees ev with callback_event_free.
 */
enum verr reconcile_event(const struct twilio_call_info *c, struct call_event *ev,
                          char token[RECONCILE_MAX_TOKEN]);

#endif
