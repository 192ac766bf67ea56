/*
 * call_fcgi: POST /call places an outbound call; GET /calls… and GET
 * /recordings/{sid} read the record (a key sees its own calls unless it is
 * read_all); POST /calls/{sid}/cancel and /hangup end a call; GET /metrics
 * answers for every worker of both pools. `call_fcgi --check-twilio` checks
 * the Twilio credentials and caller ID and exits (deploy/voicectl twilio
 * check). Routing and wiring only; the logic lives in common/.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apierr.h"
#include "apikey.h"
#include "callback.h"
#include "callctl.h"
#include "callreq.h"
#include "callsquery.h"
#include "clock.h"
#include "config.h"
#include "cursor.h"
#include "db.h"
#include "health.h"
#include "idem.h"
#include "log.h"
#include "metrics.h"
#include "phone.h"
#include "reconcile.h"
#include "record.h"
#include "recording.h"
#include "route.h"
#include "server.h"
#include "sid.h"
#include "twilio.h"
#include "twilioerr.h"
#include "twiliocheck.h"
#include "twiml.h"

#define CALL_MAX_BODY CALLREQ_MAX_BODY
#define CALL_IDEM_PURGE_MS (10 * 60 * 1000) /* how often a worker purges expired keys */
#define CALL_MAX_JSON (256 * 1024)
#define JSON_TYPE "application/json; charset=utf-8"
#define CALL_BUDGET_MS 28000     /* nginx gives /call 30 s (fastcgi_read_timeout); 2 s to answer */
#define CALL_MIN_DIAL_MS 2000    /* less left than this: refuse instead of dialing */
#define CALL_LEASE_SLACK_MS 5000 /* an Idempotency-Key's lease outlives its request by this */
/* default VOICE_CALL_WORKERS: one per CPU; VOICE_CALL_THREADS;
 * VOICE_CALL_DB_CONNECTIONS */
static const struct config_pool_defaults call_pool = { 1, 64, 8 };

struct app {
	struct config cfg;
	struct config_pool pool;
	struct phone_policy policy;
	struct db *db;         /* this worker's connection pool */
	struct apikey_cache *keys; /* the keys this worker found (common/apikey.h) */
	struct twilio *twilio; /* shared by this worker's threads */
	char status_callback[CONFIG_MAX_URL + 32];
	char voice_url[CONFIG_MAX_URL + 32];
	char recording_callback[CONFIG_MAX_URL + 32];
	long long next_purge_ms; /* tick thread only */
	struct reconcile_settings reconcile_cfg;
	struct reconcile *reconcile; /* tick thread only */
};

/* Authenticates the request before any other work: fills rc->key_name and
 * rc->read_all (whether the key reads every call, else only those placed
 * with its name). Returns false with resp holding the 401 (or 503) when it
 * fails. */
static bool authenticate(struct app *app, const struct http_req *req, struct req_ctx *rc,
                         struct http_resp *resp)
{
	enum verr e = apikey_authenticate(app->db, app->keys, req->authorization, rc->key_name,
	                                  sizeof rc->key_name, &rc->read_all);

	if (e == VERR_OK)
		return true;
	rc->key_name[0] = '\0';
	rc->read_all = false;
	if (e == VERR_AUTH) {
		log_warn("api key refused", LF_STR("remote_addr", req->remote_addr));
		apierr_reply(rc, resp, APIERR_UNAUTHORIZED,
		             req->authorization[0] ? NULL
		                                   : "an API key is required (Authorization: Bearer <key>)",
		             NULL);
		if (http_resp_header(resp, "WWW-Authenticate", "Bearer realm=\"twilio-voice\"") != VERR_OK)
			log_warn("could not add WWW-Authenticate to a 401");
	} else {
		apierr_reply(rc, resp, APIERR_DATABASE_UNAVAILABLE,
		             "could not check the API key: the database is not reachable", NULL);
	}
	return false;
}

/* The owner the database filters an authenticated request's reads by: a
 * key reads only the calls placed with its name unless it is read_all. */
static const char *call_owner(const struct req_ctx *rc)
{
	return rc->read_all ? NULL : rc->key_name;
}

