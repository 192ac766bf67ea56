#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "apierr.h"
#include "clock.h"
#include "hash.h"
#include "log.h"
#include "metrics.h"
#include "num.h"
#include "stop.h"

#define SERVER_BACKLOG 1024
#define SERVER_POLL_MS 200        /* how often an idle accepting thread checks for a stop */
#define SERVER_THREAD_STACK (512 * 1024)
#define SERVER_STABLE_MS 5000     /* a worker that lived this long did not crash-loop */
#define SERVER_FIRST_BACKOFF_MS 500
#define SERVER_KEPT_DRAIN_MS 10000 /* stopping: the most kept connections are waited for */


long long server_left_ms(const struct http_req *req, long long budget_ms)
{
	long long now;

	if (req->start_ms <= 0)
		return budget_ms;
	now = clock_real_ms();
	return budget_ms - (now > req->start_ms ? now - req->start_ms : 0);
}

/* nginx's $msec ("1764480000.123", "1764480000.050"): Unix time in ms, or
 * 0 when malformed. The fraction is digits, not a number: num_parse would
 * refuse the leading zero of ".050", one request in ten. */
static long long start_ms(const char *msec)
{
	const char *dot = strchr(msec, '.');
	char secs[24];
	long long s = 0, ms = 0;
	size_t n = dot != NULL ? (size_t)(dot - msec) : strlen(msec);
	int k = 0;

	if (n == 0 || n >= sizeof secs)
		return 0;
	memcpy(secs, msec, n);
	secs[n] = '\0';
	if (!num_parse(secs, 1, 1LL << 40, &s))
		return 0;
	if (dot != NULL) {
		for (k = 0; k < 3 && dot[1 + k] >= '0' && dot[1 + k] <= '9'; k++)
			ms = ms * 10 + (dot[1 + k] - '0');
		if (k == 0 || dot[1 + k] != '\0')
			return 0;
		for (; k < 3; k++)
			ms *= 10; /* ".5" is 500 ms */
	}
	return s * 1000 + ms;
}

static const char *param(FCGX_Request *r, const char *name)
{
	const char *v = FCGX_GetParam(name, r->envp);

	return v != NULL ? v : "";
}

/* nginx's $request_id is 32 hex digits; accept any short token-ish id and
 * mint one otherwise, so logs and responses always carry a usable id. */
