#include "apierr.h"

#include <stdio.h>
#include <string.h>

#include "log.h"
#include "reqctx.h"

static const struct {
	int status;
	int retry_after;
	const char *code;
	const char *message;
} catalogue[APIERR__COUNT] = {
#define APIERR(name, st, ra, c, msg) [APIERR_##name] = { st, ra, c, msg },
#include "apierr.def"
#undef APIERR
};

static enum apierr known(enum apierr e)
{
	return e > APIERR_NONE && e < APIERR__COUNT ? e : APIERR_INTERNAL;
}

int apierr_status(enum apierr e)
{
	return catalogue[known(e)].status;
}

const char *apierr_code(enum apierr e)
{
	return catalogue[known(e)].code;
}

const char *apierr_message(enum apierr e)
{
	return catalogue[known(e)].message;
}

static enum verr error_body(struct buf *b, const char *code, const char *message,
                            const char *field, int twilio_code)
{
	enum verr e = buf_puts(b, "{\"error\":{\"code\":");

	if (e == VERR_OK)
		e = log_json_string(b, code);
	if (e == VERR_OK)
		e = buf_puts(b, ",\"message\":");
	if (e == VERR_OK)
		e = log_json_string(b, message);
	if (e == VERR_OK && field != NULL) {
		e = buf_puts(b, ",\"field\":");
		if (e == VERR_OK)
			e = log_json_string(b, field);
	}
	if (e == VERR_OK && twilio_code != 0)
		e = buf_printf(b, ",\"twilio_code\":%d", twilio_code);
	if (e == VERR_OK)
		e = buf_puts(b, "}}\n");
	return e;
}

void apierr_send(struct req_ctx *rc, struct http_resp *resp, const struct apierr_detail *d)
{
	enum apierr code = known(d->code);
	int retry_after = d->retry_after > 0 ? d->retry_after : catalogue[code].retry_after;

	http_resp_reset(resp);
	resp->status = apierr_status(code);
	if (rc != NULL) {
		rc->error = code;
		rc->twilio_code = d->twilio_code;
	}
	if (error_body(&resp->body, apierr_code(code),
	               d->message != NULL ? d->message : apierr_message(code), d->field,
	               d->twilio_code) != VERR_OK) {
		buf_reset(&resp->body);
		if (error_body(&resp->body, apierr_code(APIERR_INTERNAL),
		               "could not build the error response", NULL, 0) != VERR_OK)
			buf_reset(&resp->body); /* out of memory: the status says it */
	}
	if (retry_after > 0) {
		char v[16];

		snprintf(v, sizeof v, "%d", retry_after);
		if (http_resp_header(resp, "Retry-After", v) != VERR_OK)
			log_warn("could not add Retry-After to an error answer");
	}
}

void apierr_reply(struct req_ctx *rc, struct http_resp *resp, enum apierr e, const char *message,
                  const char *field)
{
	const struct apierr_detail d = { e, message, field, 0, 0 };

	apierr_send(rc, resp, &d);
}

void apierr_resp_set(struct req_ctx *rc, struct http_resp *resp, int status,
                     const char *content_type, const char *body, size_t len)
{
	if (http_resp_set(resp, status, content_type, body, len) != VERR_OK)
		apierr_reply(rc, resp, APIERR_INTERNAL, "the answer could not be built", NULL);
}

bool apierr_get_only(const struct http_req *req, struct req_ctx *rc, struct http_resp *resp)
{
	if (strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0)
		return true;
	apierr_reply(rc, resp, APIERR_METHOD_NOT_ALLOWED, "use GET", NULL);
	if (http_resp_header(resp, "Allow", "GET, HEAD") != VERR_OK)
		log_warn("could not add Allow to a 405");
	return false;
}