static void handle_call(struct app *app, const struct http_req *req, struct req_ctx *rc,
                        struct http_resp *resp)
{
	struct call_request cr;
	struct callreq_error cerr;
	struct phone_number to, from;
	struct twilio_call_params tp;
	struct twilio_call tc;
	struct twilio_error terr;
	struct apierr_detail fail;
	struct twiml tw;
	struct buf twiml, json;
	bool idem = req->idempotency_key[0] != '\0', claimed = false, release = false, spooled;
	enum verr e;

	buf_init(&twiml, TWIML_MAX_INLINE);
	buf_init(&json, CALL_MAX_JSON);
	memset(&tp, 0, sizeof tp);
	memset(&tc, 0, sizeof tc);
	memset(&terr, 0, sizeof terr);

	if (!http_content_type_is(req, "application/json")) {
		apierr_reply(rc, resp, APIERR_UNSUPPORTED_MEDIA_TYPE, "send the call as application/json",
		             NULL);
		goto out;
	}
	if (callreq_parse(req->body, req->body_len, &cr, &cerr) != VERR_OK ||
	    callreq_numbers(&cr, app->cfg.from_number, &app->policy, &to, &from, &cerr) != VERR_OK) {
		log_warn("call request refused", LF_STR("error", apierr_code(cerr.code)),
		         LF_STR("field", cerr.field), LF_STR("reason", cerr.message));
		apierr_reply(rc, resp, cerr.code, cerr.message, cerr.field[0] ? cerr.field : NULL);
		goto out;
	}
	if (idem && !idem_key_valid(req->idempotency_key)) {
		apierr_reply(rc, resp, APIERR_INVALID_IDEMPOTENCY_KEY, NULL, "Idempotency-Key");
		goto out;
	}
	tp.to = to.e164;
	tp.from = from.e164;
	tp.status_callback = app->status_callback;
	tp.timeout = cr.has_timeout ? cr.timeout : 0;
	tp.record = cr.record;
	tp.recording_status_callback = app->recording_callback;
	tp.machine_detection = cr.machine_detection;
	if (cr.say[0] != '\0') {
		if (twiml_begin(&tw, &twiml) != VERR_OK || twiml_say(&tw, cr.say, NULL, NULL) != VERR_OK ||
		    twiml_finish(&tw) != VERR_OK) {
			apierr_reply(rc, resp, APIERR_INVALID_VALUE,
			             "the text to say is too long once encoded as TwiML", "say");
			goto out;
		}
		tp.twiml = twiml.data;
	} else {
		tp.url = cr.url[0] != '\0' ? cr.url : app->voice_url;
	}
	/* nginx's clock started when it handed the request over: time spent
	 * queued counts, and a call dialed after nginx gave up is a call the
	 * client never hears of */
	if (server_left_ms(req, CALL_BUDGET_MS) < CALL_MIN_DIAL_MS)
		goto expired;
	if (idem) {
		if (!idem_begin(app->db, req, rc, resp,
		                server_left_ms(req, CALL_BUDGET_MS) + CALL_LEASE_SLACK_MS))
			goto out;
		claimed = true;
		if (server_left_ms(req, CALL_BUDGET_MS) < CALL_MIN_DIAL_MS) {
			release = true; /* waited for the key: nothing dialed */
			goto expired;
		}
	}
	tp.deadline_ms = clock_mono_ms() + server_left_ms(req, CALL_BUDGET_MS);

