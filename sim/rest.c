#include "rest.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <json-c/json.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "apierr.h"
#include "buf.h"
#include "call.h"
#include "calllist.h"
#include "clock.h"
#include "form.h"
#include "hash.h"
#include "jsonfield.h"
#include "log.h"
#include "num.h"
#include "params.h"
#include "scenario.h"
#include "sid.h"
#include "stop.h"
#include "store.h"

#define SIMREST_MAX_AUTH 512
#define SIMREST_MAX_USER 128
#define SIMREST_LIST_BUDGET (200 * 1024)
#define SIMREST_PREFIX "/2010-04-01/Accounts/"

/* What one request did, for the requests log; rc is the server's context
 * of the request, for the access log. */
struct outcome {
	char user[SIMREST_MAX_USER];
	char call_sid[SIMCALL_MAX_SID];
	int twilio_code;
	struct req_ctx *rc;
};

static const char *json_text(struct json_object *o)
{
	return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
	                                             JSON_C_TO_STRING_NOSLASHESCAPE);
}

static void send_json(struct req_ctx *rc, struct http_resp *resp, int status,
                      struct json_object *o)
{
	const char *s = json_text(o);

	if (s == NULL || http_resp_set(resp, status, "application/json", s, strlen(s)) != VERR_OK)
		apierr_reply(rc, resp, APIERR_INTERNAL, "could not build the response", NULL);
}

/* Twilio's REST error body (docs/TWILIO.md, "Errors"). */
static void twilio_error(struct http_resp *resp, struct outcome *oc, int status, int code,
                         const char *message)
{
	struct json_object *o = json_object_new_object();
	char more[80];

	snprintf(more, sizeof more, "https://www.twilio.com/docs/errors/%d", code);
	if (o != NULL) {
		json_object_object_add(o, "code", json_object_new_int(code));
		json_object_object_add(o, "message", json_object_new_string(message));
		json_object_object_add(o, "more_info", json_object_new_string(more));
		json_object_object_add(o, "status", json_object_new_int(status));
	}
	http_resp_reset(resp);
	send_json(oc->rc, resp, status, o);
	json_object_put(o);
	oc->rc->twilio_code = code;
	oc->twilio_code = code;
}

/* 401 / 20003 with the challenge Twilio sends. */
static void unauthorized(struct http_resp *resp, struct outcome *oc)
{
	twilio_error(resp, oc, 401, 20003, "Authenticate");
	if (http_resp_header(resp, "WWW-Authenticate", "Basic realm=\"Twilio API\"") != VERR_OK)
		log_warn("could not add WWW-Authenticate");
}

static void not_found(struct http_resp *resp, struct outcome *oc, const char *path)
{
	char msg[256];

	snprintf(msg, sizeof msg, "The requested resource %.180s was not found", path);
	twilio_error(resp, oc, 404, 20404, msg);
}

static bool secret_eq(const char *a, const char *b)
{
	size_t n = strlen(a);

	return n == strlen(b) && CRYPTO_memcmp(a, b, n) == 0;
}

/*
 * Checks HTTP Basic credentials. Writes the user name (never the password)
 * into oc->user whenever one could be decoded.
 */
static bool authenticate(const struct simcfg *cfg, const char *hdr, struct outcome *oc)
{
	unsigned char dec[SIMREST_MAX_AUTH];
	char cred[SIMREST_MAX_AUTH];
	const char *b64, *colon;
	size_t n, pad = 0;
	int len;
	bool ok;

	if (strncasecmp(hdr, "Basic ", 6) != 0)
		return false;
	b64 = hdr + 6;
	while (*b64 == ' ')
		b64++;
	n = strlen(b64);
	if (n == 0 || n % 4 != 0 || n >= sizeof dec * 3 / 4)
		return false;
	if (b64[n - 1] == '=')
		pad++;
	if (b64[n - 2] == '=')
		pad++;
	len = EVP_DecodeBlock(dec, (const unsigned char *)b64, (int)n);
	if (len < 0 || (size_t)len < pad)
		return false;
	n = (size_t)len - pad;
	if (n >= sizeof cred || memchr(dec, '\0', n) != NULL)
		return false;
	memcpy(cred, dec, n);
	cred[n] = '\0';
	colon = strchr(cred, ':');
	if (colon == NULL)
		return false;
	cred[colon - cred] = '\0';
	str_copy(oc->user, sizeof oc->user, cred);
	ok = (secret_eq(cred, cfg->account_sid) && secret_eq(colon + 1, cfg->auth_token)) ||
	     (cfg->api_key_sid[0] != '\0' && secret_eq(cred, cfg->api_key_sid) &&
	      secret_eq(colon + 1, cfg->api_key_secret));
	OPENSSL_cleanse(cred, sizeof cred);
	OPENSSL_cleanse(dec, sizeof dec);
	return ok;
}

