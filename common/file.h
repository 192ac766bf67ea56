#ifndef VOICE_FILE_H
#define VOICE_FILE_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "err.h"

/* Longest path file_write_atomic builds (dir, '/', temporary name). */
#define FILE_MAX_PATH 1200

/*
 * Writes all n bytes of p to fd, retrying short writes and EINTR.
 * VERR_IO (errno says why).
 */
enum verr file_write_all(int fd, const void *p, size_t n);

/*
 * Appends everything left to read on fd to b, retrying EINTR. VERR_IO
 * (errno says why), VERR_TOOBIG past b's maximum, VERR_NOMEM.
 */
enum verr file_read_all(int fd, struct buf *b);

/*
 * Appends the whole file at path to b. VERR_NOTFOUND when path does not
 * exist, otherwise as file_read_all.
 */
enum verr file_read(const char *path, struct buf *b);

/*
 * Replaces (or creates, mode 0600) dir/name with the len bytes of data so
 * that readers see either the old file or the whole new one: the data goes to
 * a temporary dir/.tmp-<pid>-<name>, which is renamed over dir/name (POSIX
 * rename(2) is atomic). With durable, the file is fsync'd before the rename
 * and dir after it, so the new file also survives a crash. dir must exist;
 * name must not contain '/'. Writers in different processes never share a
 * temporary file; two threads of one process must not write the same name at
 * once. VERR_TOOBIG when a path exceeds FILE_MAX_PATH, VERR_IO (errno says
 * why; the temporary file is removed). dir, name and data are borrowed.
 */
enum verr file_write_atomic(const char *dir, const char *name, const void *data, size_t len,
                            bool durable);

#endif
