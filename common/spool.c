#include "spool.h"

#include <dirent.h>
#include <errno.h>
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
#define SPOOL_MAX_NAME 128
#define SPOOL_MAX_PATH 1200
#define SPOOL_SCAN SPOOL_MAX_BATCH /* names sorted per replay pass */

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

/* A record claimed by a worker that no longer exists ("<name>.rec.<pid>")
 * goes back to the queue. */
static void reclaim_if_orphaned(const char *dir, const char *name)
{
	const char *dot = strrchr(name, '.');
	char from[SPOOL_MAX_PATH], to[SPOOL_MAX_PATH];
	long long pid;

	if (dot == NULL || !num_parse(dot + 1, 1, 1 << 30, &pid) || kill((pid_t)pid, 0) == 0 ||
	    errno != ESRCH)
		return;
	if (!path_join(from, sizeof from, dir, name) || !path_join(to, sizeof to, dir, name))
		return;
	to[strlen(dir) + 1 + (size_t)(dot - name)] = '\0';
	rename(from, to);
}

bool spool_pending(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	bool found = false;

	if (d == NULL)
		return false;
	while (!found && (de = readdir(d)) != NULL)
		found = is_record(de->d_name) || (strstr(de->d_name, SPOOL_SUFFIX ".") != NULL);
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

	*done = 0;
	if (d == NULL)
		return errno == ENOENT ? VERR_OK : VERR_IO;
	if (max > SPOOL_SCAN)
		max = SPOOL_SCAN;
	while (n < SPOOL_SCAN && (de = readdir(d)) != NULL) {
		if (strstr(de->d_name, SPOOL_SUFFIX ".") != NULL)
			reclaim_if_orphaned(dir, de->d_name);
		else if (is_record(de->d_name) && (names[n] = strdup(de->d_name)) != NULL)
			n++;
	}
	closedir(d);
	qsort(names, n, sizeof names[0], cmp_names);
	/* claim (rename: another worker may be faster) and read each record */
	for (i = 0; i < n && k < max; i++) {
		char path[SPOOL_MAX_PATH], c[SPOOL_MAX_PATH + 16];
		enum verr e;

		if (!path_join(path, sizeof path, dir, names[i]))
			continue;
		snprintf(c, sizeof c, "%s.%d", path, (int)getpid());
		if (rename(path, c) != 0)
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