static void record_request(const struct simcfg *cfg, const struct http_req *req,
                           const struct form *f, const struct outcome *oc, int status)
{
	struct json_object *rec = json_object_new_object();
	char now[SIMCALL_MAX_DATE];

	if (rec == NULL)
		return;
	simcall_rfc2822(time(NULL), now);
	json_object_object_add(rec, "time", json_object_new_string(now));
	json_object_object_add(rec, "method", json_object_new_string(req->method));
	json_object_object_add(rec, "path", json_object_new_string(req->path));
	json_object_object_add(rec, "query", json_object_new_string(req->query));
	json_object_object_add(rec, "content_type", json_object_new_string(req->content_type));
	json_object_object_add(rec, "params", simstore_params_json(f));
	json_object_object_add(rec, "auth_user",
	                       oc->user[0] != '\0' ? json_object_new_string(oc->user) : NULL);
	json_object_object_add(rec, "status", json_object_new_int(status));
	json_object_object_add(rec, "twilio_code",
	                       oc->twilio_code != 0 ? json_object_new_int(oc->twilio_code) : NULL);
	json_object_object_add(rec, "call_sid",
	                       oc->call_sid[0] != '\0' ? json_object_new_string(oc->call_sid) : NULL);
	json_object_object_add(rec, "request_id", json_object_new_string(oc->rc->request_id));
	if (simstore_log_append(cfg->state_dir, SIMSTORE_REQUESTS, rec) != VERR_OK)
		log_warn("could not record a request");
	json_object_put(rec);
}

static void create_call(const struct simcfg *cfg, const struct form *f, struct http_resp *resp,
                        struct outcome *oc, bool *slow)
{
	struct simcall_req req;
	struct simerror err;
	struct simscen scen;
	struct json_object *doc = NULL, *call;
	char sid[SIMCALL_MAX_SID];

	if (simparams_validate(f, &req, &err) != VERR_OK) {
		twilio_error(resp, oc, err.status, err.code, err.message);
		return;
	}
	simscen_lookup(req.to, &scen);
	if (scen.fault == SIMFAULT_429) {
		twilio_error(resp, oc, 429, 20429, "Too Many Requests");
		return;
	}
	if (scen.fault == SIMFAULT_500) {
		twilio_error(resp, oc, 500, 20500, "Internal Server Error");
		return;
	}
	if (simcall_new_sid("CA", sid) != VERR_OK ||
	    (doc = simcall_state_new(cfg, sid, &req, scen.name)) == NULL ||
	    simstore_call_put(cfg->state_dir, sid, doc) != VERR_OK) {
		log_error("could not store a new call");
		twilio_error(resp, oc, 500, 20500, "Internal Server Error");
		goto out;
	}
	str_copy(oc->call_sid, sizeof oc->call_sid, sid);
	str_copy(oc->rc->call_sid, sizeof oc->rc->call_sid, sid);
	if (simcall_spawn(cfg, sid) != VERR_OK)
		log_error("could not start the call process", LF_STR("call_sid", sid));
	json_object_object_get_ex(doc, "call", &call);
	send_json(oc->rc, resp, 201, call);
	if (scen.fault == SIMFAULT_REPLY_LOST) {
		/* the call exists, but its answer is lost on the way: cut mid-body */
		buf_truncate(&resp->body, resp->body.len / 2);
		log_info("cutting the response off (reply-lost scenario)", LF_STR("call_sid", sid));
	}
	*slow = scen.fault == SIMFAULT_SLOW;
	log_info("call created", LF_STR("call_sid", sid), LF_PHONE("to", req.to),
	         LF_STR("scenario", scen.name));
out:
	json_object_put(doc);
}

