/*
 * call_fcgi: POST /call places an outbound call; GET /calls… reads the record.
 * Routing and wiring only; the logic lives in common/.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apikey.h"
#include "config.h"
#include "db.h"
#include "health.h"
#include "log.h"
#include "server.h"

#define CALL_MAX_BODY (16 * 1024)

struct app {
	struct config cfg;
	struct db *db;
};

/* Authenticates the request before any other work. Returns false with resp
 * holding the 401 (or 503) when it fails. */
static bool authenticate(struct app *app, const struct http_req *req, struct http_resp *resp)
{
	enum verr e = apikey_authenticate(app->db, req->authorization, resp->api_key_name,
	                                  sizeof resp->api_key_name);

	if (e == VERR_OK)
		return true;
	resp->api_key_name[0] = '\0';
	if (e == VERR_AUTH) {
		http_resp_error(resp, 401, "unauthorized",
		                req->authorization[0] ? "the API key is not valid"
		                                      : "an API key is required (Authorization: Bearer <key>)",
		                NULL);
		http_resp_header(resp, "WWW-Authenticate", "Bearer realm=\"twilio-voice\"");
	} else {
		http_resp_error(resp, 503, "database_unavailable",
		                "could not check the API key: the database is not reachable", NULL);
		http_resp_header(resp, "Retry-After", "5");
	}
	return false;
}

static void handle(const struct http_req *req, struct http_resp *resp, void *ctx)
{
	struct app *app = ctx;
	bool is_call = strcmp(req->path, "/call") == 0;
	bool is_calls = strcmp(req->path, "/calls") == 0 || strncmp(req->path, "/calls/", 7) == 0;

	if (health_route(req, resp, app->db))
		return;
	if (!is_call && !is_calls) {
		http_resp_error(resp, 404, "not_found", "no such endpoint", NULL);
		return;
	}
	if (strcmp(req->method, is_call ? "POST" : "GET") != 0) {
		http_resp_error(resp, 405, "method_not_allowed", is_call ? "use POST" : "use GET", NULL);
		http_resp_header(resp, "Allow", is_call ? "POST" : "GET");
		return;
	}
	if (!authenticate(app, req, resp))
		return;
	http_resp_error(resp, 501, "not_implemented", "this endpoint is not implemented yet", NULL);
}

int main(int argc, char **argv)
{
	static struct app app;
	struct server_opts opts = { "call", CALL_MAX_BODY, NULL };
	char err[256];
	int rc;

	if (argc == 3 && strcmp(argv[1], "-s") == 0)
		opts.socket_path = argv[2];
	if (config_load(&app.cfg, CONFIG_NEED_REST, err, sizeof err) != VERR_OK) {
		log_error("invalid configuration", LF_STR("error", err));
		return 2;
	}
	app.db = db_new(app.cfg.database_url);
	if (app.db == NULL) {
		log_error("out of memory");
		return 1;
	}
	rc = server_run(&opts, handle, &app);
	db_free(app.db);
	return rc;
}
