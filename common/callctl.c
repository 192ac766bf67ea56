#include "callctl.h"

#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "buf.h"
#include "callback.h"
#include "log.h"
#include "metrics.h"

#define JSON_TYPE "application/json; charset=utf-8"

/* Twilio's code for an update of a call that has ended ("Call is not
 * in-progress. Cannot redirect."). */
#define TWILIO_NOT_IN_PROGRESS 21220
#define TWILIO_NOT_FOUND 20404

bool callctl_body_ok(const struct http_req *req, struct http_resp *resp)
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
		http_resp_error(resp, 400, "invalid_json", "send no body, or an empty JSON object", NULL);
	} else if (json_object_object_length(obj) > 0) {
		char msg[96];

		it = json_object_iter_begin(obj);
		snprintf(msg, sizeof msg, "unknown field '%.40s': this request takes no fields",
		         json_object_iter_peek_name(&it));
		http_resp_error(resp, 400, "unknown_field", msg, json_object_iter_peek_name(&it));
	} else {
		ok = true;
	}
	json_object_put(obj);
	if (tok != NULL)
		json_tokener_free(tok);
	return ok;
}

/* The message clients see for a failed Twilio request: Twilio's own text
 * when it refused the request (a 4xx with a code), else a sentence of ours
 * (the detail is in the log). */
static const char *twilio_message(const struct twilio_error *e)
{
	if (e->kind == VERR_UPSTREAM && e->code != 0 && e->http_status >= 400 &&
	    e->http_status <= 499 && e->message[0] != '\0')
		return e->message;
	switch (e->kind) {
	case VERR_TIMEOUT:
		return "twilio did not answer in time; the call may or may not have changed: retry";
	case VERR_UPSTREAM_DOWN:
		return "twilio could not be reached; the call was not changed";
	case VERR_UPSTREAM:
		if (e->http_status == 429)
			return "twilio is rate limiting requests; try again later";
		return "twilio answered with an unexpected response; retry";
	default:
		return "the call could not be changed";
	}
}

/* resp for a failed Twilio request, mapped as for POST /call. */
static void twilio_failed(const struct twilio_error *terr, struct http_resp *resp)
{
	int status;
	const char *code, *field;

	twilio_error_map(terr, &status, &code, &field);
	/* field names a POST /call body field ("to", "from"): none here */
	http_resp_error_twilio(resp, status, code, twilio_message(terr), NULL, terr->code);
	if (terr->retry_after > 0) {
		char ra[16];

		snprintf(ra, sizeof ra, "%d", terr->retry_after);
		http_resp_header(resp, "Retry-After", ra);
	}
}

static void not_found(struct http_resp *resp)
{
	http_resp_error(resp, 404, "not_found", "no call with that sid", NULL);
}

static void db_unavailable(struct http_resp *resp)
{
	http_resp_retry_later(resp, 503, "database_unavailable",
	                      "the database is not reachable; retry later", NULL, 5);
}

static void answered(struct http_resp *resp)
{
	http_resp_error(resp, 409, "call_in_progress",
	                "the call was answered: end it with POST /calls/{sid}/hangup", NULL);
}

void callctl_run(struct db *db, struct twilio *tw, const char *owner, const char *sid,
                 enum callctl_action action, struct http_resp *resp)
{
	const char *want = action == CALLCTL_CANCEL ? "canceled" : "completed";
	const char *verb = action == CALLCTL_CANCEL ? "cancel" : "hangup";
	char status[DB_MAX_STATUS], twilio_status[TWILIO_MAX_STATUS];
	struct twilio_call tc;
	struct twilio_call_info info;
	struct twilio_error terr, ferr;
	struct buf json;
	bool changed = false;
	enum verr e;

	buf_init(&json, CALLCTL_MAX_JSON);
	if (!callback_sid_valid(sid, "CA")) {
		not_found(resp);
		goto out;
	}
	e = db_call_state(db, sid, owner, status, &json);
	if (e == VERR_NOTFOUND) {
		not_found(resp);
		goto out;
	}
	if (e != VERR_OK) {
		db_unavailable(resp);
		goto out;
	}
	str_copy(resp->call_sid, sizeof resp->call_sid, sid);
	if (metrics_status_final(status)) {
		/* idempotent: it has ended, whoever ended it */
		log_info("call already ended", LF_STR("call_sid", sid), LF_STR("action", verb),
		         LF_STR("status", status));
		http_resp_set(resp, 200, JSON_TYPE, json.data, json.len);
		goto out;
	}
	if (action == CALLCTL_CANCEL && strcmp(status, "in-progress") == 0) {
		answered(resp);
		goto out;
	}
	e = twilio_call_update(tw, sid, want, &tc, &terr);
	if (e == VERR_OK) {
		str_copy(twilio_status, sizeof twilio_status, tc.status);
	} else if (e == VERR_UPSTREAM && terr.code == TWILIO_NOT_IN_PROGRESS) {
		/* it ended before Twilio got to it: learn how, if Twilio says */
		twilio_status[0] = '\0';
		if (twilio_call_fetch(tw, sid, 0, &info, &ferr) == VERR_OK)
			str_copy(twilio_status, sizeof twilio_status, info.call.status);
	} else if (e == VERR_UPSTREAM && terr.code == TWILIO_NOT_FOUND) {
		log_warn("twilio does not know a stored call", LF_STR("call_sid", sid),
		         LF_STR("action", verb));
		http_resp_error_twilio(resp, 404, "not_found", "twilio has no call with that sid", NULL,
		                       terr.code);
		goto out;
	} else {
		twilio_failed(&terr, resp);
		goto out;
	}
	if (action == CALLCTL_CANCEL && strcmp(twilio_status, "in-progress") == 0) {
		/* answered meanwhile: Twilio leaves a call in progress alone */
		answered(resp);
		goto out;
	}
	if (metrics_status_final(twilio_status) &&
	    db_call_finish(db, sid, twilio_status, &changed) != VERR_OK)
		log_warn("could not store the status twilio answered; the callbacks will",
		         LF_STR("call_sid", sid), LF_STR("status", twilio_status));
	log_info(action == CALLCTL_CANCEL ? "call canceled" : "call hung up", LF_STR("call_sid", sid),
	         LF_STR("twilio_status", twilio_status[0] ? twilio_status : NULL),
	         LF_STR("stored", changed ? "yes" : "no"));
	e = db_call_state(db, sid, owner, status, &json);
	if (e != VERR_OK) {
		/* Twilio did it; asking again is safe and answers the final state */
		db_unavailable(resp);
		goto out;
	}
	http_resp_set(resp, 200, JSON_TYPE, json.data, json.len);
out:
	buf_free(&json);
}
