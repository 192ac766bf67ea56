#include "call.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "buf.h"
#include "clock.h"
#include "hash.h"
#include "hook.h"
#include "jsonfield.h"
#include "log.h"
#include "num.h"
#include "phone.h"
#include "scenario.h"
#include "store.h"
#include "twimlcheck.h"

#define SIMCALL_MAX_EVENTS 8
#define SIMCALL_API_VERSION "2010-04-01"
#define SIMCALL_MAX_URI 160

static void rand_hex(char *out, size_t nbytes)
{
	unsigned char rnd[32];
	size_t i;

	if (nbytes > sizeof rnd)
		nbytes = sizeof rnd;
	if (getrandom(rnd, nbytes, 0) != (ssize_t)nbytes) {
		/* getrandom on Linux does not fail for <= 256 bytes once seeded */
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		for (i = 0; i < nbytes; i++)
			rnd[i] = (unsigned char)((unsigned long)ts.tv_nsec >> (i % 8) ^ (unsigned long)getpid() ^ i);
	}
	hash_hex(rnd, nbytes, out);
}

enum verr simcall_new_sid(const char *prefix, char out[SIMCALL_MAX_SID])
{
	if (strlen(prefix) != 2)
		return VERR_INVALID;
	out[0] = prefix[0];
	out[1] = prefix[1];
	rand_hex(out + 2, 16);
	return VERR_OK;
}

void simcall_rfc2822(time_t t, char out[SIMCALL_MAX_DATE])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	if (strftime(out, SIMCALL_MAX_DATE, "%a, %d %b %Y %H:%M:%S +0000", &tm) == 0)
		out[0] = '\0';
}

static long long get_int(struct json_object *o, const char *k, long long def)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_int))
		return def;
	return (long long)json_object_get_int64(v);
}

static bool get_bool(struct json_object *o, const char *k)
{
	struct json_object *v;

	return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_boolean) &&
	       json_object_get_boolean(v);
}