static void fetch_call(const struct simcfg *cfg, const char *account, const char *sid,
                       const char *path, struct http_resp *resp, struct outcome *oc)
{
	struct json_object *doc = NULL, *call, *acct;

	str_copy(oc->call_sid, sizeof oc->call_sid, sid);
	if (simstore_call_get(cfg->state_dir, sid, &doc) != VERR_OK ||
	    !json_object_object_get_ex(doc, "call", &call) ||
	    !json_object_object_get_ex(call, "account_sid", &acct) ||
	    strcmp(json_object_get_string(acct), account) != 0) {
		not_found(resp, oc, path);
		goto out;
	}
	send_json(oc->rc, resp, 200, call);
out:
	json_object_put(doc);
}

/* UpdateCallRequest's form parameters (twilio_api_v2010.json); only Status
 * is simulated. */
static const char *const update_params[] = { "Url", "Method", "Status", "FallbackUrl",
	"FallbackMethod", "StatusCallback", "StatusCallbackMethod", "Twiml", "TimeLimit", NULL };

static bool listed(const char *const *list, const char *k)
{
	for (; *list != NULL; list++)
		if (strcmp(*list, k) == 0)
			return true;
	return false;
}

/* POST …/Calls/{Sid}.json: Status=canceled or completed (simcall_update). */
static void update_call(const struct simcfg *cfg, const struct form *f, const char *sid,
                        const char *path, struct http_resp *resp, struct outcome *oc)
{
	struct json_object *call = NULL;
	const char *status = form_get(f, "Status");
	char msg[128];
	size_t i;
	enum verr e;

	str_copy(oc->call_sid, sizeof oc->call_sid, sid);
	for (i = 0; i < f->n; i++) {
		const char *k = f->params[i].key;

		if (!listed(update_params, k)) {
			snprintf(msg, sizeof msg, "Unknown parameter: %.60s", k);
			twilio_error(resp, oc, 400, 20001, msg);
			return;
		}
		if (form_count(f, k) > 1) {
			snprintf(msg, sizeof msg, "Parameter %s was given more than once", k);
			twilio_error(resp, oc, 400, 21200, msg);
			return;
		}
		if (strcmp(k, "Status") != 0) {
			snprintf(msg, sizeof msg, "Parameter %s is not simulated (only Status is)", k);
			twilio_error(resp, oc, 400, 20001, msg);
			return;
		}
	}
	if (status != NULL && strcmp(status, "canceled") != 0 && strcmp(status, "completed") != 0) {
		twilio_error(resp, oc, 400, 21200, "Invalid value for parameter Status");
		return;
	}
	if (status == NULL) { /* nothing to change: the call as it is */
		fetch_call(cfg, cfg->account_sid, sid, path, resp, oc);
		return;
	}
	e = simcall_update(cfg, sid, status, &call);
	if (e == VERR_NOTFOUND) {
		not_found(resp, oc, path);
	} else if (e == VERR_CONFLICT) {
		twilio_error(resp, oc, 400, 21220, "Call is not in-progress. Cannot redirect.");
	} else if (e != VERR_OK) {
		log_error("could not update a call", LF_STR("call_sid", sid));
		twilio_error(resp, oc, 500, 20500, "Internal Server Error");
	} else {
		send_json(oc->rc, resp, 200, call);
		log_info("call updated", LF_STR("call_sid", sid), LF_STR("status", status));
	}
	json_object_put(call);
}

/* "PN" + 32 hex, the same for the same number and list every time. */
static void number_sid(const char *list, const char *number, char out[SIMCALL_MAX_SID])
{
	char in[64], hex[HASH_SHA256_HEX];

	snprintf(in, sizeof in, "%s:%s", list, number);
	if (hash_sha256_hex(in, strlen(in), hex) != VERR_OK)
		memset(hex, '0', 32);
	out[0] = 'P';
	out[1] = 'N';
	memcpy(out + 2, hex, 32);
	out[34] = '\0';
}

/* Adds the n string properties fields[i] = { name, value } to o, in order;
 * a NULL value is null. */
static void add_strings(struct json_object *o, const char *const (*fields)[2], size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		jsonfield_set_str(o, fields[i][0], fields[i][1]);
}

/* One IncomingPhoneNumber or OutgoingCallerId resource (every property of
 * its OAS schema). */
