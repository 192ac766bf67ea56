#include "counterfile.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define OPEN_TRIES 5
#define HEADER_BYTES 64

/* The file's first 64 bytes. magic is stored last (release) by the creator,
 * so a reader that sees it sees the rest. */
struct header {
	uint32_t magic;
	uint32_t version;
	uint32_t nslots;
	uint32_t ncounters;
	uint64_t size;
};

_Static_assert(sizeof(struct header) <= HEADER_BYTES, "header fits");

/* This process's mapping; map == NULL while closed. */
static struct {
	unsigned char *map;
	uint64_t *slot;
	struct counterfile_layout layout;
	size_t bytes;
	int index;
	pid_t pid;
} cf = { NULL, NULL, { 0, 0, 0 }, 0, -1, 0 };

/* A slot is word 0 (the owner's pid, 0 when free) and the counters, padded
 * to whole cache lines so processes never write the same line. */
static size_t slot_words(size_t ncounters)
{
	return (1 + ncounters + 7) / 8 * 8;
}

static size_t file_bytes(size_t ncounters)
{
	return HEADER_BYTES + (size_t)COUNTERFILE_MAX_SLOTS * slot_words(ncounters) * sizeof(uint64_t);
}

static uint64_t *slot_at(unsigned char *map, size_t ncounters, size_t i)
{
	return (uint64_t *)(void *)(map + HEADER_BYTES + i * slot_words(ncounters) * sizeof(uint64_t));
}

/* Opens path, creating it (empty) when absent; *created tells which. A file
 * removed between the two opens is tried again. -1 with errno on failure. */
