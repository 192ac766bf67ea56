#include "callctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "apierr.h"
#include "buf.h"
#include "callback.h"
#include "log.h"
#include "metrics.h"
#include "sid.h"
#include "twilioerr.h"

#define MAX_TOKEN (sizeof "hangup:" + TWILIO_MAX_SID + TWILIO_MAX_STATUS) /* source:sid:status */

#define JSON_TYPE "application/json; charset=utf-8"

/* Twilio's code for an update of a call that has ended ("Call is not
 * in-progress. Cannot redirect."). */
#define TWILIO_NOT_IN_PROGRESS 21220
#define TWILIO_NOT_FOUND 20404

bool callctl_body_ok(const struct http_req *req, struct req_ctx *rc, struct http_resp *resp)
{
	struct json_tokener *tok;
	struct json_object *obj = NULL;
	struct json_object_iterator it;
	size_t end = 0;
	bool ok = false;

	if (req->body_len == 0)
		return true;
	tok = json_tokener_new_ex(4);
	if (tok != NULL && memchr(req->body, '\0', req->body_len) == NULL) {
		json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
		obj = json_tokener_parse_ex(tok, req->body, (int)req->body_len);
		if (obj != NULL && json_tokener_get_error(tok) == json_tokener_success)
			end = json_tokener_get_parse_end(tok);
	}
	while (obj != NULL && end < req->body_len && strchr(" \t\r\n", req->body[end]) != NULL)
		end++;
	if (obj == NULL || end != req->body_len || !json_object_is_type(obj, json_type_object)) {
		apierr_reply(rc, resp, APIERR_INVALID_JSON, "send no body, or an empty JSON object", NULL);
	} else if (json_object_object_length(obj) > 0) {
		char msg[96];

		it = json_object_iter_begin(obj);
		snprintf(msg, sizeof msg, "unknown field '%.40s': this request takes no fields",
		         json_object_iter_peek_name(&it));
		apierr_reply(rc, resp, APIERR_UNKNOWN_FIELD, msg, json_object_iter_peek_name(&it));
	} else {
		ok = true;
	}
	json_object_put(obj);
	if (tok != NULL)
		json_tokener_free(tok);
	return ok;
}

/*
 * Stores the terminal status Twilio answered for call c as an event, through
 * the status callbacks' own path (db_call_event_record: their monotonic
 * rule, their metrics): Twilio fires no callback for a call canceled while
 * queued, so its answer may be all there is. The payload names what it
 * came from ("source": "cancel" or "hangup") and uses the callbacks'
 * parameter names; no SequenceNumber, so the callback that follows (when
 * the call had been dialed) is an event of its own. The token makes a
 * repeat of the same answer a duplicate. true when stored now.
 */
static bool record_answer(struct db *db, const struct twilio_call *c, const char *source)
{
	struct call_event ev;
	char token[MAX_TOKEN];
	const char *const kv[][2] = {
		{ "source", source }, { "CallSid", c->sid }, { "AccountSid", c->account_sid },
		{ "CallStatus", c->status }, { "Direction", ev.direction }, { "From", c->from },
		{ "To", c->to },
	};
	bool stored = false;
	enum verr e = VERR_NOMEM;

	memset(&ev, 0, sizeof ev);
	ev.sequence_number = ev.duration_seconds = ev.sip_response_code = -1;
	if (!str_copy(ev.call_sid, sizeof ev.call_sid, c->sid) ||
	    !str_copy(ev.account_sid, sizeof ev.account_sid, c->account_sid) ||
	    !str_copy(ev.status, sizeof ev.status, c->status) ||
	    !str_copy(ev.direction, sizeof ev.direction, c->direction[0] ? c->direction : "outbound-api") ||
	    !str_copy(ev.from, sizeof ev.from, c->from) || !str_copy(ev.to, sizeof ev.to, c->to)) {
		e = VERR_INVALID;
		goto out;
	}
	if ((ev.payload = callback_payload_pairs(kv, sizeof kv / sizeof kv[0])) == NULL)
		goto out;
	snprintf(token, sizeof token, "%s:%s:%s", source, c->sid, c->status);
	e = db_call_event_record(db, &ev, token, &stored);
out:
	if (e != VERR_OK)
		log_warn("could not store the status twilio answered; the callbacks will",
		         LF_STR("call_sid", c->sid), LF_STR("status", c->status),
		         LF_STR("error", verr_strerror(e)));
	callback_event_free(&ev);
	return stored;
}

