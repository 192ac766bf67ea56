#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "file.h"
#include "log.h"
#include "num.h"

#define SPOOL_SUFFIX ".rec"
#define SPOOL_TMP_PREFIX ".tmp-" /* file_write_atomic's temporary names */
#define SPOOL_MAX_NAME 128
#define SPOOL_MAX_PATH 1200
#define SPOOL_MAX_HOST 65         /* host name in a claim, with its NUL */
#define SPOOL_MAX_CLAIM 128       /* ".<pid>.<start>@<host>" */
#define SPOOL_SCAN SPOOL_MAX_BATCH /* names sorted per replay pass */

/* Who holds a claim: a process on a host. */
struct owner {
	char host[SPOOL_MAX_HOST];
	long long pid;
	unsigned long long start; /* /proc/PID/stat starttime, clock ticks since boot */
};

static enum verr ensure_dir(const char *dir)
{
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return VERR_IO;
	return VERR_OK;
}

static bool path_join(char *out, size_t outsz, const char *dir, const char *name)
{
	int n = snprintf(out, outsz, "%s/%s", dir, name);

	return n > 0 && (size_t)n < outsz;
}

enum verr spool_put(const char *dir, const void *record, size_t len)
{
	static unsigned counter; /* shared by the threads: atomic */
	char name[SPOOL_MAX_NAME];
	struct timespec ts;
	enum verr e;