	/* what is dialed, noted on the key: should Twilio's answer get lost,
	 * reconciliation finds the call by it (common/reconcile.h) */
	if (claimed && db_idem_dialing(app->db, rc->key_name, req->idempotency_key, tp.to,
	                               tp.from) != VERR_OK)
		log_warn("could not note the dial on its idempotency key: a lost answer will not be "
		         "reconciled");
	e = twilio_call_create(app->twilio, &tp, &tc, &terr);
	if (e != VERR_OK) {
		/* the detail (libcurl's text, ours) is in the log, not for clients */
		twilioerr_map(&terr, TWILIOERR_CREATE, &fail);
		apierr_send(rc, resp, &fail);
		/* free the key only when Twilio provably created no call: after a
		 * timeout, a 5xx or an unreadable 2xx it may have */
		release = !terr.may_exist && e != VERR_TIMEOUT;
		goto out;
	}
	str_copy(rc->call_sid, sizeof rc->call_sid, tc.sid);
	{
		struct db_call row = {
			.call_sid = tc.sid,
			.account_sid = app->cfg.account_sid,
			.direction = tc.direction[0] ? tc.direction : "outbound-api",
			.from = from.e164,
			.to = to.e164,
			.status = tc.status[0] ? tc.status : "queued",
			.api_key_name = rc->key_name,
		};

		e = record_call(app->db, app->cfg.spool_dir, &row, &json, &spooled);
	}
	/* Twilio accepted the call: answer 201 whatever happened to the record
	 * (spooled, it reaches the database when that is back) */
	if (e != VERR_OK)
		log_error("call placed but not recorded", LF_STR("call_sid", tc.sid),
		          LF_STR("error", verr_strerror(e)), LF_PHONE("to", to.e164));
	{
		char location[64];

		snprintf(location, sizeof location, "/calls/%s", tc.sid);
		/* the call exists: whatever cannot be added, the answer stays 201 */
		if (http_resp_set(resp, 201, JSON_TYPE, json.data, json.len) != VERR_OK)
			log_error("call placed but its record is left out of the answer",
			          LF_STR("call_sid", tc.sid));
		if (http_resp_header(resp, "Location", location) != VERR_OK)
			log_error("call placed but Location is left out of the answer",
			          LF_STR("call_sid", tc.sid));
	}
	log_info("call placed", LF_STR("call_sid", tc.sid), LF_PHONE("to", to.e164),
	         LF_PHONE("from", from.e164));
	goto out;
expired:
	log_warn("call not placed: too little of the request's time was left",
	         LF_INT("left_ms", server_left_ms(req, CALL_BUDGET_MS)));
	apierr_reply(rc, resp, APIERR_REQUEST_EXPIRED, NULL, NULL);
out:
	if (claimed)
		idem_end(app->db, req, rc, resp, release);
	buf_free(&twiml);
	buf_free(&json);
}

/* GET of one call or recording: 200 with what get (db_call_get,
 * db_recording_get) finds for this key; 404 with the message not_found when
 * sid is not prefix and 32 hex digits or get finds nothing; 503 otherwise. */
static void handle_get(struct app *app, const char *sid, const char *prefix,
                       enum verr (*get)(struct db *, const char *, const char *, struct buf *),
                       const char *not_found, struct req_ctx *rc, struct http_resp *resp)
{
	struct buf json;
	enum verr e;

	if (!sid_valid(sid, prefix)) {
		apierr_reply(rc, resp, APIERR_NOT_FOUND, not_found, NULL);
		return;
	}
	buf_init(&json, CALL_MAX_JSON);
	e = get(app->db, sid, call_owner(rc), &json);
	if (e == VERR_OK)
		apierr_resp_set(rc, resp, 200, JSON_TYPE, json.data, json.len);
	else if (e == VERR_NOTFOUND)
		apierr_reply(rc, resp, APIERR_NOT_FOUND, not_found, NULL);
	else
		apierr_reply(rc, resp, APIERR_DATABASE_UNAVAILABLE, NULL, NULL);
	buf_free(&json);
}

static void handle_list(struct app *app, const struct http_req *req, struct req_ctx *rc,
                        struct http_resp *resp)
{
	struct callsquery q;
	struct callsquery_error qerr;
	struct buf items, out;
	char next[CURSOR_MAX], last_ts[CURSOR_MAX_PIECE], last_sid[CURSOR_MAX_PIECE];
	bool more = false;
	enum verr e;

