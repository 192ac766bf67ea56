#ifndef VOICE_SERVER_H
#define VOICE_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "http.h"

/*
 * The FastCGI loop. Listens on FastCGI's listen socket (fd 0, as spawn-fcgi
 * passes it), or on the unix socket path given with -s PATH on the command
 * line (server_listen). For each request: copies what it keeps out of envp,
 * validates CONTENT_LENGTH and reads at most max_body bytes of body (413 JSON
 * error beyond; 400 for a malformed length), calls the handler, writes the
 * response with X-Request-Id, and logs one access line. SIGTERM and SIGINT let
 * the current request finish, then server_run returns 0.
 */
typedef void (*server_handler_fn)(const struct http_req *req, struct http_resp *resp, void *ctx);

struct server_opts {
	const char *name;     /* worker name for logs ("call", "webhook", "sim") */
	size_t max_body;      /* request body cap in bytes */
	const char *socket_path; /* NULL: use fd 0 */
	void (*after)(void *ctx); /* NULL, or run after each response is sent
	                           * and every ~2 s while idle */
};

/* Runs until SIGTERM/SIGINT. Returns the process exit status (0 on a clean
 * stop, 1 if the listen socket could not be used). */
int server_run(const struct server_opts *opts, server_handler_fn fn, void *ctx);

/* True once SIGTERM/SIGINT asked the loop to stop: a handler that waits
 * (e.g. a deliberate delay) should give up early. */
bool server_stopping(void);

/* Milliseconds from a monotonic clock. */
long long server_now_ms(void);

#endif
