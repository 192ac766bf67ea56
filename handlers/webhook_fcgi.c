/*
 * webhook_fcgi: Twilio's status callbacks (POST /twilio/webhook), recording
 * status callbacks (POST /twilio/recording) and Voice URL requests (POST
 * /twilio/voice). Routing and wiring only: verification is common/sig,
 * validation common/callback and common/recording, storage common/db (via
 * common/record), TwiML common/twiml.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apierr.h"
#include "buf.h"
#include "callback.h"
#include "config.h"
#include "db.h"
#include "form.h"
#include "health.h"
#include "log.h"
#include "metrics.h"
#include "record.h"
#include "recording.h"
#include "route.h"
#include "server.h"
#include "sig.h"
#include "twiml.h"

#define WEBHOOK_MAX_BODY (64 * 1024)
#define WEBHOOK_MAX_TOKEN 256
/* Defaults: VOICE_WEBHOOK_WORKERS one per two CPUs, VOICE_WEBHOOK_THREADS,
 * VOICE_WEBHOOK_DB_CONNECTIONS. A webhook worker mostly waits for its group
 * commit, one batch at a time (common/db.h): fewer workers make fewer,
 * bigger transactions. On the 2-CPU bench box (bench/peer.sh's callback
 * load, medians of REPEAT=3 runs) one worker of 64 threads did 6,900-7,150
 * callbacks/s at p99 19-20 ms; two of 32 did 6,700-7,300/s at 24-28 ms. */
static const struct config_pool_defaults webhook_pool = { 2, 64, 4 };

struct app {
	struct config cfg;
	struct config_pool pool;
	struct db *db; /* this worker's connection pool */
};

/* I-Twilio-Idempotency-Token is not signed: accept only what a token looks
 * like (printable ASCII, bounded), so no client can make a write fail. */
static bool token_valid(const char *t)
{
	size_t n = strlen(t), i;

	if (n > WEBHOOK_MAX_TOKEN)
		return false;
	for (i = 0; i < n; i++)
		if (t[i] < 0x21 || t[i] > 0x7e)
			return false;
	return true;
}

/* Answers a webhook that record_event or record_recording could not store
 * (e): 500 when the database refused it for good (a retry would be refused
 * too), else 503 to have Twilio retry; what names it in the message. True
 * when e is VERR_OK. */
static bool kept(struct req_ctx *rc, struct http_resp *resp, enum verr e, const char *what)
{
	char msg[64];

	if (e == VERR_OK)
		return true;
	if (e == VERR_DB) {
		snprintf(msg, sizeof msg, "the %s could not be stored", what);
		apierr_reply(rc, resp, APIERR_INTERNAL, msg, NULL);
	} else {
		snprintf(msg, sizeof msg, "the %s could not be stored; retry later", what);
		apierr_reply(rc, resp, APIERR_DATABASE_UNAVAILABLE, msg, NULL);
	}
	return false;
}

/* Answers a webhook whose parameters did not parse (e from callback_parse
 * or recording_parse): 403 for another account, 400 naming field, else
 * 500. True when e is VERR_OK. */
static bool parsed(const struct http_req *req, struct req_ctx *rc, struct http_resp *resp,
                   enum verr e, const char *invalid, const char *field)
{
	if (e == VERR_OK)
		return true;
	if (e == VERR_FORBIDDEN) {
		log_warn("webhook refused: another account", LF_STR("remote_addr", req->remote_addr));
		apierr_reply(rc, resp, APIERR_WRONG_ACCOUNT, NULL, field);
	} else if (e == VERR_INVALID) {
		apierr_reply(rc, resp, APIERR_INVALID_PARAMETER, invalid, field);
	} else {
		apierr_reply(rc, resp, APIERR_INTERNAL, "the webhook could not be processed", NULL);
	}
	return false;
}

/* Builds the TwiML for a Voice URL request into b. */
static enum verr voice_twiml(const struct app *app, const struct call_event *ev, struct buf *b)
{
	struct twiml t;
	enum verr e = twiml_begin(&t, b);
	bool inbound = strcmp(ev->direction, "inbound") == 0;

	if (e != VERR_OK)
		return e;
	if (inbound && app->cfg.inbound_mode == VOICE_MODE_REJECT)
		e = twiml_reject(&t, TWIML_REJECT_REJECTED);
	else if (inbound && app->cfg.inbound_mode == VOICE_MODE_DIAL)
		e = twiml_dial(&t, app->cfg.forward_to);
	else
		e = twiml_say(&t, app->cfg.greeting, NULL, NULL);
	return e != VERR_OK ? e : twiml_finish(&t);
}

