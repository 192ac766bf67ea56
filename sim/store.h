#ifndef SIM_STORE_H
#define SIM_STORE_H

#include <stddef.h>

#include "err.h"

/*
 * The simulator's shared state under SIM_STATE_DIR, so every FastCGI worker
 * and every call process sees the same thing:
 *   calls/<CallSid>.json  one JSON document per call, replaced atomically
 *                         (write to a temporary file, then rename)
 *   calls/<CallSid>.lock  its lock for read-modify-write (flock)
 *   calls/<CallSid>.ended present once a call update ended it
 *   requests.jsonl        one line per REST request received
 *   callbacks.jsonl       one line per webhook delivery attempted
 * Log appends and reads hold flock(2) on the log file.
 */
#define SIMSTORE_MAX_DOC (1024 * 1024)      /* one call document */
#define SIMSTORE_MAX_LINE (256 * 1024)      /* one log line */
#define SIMSTORE_MAX_LOG (32 * 1024 * 1024) /* a log file read back */

enum simstore_log { SIMSTORE_REQUESTS = 0, SIMSTORE_CALLBACKS };

struct form;
struct json_object;

/* Creates dir and dir/calls when missing (mode 0700). VERR_IO with a detail
 * in err. */
enum verr simstore_init(const char *dir, char *err, size_t errsz);

/* Atomically replaces the document of call sid (a CA/… SID, checked) with
 * doc (borrowed). VERR_INVALID (bad sid), VERR_TOOBIG, VERR_IO, VERR_NOMEM. */
enum verr simstore_call_put(const char *dir, const char *sid, struct json_object *doc);

/* Reads the document of call sid; caller frees *out with json_object_put.
 * VERR_NOTFOUND, VERR_INVALID (bad sid or unreadable JSON), VERR_IO. */
enum verr simstore_call_get(const char *dir, const char *sid, struct json_object **out);

/*
 * Takes the exclusive lock of call sid's document (flock on
 * calls/<sid>.lock), so that a read-modify-write of it by the REST API (a
 * call update) and by the call's process never interleave. Returns the
 * lock's descriptor, or -1 (bad sid, or the file cannot be opened).
 */
int simstore_call_lock(const char *dir, const char *sid);
/* Releases a lock from simstore_call_lock; fd may be -1. */
void simstore_call_unlock(int fd);

/* Marks call sid as ended through the REST API (calls/<sid>.ended), for its
 * process to notice between steps; and tells whether it is. */
enum verr simstore_call_mark_ended(const char *dir, const char *sid);
int simstore_call_ended(const char *dir, const char *sid);

/*
 * The parameters of f, in order, as a new JSON array of [key, value] pairs
 * for a log record (caller frees; NULL when out of memory; an empty array
 * when f is NULL). The value of SipAuthPassword is logged as "[redacted]".
 */
struct json_object *simstore_params_json(const struct form *f);

/* Appends rec (borrowed) as one line. VERR_TOOBIG, VERR_IO, VERR_NOMEM. */
enum verr simstore_log_append(const char *dir, enum simstore_log which, struct json_object *rec);

/*
 * Reads a log back as a new JSON array (caller frees), oldest first. When
 * call_sid is not NULL only records whose "call_sid" equals it are kept.
 * When the kept records serialise to more than budget bytes the oldest are
 * dropped and *truncated is set to 1. VERR_IO, VERR_NOMEM, VERR_TOOBIG.
 */
enum verr simstore_log_read(const char *dir, enum simstore_log which, const char *call_sid,
                            size_t budget, struct json_object **out, int *truncated);

/* Empties a log. VERR_IO. */
enum verr simstore_log_clear(const char *dir, enum simstore_log which);

#endif
