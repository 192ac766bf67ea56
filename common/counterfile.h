#ifndef VOICE_COUNTERFILE_H
#define VOICE_COUNTERFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/*
 * A file of 64-bit counters that the processes of one host add to at once.
 * It knows nothing of what the counters mean: its user numbers them 0 to
 * ncounters - 1 and gives the file a magic number and a layout version
 * (common/metrics.h does, for the service's metrics).
 *
 * The file is mapped MAP_SHARED: a 64-byte header (magic, layout version,
 * slot count, counters per slot, size) and COUNTERFILE_MAX_SLOTS slots of
 * counters. Each process claims one slot by its pid with a compare-and-swap
 * and adds to it with relaxed atomic increments, so counting takes no lock
 * and no system call. A process takes over the slot of a dead pid and keeps
 * adding to what it holds, and claiming never zeroes a slot, so totals
 * survive process restarts. Counters are zero only in a new file.
 *
 * One file per process: the state is process-wide. Not thread-safe per
 * process for open/close; counterfile_add may be called from any thread.
 * Until counterfile_open succeeds, counterfile_add and counterfile_observe do
 * nothing.
 */

#define COUNTERFILE_MAX_SLOTS 256 /* processes per host */
#define COUNTERFILE_MAX_PATH 1024

/* What the file holds. A file with this magic and another version (or
 * another counter count) is of an older layout, and is replaced. */
struct counterfile_layout {
	uint32_t magic;
	uint32_t version;
	size_t ncounters;
};

/* Why counterfile_open failed, for the caller's log: why is a static string
 * or strerror's; owner_uid and mode are the file's (-1 when unknown). */
struct counterfile_error {
	const char *why;
	long long owner_uid;
	long long mode;
};

/*
 * Opens the file at path, creating it (mode 0600) when it does not exist.
 * Processes starting at once serialise on the file's flock: one sizes and
 * initialises a new file (or one whose creator died half-way), and a file
 * of another layout (our magic, another version or size) is replaced by a
 * new one, atomically by rename; its counters restart, and *replaced is set
 * (it may be NULL). Then claims a slot for this pid (a dead process's, else
 * a free one). Returns VERR_OK, or fills err and returns:
 *   VERR_FORBIDDEN the file is not this process's effective user's, or its
 *                  mode is not 0600 (left alone): anyone else who can write
 *                  it can shrink it under the mapping (SIGBUS) or forge
 *                  counters
 *   VERR_IO        the file cannot be created, opened, locked, sized, read
 *                  or mapped
 *   VERR_CONFLICT  path names something that is not a file of this magic
 *                  (left alone)
 *   VERR_TOOBIG    every slot belongs to a live process
 *   VERR_INVALID   path is NULL, empty or longer than COUNTERFILE_MAX_PATH,
 *                  or layout has no counters
 * Calling it again in the process that opened it returns VERR_OK and does
 * nothing. A forked child must call it again (it gets its own slot).
 */
enum verr counterfile_open(const char *path, const struct counterfile_layout *layout,
                           bool *replaced, struct counterfile_error *err);

/* Frees this process's slot for the next process (its counts stay) and
 * unmaps the file. Safe when not open, and in a forked child (the parent's
 * slot is left alone). */
void counterfile_close(void);

/* True when this process opened the file (a forked child that inherited
 * the mapping did not). */
bool counterfile_owned(void);

/* The slot this process counts into, or -1 when the file is not open. */
int counterfile_slot(void);

/* Adds n to counter (ignored when the file is not open or counter is out of
 * range). */
void counterfile_add(size_t counter, uint64_t n);

/*
 * A histogram of nbounds ascending upper bounds occupies counters first to
 * first + nbounds + 1: one count per bucket (not cumulative; the last one
 * above every bound) and then the sum of the values. Counts value (negative
 * ones as 0) in its bucket and adds it to the sum.
 */
void counterfile_observe(size_t first, const long long *bounds, size_t nbounds, long long value);

/* Sums each counter over every slot into totals[0..n-1] (n must be the
 * layout's ncounters). VERR_IO when the file is not open, VERR_INVALID for
 * another n. */
enum verr counterfile_sum(uint64_t *totals, size_t n);

#endif