struct json_object *simcall_state_new(const struct simcfg *cfg, const char *sid,
                                      const struct simcall_req *req, const char *scenario)
{
	static const char subresource_uris[] = "subresource_uris";
	static const char *const subs[] = {
		"notifications", "Notifications", "recordings", "Recordings",
		"payments", "Payments", "events", "Events", "siprec", "Siprec",
		"streams", "Streams", "transcriptions", "Transcriptions",
		"user_defined_message_subscriptions", "UserDefinedMessageSubscriptions",
		"user_defined_messages", "UserDefinedMessages",
	};
	struct json_object *doc = json_object_new_object();
	struct json_object *call = json_object_new_object();
	struct json_object *sim = json_object_new_object();
	struct json_object *sr = json_object_new_object();
	char now[SIMCALL_MAX_DATE], uri[SIMCALL_MAX_URI], self[SIMCALL_MAX_URI];
	char from_fmt[SIMPARAMS_MAX_FORMATTED], to_fmt[SIMPARAMS_MAX_FORMATTED];
	/* the call resource's properties in the order of the OAS example, its
	 * strings (NULL: null); subresource_uris is the object sr */
	const char *const fields[][2] = {
		{ "account_sid", cfg->account_sid }, { "answered_by", NULL },
		{ "api_version", SIMCALL_API_VERSION }, { "caller_name", NULL },
		{ "date_created", now }, { "date_updated", now }, { "direction", "outbound-api" },
		{ "duration", NULL }, { "end_time", NULL }, { "forwarded_from", NULL },
		{ "from", req->from }, { "from_formatted", from_fmt }, { "group_sid", NULL },
		{ "parent_call_sid", NULL }, { "phone_number_sid", NULL }, { "price", NULL },
		{ "price_unit", "USD" }, { "sid", sid }, { "start_time", NULL }, { "status", "queued" },
		{ subresource_uris, NULL }, { "to", req->to }, { "to_formatted", to_fmt },
		{ "trunk_sid", NULL }, { "uri", self }, { "queue_time", "0" },
	};
	size_t i;
	int rc = 0;

	if (doc == NULL || call == NULL || sim == NULL || sr == NULL) {
		json_object_put(doc);
		json_object_put(call);
		json_object_put(sim);
		json_object_put(sr);
		return NULL;
	}
	json_object_object_add(doc, "call", call);
	json_object_object_add(doc, "sim", sim);
	simcall_rfc2822(time(NULL), now);
	simparams_format_number(req->from, from_fmt);
	simparams_format_number(req->to, to_fmt);
	snprintf(self, sizeof self, "/2010-04-01/Accounts/%s/Calls/%s.json", cfg->account_sid, sid);
	for (i = 0; i < sizeof subs / sizeof subs[0]; i += 2) {
		snprintf(uri, sizeof uri, "/2010-04-01/Accounts/%s/Calls/%s/%s.json", cfg->account_sid,
		         sid, subs[i + 1]);
		rc |= jsonfield_set_str(sr, subs[i], uri);
	}
	for (i = 0; i < sizeof fields / sizeof fields[0]; i++) {
		if (fields[i][0] == subresource_uris)
			rc |= json_object_object_add(call, subresource_uris, json_object_get(sr));
		else
			rc |= jsonfield_set_str(call, fields[i][0], fields[i][1]);
	}
	json_object_put(sr);

	rc |= jsonfield_set_str(sim, "scenario", scenario);
	rc |= jsonfield_set_str(sim, "url", req->url);
	rc |= jsonfield_set_str(sim, "method", req->method);
	rc |= jsonfield_set_str(sim, "fallback_url", req->fallback_url);
	rc |= jsonfield_set_str(sim, "fallback_method", req->fallback_method);
	rc |= jsonfield_set_str(sim, "twiml", req->twiml);
	rc |= jsonfield_set_str(sim, "application_sid", req->application_sid);
	rc |= jsonfield_set_str(sim, "status_callback", req->status_callback);
	rc |= jsonfield_set_str(sim, "status_callback_method", req->status_callback_method);
	rc |= json_object_object_add(sim, "events", json_object_new_int64(req->events));
	rc |= json_object_object_add(sim, "timeout", json_object_new_int64(req->timeout));
	rc |= json_object_object_add(sim, "record", json_object_new_boolean(req->record));
	rc |= jsonfield_set_str(sim, "recording_status_callback", req->recording_status_callback);
	rc |= jsonfield_set_str(sim, "recording_status_callback_method", req->recording_status_callback_method);
	rc |= json_object_object_add(sim, "recording_events",
	                             json_object_new_int64(req->recording_events));
	rc |= json_object_object_add(sim, "recording_channels",
	                             json_object_new_int64(req->recording_channels));
	rc |= jsonfield_set_str(sim, "recording_track", req->recording_track);
	rc |= json_object_object_add(sim, "test_credentials",
	                             json_object_new_boolean(req->test_credentials));
	if (rc != 0) {
		json_object_put(doc);
		return NULL;
	}
	return doc;
}

/* ISO country of an E.164 number via libphonenumber, "" when unknown. */
static void country_of(const char *e164, char out[PHONE_MAX_REGION])
{
	struct phone_number pn;
	char why[PHONE_MAX_REASON];

	out[0] = '\0';
	if (e164 != NULL && e164[0] == '+' && phone_parse(e164, NULL, &pn, why, sizeof why) == VERR_OK &&
	    strcmp(pn.region, PHONE_REGION_NONGEO) != 0)
		str_copy(out, PHONE_MAX_REGION, pn.region);
}

enum verr simcall_base_params(struct form *f, const char *account_sid, const char *sid,
                              const char *from, const char *to, const char *status,
                              const char *direction)
{
	static const char *const geo[] = { "City", "State", "Zip", "Country" };
	static const char *const who[] = { "Called", "To", "Caller", "From" };
	char from_cc[PHONE_MAX_REGION], to_cc[PHONE_MAX_REGION], key[32];
	enum verr e = VERR_OK;
	size_t i, j;

	country_of(from, from_cc);
	country_of(to, to_cc);
	if ((e = form_add(f, "AccountSid", account_sid)) != VERR_OK ||
	    (e = form_add(f, "ApiVersion", SIMCALL_API_VERSION)) != VERR_OK ||
	    (e = form_add(f, "CallSid", sid)) != VERR_OK ||
	    (e = form_add(f, "CallStatus", status)) != VERR_OK ||
	    (e = form_add(f, "Called", to)) != VERR_OK ||
	    (e = form_add(f, "Caller", from)) != VERR_OK ||
	    (e = form_add(f, "CallerName", "")) != VERR_OK ||
	    (e = form_add(f, "Direction", direction)) != VERR_OK ||
	    (e = form_add(f, "ForwardedFrom", "")) != VERR_OK ||
	    (e = form_add(f, "From", from)) != VERR_OK ||
	    (e = form_add(f, "To", to)) != VERR_OK)
		return e;
	for (i = 0; i < sizeof who / sizeof who[0]; i++) {
		bool callee = i < 2;

		for (j = 0; j < sizeof geo / sizeof geo[0]; j++) {
			const char *v = "";

			if (j == 3)
				v = callee ? to_cc : from_cc;
			snprintf(key, sizeof key, "%s%s", who[i], geo[j]);
			if ((e = form_add(f, key, v)) != VERR_OK)
				return e;
		}
	}
	return VERR_OK;
}