static int open_file(const char *path, bool *created)
{
	int i, fd;

	for (i = 0; i < OPEN_TRIES; i++) {
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
static enum verr file_init(int fd, const struct counterfile_layout *l, unsigned char **out,
                           const char **why)
{
	size_t bytes = file_bytes(l->ncounters);
	struct header *h;
	unsigned char *map;

	if (ftruncate(fd, (off_t)bytes) != 0) {
		*why = strerror(errno);
		return VERR_IO;
	}
	map = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		*why = strerror(errno);
		return VERR_IO;
	}
	h = (struct header *)(void *)map;
	h->version = l->version;
	h->nslots = COUNTERFILE_MAX_SLOTS;
	h->ncounters = (uint32_t)l->ncounters;
	h->size = bytes;
	__atomic_store_n(&h->magic, l->magic, __ATOMIC_RELEASE);
	*out = map;
	return VERR_OK;
}

/* What the file under fd holds, judged by its size and header. */
enum file_state { FILE_OURS, FILE_EMPTY, FILE_OLD_LAYOUT, FILE_FOREIGN, FILE_ERROR };

static enum file_state file_state(int fd, const struct counterfile_layout *l)
{
	unsigned long long bytes = file_bytes(l->ncounters);
	struct header h;
	struct stat st;

	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		return FILE_FOREIGN;
	if (st.st_size == 0)
		return FILE_EMPTY; /* just created, or its creator died before sizing it */
	memset(&h, 0, sizeof h);
	if (st.st_size < (off_t)sizeof h || pread(fd, &h, sizeof h, 0) != (ssize_t)sizeof h)
		return st.st_size < (off_t)sizeof h ? FILE_FOREIGN : FILE_ERROR;
	if ((unsigned long long)st.st_size == bytes && h.magic == 0 && h.version == 0)
		return FILE_EMPTY; /* its creator died before writing the header */
	if (h.magic != l->magic)
		return FILE_FOREIGN;
	if (h.version != l->version || h.nslots != COUNTERFILE_MAX_SLOTS ||
	    h.ncounters != (uint32_t)l->ncounters || h.size != bytes ||
	    (unsigned long long)st.st_size != bytes)
		return FILE_OLD_LAYOUT;
	return FILE_OURS;
}

/*
 * True when the file under fd is this process's alone: owned by its
 * effective user, mode 0600 (a file of another type is judged later, by
 * file_state). Otherwise false with err filled.
 */
static bool file_private(int fd, struct counterfile_error *err)
{
	struct stat st;

	if (fstat(fd, &st) != 0) {
		err->why = strerror(errno);
		return false;
	}
	err->owner_uid = (long long)st.st_uid;
	err->mode = (long long)(st.st_mode & 07777);
	if (st.st_uid != geteuid()) {
		err->why = "the file belongs to another user";
		return false;
	}
	if (S_ISREG(st.st_mode) && (st.st_mode & 07777) != 0600) {
		err->why = "the file's mode is not 0600";
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
 * Puts a new, initialised file in place of path (an older layout): written
 * under a temporary name, then renamed over it, so a reader sees the old
 * file or the new one, never half of one. Processes of the older build keep
 * counting into the old file until they exit. The caller holds the old
 * file's lock, so one process replaces it once.
 */
static enum verr file_replace(const char *path, const struct counterfile_layout *l,
                              const char **why)
{
	char tmp[COUNTERFILE_MAX_PATH + 32];
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
	e = file_init(fd, l, &map, why);
	if (e == VERR_OK) {
		munmap(map, file_bytes(l->ncounters));
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
 * Maps path, creating or repairing it first. Every process that opens the
 * file takes its flock before looking at it, so exactly one sizes a new file
 * (or one whose creator died half-way) and exactly one replaces an older
 * layout; the others wait for the lock and find it done.
 */
static enum verr file_map(const char *path, const struct counterfile_layout *l,
                          unsigned char **out, bool *replaced, struct counterfile_error *err)
{
	enum verr e = VERR_IO;
	int tries;

	err->why = "the file kept changing under us";
	for (tries = 0; tries < OPEN_TRIES; tries++) {
		bool created, retry = false;
		int fd = open_file(path, &created);
		enum file_state st;

		if (fd < 0) {
			err->why = strerror(errno);
			return VERR_IO;
		}
		/* before its lock: another user's file could be locked forever */
		if (!file_private(fd, err)) {
			close(fd);
			return err->owner_uid < 0 ? VERR_IO : VERR_FORBIDDEN;
		}
		while (flock(fd, LOCK_EX) != 0 && errno == EINTR)
			;
		if (!still_linked(fd, path)) {
			retry = true; /* replaced while we waited for the lock */
		} else {
			st = file_state(fd, l);
			if (st == FILE_EMPTY) {
				e = file_init(fd, l, out, &err->why);
			} else if (st == FILE_OURS) {
				void *map = mmap(NULL, file_bytes(l->ncounters), PROT_READ | PROT_WRITE,
				                 MAP_SHARED, fd, 0);

				e = map != MAP_FAILED ? VERR_OK : VERR_IO;
				if (e == VERR_OK)
					*out = map;
				else
					err->why = strerror(errno);
			} else if (st == FILE_OLD_LAYOUT) {
				e = file_replace(path, l, &err->why);
				retry = e == VERR_OK;
				if (retry)
					*replaced = true;
			} else {
				e = st == FILE_FOREIGN ? VERR_CONFLICT : VERR_IO;
				err->why = st == FILE_FOREIGN ? "the file exists and holds something else"
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

/* Claims a slot for pid: a dead process's first (so restarts reuse slots
 * and its counts carry on), else a free one. -1 when all are taken. */
static int claim_slot(unsigned char *map, size_t ncounters, pid_t pid)
{
	size_t i;
	int pass;

	for (pass = 0; pass < 2; pass++) {
		for (i = 0; i < COUNTERFILE_MAX_SLOTS; i++) {
			uint64_t *s = slot_at(map, ncounters, i);
			uint64_t owner = __atomic_load_n(&s[0], __ATOMIC_ACQUIRE);

			/* a dead process may have had our pid: its slot is ours too */
			if (pass == 0 ? !(owner == (uint64_t)pid || pid_dead(owner)) : owner != 0)
				continue;
			if (__atomic_compare_exchange_n(&s[0], &owner, (uint64_t)pid, false,
			                                __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
				return (int)i;
		}
	}
	return -1;
}

enum verr counterfile_open(const char *path, const struct counterfile_layout *layout,
                           bool *replaced, struct counterfile_error *err)
{
	unsigned char *map = NULL;
	bool dummy = false;
	enum verr e;
	int index;

	err->why = "unknown";
	err->owner_uid = -1;
	err->mode = -1;
	if (replaced == NULL)
		replaced = &dummy;
	*replaced = false;
	if (cf.map != NULL && cf.pid == getpid())
		return VERR_OK;
	counterfile_close();
	if (path == NULL || path[0] == '\0' || strlen(path) > COUNTERFILE_MAX_PATH ||
	    layout == NULL || layout->ncounters == 0 || layout->ncounters > UINT32_MAX) {
		err->why = "no usable file path or layout";
		return VERR_INVALID;
	}
	e = file_map(path, layout, &map, replaced, err);
	if (e != VERR_OK)
		return e;
	index = claim_slot(map, layout->ncounters, getpid());
	if (index < 0) {
		munmap(map, file_bytes(layout->ncounters));
		err->why = "every slot belongs to a live process";
		return VERR_TOOBIG;
	}
	cf.map = map;
	cf.layout = *layout;
	cf.bytes = file_bytes(layout->ncounters);
	cf.slot = slot_at(map, layout->ncounters, (size_t)index);
	cf.index = index;
	cf.pid = getpid();
	return VERR_OK;
}

void counterfile_close(void)
{
	uint64_t self = (uint64_t)cf.pid;

	if (cf.map == NULL)
		return;
	/* only the owner frees the slot: a forked child inherits the mapping */
	if (cf.pid == getpid())
		__atomic_compare_exchange_n(&cf.slot[0], &self, 0, false, __ATOMIC_ACQ_REL,
		                            __ATOMIC_ACQUIRE);
	munmap(cf.map, cf.bytes);
	cf.map = NULL;
	cf.slot = NULL;
	cf.index = -1;
	cf.pid = 0;
}

bool counterfile_owned(void)
{
	return cf.map != NULL && cf.pid == getpid();
}

int counterfile_slot(void)
{
	return cf.map != NULL ? cf.index : -1;
}

void counterfile_add(size_t counter, uint64_t n)
{
	if (cf.slot != NULL && counter < cf.layout.ncounters)
		__atomic_fetch_add(&cf.slot[1 + counter], n, __ATOMIC_RELAXED);
}

void counterfile_observe(size_t first, const long long *bounds, size_t nbounds, long long value)
{
	size_t b = 0;

	if (cf.slot == NULL)
		return;
	if (value < 0)
		value = 0;
	while (b < nbounds && value > bounds[b])
		b++;
	counterfile_add(first + b, 1);
	counterfile_add(first + nbounds + 1, (uint64_t)value);
}

enum verr counterfile_sum(uint64_t *totals, size_t n)
{
	size_t i, k;

	if (cf.map == NULL)
		return VERR_IO;
	if (n != cf.layout.ncounters)
		return VERR_INVALID;
	memset(totals, 0, n * sizeof *totals);
	for (i = 0; i < COUNTERFILE_MAX_SLOTS; i++) {
		const uint64_t *s = slot_at(cf.map, n, i);

		for (k = 0; k < n; k++)
			totals[k] += __atomic_load_n(&s[1 + k], __ATOMIC_RELAXED);
	}
	return VERR_OK;
}
