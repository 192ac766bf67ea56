#ifndef VOICE_SERVER_H
#define VOICE_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "http.h"
#include "reqctx.h"

/*
 * The FastCGI runtime. Listens on FastCGI's listen socket (fd 0, as
 * spawn-fcgi passes it), or on the unix socket path given with -s PATH.
 *
 * server_run makes this process a master that holds the socket and keeps
 * pool.workers worker processes alive: a worker that dies is replaced within
 * a second (with an exponential backoff, up to SERVER_MAX_BACKOFF_MS, while
 * workers keep exiting with a failure right after they start; one killed by
 * a signal is always replaced at once). Each worker serves
 * pool.threads requests at once, one thread per request in flight, so a
 * request waiting on Twilio or PostgreSQL never holds up another.
 *   SIGTERM/SIGINT  the workers stop accepting, finish the requests in flight
 *                   (the master kills what is left after SERVER_DRAIN_MS),
 *                   and the master exits 0.
 *   SIGHUP          the master loads the configuration again (app.load); if
 *                   it is valid, a new set of workers starts and the old
 *                   ones drain and exit; if not, it is logged and the old
 *                   workers keep serving.
 *
 * For each request: copies what it keeps out of envp, validates
 * CONTENT_LENGTH and reads at most max_body bytes of body (413 JSON error
 * beyond; 400 for a malformed length), calls the handler with a fresh
 * struct req_ctx (request id set), writes the response with X-Request-Id,
 * and logs one access line from the response's status and the context.
 */
typedef void (*server_handler_fn)(const struct http_req *req, struct req_ctx *rc,
                                  struct http_resp *resp, void *ctx);

#define SERVER_MAX_WORKERS 64
#define SERVER_MAX_THREADS 1024
#define SERVER_DRAIN_MS 30000      /* SIGTERM: in-flight requests get this long */
#define SERVER_MAX_BACKOFF_MS 30000
#define SERVER_TICK_MS 250         /* period of app.tick in each worker */

struct server_opts {
	const char *name;        /* pool name for logs and metrics ("call", "webhook", "sim") */
	size_t max_body;         /* request body cap in bytes */
	const char *socket_path; /* NULL: use fd 0 */
};

/* Sizes of a pool, from the configuration (config_pool). */
struct server_pool {
	int workers; /* processes */
	int threads; /* requests in flight per process */
};

/*
 * What a pool runs. The master calls load, never anything else; each worker
 * process calls start (after fork, before its threads), then handle from its
 * request threads and tick from one background thread, then stop.
 */
struct server_app {
	/* Loads and validates the configuration into a new context and fills
	 * *pool. NULL with one line in err when it is invalid. */
	void *(*load)(struct server_pool *pool, char *err, size_t errsz);
	void (*unload)(void *ctx);
	/* In a new worker: opens what it needs (database pool, Twilio client,
	 * metrics slot). false: the worker exits 1 (logged by start). */
	bool (*start)(void *ctx);
	void (*stop)(void *ctx);
	/* Every SERVER_TICK_MS in a background thread of each worker, e.g. to
	 * replay the spool; NULL: nothing. Must return promptly once
	 * stop_requested() (stop.h) is true. */
	void (*tick)(void *ctx);
	server_handler_fn handle; /* thread-safe */
};

/* Runs the pool until SIGTERM/SIGINT. Returns the process exit status: 0 on
 * a clean stop, 1 when the listen socket cannot be used, 2 when the
 * configuration is invalid at start (logged with the reason). */
int server_run(const struct server_opts *opts, const struct server_app *app);

/* The single-process, single-threaded loop (no master), for the simulator:
 * handler fn with ctx until SIGTERM/SIGINT. Same exit statuses. */
int server_run_single(const struct server_opts *opts, server_handler_fn fn, void *ctx);

/* What is left of a budget of budget_ms that started when nginx handed req
 * over (req->start_ms, a wall-clock time), in ms; budget_ms when unknown.
 * Negative once it is spent. */
long long server_left_ms(const struct http_req *req, long long budget_ms);

#endif