static struct json_object *number_json(const struct simcfg *cfg, bool incoming,
                                       const char *number)
{
	/* what an IncomingPhoneNumber adds to an OutgoingCallerId, as a
	 * voice-only local number of ours */
	static const char *const incoming_only[][2] = {
		{ "address_sid", NULL }, { "address_requirements", "none" },
		{ "api_version", "2010-04-01" }, { "identity_sid", NULL }, { "origin", "twilio" },
		{ "sms_application_sid", NULL }, { "sms_fallback_method", "POST" },
		{ "sms_fallback_url", NULL }, { "sms_method", "POST" }, { "sms_url", NULL },
		{ "status_callback", NULL }, { "status_callback_method", "POST" }, { "trunk_sid", NULL },
		{ "voice_receive_mode", "voice" }, { "voice_application_sid", NULL },
		{ "voice_fallback_method", "POST" }, { "voice_fallback_url", NULL },
		{ "voice_method", "POST" }, { "voice_url", NULL }, { "emergency_status", "Inactive" },
		{ "emergency_address_sid", NULL }, { "emergency_address_status", "unregistered" },
		{ "bundle_sid", NULL }, { "status", "in-use" }, { "type", "local" },
	};
	struct json_object *o = json_object_new_object(), *caps;
	char sid[SIMCALL_MAX_SID], uri[160], fmt[SIMPARAMS_MAX_FORMATTED], now[SIMCALL_MAX_DATE];
	const char *const common[][2] = {
		{ "account_sid", cfg->account_sid }, { "date_created", now }, { "date_updated", now },
		{ "friendly_name", fmt }, { "phone_number", number }, { "sid", sid }, { "uri", uri },
	};

	if (o == NULL)
		return NULL;
	number_sid(incoming ? "incoming" : "callerid", number, sid);
	simparams_format_number(number, fmt);
	simcall_rfc2822(time(NULL), now);
	snprintf(uri, sizeof uri, "/2010-04-01/Accounts/%s/%s/%s.json", cfg->account_sid,
	         incoming ? "IncomingPhoneNumbers" : "OutgoingCallerIds", sid);
	add_strings(o, common, sizeof common / sizeof common[0]);
	if (!incoming)
		return o;
	caps = json_object_new_object();
	json_object_object_add(caps, "mms", json_object_new_boolean(1));
	json_object_object_add(caps, "sms", json_object_new_boolean(1));
	json_object_object_add(caps, "voice", json_object_new_boolean(1));
	json_object_object_add(caps, "fax", json_object_new_boolean(0));
	json_object_object_add(o, "beta", json_object_new_boolean(0));
	json_object_object_add(o, "capabilities", caps);
	json_object_object_add(o, "voice_caller_id_lookup", json_object_new_boolean(0));
	add_strings(o, incoming_only, sizeof incoming_only / sizeof incoming_only[0]);
	return o;
}

/* GET …/IncomingPhoneNumbers.json or …/OutgoingCallerIds.json: the
 * configured numbers (SIM_INCOMING_NUMBERS, SIM_CALLER_IDS) whose number
 * contains PhoneNumber, one page (ListIncomingPhoneNumber,
 * ListOutgoingCallerId). Query parameters outside the OAS list are refused
 * (20001), as for Calls create. */
static void list_numbers(const struct simcfg *cfg, const struct http_req *req, bool incoming,
                         struct http_resp *resp, struct outcome *oc)
{
	static const char *const in_params[] = { "Beta", "FriendlyName", "PhoneNumber", "Origin",
		"PageSize", "Page", "PageToken", NULL };
	static const char *const out_params[] = { "PhoneNumber", "FriendlyName", "PageSize", "Page",
		"PageToken", NULL };
	const char *resource = incoming ? "IncomingPhoneNumbers" : "OutgoingCallerIds";
	const char (*numbers)[SIMCFG_MAX_E164] = incoming ? cfg->numbers : cfg->caller_ids;
	size_t count = incoming ? cfg->nnumbers : cfg->ncaller_ids, i;
	struct form q = { 0 };
	struct json_object *o = NULL, *arr;
	const char *want, *v;
	long long size = 50, page = 0;
	char uri[SIMCFG_MAX_PATH], msg[128];