static void record_attempt(const struct simcfg *cfg, const char *sid, const char *kind,
                           const char *event, long long seq, const char *method,
                           const struct form *params, const char *token, int attempt,
                           const struct simhook_res *res)
{
	struct json_object *rec = json_object_new_object();
	char now[SIMCALL_MAX_DATE];

	if (rec == NULL)
		return;
	simcall_rfc2822(time(NULL), now);
	jsonfield_set_str(rec, "time", now);
	jsonfield_set_str(rec, "call_sid", sid);
	jsonfield_set_str(rec, "kind", kind);
	jsonfield_set_str(rec, "event", event);
	json_object_object_add(rec, "sequence_number", seq >= 0 ? json_object_new_int64(seq) : NULL);
	jsonfield_set_str(rec, "url", buf_str(&res->url));
	jsonfield_set_str(rec, "method", method);
	json_object_object_add(rec, "params", simstore_params_json(params));
	jsonfield_set_str(rec, "idempotency_token", token);
	jsonfield_set_str(rec, "signature", res->signature);
	json_object_object_add(rec, "attempt", json_object_new_int(attempt));
	json_object_object_add(rec, "http_status", json_object_new_int64(res->status));
	jsonfield_set_str(rec, "error", res->error[0] != '\0' ? res->error : NULL);
	if (simstore_log_append(cfg->state_dir, SIMSTORE_CALLBACKS, rec) != VERR_OK)
		log_warn("could not record a webhook attempt", LF_STR("call_sid", sid));
	json_object_put(rec);
}

void simcall_deliver(const struct simcfg *cfg, const char *sid, const char *kind,
                     const char *event, long long seq, const char *url, const char *method,
                     const struct form *params, const char *token, long *status,
                     struct buf *body)
{
	struct simhook_res res;
	int attempt;
	enum verr e = VERR_IO;

	simhook_res_init(&res);
	for (attempt = 1; attempt <= 2; attempt++) {
		e = simhook_send(cfg, url, method, params, token, &res);
		record_attempt(cfg, sid, kind, event, seq, method, params, token, attempt, &res);
		log_info("webhook delivered", LF_STR("call_sid", sid), LF_STR("kind", kind),
		         LF_STR("event", event), LF_INT("http_status", res.status),
		         LF_STR("error", res.error[0] != '\0' ? res.error : NULL));
		if (!res.connect_failed)
			break;
		clock_sleep_ms(simcfg_scaled_ms(cfg, 1000));
	}
	(void)e;
	*status = res.status;
	if (body != NULL) {
		buf_reset(body);
		if (res.body.len > 0 && buf_append(body, res.body.data, res.body.len) != VERR_OK)
			log_warn("webhook answer left out: it does not fit", LF_STR("call_sid", sid));
	}
	simhook_res_free(&res);
}

/* One queued status callback (kept for out-of-order delivery). */
struct pending {
	struct form params;
	char event[16];
	char token[SIMCALL_MAX_TOKEN];
	long long seq;
	int copies;
};

struct run {
	const struct simcfg *cfg;
	struct json_object *doc;  /* owned: the document as the call started (its settings) */
	struct json_object *call; /* borrowed from doc */
	struct json_object *sim;  /* borrowed from doc */
	const char *sid, *from, *to;
	const char *status_callback, *status_callback_method;
	unsigned events;
	bool callbacks;
	struct simscen scen;
	long long seq;
	struct pending pending[SIMCALL_MAX_EVENTS];
	size_t npending;
	/* ended through the REST API (simcall_update): the stored outcome */
	bool ended;
	char end_status[16];
	long long end_duration;
	/* the recording, once the call was answered with Record=true */
	bool recording;
	char rec_sid[SIMCALL_MAX_SID];
	char rec_start[SIMCALL_MAX_DATE];
};

