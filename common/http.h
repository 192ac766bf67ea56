#ifndef VOICE_HTTP_H
#define VOICE_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "err.h"

/*
 * Transport-independent request and response. The FastCGI loop (server.h)
 * fills http_req and writes http_resp; handlers and everything a unit test
 * should reach use only these types.
 */

#define HTTP_MAX_HEADERS 4096        /* extra response header bytes */
#define HTTP_MAX_RESPONSE (256 * 1024)

/* Every string is owned by the server loop and valid until the handler
 * returns; absent headers are "" (never NULL). path excludes the query. */
struct http_req {
	const char *method;
	const char *request_uri;   /* raw, exactly as received (REQUEST_URI) */
	const char *path;          /* request_uri up to '?' (not decoded) */
	const char *query;         /* after '?', or "" */
	const char *content_type;
	const char *authorization;
	const char *twilio_signature;       /* X-Twilio-Signature */
	const char *twilio_idempotency;     /* I-Twilio-Idempotency-Token */
	const char *idempotency_key;        /* Idempotency-Key */
	const char *remote_addr;
	const char *body;                   /* NUL-terminated copy of the body */
	size_t body_len;
	long long start_ms; /* when nginx handed the request over (X-Request-Start,
	                     * Unix ms; 0: unknown): time queued counts against
	                     * nginx's timeout, see server_left_ms */
};

/* A response under construction. What the access log says about the
 * request beside its status is in struct req_ctx (common/reqctx.h). */
struct http_resp {
	int status;
	const char *content_type; /* static string */
	struct buf headers;       /* extra "Name: value\r\n" lines */
	struct buf body;
};

void http_resp_init(struct http_resp *r);
/* Frees buffers; r may be NULL. */
void http_resp_free(struct http_resp *r);
/* Discards status, headers and body. */
void http_resp_reset(struct http_resp *r);

/* Adds a header line. VERR_INVALID if name or value holds CR, LF or NUL or
 * name is not a token; VERR_TOOBIG past HTTP_MAX_HEADERS. */
enum verr http_resp_header(struct http_resp *r, const char *name, const char *value)
	VOICE_MUST_USE;

/* Sets status, content type and body (copied). */
enum verr http_resp_set(struct http_resp *r, int status, const char *content_type,
                        const char *body, size_t len) VOICE_MUST_USE;

/* Error answers: common/apierr.h. */

/* True if the request's media type (before ';', case-insensitive) is mt. */
bool http_content_type_is(const struct http_req *req, const char *mt);

/* Reason phrase for a status code ("OK", "Not Found", ...), never NULL. */
const char *http_reason(int status);

#endif