	if (form_parse(req->query, strlen(req->query), &q, NULL, 0) != VERR_OK) {
		twilio_error(resp, oc, 400, 21200, "Invalid query string");
		return;
	}
	for (i = 0; i < q.n; i++) {
		const char *k = q.params[i].key;

		if (!listed(incoming ? in_params : out_params, k)) {
			snprintf(msg, sizeof msg, "Unknown parameter: %.60s", k);
			twilio_error(resp, oc, 400, 20001, msg);
			goto out;
		}
		if (form_count(&q, k) > 1) {
			snprintf(msg, sizeof msg, "Parameter %s was given more than once", k);
			twilio_error(resp, oc, 400, 21200, msg);
			goto out;
		}
	}
	if (((v = form_get(&q, "PageSize")) != NULL && !num_parse(v, 1, 1000, &size)) ||
	    ((v = form_get(&q, "Page")) != NULL && !num_parse(v, 0, 1000000, &page))) {
		twilio_error(resp, oc, 400, 21200, "Invalid value for parameter PageSize or Page");
		goto out;
	}
	want = form_get(&q, "PhoneNumber");
	o = json_object_new_object();
	arr = json_object_new_array();
	if (o == NULL || arr == NULL) {
		json_object_put(arr);
		twilio_error(resp, oc, 500, 20500, "Internal Server Error");
		goto out;
	}
	for (i = 0; page == 0 && i < count && (long long)json_object_array_length(arr) < size; i++)
		if (want == NULL || strstr(numbers[i], want) != NULL)
			json_object_array_add(arr, number_json(cfg, incoming, numbers[i]));
	snprintf(uri, sizeof uri, "/2010-04-01/Accounts/%s/%s.json%s%s", cfg->account_sid, resource,
	         req->query[0] ? "?" : "", req->query);
	json_object_object_add(o, "end", json_object_new_int64(
	        json_object_array_length(arr) > 0 ? (long long)json_object_array_length(arr) - 1 : 0));
	json_object_object_add(o, "first_page_uri", json_object_new_string(uri));
	json_object_object_add(o, "next_page_uri", NULL);
	json_object_object_add(o, "page", json_object_new_int64(page));
	json_object_object_add(o, "page_size", json_object_new_int64(size));
	json_object_object_add(o, "previous_page_uri", NULL);
	json_object_object_add(o, "start", json_object_new_int(0));
	json_object_object_add(o, "uri", json_object_new_string(uri));
	json_object_object_add(o, incoming ? "incoming_phone_numbers" : "outgoing_caller_ids", arr);
	send_json(oc->rc, resp, 200, o);
out:
	json_object_put(o);
	form_free(&q);
}

/* GET /2010-04-01/Accounts/{Sid}.json (FetchAccount): SIM_ACCOUNT_NAME,
 * SIM_ACCOUNT_STATUS, SIM_ACCOUNT_TYPE; auth_token is never echoed. */
static void fetch_account(const struct simcfg *cfg, struct req_ctx *rc, struct http_resp *resp)
{
	static const char *const subs[] = {
		"addresses", "Addresses", "applications", "Applications",
		"authorized_connect_apps", "AuthorizedConnectApps",
		"available_phone_numbers", "AvailablePhoneNumbers", "balance", "Balance",
		"calls", "Calls", "conferences", "Conferences", "connect_apps", "ConnectApps",
		"incoming_phone_numbers", "IncomingPhoneNumbers", "keys", "Keys",
		"messages", "Messages", "notifications", "Notifications",
		"outgoing_caller_ids", "OutgoingCallerIds", "queues", "Queues",
		"recordings", "Recordings", "short_codes", "SMS/ShortCodes",
		"signing_keys", "SigningKeys", "sip", "SIP", "transcriptions", "Transcriptions",
		"usage", "Usage",
	};
	struct json_object *o = json_object_new_object(), *sr = json_object_new_object();
	char uri[160], now[SIMCALL_MAX_DATE];
	size_t i;

	simcall_rfc2822(time(NULL), now);
	for (i = 0; sr != NULL && i < sizeof subs / sizeof subs[0]; i += 2) {
		snprintf(uri, sizeof uri, "/2010-04-01/Accounts/%s/%s.json", cfg->account_sid, subs[i + 1]);
		json_object_object_add(sr, subs[i], json_object_new_string(uri));
	}
	snprintf(uri, sizeof uri, "/2010-04-01/Accounts/%s.json", cfg->account_sid);
	if (o != NULL) {
		json_object_object_add(o, "auth_token", NULL);
		json_object_object_add(o, "date_created", json_object_new_string(now));
		json_object_object_add(o, "date_updated", json_object_new_string(now));
		json_object_object_add(o, "friendly_name", json_object_new_string(cfg->account_name));
		json_object_object_add(o, "owner_account_sid", json_object_new_string(cfg->account_sid));
		json_object_object_add(o, "sid", json_object_new_string(cfg->account_sid));
		json_object_object_add(o, "status", json_object_new_string(cfg->account_status));
		json_object_object_add(o, "subresource_uris", json_object_get(sr));
		json_object_object_add(o, "type", json_object_new_string(cfg->account_type));
		json_object_object_add(o, "uri", json_object_new_string(uri));
	}
	json_object_put(sr);
	send_json(rc, resp, 200, o);
	json_object_put(o);
}

