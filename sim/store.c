#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "buf.h"
#include "file.h"
#include "form.h"
#include "sid.h"

#define SIMSTORE_MAX_PATH 1100

static const char *const log_names[] = { "requests.jsonl", "callbacks.jsonl" };

struct json_object *simstore_params_json(const struct form *f)
{
	struct json_object *arr = json_object_new_array();
	size_t i;

	for (i = 0; arr != NULL && f != NULL && i < f->n; i++) {
		struct json_object *pair = json_object_new_array();
		const char *v = f->params[i].value;

		if (pair == NULL)
			break;
		if (strcmp(f->params[i].key, "SipAuthPassword") == 0)
			v = "[redacted]";
		json_object_array_add(pair, json_object_new_string(f->params[i].key));
		json_object_array_add(pair, json_object_new_string(v));
		json_object_array_add(arr, pair);
	}
	return arr;
}

static enum verr mkdir_one(const char *path)
{
	if (mkdir(path, 0700) == 0 || errno == EEXIST)
		return VERR_OK;
	return VERR_IO;
}

enum verr simstore_init(const char *dir, char *err, size_t errsz)
{
	char path[SIMSTORE_MAX_PATH];
	struct stat st;

	if (mkdir_one(dir) != VERR_OK || stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errsz, "could not create state directory %s: %s", dir, strerror(errno));
		return VERR_IO;
	}
	snprintf(path, sizeof path, "%s/calls", dir);
	if (mkdir_one(path) != VERR_OK || access(path, W_OK) != 0) {
		snprintf(err, errsz, "could not create %s: %s", path, strerror(errno));
		return VERR_IO;
	}
	return VERR_OK;
}

static const char *plain(struct json_object *o)
{
	return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
	                                             JSON_C_TO_STRING_NOSLASHESCAPE);
}

enum verr simstore_call_put(const char *dir, const char *sid, struct json_object *doc)
{
	char calls[SIMSTORE_MAX_PATH], name[64];
	const char *text;
	size_t n;

	if (!sid_valid(sid, "CA"))
		return VERR_INVALID;
	text = plain(doc);
	if (text == NULL)
		return VERR_NOMEM;
	n = strlen(text);
	if (n > SIMSTORE_MAX_DOC)
		return VERR_TOOBIG;
	snprintf(calls, sizeof calls, "%s/calls", dir);
	snprintf(name, sizeof name, "%s.json", sid);
	return file_write_atomic(calls, name, text, n, false);
}

enum verr simstore_call_get(const char *dir, const char *sid, struct json_object **out)
{
	char path[SIMSTORE_MAX_PATH];
	struct buf b;
	enum verr e;

	*out = NULL;
	if (!sid_valid(sid, "CA"))
		return VERR_INVALID;
	snprintf(path, sizeof path, "%s/calls/%s.json", dir, sid);
	buf_init(&b, SIMSTORE_MAX_DOC);
	e = file_read(path, &b);
	if (e == VERR_OK) {
		*out = json_tokener_parse(buf_str(&b));
		if (*out == NULL || !json_object_is_type(*out, json_type_object)) {
			json_object_put(*out);
			*out = NULL;
			e = VERR_INVALID;
		}
	}
	buf_free(&b);
	return e;
}

/* Opens path (created 0600 when missing) with flags and takes the flock
 * lock on it, waiting through signals: the descriptor, or -1. */
static int open_locked(const char *path, int flags, int lock)
{
	int fd = open(path, flags | O_CREAT | O_CLOEXEC, 0600);

	if (fd < 0)
		return -1;
	while (flock(fd, lock) != 0) {
		if (errno != EINTR) {
			close(fd);
			return -1;
		}
	}
	return fd;
}

int simstore_call_lock(const char *dir, const char *sid)
{
	char path[SIMSTORE_MAX_PATH];

	if (!sid_valid(sid, "CA"))
		return -1;
	snprintf(path, sizeof path, "%s/calls/%s.lock", dir, sid);
	return open_locked(path, O_RDWR, LOCK_EX);
}

void simstore_call_unlock(int fd)
{
	if (fd >= 0)
		close(fd); /* releases the flock */
}

enum verr simstore_call_mark_ended(const char *dir, const char *sid)
{
	char path[SIMSTORE_MAX_PATH];
	int fd;