static void not_found(struct req_ctx *rc, struct http_resp *resp)
{
	apierr_reply(rc, resp, APIERR_NOT_FOUND, "no call with that sid", NULL);
}

void callctl_run(struct db *db, struct twilio *tw, const char *owner, const char *sid,
                 enum callctl_action action, struct req_ctx *rc, struct http_resp *resp)
{
	const char *want = action == CALLCTL_CANCEL ? "canceled" : "completed";
	const char *verb = action == CALLCTL_CANCEL ? "cancel" : "hangup";
	char status[DB_MAX_STATUS];
	struct twilio_call tc;
	struct twilio_call_info info;
	struct twilio_error terr, ferr;
	struct apierr_detail fail;
	struct buf json;
	bool stored = false;
	enum verr e;

	buf_init(&json, CALLCTL_MAX_JSON);
	if (!sid_valid(sid, "CA")) {
		not_found(rc, resp);
		goto out;
	}
	e = db_call_state(db, sid, owner, status, &json);
	if (e == VERR_NOTFOUND) {
		not_found(rc, resp);
		goto out;
	}
	if (e != VERR_OK) {
		apierr_reply(rc, resp, APIERR_DATABASE_UNAVAILABLE, NULL, NULL);
		goto out;
	}
	str_copy(rc->call_sid, sizeof rc->call_sid, sid);
	if (metrics_status_final(status)) {
		/* idempotent: it has ended, whoever ended it */
		log_info("call already ended", LF_STR("call_sid", sid), LF_STR("action", verb),
		         LF_STR("status", status));
		apierr_resp_set(rc, resp, 200, JSON_TYPE, json.data, json.len);
		goto out;
	}
	if (action == CALLCTL_CANCEL && strcmp(status, "in-progress") == 0) {
		apierr_reply(rc, resp, APIERR_CALL_IN_PROGRESS, NULL, NULL);
		goto out;
	}
	e = twilio_call_update(tw, sid, want, &tc, &terr);
	if (e == VERR_UPSTREAM && terr.code == TWILIO_NOT_IN_PROGRESS) {
		/* it ended before Twilio got to it: learn how, if Twilio says */
		memset(&tc, 0, sizeof tc);
		if (twilio_call_fetch(tw, sid, 0, &info, &ferr) == VERR_OK)
			tc = info.call;
	} else if (e == VERR_UPSTREAM && terr.code == TWILIO_NOT_FOUND) {
		log_warn("twilio does not know a stored call", LF_STR("call_sid", sid),
		         LF_STR("action", verb));
		fail = (struct apierr_detail){ APIERR_NOT_FOUND, "twilio has no call with that sid", NULL,
		                               terr.code, 0 };
		apierr_send(rc, resp, &fail);
		goto out;
	} else if (e != VERR_OK) {
		twilioerr_map(&terr, TWILIOERR_UPDATE, &fail);
		apierr_send(rc, resp, &fail);
		goto out;
	}
	if (action == CALLCTL_CANCEL && strcmp(tc.status, "in-progress") == 0) {
		/* answered meanwhile: Twilio leaves a call in progress alone */
		apierr_reply(rc, resp, APIERR_CALL_IN_PROGRESS, NULL, NULL);
		goto out;
	}
	if (metrics_status_final(tc.status))
		stored = record_answer(db, &tc, verb);
	log_info(action == CALLCTL_CANCEL ? "call canceled" : "call hung up", LF_STR("call_sid", sid),
	         LF_STR("twilio_status", tc.status[0] ? tc.status : NULL),
	         LF_STR("stored", stored ? "yes" : "no"));
	e = db_call_state(db, sid, owner, status, &json);
	if (e != VERR_OK) {
		/* Twilio did it; asking again is safe and answers the final state */
		apierr_reply(rc, resp, APIERR_DATABASE_UNAVAILABLE, NULL, NULL);
		goto out;
	}
	apierr_resp_set(rc, resp, 200, JSON_TYPE, json.data, json.len);
out:
	buf_free(&json);
}