/* GET …/Calls.json (ListCall, sim/calllist.h): the account's calls that
 * match the query, newest first, one page. */
static void list_calls(const struct simcfg *cfg, const char *query, struct http_resp *resp,
                       struct outcome *oc)
{
	struct simlist_query q;
	struct simerror err;
	struct json_object *page = NULL;
	enum verr e;

	if (simlist_query_parse(query, &q, &err) != VERR_OK) {
		twilio_error(resp, oc, err.status, err.code, err.message);
		return;
	}
	if (q.to[0] != '\0') {
		struct simscen scen;

		/* the rate-limited scenario's number limits its lookups too */
		simscen_lookup(q.to, &scen);
		if (scen.fault == SIMFAULT_429) {
			twilio_error(resp, oc, 429, 20429, "Too Many Requests");
			if (http_resp_header(resp, "Retry-After", "2") != VERR_OK)
				log_warn("could not add Retry-After");
			return;
		}
	}
	e = simlist_calls(cfg, &q, &page);
	if (e != VERR_OK) {
		log_error("could not list calls", LF_STR("error", verr_strerror(e)));
		twilio_error(resp, oc, 500, 20500, "Internal Server Error");
		return;
	}
	send_json(oc->rc, resp, 200, page);
	json_object_put(page);
}

/* Twilio namespace: /2010-04-01/Accounts/{AccountSid}/... */
static void twilio_route(const struct simcfg *cfg, const struct http_req *req,
                         const struct form *f, struct http_resp *resp, struct outcome *oc,
                         bool *slow)
{
	const char *rest = req->path + strlen(SIMREST_PREFIX), *slash;
	char account[40], sid[40];
	size_t n;

	slash = strchr(rest, '/');
	n = slash != NULL ? (size_t)(slash - rest) : strlen(rest);
	if (!authenticate(cfg, req->authorization, oc)) {
		unauthorized(resp, oc);
		return;
	}
	if (slash == NULL && n == 34 + 5 && strcmp(rest + 34, ".json") == 0) {
		/* the account itself: /2010-04-01/Accounts/{Sid}.json */
		if (strncmp(rest, cfg->account_sid, 34) != 0) {
			unauthorized(resp, oc);
		} else if (strcmp(req->method, "GET") == 0) {
			fetch_account(cfg, oc->rc, resp);
		} else {
			twilio_error(resp, oc, 405, 20004, "Method not allowed");
		}
		return;
	}
	if (n >= sizeof account || slash == NULL) {
		not_found(resp, oc, req->path);
		return;
	}
	memcpy(account, rest, n);
	account[n] = '\0';
	if (strcmp(account, cfg->account_sid) != 0) {
		/* Valid credentials for another account's resources. */
		unauthorized(resp, oc);
		return;
	}
	if (strcmp(slash, "/Calls.json") == 0) {
		if (strcmp(req->method, "POST") == 0)
			create_call(cfg, f, resp, oc, slow);
		else if (strcmp(req->method, "GET") == 0)
			list_calls(cfg, req->query, resp, oc);
		else
			twilio_error(resp, oc, 405, 20004, "Method not allowed");
		return;
	}
	if (strcmp(slash, "/IncomingPhoneNumbers.json") == 0 ||
	    strcmp(slash, "/OutgoingCallerIds.json") == 0) {
		if (strcmp(req->method, "GET") == 0)
			list_numbers(cfg, req, slash[1] == 'I', resp, oc);
		else
			twilio_error(resp, oc, 405, 20004, "Method not allowed");
		return;
	}
	if (strncmp(slash, "/Calls/", 7) == 0 && strlen(slash + 7) == 34 + 5 &&
	    strcmp(slash + 7 + 34, ".json") == 0) {
		memcpy(sid, slash + 7, 34);
		sid[34] = '\0';
		if (!sid_valid(sid, "CA")) {
			not_found(resp, oc, req->path);
		} else if (strcmp(req->method, "GET") == 0) {
			fetch_call(cfg, account, sid, req->path, resp, oc);
		} else if (strcmp(req->method, "POST") == 0) {
			update_call(cfg, f, sid, req->path, resp, oc);
		} else {
			twilio_error(resp, oc, 405, 20004, "Method not allowed");
		}
		return;
	}
	not_found(resp, oc, req->path);
}