/* Nominal seconds (SIM_TIME_SCALE undone) between two real times in ms. */
static long long nominal_s(const struct simcfg *cfg, long long from_ms, long long to_ms)
{
	double s = (double)(to_ms - from_ms) / cfg->time_scale / 1000.0;

	return s <= 0.0 ? 0 : s > 86400.0 ? 86400 : (long long)(s + 0.5);
}

/* Reads how the REST API ended the call into r (from the stored document). */
static void read_ending(struct run *r, struct json_object *doc)
{
	struct json_object *call;
	const char *st, *dur;
	long long d = 0;

	r->ended = true;
	str_copy(r->end_status, sizeof r->end_status, "canceled");
	r->end_duration = 0;
	if (doc == NULL || !json_object_object_get_ex(doc, "call", &call))
		return;
	if ((st = jsonfield_str(call, "status")) != NULL)
		str_copy(r->end_status, sizeof r->end_status, st);
	if ((dur = jsonfield_str(call, "duration")) != NULL && num_parse(dur, 0, 86400, &d))
		r->end_duration = d;
}

/*
 * Moves the stored call to status (with key/value, or two, set on the call
 * resource; NULL keys skip), under the call's lock, unless a call update
 * ended it meanwhile: then nothing is written, r->ended is set and false
 * returned. answered_ms, when >= 0, is kept in the sim settings.
 */
static bool advance(struct run *r, const char *status, const char *k1, const char *v1,
                    const char *k2, const char *v2, long long answered_ms)
{
	struct json_object *doc = NULL, *call, *sim;
	char now[SIMCALL_MAX_DATE];
	int fd = simstore_call_lock(r->cfg->state_dir, r->sid);
	bool ok = false;

	if (simstore_call_get(r->cfg->state_dir, r->sid, &doc) != VERR_OK ||
	    !json_object_object_get_ex(doc, "call", &call) ||
	    !json_object_object_get_ex(doc, "sim", &sim)) {
		log_error("could not load call state", LF_STR("call_sid", r->sid));
		goto out;
	}
	if (jsonfield_str(sim, "ended_by") != NULL) {
		read_ending(r, doc);
		goto out;
	}
	simcall_rfc2822(time(NULL), now);
	jsonfield_set_str(call, "status", status);
	jsonfield_set_str(call, "date_updated", now);
	if (k1 != NULL)
		jsonfield_set_str(call, k1, v1);
	if (k2 != NULL)
		jsonfield_set_str(call, k2, v2);
	if (answered_ms >= 0)
		json_object_object_add(sim, "answered_ms", json_object_new_int64(answered_ms));
	if (simstore_call_put(r->cfg->state_dir, r->sid, doc) != VERR_OK)
		log_error("could not save call state", LF_STR("call_sid", r->sid));
	ok = true;
out:
	simstore_call_unlock(fd);
	json_object_put(doc);
	return ok;
}

/* Sleeps ms real milliseconds, looking every 20 ms whether a call update
 * ended the call. true (r->ended set) when it did. */
static bool pause_ms(struct run *r, long long ms)
{
	long long end = clock_real_ms() + ms;

	for (;;) {
		long long left = end - clock_real_ms();

		if (simstore_call_ended(r->cfg->state_dir, r->sid)) {
			struct json_object *doc = NULL;

			simstore_call_get(r->cfg->state_dir, r->sid, &doc);
			read_ending(r, doc);
			json_object_put(doc);
			return true;
		}
		if (left <= 0)
			return false;
		clock_sleep_ms(left < 20 ? left : 20);
	}
}

static void send_pending(struct run *r, struct pending *p)
{
	int i;
	long status;

	for (i = 0; i < p->copies; i++)
		simcall_deliver(r->cfg, r->sid, "status-callback", p->event, p->seq,
		                r->status_callback, r->status_callback_method, &p->params, p->token,
		                &status, NULL);
}

/*
 * Fires event (a StatusCallbackEvent name) with CallStatus status when it was
 * asked for. extra holds terminal-only parameters (may be NULL).
 */
