#include "rest.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <json-c/json.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "call.h"
#include "calllist.h"
#include "form.h"
#include "log.h"
#include "params.h"
#include "scenario.h"
#include "store.h"
#include "server.h"

#define SIMREST_MAX_AUTH 512
#define SIMREST_MAX_USER 128
#define SIMREST_LIST_BUDGET (200 * 1024)
#define SIMREST_PREFIX "/2010-04-01/Accounts/"

/* What one request did, for the requests log. */
struct outcome {
	char user[SIMREST_MAX_USER];
	char call_sid[SIMCALL_MAX_SID];
	int twilio_code;
};

static const char *json_text(struct json_object *o)
{
	return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
	                                             JSON_C_TO_STRING_NOSLASHESCAPE);
}

static void send_json(struct http_resp *resp, int status, struct json_object *o)
{
	const char *s = json_text(o);

	if (s == NULL || http_resp_set(resp, status, "application/json", s, strlen(s)) != VERR_OK)
		http_resp_error(resp, 500, "internal_error", "could not build the response", NULL);
}

/* Twilio's REST error body (TWILIO.md section 2). */
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
	send_json(resp, status, o);
	json_object_put(o);
	resp->twilio_code = code;
	oc->twilio_code = code;
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

static struct json_object *params_json(const struct form *f)
{
	struct json_object *arr = json_object_new_array();
	size_t i;

	for (i = 0; arr != NULL && i < f->n; i++) {
		struct json_object *pair = json_object_new_array();
		const char *v = f->params[i].value;

		if (pair == NULL)
			break;
		if (strcmp(f->params[i].key, "SipAuthPassword") == 0)
			v = "[redacted]";
		json_object_array_add(pair, json_object_new_string(f->params[i].key));
		json_object_array_add(pair, json_object_new_string(v));
		json_object_array_add(arr, pair);
	}
	return arr;
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
	json_object_object_add(rec, "params", params_json(f));
	json_object_object_add(rec, "auth_user",
	                       oc->user[0] != '\0' ? json_object_new_string(oc->user) : NULL);
	json_object_object_add(rec, "status", json_object_new_int(status));
	json_object_object_add(rec, "twilio_code",
	                       oc->twilio_code != 0 ? json_object_new_int(oc->twilio_code) : NULL);
	json_object_object_add(rec, "call_sid",
	                       oc->call_sid[0] != '\0' ? json_object_new_string(oc->call_sid) : NULL);
	json_object_object_add(rec, "request_id", json_object_new_string(req->request_id));
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
	str_copy(resp->call_sid, sizeof resp->call_sid, sid);
	if (simcall_spawn(cfg, sid) != VERR_OK)
		log_error("could not start the call process", LF_STR("call_sid", sid));
	json_object_object_get_ex(doc, "call", &call);
	send_json(resp, 201, call);
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
	send_json(resp, 200, call);
out:
	json_object_put(doc);
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
	e = simlist_calls(cfg, &q, &page);
	if (e != VERR_OK) {
		log_error("could not list calls", LF_STR("error", verr_strerror(e)));
		twilio_error(resp, oc, 500, 20500, "Internal Server Error");
		return;
	}
	send_json(resp, 200, page);
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
		http_resp_header(resp, "WWW-Authenticate", "Basic realm=\"Twilio API\"");
		twilio_error(resp, oc, 401, 20003, "Authenticate");
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
		http_resp_header(resp, "WWW-Authenticate", "Basic realm=\"Twilio API\"");
		twilio_error(resp, oc, 401, 20003, "Authenticate");
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
	if (strncmp(slash, "/Calls/", 7) == 0 && strlen(slash + 7) == 34 + 5 &&
	    strcmp(slash + 7 + 34, ".json") == 0) {
		memcpy(sid, slash + 7, 34);
		sid[34] = '\0';
		if (!simstore_sid_ok(sid, "CA")) {
			not_found(resp, oc, req->path);
		} else if (strcmp(req->method, "GET") == 0) {
			fetch_call(cfg, account, sid, req->path, resp, oc);
		} else {
			twilio_error(resp, oc, 405, 20004, "Method not allowed");
		}
		return;
	}
	not_found(resp, oc, req->path);
}

static void list_log(const struct simcfg *cfg, const struct http_req *req,
                     struct http_resp *resp, enum simstore_log which)
{
	struct form q = { 0 };
	struct json_object *arr = NULL;
	const char *sid = NULL;
	int truncated = 0;

