#include "idem.h"

#include <stdio.h>
#include <string.h>

#include "apierr.h"
#include "clock.h"
#include "hash.h"
#include "log.h"
#include "stop.h"

bool idem_key_valid(const char *key)
{
	size_t n = strlen(key), i;

	if (n == 0 || n > IDEM_MAX_KEY)
		return false;
	for (i = 0; i < n; i++)
		if (key[i] < 0x21 || key[i] > 0x7e)
			return false;
	return true;
}

bool idem_begin(struct db *db, const struct http_req *req, struct req_ctx *rc,
                struct http_resp *resp, long long lease_ms)
{
	char hash[HASH_SHA256_HEX], sid[DB_MAX_SID];
	long long deadline = clock_mono_ms() + IDEM_WAIT_MS;
	enum db_idem outcome;
	int status = 0;

	if (hash_sha256_hex(req->body, req->body_len, hash) != VERR_OK) {
		apierr_reply(rc, resp, APIERR_INTERNAL, "could not hash the request", NULL);
		return false;
	}
	for (;;) {
		static int waiters; /* this process's requests in the poll below */
		enum verr e = db_idem_claim(db, rc->key_name, req->idempotency_key, hash, lease_ms,
		                            &outcome, &status, &resp->body, sid);

		if (e != VERR_OK && e != VERR_CONFLICT) {
			apierr_reply(rc, resp, APIERR_DATABASE_UNAVAILABLE, NULL, NULL);
			return false;
		}
		if (e == VERR_OK && outcome == DB_IDEM_CLAIMED)
			return true;
		if (e == VERR_OK && outcome == DB_IDEM_MISMATCH) {
			apierr_reply(rc, resp, APIERR_IDEMPOTENCY_KEY_REUSED, NULL, "Idempotency-Key");
			return false;
		}
		if (e == VERR_OK && outcome == DB_IDEM_ABANDONED) {
			char msg[160];

			str_copy(rc->call_sid, sizeof rc->call_sid, sid);
			snprintf(msg, sizeof msg, "the request that held this Idempotency-Key ended without "
			         "an answer; the call %s", sid[0] ? "was placed: see GET /calls/" : "may or may "
			         "not have been placed: see GET /calls");
			if (sid[0])
				str_copy(msg + strlen(msg), sizeof msg - strlen(msg), sid);
			apierr_reply(rc, resp, APIERR_OUTCOME_UNKNOWN, msg, "Idempotency-Key");
			log_warn("idempotency key abandoned by its request", LF_STR("call_sid", sid[0] ? sid : NULL));
			return false;
		}
		if (e == VERR_OK && outcome == DB_IDEM_DONE) {
			resp->status = status;
			resp->content_type = "application/json; charset=utf-8";
			/* a stored 503 (Twilio failed; the call may exist) can still
			 * turn final once reconciliation finds the call */
			if (http_resp_header(resp, "Idempotent-Replayed", "true") != VERR_OK)
				log_warn("could not add Idempotent-Replayed to a replay");
			if (status == 503 &&
			    http_resp_header(resp, "Retry-After", IDEM_REPLAY_RETRY_AFTER) != VERR_OK)
				log_warn("could not add Retry-After to a replay");
			log_info("idempotent replay", LF_INT("status", status));
			return false;
		}
		if (clock_mono_ms() >= deadline || stop_requested())
			break;
		if (__atomic_add_fetch(&waiters, 1, __ATOMIC_RELAXED) > IDEM_MAX_WAITERS) {
			__atomic_sub_fetch(&waiters, 1, __ATOMIC_RELAXED);
			break;
		}
		clock_sleep_ms(IDEM_POLL_MS);
		__atomic_sub_fetch(&waiters, 1, __ATOMIC_RELAXED);
	}
	apierr_reply(rc, resp, APIERR_IDEMPOTENCY_KEY_IN_PROGRESS, NULL, "Idempotency-Key");
	return false;
}

void idem_end(struct db *db, const struct http_req *req, const struct req_ctx *rc,
              const struct http_resp *resp, bool release)
{
	enum verr e;

	if (release)
		e = db_idem_release(db, rc->key_name, req->idempotency_key);
	else
		e = db_idem_complete(db, rc->key_name, req->idempotency_key, resp->status,
		                     buf_str(&resp->body), rc->call_sid[0] ? rc->call_sid : NULL);
	if (e != VERR_OK)
		log_error("could not store the idempotency outcome", LF_STR("error", verr_strerror(e)));
}
