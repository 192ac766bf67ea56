/*
 * webhook_fcgi: Twilio's status callbacks (POST /twilio/webhook) and Voice URL
 * requests (POST /twilio/voice). Routing and wiring only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "db.h"
#include "health.h"
#include "log.h"
#include "server.h"

#define WEBHOOK_MAX_BODY (64 * 1024)

struct app {
	struct config cfg;
	struct db *db;
};

static void handle(const struct http_req *req, struct http_resp *resp, void *ctx)
{
	struct app *app = ctx;

	if (health_route(req, resp, app->db))
		return;
	if (strcmp(req->path, "/twilio/webhook") != 0 && strcmp(req->path, "/twilio/voice") != 0) {
		http_resp_error(resp, 404, "not_found", "no such endpoint", NULL);
		return;
	}
	if (strcmp(req->method, "POST") != 0) {
		http_resp_error(resp, 405, "method_not_allowed", "use POST", NULL);
		http_resp_header(resp, "Allow", "POST");
		return;
	}
	http_resp_error(resp, 501, "not_implemented", "this endpoint is not implemented yet", NULL);
}

int main(int argc, char **argv)
{
	static struct app app;
	struct server_opts opts = { "webhook", WEBHOOK_MAX_BODY, NULL };
	char err[256];
	int rc;

	if (argc == 3 && strcmp(argv[1], "-s") == 0)
		opts.socket_path = argv[2];
	if (config_load(&app.cfg, CONFIG_NEED_WEBHOOK, err, sizeof err) != VERR_OK) {
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