static void request_id(const char *given, char out[REQCTX_MAX_REQUEST_ID + 1])
{
	unsigned char rnd[16];
	size_t i, n = strlen(given);
	bool ok = n > 0 && n <= REQCTX_MAX_REQUEST_ID;

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
	hash_hex(rnd, sizeof rnd, out);
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

/* What the threads of one worker process share. */
struct worker {
	const struct server_opts *opts;
	server_handler_fn fn;
	void *ctx;
	void (*tick)(void *ctx);
	int sock;
	int epfd;                     /* the listen socket and the idle kept
	                               * connections (next_request) */
	atomic_int kept;              /* idle kept connections in epfd */
	_Atomic long long drain_until; /* stopping: kept connections served until */
};

/* Serves the request on r; true when its whole body was read. */
static bool serve_one(FCGX_Request *r, const struct worker *w, struct buf *body)
{
	struct http_req req;
	struct req_ctx rc;
	struct http_resp resp;
	const char *q, *doc;
	char *path = NULL;
	long long start_us = clock_mono_us(), latency_us;
	int refuse;
	bool failed;

	memset(&req, 0, sizeof req);
	memset(&rc, 0, sizeof rc);
	http_resp_init(&resp);
	buf_reset(body);
	request_id(param(r, "HTTP_X_REQUEST_ID"), rc.request_id);
	log_set_request_id(rc.request_id);

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
	req.remote_addr = param(r, "REMOTE_ADDR");
	req.start_ms = start_ms(param(r, "HTTP_X_REQUEST_START"));

	refuse = read_body(r, w->opts->max_body, body);
	if (refuse == 413)
		apierr_reply(&rc, &resp, APIERR_PAYLOAD_TOO_LARGE, NULL, NULL);
	else if (refuse != 0)
		apierr_reply(&rc, &resp, APIERR_BAD_REQUEST, "the request body is malformed or incomplete",
		             NULL);
	else {
		req.body = buf_str(body);
		req.body_len = body->len;
		w->fn(&req, &rc, &resp, w->ctx);
	}
	write_response(r, &resp, rc.request_id);
	failed = resp.status >= 400;

	latency_us = clock_mono_us() - start_us;
	metrics_count_request(w->opts->name, req.path, resp.status, latency_us);
	log_emit(resp.status >= 500 ? LOG_ERROR : LOG_INFO, "request",
	         LF_STR("worker", w->opts->name), LF_STR("method", req.method), LF_STR("route", req.path),
	         LF_INT("status", resp.status), LF_INT("latency_ms", latency_us / 1000),
	         LF_STR("remote_addr", req.remote_addr),
	         LF_STR("api_key", rc.key_name[0] ? rc.key_name : NULL),
	         LF_STR("call_sid", rc.call_sid[0] ? rc.call_sid : NULL),
	         LF_STR("error", failed && rc.error != APIERR_NONE ? apierr_code(rc.error) : NULL),
	         failed && rc.twilio_code ? LF_INT("twilio_code", rc.twilio_code)
	                                  : LF_STR("twilio_code", NULL),
	         LF_END);
	log_set_request_id(NULL);
	http_resp_free(&resp);
	free(path);
	return refuse == 0;
}

/*
 * True while a request thread should keep taking requests: until the stop,
 * and after it while nginx still keeps idle connections to this process
 * (up to SERVER_KEPT_DRAIN_MS): nginx closes an idle kept connection after
 * its upstream keepalive_timeout (4 s in our template), and a request that
 * nginx sends on one meanwhile is served, so no request meets a connection
 * this process closed under it.
 */
static bool serving(struct worker *w)
{
	return !stop_requested() ||
	       (atomic_load(&w->kept) > 0 && clock_mono_ms() < atomic_load(&w->drain_until));
}

/*
 * Waits for the next request (false once the process is stopping). The idle
 * threads of a process wait on one epoll set holding the listen socket and
 * the idle connections nginx keeps open (fastcgi_keep_conn), each
 * EPOLLONESHOT: an event wakes one thread, which re-arms the listen socket as
 * soon as it has accepted (a kept connection is re-armed by park() after its
 * request), so the next event wakes the next thread. No thread waits to be
 * handed a lock: with one accept mutex (libfcgi's threaded example) each
 * accept passed the mutex on, a futex wake-up and a context switch per
 * request (perf under callback load: 6 % of webhook_fcgi's samples), and on
 * a saturated CPU connections waited until that thread ran. Every process is
 * woken for a connection (the socket is registered without EPOLLEXCLUSIVE),
 * so they share the load evenly: EPOLLEXCLUSIVE wakes the epoll sets in
 * registration order and sent most requests to one process, whose
 * per-process limits (database connections, Idempotency-Key waiters) ran out
 * while another's sat idle. The socket is non-blocking: the processes that
 * lose the race get EAGAIN. A stopping process accepts no new connection.
 */
static bool next_request(struct worker *w, FCGX_Request *r)
{
	struct epoll_event arm = { .events = EPOLLIN | EPOLLONESHOT, .data.fd = w->sock };

	while (serving(w)) {
		struct epoll_event ev;
		int rc;

		if (epoll_wait(w->epfd, &ev, 1, SERVER_POLL_MS) <= 0)
			continue;
		if (ev.data.fd != w->sock) {
			/* a kept connection: nginx's next request on it, or its close */
			atomic_fetch_sub(&w->kept, 1);
			if (ev.events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
				close(ev.data.fd);
				continue;
			}
			r->ipcFd = ev.data.fd;
			r->keepConnection = 1; /* or FCGX_Accept_r's finish step closes it */
		} else if (stop_requested()) {
			continue; /* not re-armed: the other processes accept */
		}
		rc = FCGX_Accept_r(r);
		if (ev.data.fd == w->sock && epoll_ctl(w->epfd, EPOLL_CTL_MOD, w->sock, &arm) != 0)
			log_error("could not re-arm the fastcgi socket", LF_STR("error", strerror(errno)));
		if (rc == 0)
			return true;
		if (rc == -EAGAIN || rc == -EWOULDBLOCK || rc == -EINTR)
			continue;
		/* e.g. EMFILE: say so, and give the process a moment */
		log_error("fastcgi accept failed", LF_STR("error", rc < 0 && rc > -4096 ? strerror(-rc)
		                                                                          : "protocol error"));
		poll(NULL, 0, 100);
	}
	return false;
}

/*
 * After a request on a connection nginx keeps open (fastcgi_keep_conn; r
 * still holds it): the connection waits for nginx's next request in the
 * epoll set, not in a thread, so any number of idle kept connections leave
 * every thread free. perf under callback load: a fresh connection per
 * request (socket, connect, accept, close on both sides) cost 6 % of all
 * CPU samples in nginx alone.
 */
static void park(struct worker *w, FCGX_Request *r)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT, .data.fd = r->ipcFd };

	if (r->ipcFd < 0)
		return;
	atomic_fetch_add(&w->kept, 1); /* before it can be taken */
	if (epoll_ctl(w->epfd, EPOLL_CTL_MOD, r->ipcFd, &ev) != 0 &&
	    (errno != ENOENT || epoll_ctl(w->epfd, EPOLL_CTL_ADD, r->ipcFd, &ev) != 0)) {
		atomic_fetch_sub(&w->kept, 1);
		close(r->ipcFd);
	}
	r->ipcFd = -1;
}

