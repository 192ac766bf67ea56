#ifndef VOICE_HEALTH_H
#define VOICE_HEALTH_H

#include <stdbool.h>

#include "db.h"
#include "http.h"
#include "reqctx.h"

/*
 * Answers GET /healthz (200 while the process serves requests) and
 * GET /readyz (200 when the database answers a query, else 503 with a JSON
 * error and Retry-After). Returns false, leaving resp alone, for any other
 * path so the caller routes it.
 */
bool health_route(const struct http_req *req, struct req_ctx *rc, struct http_resp *resp,
                  struct db *db);

#endif
