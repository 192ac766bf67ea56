#include "metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apierr.h"
#include "log.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define METRICS_OPEN_TRIES 5

/* Label values. "other" catches every value not listed; "none" is a
 * Twilio answer without an error code. */
static const char *const pools[] = { "call", "webhook", "other" };
static const char *const routes[] = { "/call", "/calls", "/calls/{sid}", "/calls/{sid}/cancel",
	"/calls/{sid}/hangup", "/recordings/{sid}", "/twilio/webhook", "/twilio/voice",
	"/twilio/recording", "/healthz", "/readyz", "/metrics", "other" };
static const int status_codes[] = { 200, 201, 204, 400, 401, 403, 404, 405, 409, 413, 415,
	422, 429, 500, 502, 503, 504 };
static const char *const statuses[] = { "200", "201", "204", "400", "401", "403", "404", "405",
	"409", "413", "415", "422", "429", "500", "502", "503", "504", "other" };
/* Histogram bounds in microseconds, and as the le label. */
static const long long bucket_us[] = { 5000, 10000, 25000, 50000, 100000, 250000, 500000,
	1000000, 2500000, 5000000, 10000000, 30000000 };
static const char *const bucket_le[] = { "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5",
	"1", "2.5", "5", "10", "30", "+Inf" };
static const char *const outcomes[] = { "created", "twilio_error", "unavailable", "timeout" };
static const int twilio_codes[] = { 20003, 20429, 21210, 21211, 21212, 21214, 21215, 21216, 21217 };
static const char *const codes[] = { "20003", "20429", "21210", "21211", "21212", "21214",
	"21215", "21216", "21217", "other", "none" };
static const char *const sig_reasons[] = { "missing", "mismatch" };
static const char *const db_kinds[] = { "unavailable", "error" };
static const char *const finals[] = { "completed", "busy", "failed", "no-answer", "canceled" };
static const char *const spool_actions[] = { "spooled", "replayed", "rejected" };
static const char *const reconcile_outcomes[] = { "advanced", "unchanged", "linked", "not_found",
	"ambiguous", "error", "rate_limited" };

#define N_POOL NELEM(pools)
#define N_ROUTE NELEM(routes)
#define N_STATUS NELEM(statuses)
#define N_BUCKET NELEM(bucket_le) /* including +Inf */
#define N_HIST (N_BUCKET + 1)     /* per-bucket counts (not cumulative), then the sum in us */
#define N_CODE NELEM(codes)
/* the routes matched by prefix, with a sid in the path */
#define ROUTE_ONE_CALL 2  /* "/calls/{sid}" */
#define ROUTE_CANCEL 3    /* "/calls/{sid}/cancel" */
#define ROUTE_HANGUP 4    /* "/calls/{sid}/hangup" */
#define ROUTE_RECORDING 5 /* "/recordings/{sid}" */

/* Where each family's counters start in a slot. */
enum {
	OFF_REQUESTS = 0,
	OFF_DURATION = OFF_REQUESTS + N_POOL * N_ROUTE * N_STATUS,
	OFF_TWILIO = OFF_DURATION + N_POOL * N_ROUTE * N_HIST,
	OFF_SIG = OFF_TWILIO + NELEM(outcomes) * N_CODE,
	OFF_DB_ERRORS = OFF_SIG + NELEM(sig_reasons),
	OFF_DB_RECONNECTS = OFF_DB_ERRORS + NELEM(db_kinds),
	OFF_FINAL = OFF_DB_RECONNECTS + 1,
	OFF_SPOOL = OFF_FINAL + NELEM(finals),
	OFF_STARTS = OFF_SPOOL + NELEM(spool_actions),
	OFF_RECONCILE = OFF_STARTS + N_POOL,
	N_COUNTERS = OFF_RECONCILE + NELEM(reconcile_outcomes),
};

/* A slot is word 0 (the owner's pid, 0 when free) and the counters, padded
 * to whole cache lines so workers never write the same line. */