static void *request_thread(void *arg)
{
	struct worker *w = arg;
	FCGX_Request r;
	struct buf body;

	if (FCGX_InitRequest(&r, w->sock, 0) != 0) {
		log_error("could not initialise a fastcgi request");
		return NULL;
	}
	buf_init(&body, w->opts->max_body);
	while (next_request(w, &r)) {
		/* Once nginx's stdin is read to its end nothing more can arrive,
		 * so the connection may be kept, or simply closed. Otherwise it
		 * is closed (libfcgi would read the rest as the next request)
		 * the careful way: libfcgi's close shuts down, then waits for
		 * nginx to close first (so unread input cannot turn into a reset
		 * that loses the answer); perf showed that wait, a sleep and a
		 * wake-up per request, in 7 % of call_fcgi's samples. A stopping
		 * process closes every connection after its answer. */
		bool whole = serve_one(&r, w, &body) && FCGX_GetChar(r.in) == EOF;

		r.detached = whole;
		if (!whole || stop_requested())
			r.keepConnection = 0;
		FCGX_Finish_r(&r);
		park(w, &r);
	}
	FCGX_Free(&r, 1);
	buf_free(&body);
	return NULL;
}

static void *tick_thread(void *arg)
{
	struct worker *w = arg;

	while (!stop_requested()) {
		w->tick(w->ctx);
		poll(NULL, 0, SERVER_TICK_MS);
	}
	return NULL;
}

/* The signals the master and the workers take with sigwait, never with a
 * handler: every thread blocks them. */
static void stop_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGCHLD);
}

/*
 * One serving process: threads request threads (plus a tick thread) until
 * SIGTERM/SIGINT, then lets them finish the requests in flight and serve
 * nginx's kept connections until nginx closes them (serving()). Signals in
 * stop_signals() must already be blocked. Returns the exit status.
 */
