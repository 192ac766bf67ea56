#include "health.h"

#include <string.h>

#include "apierr.h"
#include "log.h"
#include "route.h"

bool health_route(const struct http_req *req, struct req_ctx *rc, struct http_resp *resp,
                  struct db *db)
{
	static const char ok[] = "{\"status\":\"ok\"}\n";
	enum route r = route_match(req->path, NULL);
	bool ready = r == ROUTE_READYZ;

	if (!ready && r != ROUTE_HEALTHZ)
		return false;
	if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
		apierr_reply(rc, resp, APIERR_METHOD_NOT_ALLOWED, "use GET", NULL);
		if (http_resp_header(resp, "Allow", "GET, HEAD") != VERR_OK)
			log_warn("could not add Allow to a 405");
		return true;
	}
	if (ready && db_ping(db) != VERR_OK) {
		apierr_reply(rc, resp, APIERR_DATABASE_UNAVAILABLE, "the database is not reachable", NULL);
		return true;
	}
	apierr_resp_set(rc, resp, 200, "application/json; charset=utf-8", ok, sizeof ok - 1);
	return true;
}