	buf_init(&items, CALL_MAX_JSON);
	buf_init(&out, CALL_MAX_JSON + 256);
	if (callsquery_parse(req->query, &q, &qerr) != VERR_OK) {
		apierr_reply(rc, resp, qerr.code, qerr.message, qerr.field[0] ? qerr.field : NULL);
		goto out;
	}
	q.filter.owner = call_owner(rc);
	e = db_calls_list(app->db, &q.filter, &items, &more, last_ts, last_sid);
	if (e != VERR_OK) {
		apierr_reply(rc, resp, APIERR_DATABASE_UNAVAILABLE, NULL, NULL);
		goto out;
	}
	if (more && !cursor_encode(last_ts, last_sid, next))
		more = false;
	e = buf_printf(&out, "{\"calls\":%s,\"next_cursor\":%s%s%s}\n", buf_str(&items),
	               more ? "\"" : "", more ? next : "null", more ? "\"" : "");
	if (e != VERR_OK) {
		apierr_reply(rc, resp, APIERR_INTERNAL, "the page is too large", NULL);
		goto out;
	}
	apierr_resp_set(rc, resp, 200, JSON_TYPE, out.data, out.len);
out:
	buf_free(&items);
	buf_free(&out);
}

/* Background, in each worker: move spooled records into the database, and
 * now and then drop idempotency keys past their 24 hours. */
static void tick(void *ctx)
{
	struct app *app = ctx;
	long long now = clock_mono_ms(), deleted = 0;

	if (db_probe(app->db) != VERR_OK)
		return; /* PostgreSQL unreachable: nothing to do until it is back */
	record_replay(app->db, app->cfg.spool_dir, app->cfg.account_sid);
	reconcile_tick(app->reconcile);
	if (now < app->next_purge_ms)
		return;
	app->next_purge_ms = now + CALL_IDEM_PURGE_MS;
	if (db_idem_purge(app->db, &deleted) == VERR_OK && deleted > 0)
		log_info("expired idempotency keys deleted", LF_INT("keys", deleted));
}

/* The routes of common/route.h this pool serves. */
static bool served(enum route r)
{
	switch (r) {
	case ROUTE_CALL:
	case ROUTE_CALLS:
	case ROUTE_CALL_ONE:
	case ROUTE_CALL_CANCEL:
	case ROUTE_CALL_HANGUP:
	case ROUTE_RECORDING:
		return true;
	default:
		return false;
	}
}

static void handle(const struct http_req *req, struct req_ctx *rc, struct http_resp *resp,
                   void *ctx)
{
	struct app *app = ctx;
	char sid[ROUTE_MAX_SID];
	enum route r = route_match(req->path, sid);
	bool post = r == ROUTE_CALL || r == ROUTE_CALL_CANCEL || r == ROUTE_CALL_HANGUP;

	if (health_route(req, rc, resp, app->db) || metrics_route(req, rc, resp))
		return;
	if (!served(r)) {
		apierr_reply(rc, resp, APIERR_NOT_FOUND, "no such endpoint", NULL);
		return;
	}
	if (strcmp(req->method, post ? "POST" : "GET") != 0) {
		apierr_reply(rc, resp, APIERR_METHOD_NOT_ALLOWED, post ? "use POST" : "use GET", NULL);
		if (http_resp_header(resp, "Allow", post ? "POST" : "GET") != VERR_OK)
			log_warn("could not add Allow to a 405");
		return;
	}
	if (!authenticate(app, req, rc, resp))
		return;
	switch (r) {
	case ROUTE_CALL:
		handle_call(app, req, rc, resp);
		break;
	case ROUTE_CALLS:
		handle_list(app, req, rc, resp);
		break;
	case ROUTE_CALL_ONE:
		handle_get(app, sid, "CA", db_call_get, "no call with that sid", rc, resp);
		break;
	case ROUTE_CALL_CANCEL:
	case ROUTE_CALL_HANGUP:
		if (callctl_body_ok(req, rc, resp))
			callctl_run(app->db, app->twilio, call_owner(rc), sid,
			            r == ROUTE_CALL_CANCEL ? CALLCTL_CANCEL : CALLCTL_HANGUP, rc, resp);
		break;
	case ROUTE_RECORDING:
		handle_get(app, sid, "RE", db_recording_get, "no recording with that sid", rc, resp);
		break;
	default:
		break;
	}
}