static int serve(const struct server_opts *opts, int sock, int threads, server_handler_fn fn,
                 void *ctx, void (*tick)(void *ctx))
{
	struct worker w = { .opts = opts, .fn = fn, .ctx = ctx, .tick = tick, .sock = sock,
	                    .epfd = epoll_create1(EPOLL_CLOEXEC) };
	struct epoll_event arm = { .events = EPOLLIN | EPOLLONESHOT, .data.fd = sock };
	pthread_t *tids = calloc((size_t)threads, sizeof *tids), tick_tid;
	pthread_attr_t attr;
	bool ticking = false;
	sigset_t set;
	int i, started = 0, sig;

	if (w.epfd < 0 || epoll_ctl(w.epfd, EPOLL_CTL_ADD, sock, &arm) != 0 || tids == NULL) {
		log_error("could not start the request threads",
		          LF_STR("error", tids == NULL ? "out of memory" : strerror(errno)));
		if (w.epfd >= 0)
			close(w.epfd);
		free(tids);
		return 1;
	}
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, SERVER_THREAD_STACK);
	for (i = 0; i < threads; i++)
		if (pthread_create(&tids[started], &attr, request_thread, &w) == 0)
			started++;
	if (tick != NULL)
		ticking = pthread_create(&tick_tid, &attr, tick_thread, &w) == 0;
	pthread_attr_destroy(&attr);
	if (started == 0) {
		log_error("could not start any request thread", LF_STR("worker", opts->name));
		stop_request();
	} else {
		log_info("worker started", LF_STR("worker", opts->name), LF_INT("pid", getpid()),
		         LF_INT("threads", started));
	}
	stop_signals(&set);
	sigdelset(&set, SIGCHLD);
	while (started > 0) {
		sig = sigwaitinfo(&set, NULL);
		if (sig == SIGTERM || sig == SIGINT)
			break;
	}
	atomic_store(&w.drain_until, clock_mono_ms() + SERVER_KEPT_DRAIN_MS); /* before the stop */
	stop_request();
	for (i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	if (ticking)
		pthread_join(tick_tid, NULL);
	free(tids);
	close(w.epfd);
	log_info("worker stopped", LF_STR("worker", opts->name), LF_INT("pid", getpid()));
	return started > 0 ? 0 : 1;
}

/* Opens the listen socket (non-blocking, see next_request). -1 on failure,
 * logged. */
static int listen_socket(const struct server_opts *opts)
{
	struct stat st;
	int sock = 0, fl;

	if (FCGX_Init() != 0) {
		log_error("could not initialise fastcgi");
		return -1;
	}
	if (opts->socket_path != NULL) {
		sock = FCGX_OpenSocket(opts->socket_path, SERVER_BACKLOG);
		if (sock < 0) {
			log_error("could not listen", LF_STR("socket", opts->socket_path));
			return -1;
		}
	} else if (fstat(0, &st) != 0 || !S_ISSOCK(st.st_mode)) {
		log_error("no fastcgi listen socket on fd 0 (start with spawn-fcgi, or pass -s PATH)");
		return -1;
	}
	fl = fcntl(sock, F_GETFL);
	if (fl < 0 || fcntl(sock, F_SETFL, fl | O_NONBLOCK) != 0) {
		log_error("could not make the listen socket non-blocking", LF_STR("error", strerror(errno)));
		return -1;
	}
	return sock;
}

int server_run_single(const struct server_opts *opts, server_handler_fn fn, void *ctx)
{
	sigset_t set;
	int sock;

	stop_signals(&set);
	sigdelset(&set, SIGCHLD); /* the simulator reaps its own children */
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	sock = listen_socket(opts);
	if (sock < 0)
		return 1;
	return serve(opts, sock, 1, fn, ctx, NULL);
}

/* The master's view of its workers. */
struct child {
	pid_t pid;           /* 0: free */
	unsigned generation; /* configuration it was started with */
	long long started_ms;
	long long kill_at;   /* asked to drain: SIGKILL after this time; 0: not asked */
};