static void list_log(const struct simcfg *cfg, const struct http_req *req, struct req_ctx *rc,
                     struct http_resp *resp, enum simstore_log which)
{
	struct form q = { 0 };
	struct json_object *arr = NULL;
	const char *sid = NULL;
	int truncated = 0;

	if (strcmp(req->method, "DELETE") == 0) {
		if (simstore_log_clear(cfg->state_dir, which) != VERR_OK) {
			apierr_reply(rc, resp, APIERR_INTERNAL, "could not clear the log", NULL);
			return;
		}
		apierr_resp_set(rc, resp, 204, "application/json", "", 0);
		return;
	}
	if (strcmp(req->method, "GET") != 0) {
		apierr_reply(rc, resp, APIERR_METHOD_NOT_ALLOWED, "use GET or DELETE", NULL);
		return;
	}
	if (form_parse(req->query, strlen(req->query), &q, NULL, 0) != VERR_OK) {
		apierr_reply(rc, resp, APIERR_INVALID_QUERY, "malformed query string", NULL);
		return;
	}
	sid = form_get(&q, "call_sid");
	if (simstore_log_read(cfg->state_dir, which, sid, SIMREST_LIST_BUDGET, &arr, &truncated) !=
	    VERR_OK) {
		apierr_reply(rc, resp, APIERR_INTERNAL, "could not read the log", NULL);
	} else {
		if (truncated && http_resp_header(resp, "X-Sim-Truncated", "true") != VERR_OK)
			log_warn("could not add X-Sim-Truncated");
		send_json(rc, resp, 200, arr);
	}
	json_object_put(arr);
	form_free(&q);
}

/* Answers 200 with a JSON array of n objects, the ith filled by row. */
static void send_rows(struct req_ctx *rc, struct http_resp *resp, size_t n,
                      void (*row)(struct json_object *o, size_t i))
{
	struct json_object *arr = json_object_new_array();
	size_t i;

	for (i = 0; arr != NULL && i < n; i++) {
		struct json_object *o = json_object_new_object();

		row(o, i);
		json_object_array_add(arr, o);
	}
	send_json(rc, resp, 200, arr);
	json_object_put(arr);
}

/* GET /_sim/params: one Calls create parameter the simulator checks. */
static void param_row(struct json_object *o, size_t i)
{
	size_t n;
	const struct simparam_spec *s = &simparams_specs(&n)[i];

	json_object_object_add(o, "name", json_object_new_string(s->name));
	json_object_object_add(o, "type", json_object_new_string(simparams_type_name(s->type)));
	json_object_object_add(o, "format", s->format ? json_object_new_string(s->format) : NULL);
	json_object_object_add(o, "pattern", s->pattern ? json_object_new_string(s->pattern) : NULL);
	if (s->enum_values != NULL) {
		struct json_object *e = json_object_new_array();
		const char *const *v;

		for (v = s->enum_values; *v != NULL; v++)
			json_object_array_add(e, json_object_new_string(*v));
		json_object_object_add(o, "enum", e);
	} else {
		json_object_object_add(o, "enum", NULL);
	}
}