static void emit(struct run *r, unsigned ev, const char *event, const char *status,
                 const struct form *extra)
{
	struct pending *p;
	char now[SIMCALL_MAX_DATE], seq[24];
	size_t i;
	bool ok;

	if (!r->callbacks || (r->events & ev) == 0 || r->npending >= SIMCALL_MAX_EVENTS)
		return;
	p = &r->pending[r->npending];
	memset(p, 0, sizeof *p);
	str_copy(p->event, sizeof p->event, event);
	rand_hex(p->token, 16);
	p->seq = r->seq++;
	p->copies = (ev == SIMEV_COMPLETED && r->scen.duplicate) ? 2 : 1;
	simcall_rfc2822(time(NULL), now);
	snprintf(seq, sizeof seq, "%lld", p->seq);
	ok = simcall_base_params(&p->params, r->cfg->account_sid, r->sid, r->from, r->to, status,
	                         "outbound-api") == VERR_OK &&
	     form_add(&p->params, "Timestamp", now) == VERR_OK &&
	     form_add(&p->params, "CallbackSource", "call-progress-events") == VERR_OK &&
	     form_add(&p->params, "SequenceNumber", seq) == VERR_OK;
	for (i = 0; ok && extra != NULL && i < extra->n; i++)
		ok = form_add(&p->params, extra->params[i].key, extra->params[i].value) == VERR_OK;
	if (!ok) {
		log_error("could not build a status callback", LF_STR("call_sid", r->sid));
		form_free(&p->params);
		return;
	}
	r->npending++;
	if (!r->scen.reverse) {
		send_pending(r, p);
		form_free(&p->params);
		r->npending--;
	}
}

/* The media URL Twilio gives a recording (without an extension). */
static void recording_url(const struct run *r, char out[SIMCALL_MAX_URI])
{
	snprintf(out, SIMCALL_MAX_URI, "https://api.twilio.com/2010-04-01/Accounts/%s/Recordings/%s",
	         r->cfg->account_sid, r->rec_sid);
}

/*
 * One recording status callback (RecordingStatusCallback, with its method)
 * when the call asked for it and for this status's event: in-progress when
 * the recording starts, completed (or absent, nothing recorded) when the
 * call ends. The duplicate scenario delivers the final one twice, same
 * token.
 */
static void recording_emit(struct run *r, const char *status, long long duration_s)
{
	const char *url = jsonfield_str(r->sim, "recording_status_callback");
	const char *method = jsonfield_str(r->sim, "recording_status_callback_method");
	const char *track = jsonfield_str(r->sim, "recording_track");
	unsigned mask = (unsigned)get_int(r->sim, "recording_events", SIMREC_COMPLETED);
	unsigned ev = strcmp(status, "in-progress") == 0 ? SIMREC_IN_PROGRESS
	              : strcmp(status, "absent") == 0    ? SIMREC_ABSENT
	                                                 : SIMREC_COMPLETED;
	char uri[SIMCALL_MAX_URI], num[24], token[SIMCALL_MAX_TOKEN];
	struct form params = { 0 };
	long http = 0;
	int copies, i;
	bool ok;

	if (!r->recording || url == NULL || (mask & ev) == 0)
		return;
	recording_url(r, uri);
	snprintf(num, sizeof num, "%lld", get_int(r->sim, "recording_channels", 1));
	ok = form_add(&params, "AccountSid", r->cfg->account_sid) == VERR_OK &&
	     form_add(&params, "CallSid", r->sid) == VERR_OK &&
	     form_add(&params, "RecordingSid", r->rec_sid) == VERR_OK &&
	     form_add(&params, "RecordingUrl", uri) == VERR_OK &&
	     form_add(&params, "RecordingStatus", status) == VERR_OK &&
	     form_add(&params, "RecordingChannels", num) == VERR_OK &&
	     form_add(&params, "RecordingStartTime", r->rec_start) == VERR_OK &&
	     form_add(&params, "RecordingSource", "OutboundAPI") == VERR_OK &&
	     form_add(&params, "RecordingTrack", track != NULL ? track : "both") == VERR_OK;
	if (ok && ev != SIMREC_IN_PROGRESS) {
		snprintf(num, sizeof num, "%lld", duration_s);
		ok = form_add(&params, "RecordingDuration", num) == VERR_OK &&
		     form_add(&params, "ErrorCode", "0") == VERR_OK;
	}
	if (!ok) {
		log_error("could not build a recording callback", LF_STR("call_sid", r->sid));
		goto out;
	}
	rand_hex(token, 16);
	copies = ev != SIMREC_IN_PROGRESS && r->scen.duplicate ? 2 : 1;
	for (i = 0; i < copies; i++)
		simcall_deliver(r->cfg, r->sid, "recording-callback", status, -1, url,
		                method != NULL ? method : "POST", &params, token, &http, NULL);
out:
	form_free(&params);
}

