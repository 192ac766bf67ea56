#ifndef SIM_CALL_H
#define SIM_CALL_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "err.h"
#include "form.h"
#include "params.h"
#include "simcfg.h"

/*
 * Simulated calls: the Call resource (twilio_api_v2010.json schema
 * api.v2010.account.call), its state document in the store, and the process
 * that plays a call's life and delivers its webhooks (docs/TWILIO.md, "Status
 * callbacks" and "What the simulator models").
 */
#define SIMCALL_MAX_SID 35
#define SIMCALL_MAX_DATE 40
#define SIMCALL_MAX_TOKEN 65
#define SIMCALL_MAX_SECONDS 900 /* a call process never lives longer */

struct json_object;

/* Writes prefix ("CA", "PN", …) + 32 random lowercase hex digits. */
enum verr simcall_new_sid(const char *prefix, char out[SIMCALL_MAX_SID]);

/* RFC 2822 date as Twilio writes it: "Tue, 31 Aug 2010 20:36:28 +0000". */
void simcall_rfc2822(time_t t, char out[SIMCALL_MAX_DATE]);

/*
 * Builds the state document of a new outbound-api call from a validated
 * request: {"call": <Call resource, status "queued">, "sim": {…}}. Caller
 * frees with json_object_put; NULL on allocation failure.
 */
struct json_object *simcall_state_new(const struct simcfg *cfg, const char *sid,
                                      const struct simcall_req *req, const char *scenario);

/*
 * Starts the call's life in a detached grandchild process (double fork, so
 * the FastCGI worker never collects zombies) and returns once the
 * intermediate child has been reaped. The grandchild closes every inherited
 * descriptor but stderr, plays the scenario, and exits within
 * SIMCALL_MAX_SECONDS. VERR_IO if fork failed.
 */
enum verr simcall_spawn(const struct simcfg *cfg, const char *sid);

/* Plays the call sid (loaded from the store). Runs in the call process;
 * between its steps it notices a call update that ended the call
 * (simcall_update) and then sends what Twilio sends for it. */
void simcall_run(const struct simcfg *cfg, const char *sid);

/*
 * Calls update with Status=status ("canceled" or "completed", checked by
 * the caller) on call sid's document, under its lock, as Twilio does it:
 * canceled ends a queued or ringing call (status canceled) and leaves one in
 * progress alone; completed ends it whatever its stage (canceled when not
 * answered yet, else completed with the seconds talked). The call's process
 * then sends the terminal status callback (none when it had sent none yet)
 * and, for a recorded call, the recording's. *out receives a new reference
 * to the Call resource (caller puts). VERR_NOTFOUND (no such call),
 * VERR_CONFLICT (it has already ended: Twilio answers 21220), VERR_IO.
 */
enum verr simcall_update(const struct simcfg *cfg, const char *sid, const char *status,
                         struct json_object **out);

/*
 * Adds the parameters every voice webhook carries (CallSid, AccountSid,
 * From, To, CallStatus, ApiVersion, Direction, ForwardedFrom, CallerName,
 * Caller, Called and the From/To/Caller/Called City/State/Zip/Country set).
 */
enum verr simcall_base_params(struct form *f, const char *account_sid, const char *sid,
                              const char *from, const char *to, const char *status,
                              const char *direction);

/*
 * Sends one webhook and records every attempt in the callbacks log: one
 * retry with the same idempotency token when the connection could not be
 * set up (Twilio's default "rc=1, rp=ct"). kind is "status-callback",
 * "voice-url" or "fallback-url"; event and seq describe a status callback
 * (NULL / -1 otherwise). On return *status holds the last HTTP status (0
 * for none) and, when body is not NULL, the response body is copied there
 * (left empty, logged, when it does not fit).
 */
struct buf;
void simcall_deliver(const struct simcfg *cfg, const char *sid, const char *kind,
                     const char *event, long long seq, const char *url, const char *method,
                     const struct form *params, const char *token, long *status,
                     struct buf *body);


#endif
