#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

enum verr file_write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n > 0) {
		ssize_t w = write(fd, c, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return VERR_IO;
		c += w;
		n -= (size_t)w;
	}
	return VERR_OK;
}

enum verr file_read_all(int fd, struct buf *b)
{
	char chunk[8192];

	for (;;) {
		ssize_t r = read(fd, chunk, sizeof chunk);
		enum verr e;

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return VERR_IO;
		if (r == 0)
			return VERR_OK;
		if ((e = buf_append(b, chunk, (size_t)r)) != VERR_OK)
			return e;
	}
}

enum verr file_read(const char *path, struct buf *b)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	enum verr e;

	if (fd < 0)
		return errno == ENOENT ? VERR_NOTFOUND : VERR_IO;
	e = file_read_all(fd, b);
	close(fd);
	return e;
}

static bool path_fmt(char out[FILE_MAX_PATH], const char *dir, const char *prefix,
                     const char *name)
{
	int n = snprintf(out, FILE_MAX_PATH, "%s/%s%s", dir, prefix, name);

	return n > 0 && n < FILE_MAX_PATH;
}

enum verr file_write_atomic(const char *dir, const char *name, const void *data, size_t len,
                            bool durable)
{
	char path[FILE_MAX_PATH], tmp[FILE_MAX_PATH], prefix[32];
	enum verr e;
	int fd, saved;

	snprintf(prefix, sizeof prefix, ".tmp-%ld-", (long)getpid());
	if (!path_fmt(path, dir, "", name) || !path_fmt(tmp, dir, prefix, name))
		return VERR_TOOBIG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return VERR_IO;
	e = file_write_all(fd, data, len);
	if (e == VERR_OK && durable && fsync(fd) != 0)
		e = VERR_IO;
	if (close(fd) != 0)
		e = VERR_IO;
	if (e == VERR_OK && rename(tmp, path) != 0)
		e = VERR_IO;
	if (e != VERR_OK) {
		saved = errno;
		unlink(tmp);
		errno = saved;
		return e;
	}
	if (durable) {
		/* make the rename itself durable */
		fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd >= 0) {
			fsync(fd);
			close(fd);
		}
	}
	return VERR_OK;
}