/* The call was answered: with Record=true a recording starts now. */
static void recording_start(struct run *r)
{
	if (!get_bool(r->sim, "record") || simcall_new_sid("RE", r->rec_sid) != VERR_OK)
		return;
	r->recording = true;
	simcall_rfc2822(time(NULL), r->rec_start);
	recording_emit(r, "in-progress", 0);
}

/* Asks the answer URL (then FallbackUrl) for TwiML; true if usable. */
static bool fetch_answer(struct run *r, struct json_object *sim)
{
	const char *url = jsonfield_str(sim, "url"), *twiml = jsonfield_str(sim, "twiml");
	const char *fallback = jsonfield_str(sim, "fallback_url");
	struct form params = { 0 };
	struct buf body;
	struct simtwiml tw;
	long status = 0;
	bool ok = false;

	if (url == NULL) {
		if (twiml == NULL)
			return true; /* ApplicationSid: the application's TwiML is not simulated */
		ok = simtwiml_check(twiml, strlen(twiml), &tw);
		if (!ok)
			log_warn("inline twiml refused", LF_STR("call_sid", r->sid), LF_STR("why", tw.why));
		return ok;
	}
	buf_init(&body, SIMHOOK_MAX_BODY);
	if (simcall_base_params(&params, r->cfg->account_sid, r->sid, r->from, r->to,
	                        "in-progress", "outbound-api") != VERR_OK)
		goto out;
	simcall_deliver(r->cfg, r->sid, "voice-url", NULL, -1, url, jsonfield_str(sim, "method"),
	                &params, NULL, &status, &body);
	ok = status == 200 && simtwiml_check(body.data, body.len, &tw);
	if (!ok && fallback != NULL) {
		if (form_add(&params, "ErrorCode", "11200") != VERR_OK ||
		    form_add(&params, "ErrorUrl", url) != VERR_OK)
			goto out;
		simcall_deliver(r->cfg, r->sid, "fallback-url", NULL, -1, fallback,
		                jsonfield_str(sim, "fallback_method"), &params, NULL, &status, &body);
		ok = status == 200 && simtwiml_check(body.data, body.len, &tw);
	}
out:
	form_free(&params);
	buf_free(&body);
	return ok;
}

/* The terminal status callback (and the recording's final one): status,
 * its SIP code, the seconds talked. */
static void terminal(struct run *r, const char *status, const char *sip, long long talk_s)
{
	struct form extra = { 0 };
	char secs[24], mins[24], uri[SIMCALL_MAX_URI];
	bool recorded = r->recording && strcmp(status, "completed") == 0;

	snprintf(secs, sizeof secs, "%lld", talk_s);
	snprintf(mins, sizeof mins, "%lld", (talk_s + 59) / 60);
	if (form_add(&extra, "CallDuration", secs) != VERR_OK ||
	    form_add(&extra, "Duration", mins) != VERR_OK ||
	    form_add(&extra, "SipResponseCode", sip) != VERR_OK)
		goto out;
	if (recorded) {
		recording_url(r, uri);
		if (form_add(&extra, "RecordingSid", r->rec_sid) != VERR_OK ||
		    form_add(&extra, "RecordingUrl", uri) != VERR_OK ||
		    form_add(&extra, "RecordingDuration", secs) != VERR_OK)
			goto out;
	}
	emit(r, SIMEV_COMPLETED, "completed", status, &extra);
	if (r->recording)
		recording_emit(r, talk_s > 0 ? "completed" : "absent", talk_s);
out:
	form_free(&extra);
}

/* The call ended by itself with status; false when a call update had
 * ended it first (r->ended set). */
static bool finish(struct run *r, const char *status, const char *sip, long long talk_s)
{
	char now[SIMCALL_MAX_DATE], secs[24];

	simcall_rfc2822(time(NULL), now);
	snprintf(secs, sizeof secs, "%lld", talk_s);
	if (!advance(r, status, "end_time", now, "duration", secs, -1))
		return false;
	terminal(r, status, sip, talk_s);
	return true;
}

/* A call update ended the call: the terminal callback Twilio sends then
 * (none when no callback was sent yet: a call canceled while queued fires
 * none), and the recording's. */