	if (strcmp(req->method, "DELETE") == 0) {
		if (simstore_log_clear(cfg->state_dir, which) != VERR_OK) {
			http_resp_error(resp, 500, "internal_error", "could not clear the log", NULL);
			return;
		}
		http_resp_set(resp, 204, "application/json", "", 0);
		return;
	}
	if (strcmp(req->method, "GET") != 0) {
		http_resp_error(resp, 405, "method_not_allowed", "use GET or DELETE", NULL);
		return;
	}
	if (form_parse(req->query, strlen(req->query), &q, NULL, 0) != VERR_OK) {
		http_resp_error(resp, 400, "bad_query", "malformed query string", NULL);
		return;
	}
	sid = form_get(&q, "call_sid");
	if (simstore_log_read(cfg->state_dir, which, sid, SIMREST_LIST_BUDGET, &arr, &truncated) !=
	    VERR_OK) {
		http_resp_error(resp, 500, "internal_error", "could not read the log", NULL);
	} else {
		if (truncated)
			http_resp_header(resp, "X-Sim-Truncated", "true");
		send_json(resp, 200, arr);
	}
	json_object_put(arr);
	form_free(&q);
}

static void list_params(struct http_resp *resp)
{
	struct json_object *arr = json_object_new_array();
	const struct simparam_spec *s;
	size_t n, i;

	s = simparams_specs(&n);
	for (i = 0; arr != NULL && i < n; i++) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "name", json_object_new_string(s[i].name));
		json_object_object_add(o, "type",
		                       json_object_new_string(simparams_type_name(s[i].type)));
		json_object_object_add(o, "format",
		                       s[i].format ? json_object_new_string(s[i].format) : NULL);
		json_object_object_add(o, "pattern",
		                       s[i].pattern ? json_object_new_string(s[i].pattern) : NULL);
		if (s[i].enum_values != NULL) {
			struct json_object *e = json_object_new_array();
			const char *const *v;

			for (v = s[i].enum_values; *v != NULL; v++)
				json_object_array_add(e, json_object_new_string(*v));
			json_object_object_add(o, "enum", e);
		} else {
			json_object_object_add(o, "enum", NULL);
		}
		json_object_array_add(arr, o);
	}
	send_json(resp, 200, arr);
	json_object_put(arr);
}

static void list_scenarios(struct http_resp *resp)
{
	struct json_object *arr = json_object_new_array();
	const struct simscen_row *rows;
	size_t n, i;

	rows = simscen_table(&n);
	for (i = 0; arr != NULL && i < n; i++) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "to", json_object_new_string(rows[i].number));
		json_object_object_add(o, "name", json_object_new_string(rows[i].name));
		json_object_object_add(o, "what", json_object_new_string(rows[i].what));
		json_object_array_add(arr, o);
	}
	send_json(resp, 200, arr);
	json_object_put(arr);
}

static void sim_route(const struct simcfg *cfg, const struct http_req *req, struct http_resp *resp)
{
	const char *p = req->path + 5; /* after "/_sim" */

	if (strcmp(p, "/requests") == 0) {
		list_log(cfg, req, resp, SIMSTORE_REQUESTS);
	} else if (strcmp(p, "/callbacks") == 0) {
		list_log(cfg, req, resp, SIMSTORE_CALLBACKS);
	} else if (strcmp(req->method, "GET") != 0) {
		http_resp_error(resp, 405, "method_not_allowed", "use GET", NULL);
	} else if (strcmp(p, "/params") == 0) {
		list_params(resp);
	} else if (strcmp(p, "/scenarios") == 0) {
		list_scenarios(resp);
	} else if (strcmp(p, "/healthz") == 0) {
		http_resp_set(resp, 200, "application/json", "{\"ok\":true}\n", 12);
	} else if (strncmp(p, "/calls/", 7) == 0 && simstore_sid_ok(p + 7, "CA")) {
		struct json_object *doc = NULL;

		if (simstore_call_get(cfg->state_dir, p + 7, &doc) == VERR_OK)
			send_json(resp, 200, doc);
		else
			http_resp_error(resp, 404, "not_found", "no such call", NULL);
		json_object_put(doc);
	} else {
		http_resp_error(resp, 404, "not_found", "no such simulator route", NULL);
	}
}

void simrest_handle(const struct http_req *req, struct http_resp *resp, void *ctx)
{
	const struct simcfg *cfg = ctx;
	struct outcome oc;
	struct form f = { 0 };
	char err[FORM_MAX_ERROR];
	bool slow = false, parsed = false;

	memset(&oc, 0, sizeof oc);
	if (strcmp(req->path, "/_sim") == 0 || strncmp(req->path, "/_sim/", 6) == 0) {
		sim_route(cfg, req, resp);
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
				http_resp_header(resp, "WWW-Authenticate", "Basic realm=\"Twilio API\"");
				twilio_error(resp, &oc, 401, 20003, "Authenticate");
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
		long long end = server_now_ms() + cfg->slow_ms;

		log_info("holding the response back (slow scenario)", LF_INT("ms", cfg->slow_ms));
		while (!server_stopping() && server_now_ms() < end)
			simcall_sleep_ms(end - server_now_ms() < 100 ? end - server_now_ms() : 100);
	}
	if (parsed)
		form_free(&f);
}