struct master {
	const struct server_opts *opts;
	const struct server_app *app;
	int sock;
	pid_t self;
	void *ctx; /* the current configuration */
	struct server_pool pool;
	unsigned generation;
	struct child kids[2 * SERVER_MAX_WORKERS]; /* current and draining generations */
	int fails;             /* workers in a row that died young */
	long long respawn_at;  /* no new worker before this time */
};

/* In a new worker process: never returns. */
static void worker_process(struct master *m)
{
	sigset_t set;
	int rc;

	/* the worker must not outlive its master (e.g. master SIGKILLed) */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != m->self)
		_exit(0);
	stop_signals(&set);
	signal(SIGCHLD, SIG_DFL);
	if (!m->app->start(m->ctx))
		_exit(1);
	rc = serve(m->opts, m->sock, m->pool.threads, m->app->handle, m->ctx, m->app->tick);
	m->app->stop(m->ctx);
	_exit(rc);
}

static int live_kids(const struct master *m, bool current_only)
{
	int i, n = 0;

	for (i = 0; i < (int)(sizeof m->kids / sizeof m->kids[0]); i++)
		if (m->kids[i].pid > 0 && (!current_only || m->kids[i].generation == m->generation))
			n++;
	return n;
}

/* Starts workers until the current generation has pool.workers of them. */
static void fill_pool(struct master *m)
{
	int i;

	for (i = 0; i < (int)(sizeof m->kids / sizeof m->kids[0]); i++) {
		pid_t pid;

		if (live_kids(m, true) >= m->pool.workers || clock_mono_ms() < m->respawn_at)
			return;
		if (m->kids[i].pid != 0)
			continue;
		pid = fork();
		if (pid < 0) {
			log_error("could not start a worker", LF_STR("error", strerror(errno)));
			m->respawn_at = clock_mono_ms() + SERVER_FIRST_BACKOFF_MS;
			return;
		}
		if (pid == 0)
			worker_process(m);
		m->kids[i].pid = pid;
		m->kids[i].generation = m->generation;
		m->kids[i].started_ms = clock_mono_ms();
		m->kids[i].kill_at = 0;
	}
}

/* Reaps every worker that exited; a current one that died is replaced (at
 * once, or after a backoff when workers keep dying young). */
static void reap(struct master *m)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		int i;

		for (i = 0; i < (int)(sizeof m->kids / sizeof m->kids[0]); i++) {
			struct child *k = &m->kids[i];
			long long lived;

			if (k->pid != pid)
				continue;
			k->pid = 0;
			if (k->generation != m->generation || stop_requested())
				break; /* drained on purpose */
			lived = clock_mono_ms() - k->started_ms;
			/* backoff is for workers that cannot start (they exit with a
			 * status soon after start: configuration, database pool...);
			 * one killed by a signal (OOM killer, kill -9, a crash) is
			 * replaced at once, so the pool never sits empty */
			m->fails = lived >= SERVER_STABLE_MS || WIFSIGNALED(status) ? 0 : m->fails + 1;
			m->respawn_at = m->fails == 0 ? 0
			              : clock_mono_ms() + (m->fails >= 7 ? SERVER_MAX_BACKOFF_MS
			                                   : (long long)SERVER_FIRST_BACKOFF_MS << (m->fails - 1));
			if (m->respawn_at > clock_mono_ms() + SERVER_MAX_BACKOFF_MS)
				m->respawn_at = clock_mono_ms() + SERVER_MAX_BACKOFF_MS;
			log_emit(LOG_ERROR, "worker died; replacing it", LF_STR("worker", m->opts->name),
			         LF_INT("pid", pid),
			         WIFSIGNALED(status) ? LF_INT("signal", WTERMSIG(status))
			                             : LF_INT("exit_status", WEXITSTATUS(status)),
			         LF_INT("lived_ms", lived),
			         LF_INT("restart_in_ms", m->respawn_at > 0 ? m->respawn_at - clock_mono_ms() : 0),
			         LF_END);
			break;
		}
	}
}