#define SLOT_WORDS (((1 + (size_t)N_COUNTERS) + 7) / 8 * 8)
#define HEADER_BYTES 64
#define FILE_BYTES (HEADER_BYTES + (size_t)METRICS_MAX_SLOTS * SLOT_WORDS * sizeof(uint64_t))

/* The file's first 64 bytes. magic is stored last (release) by the creator,
 * so a reader that sees it sees the rest. */
struct metrics_header {
	uint32_t magic;
	uint32_t version;
	uint32_t nslots;
	uint32_t ncounters;
	uint64_t size;
};

_Static_assert(sizeof(struct metrics_header) <= HEADER_BYTES, "header fits");
_Static_assert(NELEM(bucket_us) + 1 == NELEM(bucket_le), "one le per bound plus +Inf");
_Static_assert(NELEM(status_codes) + 1 == NELEM(statuses), "one label per status plus other");
_Static_assert(NELEM(twilio_codes) + 2 == NELEM(codes), "one label per code plus other, none");
_Static_assert(NELEM(reconcile_outcomes) == METRICS_RECONCILE_RATE_LIMITED + 1,
               "one label per reconcile outcome");

/* This process's mapping; map == NULL while disabled. */
static struct {
	unsigned char *map;
	uint64_t *slot;
	int index;
	pid_t pid;
} m = { NULL, NULL, -1, 0 };

static uint64_t *slot_at(unsigned char *map, size_t i)
{
	return (uint64_t *)(void *)(map + HEADER_BYTES + i * SLOT_WORDS * sizeof(uint64_t));
}

static void add(size_t counter, uint64_t n)
{
	if (m.slot != NULL)
		__atomic_fetch_add(&m.slot[1 + counter], n, __ATOMIC_RELAXED);
}

static size_t pool_index(const char *pool)
{
	size_t i;

	for (i = 0; i + 1 < N_POOL; i++)
		if (pool != NULL && strcmp(pool, pools[i]) == 0)
			return i;
	return N_POOL - 1;
}

/* The route template of a request path (without query). */
static size_t route_index(const char *path)
{
	size_t i;

	if (strncmp(path, "/calls/", 7) == 0) {
		const char *slash = strchr(path + 7, '/');

		if (slash == NULL)
			return ROUTE_ONE_CALL;
		if (strcmp(slash, "/cancel") == 0)
			return ROUTE_CANCEL;
		if (strcmp(slash, "/hangup") == 0)
			return ROUTE_HANGUP;
		return N_ROUTE - 1;
	}
	if (strncmp(path, "/recordings/", 12) == 0)
		return ROUTE_RECORDING;
	for (i = 0; i + 1 < N_ROUTE; i++)
		if ((i < ROUTE_ONE_CALL || i > ROUTE_RECORDING) && strcmp(path, routes[i]) == 0)
			return i;
	return N_ROUTE - 1;
}

static size_t status_index(int status)
{
	size_t i;

	for (i = 0; i < NELEM(status_codes); i++)
		if (status_codes[i] == status)
			return i;
	return N_STATUS - 1;
}

static size_t code_index(int code)
{
	size_t i;

	if (code == 0)
		return N_CODE - 1;
	for (i = 0; i < NELEM(twilio_codes); i++)
		if (twilio_codes[i] == code)
			return i;
	return N_CODE - 2;
}

/* Opens path, creating it (empty) when absent; *created tells which. A file
 * removed between the two opens is tried again. -1 with errno on failure. */
static int open_file(const char *path, bool *created)
{
	int i, fd;

	for (i = 0; i < METRICS_OPEN_TRIES; i++) {
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd >= 0) {
			*created = true;
			(void)fchmod(fd, 0600); /* whatever the umask took away */
			return fd;
		}
		if (errno != EEXIST)
			return -1;
		fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
		if (fd >= 0) {
			*created = false;
			return fd;
		}
		if (errno != ENOENT)
			return -1;
	}
	errno = EAGAIN;
	return -1;
}

/* Sizes fd's file (new space reads as zero), writes the header and maps it.
 * The caller holds the file's lock. */
static enum verr file_init(int fd, unsigned char **out, const char **why)
{
	struct metrics_header *h;
	unsigned char *map;