	if (len > SPOOL_MAX_RECORD)
		return VERR_TOOBIG;
	if (ensure_dir(dir) != VERR_OK) {
		log_error("could not create the spool directory", LF_STR("dir", dir),
		          LF_STR("error", strerror(errno)));
		return VERR_IO;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	/* zero-padded time first: names sort oldest first */
	snprintf(name, sizeof name, "%020lld-%d-%u" SPOOL_SUFFIX,
	         (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec, (int)getpid(),
	         __atomic_fetch_add(&counter, 1u, __ATOMIC_RELAXED));
	e = file_write_atomic(dir, name, record, len, true);
	if (e == VERR_IO)
		log_error("could not write to the spool", LF_STR("dir", dir), LF_STR("error", strerror(errno)));
	return e;
}

static bool is_record(const char *name)
{
	size_t n = strlen(name), s = sizeof SPOOL_SUFFIX - 1;

	return name[0] != '.' && n > s && strcmp(name + n - s, SPOOL_SUFFIX) == 0;
}

/*
 * Process pid's start time into *start: 1 when read, 0 when there is no such
 * process (or it is a zombie: dead, not yet reaped), -1 when /proc cannot
 * tell (not mounted, hidepid).
 */
static int proc_start(long long pid, unsigned long long *start)
{
	char path[64], text[1024], num[24];
	const char *p;
	long long v;
	size_t len;
	int fd, field;
	ssize_t n;

	snprintf(path, sizeof path, "/proc/%lld/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT || errno == ESRCH ? 0 : -1;
	n = read(fd, text, sizeof text - 1);
	close(fd);
	if (n <= 0)
		return n == 0 ? 0 : -1;
	text[n] = '\0';
	/* "pid (comm) state ... starttime(22) ...": comm may hold anything, ")"
	 * and spaces included, so fields are counted from its last ")" */
	p = strrchr(text, ')');
	if (p == NULL)
		return -1;
	for (field = 3, p++; field <= 22; field++) {
		p += strspn(p, " ");
		len = strcspn(p, " \n");
		if (len == 0)
			return -1;
		if (field == 3 && *p == 'Z')
			return 0; /* a zombie: dead, waiting to be reaped */
		if (field == 22) {
			if (len >= sizeof num)
				return -1;
			memcpy(num, p, len);
			num[len] = '\0';
			if (!num_parse(num, 0, LLONG_MAX, &v))
				return -1;
			*start = (unsigned long long)v;
		}
		p += len;
	}
	return 1;
}

/* This process, as it names itself in a claim. */
static void owner_self(struct owner *o)
{
	size_t i;

	memset(o, 0, sizeof *o);
	if (gethostname(o->host, sizeof o->host - 1) != 0 || o->host[0] == '\0')
		str_copy(o->host, sizeof o->host, "unknown");
	for (i = 0; o->host[i] != '\0'; i++)
		if (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-",
		           o->host[i]) == NULL)
			o->host[i] = '_';
	o->pid = (long long)getpid();
	if (proc_start(o->pid, &o->start) != 1)
		o->start = 0;
}

/* Parses a claim suffix "<pid>.<start>@<host>"; false for anything else. */
static bool owner_parse(const char *s, struct owner *o)
{
	const char *dot = strchr(s, '.'), *at = strchr(s, '@');
	char num[24];
	long long start;

	memset(o, 0, sizeof *o);
	if (dot == NULL || at == NULL || at < dot || (size_t)(dot - s) >= sizeof num ||
	    (size_t)(at - dot - 1) >= sizeof num || !str_copy(o->host, sizeof o->host, at + 1))
		return false;
	memcpy(num, s, (size_t)(dot - s));
	num[dot - s] = '\0';
	if (!num_parse(num, 1, 1LL << 30, &o->pid))
		return false;
	memcpy(num, dot + 1, (size_t)(at - dot - 1));
	num[at - dot - 1] = '\0';
	if (!num_parse(num, 0, 1LL << 62, &start))
		return false;
	o->start = (unsigned long long)start;
	return true;
}

/* True when o, a process of this host, no longer runs: no process has its
 * pid, or the one that has it started at another time (the pid was reused). */
static bool owner_gone(const struct owner *o)
{
	unsigned long long start = 0;
	int st = proc_start(o->pid, &start);

	if (st == 0)
		return true;
	if (st == 1)
		return o->start != 0 && start != o->start; /* 0: its owner could not tell */
	return kill((pid_t)o->pid, 0) != 0 && errno == ESRCH;
}

/* Seconds since path was last modified; -1 when it cannot be read (gone). */
static long long age_s(const char *path, time_t now)
{
	struct stat st;

	if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
		return -1;
	return st.st_mtime > now ? 0 : (long long)(now - st.st_mtime);
}

/* A claimed record ("<name>.rec.<claim>") goes back to the queue when its
 * lease ran out and its owner cannot still be at work (see spool.h). */
static void reclaim_if_expired(const char *dir, const char *name, const struct owner *self,
                               time_t now)
{
	const char *claim = strstr(name, SPOOL_SUFFIX ".") + sizeof SPOOL_SUFFIX;
	char from[SPOOL_MAX_PATH], to[SPOOL_MAX_PATH];
	struct owner o;
	long long pid;

	if (!path_join(from, sizeof from, dir, name) || !path_join(to, sizeof to, dir, name))
		return;
	if (age_s(from, now) < SPOOL_LEASE_S)
		return;
	/* a claim of this host's that names its process: only once that is gone
	 * (one of an older version names only a pid; one of another host, or
	 * unreadable, is trusted for the lease alone) */
	if (!num_parse(claim, 1, 1LL << 30, &pid) && owner_parse(claim, &o) &&
	    strcmp(o.host, self->host) == 0 && !owner_gone(&o))
		return;
	to[strlen(dir) + 1 + (size_t)(claim - 1 - name)] = '\0';
	if (rename(from, to) == 0)
		log_warn("spool claim expired; record back in the queue", LF_STR("record", name));
}

/* A temporary file older than SPOOL_TMP_MAX_AGE_S: its writer died. */
static void remove_if_stale(const char *dir, const char *name, time_t now)
{
	char path[SPOOL_MAX_PATH];

	if (path_join(path, sizeof path, dir, name) && age_s(path, now) >= SPOOL_TMP_MAX_AGE_S &&
	    unlink(path) == 0)
		log_warn("stale spool temporary file removed", LF_STR("file", name));
}

bool spool_pending(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	bool found = false;

	if (d == NULL)
		return false;
	while (!found && (de = readdir(d)) != NULL)
		found = is_record(de->d_name) || strstr(de->d_name, SPOOL_SUFFIX ".") != NULL ||
		        strncmp(de->d_name, SPOOL_TMP_PREFIX, sizeof SPOOL_TMP_PREFIX - 1) == 0;
	closedir(d);
	return found;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Where a claimed record goes: deleted, set aside, or back in the queue. */
static void dispose(const char *dir, const char *name, const char *path, const char *claimed,
                    enum verr result)
{
	char sub[SPOOL_MAX_PATH], rejected[SPOOL_MAX_PATH + 16];

	if (result == VERR_OK) {
		unlink(claimed);
	} else if (result == VERR_INVALID || result == VERR_TOOBIG) {
		snprintf(sub, sizeof sub, "%s/rejected", dir);
		ensure_dir(sub);
		snprintf(rejected, sizeof rejected, "%s/%s", sub, name);
		rename(claimed, rejected);
		log_error("spooled record rejected", LF_STR("record", name));
	} else {
		rename(claimed, path);
	}
}

enum verr spool_replay(const char *dir, spool_batch_fn fn, void *ctx, size_t max, size_t *done)
{
	char *names[SPOOL_SCAN], *claimed[SPOOL_SCAN];
	const char *cname[SPOOL_SCAN]; /* cname[k]: the k-th claimed record's name */
	struct spool_rec recs[SPOOL_SCAN];
	struct buf data[SPOOL_SCAN];
	size_t n = 0, k = 0, i;
	DIR *d = opendir(dir);
	struct dirent *de;
	enum verr stop = VERR_OK;
	struct owner self;
	char claim[SPOOL_MAX_CLAIM];
	time_t now = time(NULL);

	*done = 0;
	if (d == NULL)
		return errno == ENOENT ? VERR_OK : VERR_IO;
	if (max > SPOOL_SCAN)
		max = SPOOL_SCAN;
	owner_self(&self);
	snprintf(claim, sizeof claim, ".%lld.%llu@%s", self.pid, self.start, self.host);
	while (n < SPOOL_SCAN && (de = readdir(d)) != NULL) {
		if (strstr(de->d_name, SPOOL_SUFFIX ".") != NULL)
			reclaim_if_expired(dir, de->d_name, &self, now);
		else if (strncmp(de->d_name, SPOOL_TMP_PREFIX, sizeof SPOOL_TMP_PREFIX - 1) == 0)
			remove_if_stale(dir, de->d_name, now);
		else if (is_record(de->d_name) && (names[n] = strdup(de->d_name)) != NULL)
			n++;
	}
	closedir(d);
	qsort(names, n, sizeof names[0], cmp_names);
	/* claim (rename: another worker may be faster) and read each record */
	for (i = 0; i < n && k < max; i++) {
		char path[SPOOL_MAX_PATH], c[SPOOL_MAX_PATH + SPOOL_MAX_CLAIM];
		enum verr e;

		if (!path_join(path, sizeof path, dir, names[i]))
			continue;
		snprintf(c, sizeof c, "%s%s", path, claim);
		/* the lease starts now: stamp before the rename, so the claim is
		 * never seen with the record's own (old) mtime */
		if (utimensat(AT_FDCWD, path, NULL, 0) != 0 || rename(path, c) != 0)
			continue;
		claimed[k] = strdup(c);
		if (claimed[k] == NULL) {
			rename(c, path);
			break;
		}
		buf_init(&data[k], SPOOL_MAX_RECORD);
		e = file_read(c, &data[k]);
		cname[k] = names[i];
		recs[k].data = buf_str(&data[k]);
		recs[k].len = data[k].len;
		recs[k].result = e == VERR_OK ? VERR_NOTFOUND : e; /* NOTFOUND: not yet handled */
		k++;
	}
	{
		/* the callback sees only the records that could be read */
		struct spool_rec readable[SPOOL_SCAN];
		size_t map[SPOOL_SCAN], m = 0;

		for (i = 0; i < k; i++)
			if (recs[i].result == VERR_NOTFOUND) {
				readable[m] = recs[i];
				map[m++] = i;
			}
		if (m > 0)
			fn(readable, m, ctx);
		for (i = 0; i < m; i++)
			recs[map[i]].result = readable[i].result == VERR_NOTFOUND ? VERR_IO : readable[i].result;
	}
	for (i = 0; i < k; i++) {
		char path[SPOOL_MAX_PATH];

		path_join(path, sizeof path, dir, cname[i]);
		dispose(dir, cname[i], path, claimed[i], recs[i].result);
		if (recs[i].result == VERR_OK)
			(*done)++;
		else if (stop == VERR_OK && recs[i].result != VERR_INVALID && recs[i].result != VERR_TOOBIG)
			stop = recs[i].result;
		free(claimed[i]);
		buf_free(&data[i]);
	}
	for (i = 0; i < n; i++)
		free(names[i]);
	return stop;
}
