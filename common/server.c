#include "server.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "log.h"
#include "metrics.h"
#include "num.h"

#define SERVER_BACKLOG 128
#define SERVER_IDLE_TICK_MS 2000
#define SERVER_MAX_REQUEST_ID 64

static volatile sig_atomic_t stopping;

static void on_stop(int sig)
{
	(void)sig;
	stopping = 1;
	FCGX_ShutdownPending();
}

bool server_stopping(void)
{
	return stopping != 0;
}

long long server_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Microseconds from a monotonic clock, for request latency. */
static long long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static const char *param(FCGX_Request *r, const char *name)
{
	const char *v = FCGX_GetParam(name, r->envp);

	return v != NULL ? v : "";
}

/* nginx's $request_id is 32 hex digits; accept any short token-ish id and
 * mint one otherwise, so logs and responses always carry a usable id. */
static void request_id(const char *given, char out[SERVER_MAX_REQUEST_ID + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char rnd[16];
	size_t i, n = strlen(given);
	bool ok = n > 0 && n <= SERVER_MAX_REQUEST_ID;

	for (i = 0; ok && i < n; i++)
		ok = (given[i] >= '0' && given[i] <= '9') || (given[i] >= 'a' && given[i] <= 'z') ||
		     (given[i] >= 'A' && given[i] <= 'Z') || given[i] == '-' || given[i] == '_' ||
		     given[i] == '.';
	if (ok) {
		memcpy(out, given, n + 1);
		return;
	}
	if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
		memset(rnd, 0, sizeof rnd);
	for (i = 0; i < sizeof rnd; i++) {
		out[2 * i] = hex[rnd[i] >> 4];
		out[2 * i + 1] = hex[rnd[i] & 15];
	}
	out[2 * sizeof rnd] = '\0';
}

/*
 * Reads the body announced by CONTENT_LENGTH into body (NUL-terminated).
 * Returns 0, or the HTTP status to refuse the request with (400 malformed
 * or short body, 413 over max_body).
 */
static int read_body(FCGX_Request *r, size_t max_body, struct buf *body)
{
	const char *cl = param(r, "CONTENT_LENGTH");
	long long n;
	char chunk[8192];

	if (cl[0] == '\0')
		return 0;
	if (!num_parse(cl, 0, (long long)1 << 40, &n))
		return 400;
	if ((unsigned long long)n > max_body)
		return 413;
	while ((long long)body->len < n) {
		size_t want = (size_t)n - body->len;
		int got = FCGX_GetStr(chunk, (int)(want < sizeof chunk ? want : sizeof chunk), r->in);

		if (got <= 0)
			return 400;
		if (buf_append(body, chunk, (size_t)got) != VERR_OK)
			return 413;
	}
	return 0;
}

static void write_response(FCGX_Request *r, const struct http_resp *resp, const char *rid)
{
	FCGX_FPrintF(r->out, "Status: %d %s\r\n", resp->status, http_reason(resp->status));
	if (resp->status != 204 && resp->status != 304)
		FCGX_FPrintF(r->out, "Content-Type: %s\r\n", resp->content_type);
	FCGX_FPrintF(r->out, "X-Request-Id: %s\r\nCache-Control: no-store\r\n", rid);
	if (resp->headers.len > 0)
		FCGX_PutStr(resp->headers.data, (int)resp->headers.len, r->out);
	FCGX_PutS("\r\n", r->out);
	if (resp->status != 204 && resp->status != 304 && resp->body.len > 0)
		FCGX_PutStr(resp->body.data, (int)resp->body.len, r->out);
}

static void serve_one(FCGX_Request *r, const struct server_opts *opts, server_handler_fn fn,
                      void *ctx, struct buf *body)
{
	struct http_req req;
	struct http_resp resp;
	char rid[SERVER_MAX_REQUEST_ID + 1];
	const char *q, *doc;
	char *path = NULL;
	long long start_us = now_us(), latency_us;
	int refuse;

	memset(&req, 0, sizeof req);
	http_resp_init(&resp);
	buf_reset(body);
	request_id(param(r, "HTTP_X_REQUEST_ID"), rid);
	log_set_request_id(rid);

	req.method = param(r, "REQUEST_METHOD");
	req.request_uri = param(r, "REQUEST_URI");
	q = strchr(req.request_uri, '?');
	req.query = q != NULL ? q + 1 : "";
	doc = param(r, "DOCUMENT_URI");
	if (doc[0] != '\0') {
		req.path = doc;
	} else {
		path = strndup(req.request_uri, q != NULL ? (size_t)(q - req.request_uri)
		                                           : strlen(req.request_uri));
		req.path = path != NULL ? path : "";
	}
	req.content_type = param(r, "CONTENT_TYPE");
	req.authorization = param(r, "HTTP_AUTHORIZATION");
	req.twilio_signature = param(r, "HTTP_X_TWILIO_SIGNATURE");
	req.twilio_idempotency = param(r, "HTTP_I_TWILIO_IDEMPOTENCY_TOKEN");
	req.idempotency_key = param(r, "HTTP_IDEMPOTENCY_KEY");
	req.request_id = rid;
	req.remote_addr = param(r, "REMOTE_ADDR");

	refuse = read_body(r, opts->max_body, body);
	if (refuse == 413)
		http_resp_error(&resp, 413, "payload_too_large", "the request body is too large", NULL);
	else if (refuse != 0)
		http_resp_error(&resp, 400, "bad_request", "the request body is malformed or incomplete", NULL);
	else {
		req.body = buf_str(body);
		req.body_len = body->len;
		fn(&req, &resp, ctx);
	}
	write_response(r, &resp, rid);

	latency_us = now_us() - start_us;
	metrics_count_request(opts->name, req.path, resp.status, latency_us);
	log_emit(resp.status >= 500 ? LOG_ERROR : LOG_INFO, "request",
	         LF_STR("worker", opts->name), LF_STR("method", req.method), LF_STR("route", req.path),
	         LF_INT("status", resp.status), LF_INT("latency_ms", latency_us / 1000),
	         LF_STR("remote_addr", req.remote_addr),
	         LF_STR("api_key", resp.api_key_name[0] ? resp.api_key_name : NULL),
	         LF_STR("call_sid", resp.call_sid[0] ? resp.call_sid : NULL),
	         LF_STR("error", resp.error_code[0] ? resp.error_code : NULL),
	         resp.twilio_code ? LF_INT("twilio_code", resp.twilio_code) : LF_STR("twilio_code", NULL),
	         LF_END);
	log_set_request_id(NULL);
	http_resp_free(&resp);
	free(path);
}

int server_run(const struct server_opts *opts, server_handler_fn fn, void *ctx)
{
	struct sigaction sa;
	FCGX_Request r;
	struct buf body;
	struct stat st;
	int sock = 0;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_stop; /* no SA_RESTART: accept() must return on a signal */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (FCGX_Init() != 0) {
		log_error("could not initialise fastcgi");
		return 1;
	}
	if (opts->socket_path != NULL) {
		sock = FCGX_OpenSocket(opts->socket_path, SERVER_BACKLOG);
		if (sock < 0) {
			log_error("could not listen", LF_STR("socket", opts->socket_path));
			return 1;
		}
	} else if (fstat(0, &st) != 0 || !S_ISSOCK(st.st_mode)) {
		log_error("no fastcgi listen socket on fd 0 (start with spawn-fcgi, or pass -s PATH)");
		return 1;
	}
	if (FCGX_InitRequest(&r, sock, FCGI_FAIL_ACCEPT_ON_INTR) != 0) {
		log_error("could not initialise fastcgi request");
		return 1;
	}
	buf_init(&body, opts->max_body);
	log_info("worker started", LF_STR("worker", opts->name), LF_INT("pid", getpid()));
	while (!stopping) {
		/* while idle, wake up now and then so the after hook runs even
		 * without traffic (e.g. the spool drains on a quiet host) */
		if (opts->after != NULL) {
			struct pollfd pfd = { sock, POLLIN, 0 };
			int n = poll(&pfd, 1, SERVER_IDLE_TICK_MS);

			if (n == 0)
				opts->after(ctx);
			if (n <= 0)
				continue; /* idle tick, or a signal: check stopping */
		}
		if (FCGX_Accept_r(&r) < 0) {
			if (stopping)
				break;
			if (errno == EINTR)
				continue;
			log_error("fastcgi accept failed", LF_STR("error", strerror(errno)));
			FCGX_Finish_r(&r);
			buf_free(&body);
			return 1;
		}
		serve_one(&r, opts, fn, ctx, &body);
		FCGX_Finish_r(&r);
		if (opts->after != NULL)
			opts->after(ctx);
	}
	FCGX_Free(&r, 0);
	buf_free(&body);
	log_info("worker stopped", LF_STR("worker", opts->name), LF_INT("pid", getpid()));
	return 0;
}