static void ended_by_update(struct run *r)
{
	bool completed = strcmp(r->end_status, "completed") == 0;

	log_info("call ended by a call update", LF_STR("call_sid", r->sid),
	         LF_STR("status", r->end_status));
	if (r->seq == 0)
		return;
	terminal(r, r->end_status, completed ? "200" : "487", completed ? r->end_duration : 0);
}

void simcall_run(const struct simcfg *cfg, const char *sid)
{
	struct run r;
	size_t i;
	char now[SIMCALL_MAX_DATE];

	memset(&r, 0, sizeof r);
	r.cfg = cfg;
	r.sid = sid;
	if (simstore_call_get(cfg->state_dir, sid, &r.doc) != VERR_OK ||
	    !json_object_object_get_ex(r.doc, "call", &r.call) ||
	    !json_object_object_get_ex(r.doc, "sim", &r.sim)) {
		log_error("could not load call state", LF_STR("call_sid", sid));
		json_object_put(r.doc);
		return;
	}
	r.from = jsonfield_str(r.call, "from");
	r.to = jsonfield_str(r.call, "to");
	r.status_callback = jsonfield_str(r.sim, "status_callback");
	r.status_callback_method = jsonfield_str(r.sim, "status_callback_method");
	r.events = (unsigned)get_int(r.sim, "events", SIMEV_COMPLETED);
	if (r.from == NULL || r.to == NULL) {
		json_object_put(r.doc);
		return;
	}
	if (get_bool(r.sim, "test_credentials")) {
		/* Test credentials never connect nor fire callbacks (docs/TWILIO.md,
		 * "Test credentials and magic numbers"). */
		json_object_put(r.doc);
		return;
	}
	/* With ApplicationSid the StatusCallback* parameters are ignored. */
	r.callbacks = r.status_callback != NULL && jsonfield_str(r.sim, "application_sid") == NULL;
	if (r.status_callback_method == NULL)
		r.status_callback_method = "POST";
	simscen_lookup(r.to, &r.scen);
	if (r.scen.no_callbacks)
		r.callbacks = false; /* the callbacks-dropped scenarios: never delivered */

	/* canceled before it was dialed: nothing at all */
	if (pause_ms(&r, 0))
		goto ended;
	emit(&r, SIMEV_INITIATED, "initiated", "initiated", NULL);
	if (pause_ms(&r, simcfg_scaled_ms(cfg, r.scen.ring_ms)))
		goto ended;
	if (r.scen.outcome == SIMSCEN_FAILED) {
		if (!finish(&r, "failed", "404", 0))
			goto ended;
		goto flush;
	}
	if (!advance(&r, "ringing", NULL, NULL, NULL, NULL, -1))
		goto ended;
	emit(&r, SIMEV_RINGING, "ringing", "ringing", NULL);
	if (r.scen.outcome == SIMSCEN_BUSY) {
		if (pause_ms(&r, simcfg_scaled_ms(cfg, r.scen.answer_ms)) || !finish(&r, "busy", "486", 0))
			goto ended;
		goto flush;
	}
	if (r.scen.outcome == SIMSCEN_NO_ANSWER) {
		if (pause_ms(&r, simcfg_scaled_ms(cfg, get_int(r.sim, "timeout", 60) * 1000)) ||
		    !finish(&r, "no-answer", "487", 0))
			goto ended;
		goto flush;
	}
	if (pause_ms(&r, simcfg_scaled_ms(cfg, r.scen.answer_ms)))
		goto ended;
	if (!fetch_answer(&r, r.sim)) {
		if (!finish(&r, "failed", "500", 0))
			goto ended;
		goto flush;
	}
	simcall_rfc2822(time(NULL), now);
	if (!advance(&r, "in-progress", "start_time", now, NULL, NULL, clock_real_ms()))
		goto ended;
	emit(&r, SIMEV_ANSWERED, "answered", "in-progress", NULL);
	recording_start(&r);
	if (pause_ms(&r, simcfg_scaled_ms(cfg, r.scen.talk_ms)))
		goto ended;
	if (!finish(&r, "completed", "200", r.scen.talk_ms / 1000))
		goto ended;
	goto flush;
ended:
	ended_by_update(&r);
flush:
	for (i = r.npending; i > 0; i--) {
		send_pending(&r, &r.pending[i - 1]);
		form_free(&r.pending[i - 1].params);
	}
	json_object_put(r.doc);
}

enum verr simcall_update(const struct simcfg *cfg, const char *sid, const char *status,
                         struct json_object **out)
{
	struct json_object *doc = NULL, *call, *sim;
	const char *cur;
	char now[SIMCALL_MAX_DATE], secs[24];
	int fd;
	enum verr e;

