#ifndef VOICE_CALLCTL_H
#define VOICE_CALLCTL_H

#include <stdbool.h>

#include "db.h"
#include "http.h"
#include "reqctx.h"
#include "twilio.h"

/*
 * Call control: POST /calls/{sid}/cancel and POST /calls/{sid}/hangup
 * (docs/API.md, "Cancelling and hanging up"). Both go through Twilio's Calls
 * update (twilio_call_update) and are idempotent: a call that has already
 * ended answers 200 with its final state, without asking Twilio again.
 */
#define CALLCTL_MAX_JSON (64 * 1024)

enum callctl_action {
	CALLCTL_CANCEL, /* Status=canceled: a call not answered yet (queued, ringing) */
	CALLCTL_HANGUP, /* Status=completed: a call at any stage, answered or not */
};

/*
 * The request body of both endpoints: none, or an empty JSON object ({}
 * with blanks around it). Otherwise fills resp (and rc) with 400
 * invalid_json (not one JSON object) or unknown_field (a member; field
 * names it) and returns false.
 */
bool callctl_body_ok(const struct http_req *req, struct req_ctx *rc, struct http_resp *resp);

/*
 * Cancels or hangs up call sid on behalf of an API key (owner: the key's
 * name, NULL for a read_all key; db.h) and writes the answer into resp (its
 * error, and the call sid once the call is found, into rc):
 *   200  the call object (as GET /calls/{sid}, without events and
 *        recordings): its final status when it has ended (before, or because
 *        Twilio ended it now: a terminal status in Twilio's answer is stored
 *        at once as an event with "source": "cancel" or "hangup", through
 *        db_call_event_record, since a call canceled while queued fires no
 *        callback), else the stored status, which the status callbacks then
 *        move on;
 *   404  not_found: no such call, or one owner may not read (also a call
 *        Twilio does not know, 20404);
 *   409  call_in_progress: cancel of a call already answered (hang it up);
 *   503  database_unavailable;
 *   Twilio's failures as for POST /call (twilioerr_map, TWILIOERR_UPDATE):
 *   502 twilio_auth_failed or twilio_error, 503 twilio_unavailable (with
 *   Twilio's Retry-After), 504 twilio_timeout; 500 internal_error.
 * A call Twilio reports as no longer in progress (21220) is fetched
 * (twilio_call_fetch) and answered with its final status. Thread-safe.
 */
void callctl_run(struct db *db, struct twilio *tw, const char *owner, const char *sid,
                 enum callctl_action action, struct req_ctx *rc, struct http_resp *resp);

#endif