/*
 * Every webhook's first steps, before any other work: the signature
 * (missing 400, wrong 403, whatever the body), then a form body (malformed
 * 400, another media type 415). true with form filled (the caller frees it
 * with form_free); false with resp holding the error.
 */
static bool verified_form(const struct app *app, const struct http_req *req,
                          struct req_ctx *rc, struct http_resp *resp, struct form *form)
{
	bool is_form = http_content_type_is(req, "application/x-www-form-urlencoded");
	bool is_json = http_content_type_is(req, "application/json");
	bool malformed;
	char detail[FORM_MAX_ERROR];

	if (req->twilio_signature[0] == '\0') {
		metrics_count_sig_failure(METRICS_SIG_MISSING);
		log_warn("webhook refused: no signature", LF_STR("route", req->path),
		         LF_STR("remote_addr", req->remote_addr));
		apierr_reply(rc, resp, APIERR_MISSING_SIGNATURE, NULL, NULL);
		return false;
	}
	/* a body that does not parse is checked as if it had no parameters:
	 * a forger still gets 403 before anything else is said about it */
	malformed = is_form && form_parse(req->body, req->body_len, form, detail,
	                                  sizeof detail) != VERR_OK;
	if (!sig_verify(app->cfg.auth_token, app->cfg.public_base_url, req->request_uri, form,
	                req->body, req->body_len, is_json, req->twilio_signature)) {
		metrics_count_sig_failure(METRICS_SIG_MISMATCH);
		log_warn("webhook refused: signature mismatch", LF_STR("route", req->path),
		         LF_STR("remote_addr", req->remote_addr));
		apierr_reply(rc, resp, APIERR_INVALID_SIGNATURE, NULL, NULL);
		return false;
	}
	if (malformed) {
		log_warn("webhook refused: malformed body", LF_STR("error", detail),
		         LF_STR("remote_addr", req->remote_addr));
		apierr_reply(rc, resp, APIERR_MALFORMED_BODY, detail, NULL);
		return false;
	}
	if (!is_form) {
		apierr_reply(rc, resp, APIERR_UNSUPPORTED_MEDIA_TYPE,
		             "Twilio webhooks must be application/x-www-form-urlencoded", NULL);
		return false;
	}
	return true;
}

/* Verifies, validates and stores one webhook; answers 204 for a status
 * callback, TwiML for a Voice URL request. */
static void handle_twilio(struct app *app, const struct http_req *req, struct req_ctx *rc,
                          struct http_resp *resp, bool voice)
{
	struct form form = { 0 };
	struct call_event ev;
	struct buf twiml;
	bool stored = false, spooled = false;
	char field[64];
	const char *token = req->twilio_idempotency;
	enum verr e;

	memset(&ev, 0, sizeof ev);
	buf_init(&twiml, TWIML_MAX_RESPONSE);
	apierr_reply(rc, resp, APIERR_INTERNAL, "the webhook could not be processed", NULL);

	if (!verified_form(app, req, rc, resp, &form))
		goto out;
	if (!parsed(req, rc, resp,
	            callback_parse(&form, app->cfg.account_sid, &ev, field, sizeof field),
	            "a webhook parameter is missing or malformed", field))
		goto out;
	str_copy(rc->call_sid, sizeof rc->call_sid, ev.call_sid);
	if (!token_valid(token)) {
		apierr_reply(rc, resp, APIERR_INVALID_PARAMETER,
		             "the idempotency token must be at most 256 printable ASCII characters",
		             "I-Twilio-Idempotency-Token");
		goto out;
	}
	/* status callbacks always; Voice URL requests only for inbound calls
	 * (our outbound calls were recorded when placed) */
	if (!voice || strcmp(ev.direction, "inbound") == 0) {
		e = record_event(app->db, app->cfg.spool_dir, &ev, token, req->body, req->body_len,
		                 &stored, &spooled);
		if (!kept(rc, resp, e, "webhook"))
			goto out;
		log_info(spooled ? "call event spooled" : stored ? "call event stored"
		                                                 : "duplicate call event ignored",
		         LF_STR("call_sid", ev.call_sid), LF_STR("status", ev.status),
		         LF_INT("sequence_number", ev.sequence_number));
	}
	if (!voice) {
		apierr_resp_set(rc, resp, 204, "text/plain", "", 0);
		goto out;
	}
	if (voice_twiml(app, &ev, &twiml) != VERR_OK) {
		apierr_reply(rc, resp, APIERR_INTERNAL, "could not build the TwiML answer", NULL);
		goto out;
	}
	apierr_resp_set(rc, resp, 200, "text/xml; charset=utf-8", twiml.data, twiml.len);
out:
	callback_event_free(&ev);
	form_free(&form);
	buf_free(&twiml);
}

