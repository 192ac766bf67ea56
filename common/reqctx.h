#ifndef VOICE_REQCTX_H
#define VOICE_REQCTX_H

#include <stdbool.h>

#include "apierr.h"

/*
 * What is known about one request beside its input (struct http_req) and
 * its answer (struct http_resp): who asked, what it was about, how it
 * failed. The server loop owns it for the request's lifetime, handlers and
 * the modules they call fill it in, and the access log line prints it.
 */
#define REQCTX_MAX_REQUEST_ID 64
#define REQCTX_MAX_KEY_NAME 64
#define REQCTX_MAX_CALL_SID 64

struct req_ctx {
	char request_id[REQCTX_MAX_REQUEST_ID + 1]; /* X-Request-Id (validated, or minted) */
	char key_name[REQCTX_MAX_KEY_NAME]; /* the authenticated API key, "" before (or without) */
	bool read_all;                      /* that key reads every call, not only its own */
	char call_sid[REQCTX_MAX_CALL_SID]; /* the call the request is about, "" when none */
	/* the error answered (apierr_send): the access log prints them only
	 * with a status of 400 or more, so a provisional error that a success
	 * replaced is not reported */
	enum apierr error;
	int twilio_code;                    /* 0: none */
};

#endif