	if (!sid_valid(sid, "CA"))
		return VERR_INVALID;
	snprintf(path, sizeof path, "%s/calls/%s.ended", dir, sid);
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return VERR_IO;
	close(fd);
	return VERR_OK;
}

int simstore_call_ended(const char *dir, const char *sid)
{
	char path[SIMSTORE_MAX_PATH];

	if (!sid_valid(sid, "CA"))
		return 0;
	snprintf(path, sizeof path, "%s/calls/%s.ended", dir, sid);
	return access(path, F_OK) == 0;
}

static int open_log(const char *dir, enum simstore_log which, int flags, int lock)
{
	char path[SIMSTORE_MAX_PATH];

	snprintf(path, sizeof path, "%s/%s", dir, log_names[which]);
	return open_locked(path, flags, lock);
}

enum verr simstore_log_append(const char *dir, enum simstore_log which, struct json_object *rec)
{
	struct buf line;
	const char *text = plain(rec);
	int fd;
	enum verr e;

	if (text == NULL)
		return VERR_NOMEM;
	buf_init(&line, SIMSTORE_MAX_LINE);
	if ((e = buf_puts(&line, text)) != VERR_OK || (e = buf_putc(&line, '\n')) != VERR_OK) {
		buf_free(&line);
		return e;
	}
	fd = open_log(dir, which, O_WRONLY | O_APPEND, LOCK_EX);
	if (fd < 0) {
		buf_free(&line);
		return VERR_IO;
	}
	e = file_write_all(fd, line.data, line.len);
	close(fd);
	buf_free(&line);
	return e;
}

enum verr simstore_log_read(const char *dir, enum simstore_log which, const char *call_sid,
                            size_t budget, struct json_object **out, int *truncated)
{
	struct buf b;
	struct json_object *arr = NULL, *rec;
	char *end, *start;
	size_t used = 2, kept, i;
	int fd;
	enum verr e;

	*out = NULL;
	*truncated = 0;
	fd = open_log(dir, which, O_RDONLY, LOCK_SH);
	if (fd < 0)
		return VERR_IO;
	buf_init(&b, SIMSTORE_MAX_LOG);
	e = file_read_all(fd, &b);
	close(fd);
	if (e != VERR_OK)
		goto out;
	arr = json_object_new_array();
	if (arr == NULL) {
		e = VERR_NOMEM;
		goto out;
	}
	/* Walk lines newest first so the budget keeps the newest records. */
	end = b.data != NULL ? b.data + b.len : NULL;
	while (end != NULL && end > b.data) {
		size_t len;
		struct json_object *sid;

		if (end[-1] == '\n')
			*--end = '\0';
		start = end;
		while (start > b.data && start[-1] != '\n')
			start--;
		len = (size_t)(end - start);
		end = start;
		if (len == 0)
			continue;
		rec = json_tokener_parse(start);
		if (rec == NULL)
			continue;
		if (call_sid != NULL &&
		    (!json_object_object_get_ex(rec, "call_sid", &sid) ||
		     !json_object_is_type(sid, json_type_string) ||
		     strcmp(json_object_get_string(sid), call_sid) != 0)) {
			json_object_put(rec);
			continue;
		}
		if (used + len + 1 > budget) {
			json_object_put(rec);
			*truncated = 1;
			break;
		}
		used += len + 1;
		if (json_object_array_add(arr, rec) != 0) {
			json_object_put(rec);
			e = VERR_NOMEM;
			goto out;
		}
	}
	/* Reverse into oldest-first order. */
	kept = json_object_array_length(arr);
	for (i = 0; i < kept / 2; i++) {
		struct json_object *a = json_object_get(json_object_array_get_idx(arr, i));
		struct json_object *z = json_object_get(json_object_array_get_idx(arr, kept - 1 - i));

		json_object_array_put_idx(arr, i, z);
		json_object_array_put_idx(arr, kept - 1 - i, a);
	}
	*out = arr;
	arr = NULL;
out:
	json_object_put(arr);
	buf_free(&b);
	return e;
}

enum verr simstore_log_clear(const char *dir, enum simstore_log which)
{
	int fd = open_log(dir, which, O_WRONLY, LOCK_EX);
	enum verr e = VERR_OK;

	if (fd < 0)
		return VERR_IO;
	if (ftruncate(fd, 0) != 0)
		e = VERR_IO;
	close(fd);
	return e;
}