/* GET /_sim/scenarios: one scenario of the table. */
static void scenario_row(struct json_object *o, size_t i)
{
	size_t n;
	const struct simscen_row *r = &simscen_table(&n)[i];

	json_object_object_add(o, "to", json_object_new_string(r->number));
	json_object_object_add(o, "name", json_object_new_string(r->name));
	json_object_object_add(o, "what", json_object_new_string(r->what));
}

static void sim_route(const struct simcfg *cfg, const struct http_req *req, struct req_ctx *rc,
                      struct http_resp *resp)
{
	const char *p = req->path + 5; /* after "/_sim" */
	size_t n;

	if (strcmp(p, "/requests") == 0) {
		list_log(cfg, req, rc, resp, SIMSTORE_REQUESTS);
	} else if (strcmp(p, "/callbacks") == 0) {
		list_log(cfg, req, rc, resp, SIMSTORE_CALLBACKS);
	} else if (strcmp(req->method, "GET") != 0) {
		apierr_reply(rc, resp, APIERR_METHOD_NOT_ALLOWED, "use GET", NULL);
	} else if (strcmp(p, "/params") == 0) {
		simparams_specs(&n);
		send_rows(rc, resp, n, param_row);
	} else if (strcmp(p, "/scenarios") == 0) {
		simscen_table(&n);
		send_rows(rc, resp, n, scenario_row);
	} else if (strcmp(p, "/healthz") == 0) {
		apierr_resp_set(rc, resp, 200, "application/json", "{\"ok\":true}\n", 12);
	} else if (strncmp(p, "/calls/", 7) == 0 && sid_valid(p + 7, "CA")) {
		struct json_object *doc = NULL;

		if (simstore_call_get(cfg->state_dir, p + 7, &doc) == VERR_OK)
			send_json(rc, resp, 200, doc);
		else
			apierr_reply(rc, resp, APIERR_NOT_FOUND, "no such call", NULL);
		json_object_put(doc);
	} else {
		apierr_reply(rc, resp, APIERR_NOT_FOUND, "no such simulator route", NULL);
	}
}

void simrest_handle(const struct http_req *req, struct req_ctx *rc, struct http_resp *resp,
                    void *ctx)
{
	const struct simcfg *cfg = ctx;
	struct outcome oc;
	struct form f = { 0 };
	char err[FORM_MAX_ERROR];
	bool slow = false, parsed = false;

	memset(&oc, 0, sizeof oc);
	oc.rc = rc;
	if (strcmp(req->path, "/_sim") == 0 || strncmp(req->path, "/_sim/", 6) == 0) {
		sim_route(cfg, req, rc, resp);
		return;
	}
	/* Twilio reads form bodies only; any other body leaves the form empty. */
	if (req->body_len > 0 && (req->content_type[0] == '\0' ||
	                          http_content_type_is(req, "application/x-www-form-urlencoded"))) {
		if (form_parse(req->body, req->body_len, &f, err, sizeof err) != VERR_OK) {
			char msg[FORM_MAX_ERROR + 40];

			/* still authenticate first: unauthenticated callers learn nothing */
			if (strncmp(req->path, SIMREST_PREFIX, strlen(SIMREST_PREFIX)) == 0 &&
			    !authenticate(cfg, req->authorization, &oc)) {
				unauthorized(resp, &oc);
			} else {
				snprintf(msg, sizeof msg, "Invalid form body: %s", err);
				twilio_error(resp, &oc, 400, 21200, msg);
			}
			goto out;
		}
		parsed = true;
	}
	if (strncmp(req->path, SIMREST_PREFIX, strlen(SIMREST_PREFIX)) == 0)
		twilio_route(cfg, req, &f, resp, &oc, &slow);
	else
		not_found(resp, &oc, req->path);
out:
	record_request(cfg, req, &f, &oc, resp->status);
	if (slow) {
		/* in steps, so SIGTERM (deploy/down) does not wait it out */
		long long end = clock_mono_ms() + cfg->slow_ms;

		log_info("holding the response back (slow scenario)", LF_INT("ms", cfg->slow_ms));
		while (!stop_requested() && clock_mono_ms() < end)
			clock_sleep_ms(end - clock_mono_ms() < 100 ? end - clock_mono_ms() : 100);
	}
	if (parsed)
		form_free(&f);
}