/* Verifies, validates and stores one recording status callback; 204. */
static void handle_recording(struct app *app, const struct http_req *req, struct req_ctx *rc,
                             struct http_resp *resp)
{
	struct form form = { 0 };
	struct recording_event rec;
	bool stored = false, spooled = false;
	char field[64];
	enum verr e;

	memset(&rec, 0, sizeof rec);
	if (!verified_form(app, req, rc, resp, &form))
		goto out;
	if (!parsed(req, rc, resp,
	            recording_parse(&form, app->cfg.account_sid, &rec, field, sizeof field),
	            "a recording parameter is missing or malformed", field))
		goto out;
	str_copy(rc->call_sid, sizeof rc->call_sid, rec.call_sid);
	e = record_recording(app->db, app->cfg.spool_dir, &rec, req->body, req->body_len, &stored,
	                     &spooled);
	if (!kept(rc, resp, e, "recording"))
		goto out;
	log_info(spooled ? "recording spooled" : stored ? "recording stored"
	                                                : "duplicate recording callback ignored",
	         LF_STR("call_sid", rec.call_sid), LF_STR("recording_sid", rec.recording_sid),
	         LF_STR("status", rec.status));
	apierr_resp_set(rc, resp, 204, "text/plain", "", 0);
out:
	recording_event_free(&rec);
	form_free(&form);
}

/* Background, in each worker: probe PostgreSQL while it is unreachable,
 * and move spooled records into it once it answers. */
static void tick(void *ctx)
{
	struct app *app = ctx;

	if (db_probe(app->db) == VERR_OK)
		record_replay(app->db, app->cfg.spool_dir, app->cfg.account_sid);
}

static void handle(const struct http_req *req, struct req_ctx *rc, struct http_resp *resp,
                   void *ctx)
{
	struct app *app = ctx;
	enum route r = route_match(req->path, NULL);
	bool voice = r == ROUTE_TWILIO_VOICE, recording = r == ROUTE_TWILIO_RECORDING;

	if (health_route(req, rc, resp, app->db) || metrics_route(req, rc, resp))
		return;
	if (!voice && !recording && r != ROUTE_TWILIO_WEBHOOK) {
		apierr_reply(rc, resp, APIERR_NOT_FOUND, "no such endpoint", NULL);
		return;
	}
	if (strcmp(req->method, "POST") != 0) {
		apierr_reply(rc, resp, APIERR_METHOD_NOT_ALLOWED, "use POST", NULL);
		if (http_resp_header(resp, "Allow", "POST") != VERR_OK)
			log_warn("could not add Allow to a 405");
		return;
	}
	if (recording)
		handle_recording(app, req, rc, resp);
	else
		handle_twilio(app, req, rc, resp, voice);
}

/* In the master: the configuration, checked (server_app.load). */
static void *load(struct server_pool *pool, char *err, size_t errsz)
{
	struct app *app = calloc(1, sizeof *app);

	if (app == NULL) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	if (config_load(&app->cfg, CONFIG_NEED_WEBHOOK, err, errsz) != VERR_OK ||
	    config_pool_load("WEBHOOK", &webhook_pool, &app->pool, err, errsz) != VERR_OK) {
		free(app);
		return NULL;
	}
	pool->workers = app->pool.workers;
	pool->threads = app->pool.threads;
	return app;
}

/* In a new worker process. */
static bool start(void *ctx)
{
	struct app *app = ctx;

	/* on failure: disabled, logged; but a metrics file someone else can
	 * write could crash the worker (SIGBUS) at any time: refuse to start */
	if (metrics_init(app->cfg.metrics_file, "webhook") == VERR_FORBIDDEN)
		return false;
	app->db = db_new(app->cfg.database_url, app->pool.db_per_worker);
	if (app->db != NULL)
		db_keyed_only(app->db); /* every statement here is a lookup by sid */
	if (app->db == NULL) {
		log_error("out of memory");
		return false;
	}
	return true;
}

static void stop(void *ctx)
{
	struct app *app = ctx;

	db_free(app->db);
	app->db = NULL;
	metrics_close();
}

int main(int argc, char **argv)
{
	static const struct server_app webhook = { load, free, start, stop, tick, handle };
	struct server_opts opts = { "webhook", WEBHOOK_MAX_BODY, NULL };

	if (argc == 3 && strcmp(argv[1], "-s") == 0)
		opts.socket_path = argv[2];
	return server_run(&opts, &webhook);
}