	*out = NULL;
	fd = simstore_call_lock(cfg->state_dir, sid);
	if (fd < 0)
		return VERR_IO;
	e = simstore_call_get(cfg->state_dir, sid, &doc);
	if (e != VERR_OK || !json_object_object_get_ex(doc, "call", &call) ||
	    !json_object_object_get_ex(doc, "sim", &sim) || (cur = jsonfield_str(call, "status")) == NULL) {
		e = e == VERR_NOTFOUND ? VERR_NOTFOUND : VERR_IO;
		goto out;
	}
	if (strcmp(cur, "queued") != 0 && strcmp(cur, "ringing") != 0 &&
	    strcmp(cur, "in-progress") != 0) {
		e = VERR_CONFLICT; /* it has ended: Twilio's 21220 */
		goto out;
	}
	/* canceled leaves a call in progress alone; completed ends it whatever
	 * its stage, and a call not answered yet then counts as canceled */
	if (strcmp(cur, "in-progress") != 0 || strcmp(status, "completed") == 0) {
		bool talked = strcmp(cur, "in-progress") == 0;

		simcall_rfc2822(time(NULL), now);
		snprintf(secs, sizeof secs, "%lld",
		         talked ? nominal_s(cfg, get_int(sim, "answered_ms", clock_real_ms()), clock_real_ms()) : 0);
		jsonfield_set_str(call, "status", talked ? "completed" : "canceled");
		jsonfield_set_str(call, "date_updated", now);
		jsonfield_set_str(call, "end_time", now);
		jsonfield_set_str(call, "duration", secs);
		jsonfield_set_str(sim, "ended_by", status);
		if ((e = simstore_call_put(cfg->state_dir, sid, doc)) != VERR_OK ||
		    (e = simstore_call_mark_ended(cfg->state_dir, sid)) != VERR_OK)
			goto out;
	}
	*out = json_object_get(call);
	e = VERR_OK;
out:
	simstore_call_unlock(fd);
	json_object_put(doc);
	return e;
}

/* In the grandchild: drop everything inherited from the FastCGI worker. */
static void detach(void)
{
	struct sigaction sa;
	struct rlimit rl;
	int fd, maxfd = 1024;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_DFL;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGCHLD, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	(void)setsid();
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		maxfd = rl.rlim_cur > 65536 ? 65536 : (int)rl.rlim_cur;
	for (fd = 0; fd < maxfd; fd++)
		if (fd != 2)
			close(fd);
	fd = open("/dev/null", O_RDWR);
	if (fd == 0)
		(void)dup2(0, 1);
	alarm(SIMCALL_MAX_SECONDS);
}

/* Records this call process as SIM_STATE_DIR/pids/<pid>.pid so deploy/down
 * and the test fixture can stop it by PID (it left the worker's process
 * group with setsid). Best effort: the path is written into pidfile. */
static void pidfile_write(const struct simcfg *cfg, char *pidfile, size_t sz)
{
	char dir[SIMCFG_MAX_PATH + 8];
	FILE *f;

	pidfile[0] = '\0';
	snprintf(dir, sizeof dir, "%s/pids", cfg->state_dir);
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return;
	snprintf(pidfile, sz, "%s/%d.pid", dir, (int)getpid());
	f = fopen(pidfile, "w");
	if (f == NULL) {
		pidfile[0] = '\0';
		return;
	}
	fprintf(f, "%d\n", (int)getpid());
	fclose(f);
}

enum verr simcall_spawn(const struct simcfg *cfg, const char *sid)
{
	pid_t pid = fork(), w;
	int st = 0;

	if (pid < 0)
		return VERR_IO;
	if (pid == 0) {
		pid_t gc = fork();

		if (gc != 0)
			_exit(gc < 0 ? 1 : 0);
		char pidfile[SIMCFG_MAX_PATH + 32];

		detach();
		pidfile_write(cfg, pidfile, sizeof pidfile);
		if (curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK)
			simcall_run(cfg, sid);
		if (pidfile[0] != '\0')
			unlink(pidfile);
		_exit(0);
	}
	while ((w = waitpid(pid, &st, 0)) < 0 && errno == EINTR)
		;
	if (w < 0)
		return VERR_OK; /* SIGCHLD ignored: the child was reaped for us */
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? VERR_OK : VERR_IO;
}