/* In the master: the configuration, checked (server_app.load). */
static void *load(struct server_pool *pool, char *err, size_t errsz)
{
	struct app *app = calloc(1, sizeof *app);

	if (app == NULL) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	if (config_load(&app->cfg, CONFIG_NEED_REST, err, errsz) != VERR_OK ||
	    config_pool_load("CALL", &call_pool, &app->pool, err, errsz) !=
	        VERR_OK ||
	    phone_policy_parse(app->cfg.allowed_countries, app->cfg.from_number,
	                       config_get("CALL_BLOCKED_NUMBER_TYPES"), &app->policy, err,
	                       errsz) != VERR_OK ||
	    reconcile_settings_load(&app->reconcile_cfg, err, errsz) != VERR_OK) {
		free(app);
		return NULL;
	}
	snprintf(app->status_callback, sizeof app->status_callback, "%s/twilio/webhook",
	         app->cfg.public_base_url);
	snprintf(app->voice_url, sizeof app->voice_url, "%s/twilio/voice", app->cfg.public_base_url);
	snprintf(app->recording_callback, sizeof app->recording_callback, "%s/twilio/recording",
	         app->cfg.public_base_url);
	pool->workers = app->pool.workers;
	pool->threads = app->pool.threads;
	return app;
}

/* In a new worker process, before its threads start. */
static bool start(void *ctx)
{
	struct app *app = ctx;
	struct phone_number warm;
	char why[128];

	/* on failure: disabled, logged; but a metrics file someone else can
	 * write could crash the worker (SIGBUS) at any time: refuse to start */
	if (metrics_init(app->cfg.metrics_file, "call") == VERR_FORBIDDEN)
		return false;
	/* libphonenumber builds its metadata on first use: do it before the
	 * threads race to */
	phone_parse("+14155550100", NULL, &warm, why, sizeof why);
	app->db = db_new(app->cfg.database_url, app->pool.db_per_worker);
	app->keys = apikey_cache_new();
	/* with one connection per worker, every request looks its key up */
	if (app->db != NULL && app->keys != NULL && !db_keys_watch(app->db))
		log_info("api keys are looked up on every request: the key watch needs a database "
		         "connection of its own (VOICE_CALL_DB_CONNECTIONS of 2 or more per worker)");
	app->twilio = twilio_new(&app->cfg);
	if (app->db != NULL && app->twilio != NULL)
		app->reconcile = reconcile_new(app->db, app->twilio, app->cfg.account_sid,
		                               &app->reconcile_cfg);
	if (app->db == NULL || app->twilio == NULL || app->reconcile == NULL) {
		log_error("could not initialise the database or twilio client");
		return false;
	}
	return true;
}

static void stop(void *ctx)
{
	struct app *app = ctx;

	reconcile_free(app->reconcile); /* ends a pass in progress: before db and twilio */
	app->reconcile = NULL;
	twilio_free(app->twilio);
	db_free(app->db); /* stops the key watch: before the cache */
	apikey_cache_free(app->keys);
	app->twilio = NULL;
	app->db = NULL;
	app->keys = NULL;
	metrics_close();
}

/* call_fcgi --check-twilio: the credential check (common/twiliocheck.h)
 * with this pool's configuration. Exit status 0 when all is well, 1 with a
 * line per problem, 2 when the configuration is invalid. */
static int check_twilio(void)
{
	struct config cfg;
	char err[256];

	if (config_load(&cfg, CONFIG_NEED_REST, err, sizeof err) != VERR_OK) {
		fprintf(stderr, "call_fcgi: invalid configuration: %s\n", err);
		return 2;
	}
	/* the report is the output: request log lines only when debugging */
	if (cfg.log_level != LOG_DEBUG)
		log_set_level(LOG_ERROR);
	return twiliocheck_run(&cfg, stdout) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	static const struct server_app call = { load, free, start, stop, tick, handle };
	struct server_opts opts = { "call", CALL_MAX_BODY, NULL };

	if (argc == 2 && strcmp(argv[1], "--check-twilio") == 0)
		return check_twilio();
	if (argc == 3 && strcmp(argv[1], "-s") == 0)
		opts.socket_path = argv[2];
	return server_run(&opts, &call);
}