	if (ftruncate(fd, (off_t)FILE_BYTES) != 0) {
		*why = strerror(errno);
		return VERR_IO;
	}
	map = mmap(NULL, FILE_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		*why = strerror(errno);
		return VERR_IO;
	}
	h = (struct metrics_header *)(void *)map;
	h->version = METRICS_VERSION;
	h->nslots = METRICS_MAX_SLOTS;
	h->ncounters = (uint32_t)N_COUNTERS;
	h->size = FILE_BYTES;
	__atomic_store_n(&h->magic, METRICS_MAGIC, __ATOMIC_RELEASE);
	*out = map;
	return VERR_OK;
}

/* What the file under fd holds, judged by its size and header. */
enum file_state { FILE_OURS, FILE_EMPTY, FILE_OLD_LAYOUT, FILE_FOREIGN, FILE_ERROR };

static enum file_state file_state(int fd)
{
	struct metrics_header h;
	struct stat st;

	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		return FILE_FOREIGN;
	if (st.st_size == 0)
		return FILE_EMPTY; /* just created, or its creator died before sizing it */
	memset(&h, 0, sizeof h);
	if (st.st_size < (off_t)sizeof h || pread(fd, &h, sizeof h, 0) != (ssize_t)sizeof h)
		return st.st_size < (off_t)sizeof h ? FILE_FOREIGN : FILE_ERROR;
	if ((unsigned long long)st.st_size == FILE_BYTES && h.magic == 0 && h.version == 0)
		return FILE_EMPTY; /* its creator died before writing the header */
	if (h.magic != METRICS_MAGIC)
		return FILE_FOREIGN;
	if (h.version != METRICS_VERSION || h.nslots != METRICS_MAX_SLOTS ||
	    h.ncounters != (uint32_t)N_COUNTERS || h.size != FILE_BYTES ||
	    (unsigned long long)st.st_size != FILE_BYTES)
		return FILE_OLD_LAYOUT;
	return FILE_OURS;
}

/*
 * True when the file under fd is this process's alone: owned by its
 * effective user, mode 0600 (a file of another type is judged later, by
 * file_state). Otherwise false with why and the facts in uid / mode.
 */
static bool file_private(int fd, const char **why, long long *uid, long long *mode)
{
	struct stat st;

	if (fstat(fd, &st) != 0) {
		*why = strerror(errno);
		return false;
	}
	*uid = (long long)st.st_uid;
	*mode = (long long)(st.st_mode & 07777);
	if (st.st_uid != geteuid()) {
		*why = "the file belongs to another user";
		return false;
	}
	if (S_ISREG(st.st_mode) && (st.st_mode & 07777) != 0600) {
		*why = "the file's mode is not 0600";
		return false;
	}
	return true;
}

/* True while path still names the file open on fd. */
static bool still_linked(int fd, const char *path)
{
	struct stat a, b;

	return fstat(fd, &a) == 0 && lstat(path, &b) == 0 && a.st_dev == b.st_dev &&
	       a.st_ino == b.st_ino;
}

/*
 * Puts a new, initialised file in place of path (an older build's layout):
 * written under a temporary name, then renamed over it, so a reader sees the
 * old file or the new one, never half of one. Workers of the older build keep
 * counting into the old file until they exit. The caller holds the old
 * file's lock, so one worker replaces it once.
 */
static enum verr file_replace(const char *path, const char **why)
{
	char tmp[METRICS_MAX_PATH + 32];
	unsigned char *map = NULL;
	enum verr e;
	int fd, n = snprintf(tmp, sizeof tmp, "%s.%d.new", path, (int)getpid());

	if (n < 0 || (size_t)n >= sizeof tmp) {
		*why = "path too long";
		return VERR_IO;
	}
	unlink(tmp); /* left by a dead process that had our pid */
	fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		*why = strerror(errno);
		return VERR_IO;
	}
	(void)fchmod(fd, 0600); /* whatever the umask took away */
	e = file_init(fd, &map, why);
	if (e == VERR_OK) {
		munmap(map, FILE_BYTES);
		if (rename(tmp, path) != 0) {
			*why = strerror(errno);
			e = VERR_IO;
		}
	}
	if (e != VERR_OK)
		unlink(tmp);
	close(fd);
	return e;
}