/* Asks every worker (of every generation, or only older ones) to drain:
 * SIGTERM now, SIGKILL from drain_kids once SERVER_DRAIN_MS have passed. */
static void stop_kids(struct master *m, bool older_only)
{
	int i;

	for (i = 0; i < (int)(sizeof m->kids / sizeof m->kids[0]); i++) {
		struct child *k = &m->kids[i];

		if (k->pid > 0 && k->kill_at == 0 && (!older_only || k->generation != m->generation)) {
			kill(k->pid, SIGTERM);
			k->kill_at = clock_mono_ms() + SERVER_DRAIN_MS;
		}
	}
}

/* Kills the draining workers that outlived their drain time. */
static void drain_kids(struct master *m)
{
	int i;

	for (i = 0; i < (int)(sizeof m->kids / sizeof m->kids[0]); i++) {
		struct child *k = &m->kids[i];

		if (k->pid > 0 && k->kill_at > 0 && clock_mono_ms() >= k->kill_at) {
			log_error("workers still busy after the drain time; killing them",
			          LF_STR("worker", m->opts->name), LF_INT("pid", k->pid));
			kill(k->pid, SIGKILL);
			k->kill_at = clock_mono_ms() + SERVER_DRAIN_MS;
		}
	}
}

/* SIGHUP: a valid new configuration gets a new generation of workers; the
 * old ones drain once the new ones are started. */
static void reload(struct master *m)
{
	struct server_pool pool;
	char err[512];
	void *ctx = m->app->load(&pool, err, sizeof err);

	if (ctx == NULL) {
		log_error("configuration not reloaded: it is invalid; the workers keep the old one",
		          LF_STR("error", err));
		return;
	}
	if (live_kids(m, false) + pool.workers > (int)(sizeof m->kids / sizeof m->kids[0])) {
		log_error("configuration not reloaded: the previous reload is still draining");
		m->app->unload(ctx);
		return;
	}
	m->app->unload(m->ctx);
	m->ctx = ctx;
	m->pool = pool;
	m->generation++;
	m->fails = 0;
	m->respawn_at = 0;
	fill_pool(m);
	stop_kids(m, true);
	log_info("configuration reloaded", LF_STR("worker", m->opts->name),
	         LF_INT("workers", pool.workers), LF_INT("threads", pool.threads));
}

int server_run(const struct server_opts *opts, const struct server_app *app)
{
	static struct master m; /* big; one per process */
	struct timespec tick = { 0, SERVER_POLL_MS * 1000000L };
	char err[512];
	sigset_t set;

	stop_signals(&set);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	m.opts = opts;
	m.app = app;
	m.self = getpid();
	m.generation = 1;
	m.ctx = app->load(&m.pool, err, sizeof err);
	if (m.ctx == NULL) {
		log_error("invalid configuration", LF_STR("error", err));
		return 2;
	}
	m.sock = listen_socket(opts);
	if (m.sock < 0) {
		app->unload(m.ctx);
		return 1;
	}
	log_info("master started", LF_STR("worker", opts->name), LF_INT("pid", m.self),
	         LF_INT("workers", m.pool.workers), LF_INT("threads", m.pool.threads));
	for (;;) {
		int sig;

		if (!stop_requested())
			fill_pool(&m);
		sig = sigtimedwait(&set, NULL, &tick);
		if ((sig == SIGTERM || sig == SIGINT) && !stop_requested()) {
			stop_request();
			log_info("stopping: draining the workers", LF_STR("worker", opts->name));
			stop_kids(&m, false);
		} else if (sig == SIGHUP && !stop_requested()) {
			reload(&m);
		}
		reap(&m);
		if (stop_requested() && live_kids(&m, false) == 0)
			break;
		drain_kids(&m);
	}
	app->unload(m.ctx);
	log_info("master stopped", LF_STR("worker", opts->name), LF_INT("pid", m.self));
	return 0;
}
