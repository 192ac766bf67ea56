#include "health.h"

#include <string.h>

#include "route.h"

bool health_route(const struct http_req *req, struct http_resp *resp, struct db *db)
{
	static const char ok[] = "{\"status\":\"ok\"}\n";
	enum route r = route_match(req->path, NULL);
	bool ready = r == ROUTE_READYZ;

	if (!ready && r != ROUTE_HEALTHZ)
		return false;
	if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
		http_resp_error(resp, 405, "method_not_allowed", "use GET", NULL);
		http_resp_header(resp, "Allow", "GET, HEAD");
		return true;
	}
	if (ready && db_ping(db) != VERR_OK) {
		http_resp_retry_later(resp, 503, "database_unavailable", "the database is not reachable",
		                      NULL, 5);
		return true;
	}
	http_resp_set(resp, 200, "application/json; charset=utf-8", ok, sizeof ok - 1);
	return true;
}