/*
 * Maps path, creating or repairing it first. Every worker that opens the file
 * takes its flock before looking at it, so exactly one sizes a new file (or
 * one whose creator died half-way) and exactly one replaces an older
 * layout; the others wait for the lock and find it done.
 */
static enum verr file_map(const char *path, unsigned char **out, bool *created, const char **why)
{
	enum verr e = VERR_IO;
	int tries;

	*why = "the file kept changing under us";
	for (tries = 0; tries < METRICS_OPEN_TRIES; tries++) {
		int fd = open_file(path, created);
		enum file_state st;
		bool retry = false;
		long long uid = -1, mode = -1;

		if (fd < 0) {
			*why = strerror(errno);
			return VERR_IO;
		}
		/* before its lock: another user's file could be locked forever */
		if (!file_private(fd, why, &uid, &mode)) {
			char ms[16];

			close(fd);
			if (uid < 0)
				return VERR_IO;
			snprintf(ms, sizeof ms, "%04llo", (unsigned long long)mode);
			log_error("metrics file refused: it must belong to this service's user and have "
			          "mode 0600; remove it, or fix its owner and mode",
			          LF_STR("path", path), LF_STR("error", *why), LF_INT("owner_uid", uid),
			          LF_STR("mode", ms), LF_INT("service_uid", (long long)geteuid()));
			return VERR_FORBIDDEN;
		}
		while (flock(fd, LOCK_EX) != 0 && errno == EINTR)
			;
		if (!still_linked(fd, path)) {
			retry = true; /* replaced while we waited for the lock */
		} else {
			st = file_state(fd);
			if (st == FILE_EMPTY) {
				e = file_init(fd, out, why);
			} else if (st == FILE_OURS) {
				void *map = mmap(NULL, FILE_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

				e = map != MAP_FAILED ? VERR_OK : VERR_IO;
				if (e == VERR_OK)
					*out = map;
				else
					*why = strerror(errno);
			} else if (st == FILE_OLD_LAYOUT) {
				e = file_replace(path, why);
				retry = e == VERR_OK;
				if (retry)
					log_warn("replaced a metrics file of another layout; counters restart",
					         LF_STR("path", path));
			} else {
				e = st == FILE_FOREIGN ? VERR_CONFLICT : VERR_IO;
				*why = st == FILE_FOREIGN ? "the file exists and is not a metrics file"
				                          : "could not read the file header";
			}
		}
		/* unlock explicitly: a mapping holds the open file, and so the lock */
		flock(fd, LOCK_UN);
		close(fd);
		if (!retry)
			return e;
	}
	return VERR_IO;
}

/* A slot's owner is gone: kill(pid, 0) says no such process. */
static bool pid_dead(uint64_t pid)
{
	return pid > 0 && pid <= INT32_MAX && kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

/* Claims a slot for pid: a dead worker's first (so restarts reuse slots and
 * its counts carry on), else a free one. -1 when all are taken. */
static int claim_slot(unsigned char *map, pid_t pid)
{
	size_t i;
	int pass;

	for (pass = 0; pass < 2; pass++) {
		for (i = 0; i < METRICS_MAX_SLOTS; i++) {
			uint64_t *s = slot_at(map, i);
			uint64_t owner = __atomic_load_n(&s[0], __ATOMIC_ACQUIRE);

			/* a dead worker may have had our pid: its slot is ours too */
			if (pass == 0 ? !(owner == (uint64_t)pid || pid_dead(owner)) : owner != 0)
				continue;
			if (__atomic_compare_exchange_n(&s[0], &owner, (uint64_t)pid, false,
			                                __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
				return (int)i;
		}
	}
	return -1;
}

enum verr metrics_init(const char *path, const char *pool)
{
	unsigned char *map = NULL;
	const char *why = "unknown";
	bool created = false;
	enum verr e;
	int index;

	if (m.map != NULL && m.pid == getpid())
		return VERR_OK;
	metrics_close();
	if (path == NULL || path[0] == '\0' || strlen(path) > METRICS_MAX_PATH) {
		log_warn("metrics disabled: no usable metrics file path");
		return VERR_INVALID;
	}
	e = file_map(path, &map, &created, &why);
	if (e == VERR_FORBIDDEN)
		return e; /* logged as an error: the caller refuses to start */
	if (e != VERR_OK) {
		log_warn("metrics disabled: could not set up the metrics file", LF_STR("path", path),
		         LF_STR("error", why));
		return e;
	}
	index = claim_slot(map, getpid());
	if (index < 0) {
		munmap(map, FILE_BYTES);
		log_warn("metrics disabled: every metrics slot belongs to a live process",
		         LF_STR("path", path), LF_INT("slots", METRICS_MAX_SLOTS));
		return VERR_TOOBIG;
	}
	m.map = map;
	m.slot = slot_at(map, (size_t)index);
	m.index = index;
	m.pid = getpid();
	add(OFF_STARTS + pool_index(pool), 1);
	log_debug("metrics enabled", LF_STR("path", path), LF_INT("slot", index),
	          LF_STR("created", created ? "yes" : "no"));
	return VERR_OK;
}

void metrics_close(void)
{
	uint64_t self = (uint64_t)m.pid;

	if (m.map == NULL)
		return;
	/* only the owner frees the slot: a forked child inherits the mapping */
	if (m.pid == getpid())
		__atomic_compare_exchange_n(&m.slot[0], &self, 0, false, __ATOMIC_ACQ_REL,
		                            __ATOMIC_ACQUIRE);
	munmap(m.map, FILE_BYTES);
	m.map = NULL;
	m.slot = NULL;
	m.index = -1;
	m.pid = 0;
}

int metrics_slot(void)
{
	return m.map != NULL ? m.index : -1;
}

void metrics_count_request(const char *pool, const char *path, int status, long long usec)
{
	size_t pr = pool_index(pool) * N_ROUTE + route_index(path != NULL ? path : "");
	size_t b;

	if (m.slot == NULL)
		return;
	if (usec < 0)
		usec = 0;
	b = 0;
	while (b < NELEM(bucket_us) && usec > bucket_us[b])
		b++;
	add(OFF_REQUESTS + pr * N_STATUS + status_index(status), 1);
	add(OFF_DURATION + pr * N_HIST + b, 1);
	add(OFF_DURATION + pr * N_HIST + N_BUCKET, (uint64_t)usec);
}

void metrics_count_twilio(enum metrics_twilio outcome, int code)
{
	if ((size_t)outcome < NELEM(outcomes))
		add(OFF_TWILIO + (size_t)outcome * N_CODE + code_index(code), 1);
}

void metrics_count_sig_failure(enum metrics_sig reason)
{
	if ((size_t)reason < NELEM(sig_reasons))
		add(OFF_SIG + (size_t)reason, 1);
}

void metrics_count_db_error(enum verr kind)
{
	if (kind == VERR_DB_DOWN)
		add(OFF_DB_ERRORS + 0, 1);
	else if (kind == VERR_DB)
		add(OFF_DB_ERRORS + 1, 1);
}

void metrics_count_db_reconnect(void)
{
	add(OFF_DB_RECONNECTS, 1);
}

bool metrics_status_final(const char *status)
{
	size_t i;

	for (i = 0; status != NULL && i < NELEM(finals); i++)
		if (strcmp(status, finals[i]) == 0)
			return true;
	return false;
}

void metrics_count_call_final(const char *status)
{
	size_t i;

	for (i = 0; status != NULL && i < NELEM(finals); i++)
		if (strcmp(status, finals[i]) == 0)
			add(OFF_FINAL + i, 1);
}

void metrics_count_spool(enum metrics_spool action)
{
	if ((size_t)action < NELEM(spool_actions))
		add(OFF_SPOOL + (size_t)action, 1);
}

void metrics_count_reconcile(enum metrics_reconcile outcome)
{
	if ((size_t)outcome < NELEM(reconcile_outcomes))
		add(OFF_RECONCILE + (size_t)outcome, 1);
}

/* Rendering works on a private sum of every slot, so one scrape is one
 * consistent-enough snapshot and each counter is read once per slot. */
struct totals {
	uint64_t c[N_COUNTERS];
};

static void sum_slots(struct totals *t)
{
	size_t i, k;

	memset(t, 0, sizeof *t);
	for (i = 0; i < METRICS_MAX_SLOTS; i++) {
		const uint64_t *s = slot_at(m.map, i);

		for (k = 0; k < N_COUNTERS; k++)
			t->c[k] += __atomic_load_n(&s[1 + k], __ATOMIC_RELAXED);
	}
}

static enum verr family(struct buf *out, const char *name, const char *type, const char *help)
{
	return buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One sample of a family with a single label, for each label value. */
static enum verr one_label(struct buf *out, const struct totals *t, const char *name,
                           const char *label, const char *const *values, size_t n, size_t off)
{
	enum verr e = VERR_OK;
	size_t i;

	for (i = 0; e == VERR_OK && i < n; i++)
		e = buf_printf(out, "%s{%s=\"%s\"} %llu\n", name, label, values[i],
		               (unsigned long long)t->c[off + i]);
	return e;
}

static enum verr render_http(struct buf *out, const struct totals *t)
{
	enum verr e;
	size_t p, r, s, b;

	e = family(out, "voice_http_requests_total", "counter",
	           "HTTP requests answered, by worker pool, route template and status code.");
	for (p = 0; e == VERR_OK && p < N_POOL; p++)
		for (r = 0; e == VERR_OK && r < N_ROUTE; r++)
			for (s = 0; e == VERR_OK && s < N_STATUS; s++) {
				uint64_t v = t->c[OFF_REQUESTS + (p * N_ROUTE + r) * N_STATUS + s];

				if (v > 0)
					e = buf_printf(out,
					               "voice_http_requests_total{pool=\"%s\",route=\"%s\","
					               "status=\"%s\"} %llu\n",
					               pools[p], routes[r], statuses[s], (unsigned long long)v);
			}
	if (e == VERR_OK)
		e = family(out, "voice_http_request_duration_seconds", "histogram",
		           "Time from reading a request to writing its response, in seconds.");
	for (p = 0; e == VERR_OK && p < N_POOL; p++)
		for (r = 0; e == VERR_OK && r < N_ROUTE; r++) {
			const uint64_t *h = &t->c[OFF_DURATION + (p * N_ROUTE + r) * N_HIST];
			uint64_t cum = 0;

			for (b = 0; b < N_BUCKET; b++)
				cum += h[b];
			if (cum == 0)
				continue;
			cum = 0;
			for (b = 0; e == VERR_OK && b < N_BUCKET; b++) {
				cum += h[b];
				e = buf_printf(out,
				               "voice_http_request_duration_seconds_bucket{pool=\"%s\","
				               "route=\"%s\",le=\"%s\"} %llu\n",
				               pools[p], routes[r], bucket_le[b], (unsigned long long)cum);
			}
			if (e == VERR_OK)
				e = buf_printf(out,
				               "voice_http_request_duration_seconds_sum{pool=\"%s\",route=\"%s\"}"
				               " %llu.%06llu\n"
				               "voice_http_request_duration_seconds_count{pool=\"%s\",route=\"%s\"}"
				               " %llu\n",
				               pools[p], routes[r], (unsigned long long)(h[N_BUCKET] / 1000000),
				               (unsigned long long)(h[N_BUCKET] % 1000000), pools[p], routes[r],
				               (unsigned long long)cum);
		}
	return e;
}

static enum verr render_twilio(struct buf *out, const struct totals *t)
{
	enum verr e = family(out, "voice_twilio_requests_total", "counter",
	                     "HTTP requests to the Twilio REST API (each attempt), by outcome and "
	                     "Twilio error code.");
	size_t o, c;

	for (o = 0; e == VERR_OK && o < NELEM(outcomes); o++)
		for (c = 0; e == VERR_OK && c < N_CODE; c++) {
			uint64_t v = t->c[OFF_TWILIO + o * N_CODE + c];

			/* every outcome has a code="none" series, zero or not */
			if (v > 0 || c == N_CODE - 1)
				e = buf_printf(out, "voice_twilio_requests_total{outcome=\"%s\",code=\"%s\"} %llu\n",
				               outcomes[o], codes[c], (unsigned long long)v);
		}
	return e;
}

enum verr metrics_render(struct buf *out)
{
	struct totals t;
	enum verr e;

	if (m.map == NULL)
		return VERR_IO;
	sum_slots(&t);
	e = render_http(out, &t);
	if (e == VERR_OK)
		e = render_twilio(out, &t);
	if (e == VERR_OK)
		e = family(out, "voice_webhook_signature_failures_total", "counter",
		           "Twilio webhooks refused for a missing or mismatching X-Twilio-Signature.");
	if (e == VERR_OK)
		e = one_label(out, &t, "voice_webhook_signature_failures_total", "reason", sig_reasons,
		              NELEM(sig_reasons), OFF_SIG);
	if (e == VERR_OK)
		e = family(out, "voice_db_errors_total", "counter",
		           "Database statements that failed: unreachable (unavailable) or refused (error).");
	if (e == VERR_OK)
		e = one_label(out, &t, "voice_db_errors_total", "kind", db_kinds, NELEM(db_kinds),
		              OFF_DB_ERRORS);
	if (e == VERR_OK)
		e = family(out, "voice_db_reconnects_total", "counter",
		           "Lost database connections established again.");
	if (e == VERR_OK)
		e = buf_printf(out, "voice_db_reconnects_total %llu\n",
		               (unsigned long long)t.c[OFF_DB_RECONNECTS]);
	if (e == VERR_OK)
		e = family(out, "voice_calls_final_total", "counter",
		           "Calls that reached a final status, counted when that status is stored.");
	if (e == VERR_OK)
		e = one_label(out, &t, "voice_calls_final_total", "status", finals, NELEM(finals),
		              OFF_FINAL);
	if (e == VERR_OK)
		e = family(out, "voice_spool_records_total", "counter",
		           "Records spooled while the database was unreachable, replayed, or rejected.");
	if (e == VERR_OK)
		e = one_label(out, &t, "voice_spool_records_total", "action", spool_actions,
		              NELEM(spool_actions), OFF_SPOOL);
	if (e == VERR_OK)
		e = family(out, "voice_worker_starts_total", "counter",
		           "Worker processes started, by pool.");
	if (e == VERR_OK)
		e = one_label(out, &t, "voice_worker_starts_total", "pool", pools, N_POOL, OFF_STARTS);
	if (e == VERR_OK)
		e = family(out, "voice_reconcile_total", "counter",
		           "Reconciliation steps (a call fetched from Twilio, or a lost POST /call "
		           "looked up in its call list), by outcome.");
	if (e == VERR_OK)
		e = one_label(out, &t, "voice_reconcile_total", "outcome", reconcile_outcomes,
		              NELEM(reconcile_outcomes), OFF_RECONCILE);
	return e;
}

bool metrics_route(const struct http_req *req, struct req_ctx *rc, struct http_resp *resp)
{
	enum verr e;

	if (strcmp(req->path, "/metrics") != 0)
		return false;
	if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
		apierr_reply(rc, resp, APIERR_METHOD_NOT_ALLOWED, "use GET", NULL);
		if (http_resp_header(resp, "Allow", "GET, HEAD") != VERR_OK)
			log_warn("could not add Allow to a 405");
		return true;
	}
	buf_reset(&resp->body);
	e = metrics_render(&resp->body);
	if (e != VERR_OK) {
		apierr_reply(rc, resp, e == VERR_IO ? APIERR_METRICS_UNAVAILABLE : APIERR_INTERNAL,
		             e == VERR_IO ? NULL : "the metrics text is too large", NULL);
		return true;
	}
	resp->status = 200;
	resp->content_type = METRICS_CONTENT_TYPE;
	return true;
}
