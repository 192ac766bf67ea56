#ifndef VOICE_APIERR_H
#define VOICE_APIERR_H

#include "http.h"

/*
 * The API's error catalogue (common/apierr.def): every error the HTTP API
 * answers, with its HTTP status, Retry-After, code and default message. Everything that
 * answers an error names it with an enum apierr and writes it with
 * apierr_reply or apierr_send; nothing else spells a code or picks the
 * status of one.
 */
enum apierr {
	APIERR_NONE = 0, /* no error (struct req_ctx before any was answered) */
#define APIERR(name, status, retry_after, code, message) APIERR_##name,
#include "apierr.def"
#undef APIERR
	APIERR__COUNT
};

struct req_ctx;

/* The entry's HTTP status, code and default message (static strings).
 * APIERR_NONE and values out of range read as APIERR_INTERNAL. */
int apierr_status(enum apierr e);
const char *apierr_code(enum apierr e);
const char *apierr_message(enum apierr e);

/* What an error answer says beyond its catalogue entry. Strings are
 * borrowed for the call. */
struct apierr_detail {
	enum apierr code;
	const char *message; /* NULL: the catalogue's default */
	const char *field;   /* the field at fault, NULL: none */
	int twilio_code;     /* Twilio's error code, 0: none */
	int retry_after;     /* seconds for Retry-After, 0: the catalogue's */
};

/*
 * Replaces resp (status, headers, body) with d's error: the catalogue's
 * status, the body {"error":{"code":…,"message":…,"field":…,
 * "twilio_code":…}}\n (field and twilio_code only when given) as
 * application/json, Retry-After when d or the catalogue gives one; notes
 * the code and twilio_code in rc for the access log (rc may be NULL, here
 * and below). Never fails visibly: a body that cannot be built becomes a
 * short internal_error body (none at all when memory is out; the status
 * stays), a Retry-After that does not fit is logged and left out.
 */
void apierr_send(struct req_ctx *rc, struct http_resp *resp, const struct apierr_detail *d);

/* apierr_send with only a message (NULL: the default) and a field (NULL:
 * none). */
void apierr_reply(struct req_ctx *rc, struct http_resp *resp, enum apierr e, const char *message,
                  const char *field);

/* True when req's method is GET or HEAD; otherwise answers 405 (use GET,
 * with "Allow: GET, HEAD") and returns false. For the read-only routes
 * (/healthz, /readyz, /metrics). */
bool apierr_get_only(const struct http_req *req, struct req_ctx *rc, struct http_resp *resp);

/* http_resp_set(resp, status, content_type, body, len), or, when the body
 * cannot be held (out of memory, over HTTP_MAX_RESPONSE), 500
 * internal_error as apierr_send answers it. */
void apierr_resp_set(struct req_ctx *rc, struct http_resp *resp, int status,
                     const char *content_type, const char *body, size_t len);

#endif
