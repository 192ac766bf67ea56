#include "health.h"


#include "apierr.h"
#include "route.h"

bool health_route(const struct http_req *req, struct req_ctx *rc, struct http_resp *resp,
                  struct db *db)
{
	static const char ok[] = "{\"status\":\"ok\"}\n";
	enum route r = route_match(req->path, NULL);
	bool ready = r == ROUTE_READYZ;

	if (!ready && r != ROUTE_HEALTHZ)
		return false;
	if (!apierr_get_only(req, rc, resp))
		return true;
	if (ready && db_ping(db) != VERR_OK) {
		apierr_reply(rc, resp, APIERR_DATABASE_UNAVAILABLE, "the database is not reachable", NULL);
		return true;
	}
	apierr_resp_set(rc, resp, 200, "application/json; charset=utf-8", ok, sizeof ok - 1);
	return true;
}
