/* The fake of common/db.h described in fakedb.h. */
#include "fakedb.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "callback.h"
#include "recording.h"

#define FAKEDB_MAX_SCRIPT 64
#define FAKEDB_MAX_CALLS 256
#define FAKEDB_MAX_PARAMS 1024

struct db {
	int unused;
};

static struct db the_db;

static struct {
	struct fakedb_result script[FAKEDB_MAX_SCRIPT];
	struct fakedb_result fallback;
	int head, tail;
	char last[48];
	char params[FAKEDB_MAX_PARAMS];
	const char *seen[FAKEDB_MAX_CALLS];
	int ncalls;
	unsigned long long keys_gen;
} fake;

void fakedb_reset(void)
{
	memset(&fake, 0, sizeof fake);
}

void fakedb_script(const struct fakedb_result *r)
{
	if (fake.tail < FAKEDB_MAX_SCRIPT)
		fake.script[fake.tail++] = *r;
}

void fakedb_default(const struct fakedb_result *r)
{
	fake.fallback = *r;
}

void fakedb_next(enum verr e)
{
	struct fakedb_result r;

	memset(&r, 0, sizeof r);
	r.e = e;
	fakedb_script(&r);
}

int fakedb_calls(void)
{
	return fake.ncalls;
}

int fakedb_count(const char *fn)
{
	int i, n = 0;

	for (i = 0; i < fake.ncalls && i < FAKEDB_MAX_CALLS; i++)
		if (strcmp(fake.seen[i], fn) == 0)
			n++;
	return n;
}

const char *fakedb_last(void)
{
	return fake.last;
}

const char *fakedb_last_params(void)
{
	return fake.params;
}

void fakedb_keys_generation(unsigned long long gen)
{
	fake.keys_gen = gen;
}

int fakedb_pending(void)
{
	return fake.tail - fake.head;
}

/* Notes a call of fn (a string literal) with its parameters, printf-style,
 * and takes the next scripted answer. */
__attribute__((format(printf, 2, 3))) static struct fakedb_result take(const char *fn,
                                                                      const char *fmt, ...)
{
	struct fakedb_result r;
	va_list ap;

	r = fake.head < fake.tail ? fake.script[fake.head++] : fake.fallback;
	if (fake.ncalls < FAKEDB_MAX_CALLS)
		fake.seen[fake.ncalls] = fn;
	fake.ncalls++;
	snprintf(fake.last, sizeof fake.last, "%s", fn);
	va_start(ap, fmt);
	vsnprintf(fake.params, sizeof fake.params, fmt, ap);
	va_end(ap);
	return r;
}

static const char *str(const char *s)
{
	return s != NULL ? s : "(null)";
}

static void put_json(struct buf *json, const char *body)
{
	if (json != NULL) {
		buf_reset(json);
		if (body != NULL && buf_puts(json, body) != VERR_OK)
			abort(); /* a scripted body too big for the caller's buffer */
	}
}

struct db *db_new(const char *conninfo, int nconns)
{
	(void)conninfo;
	(void)nconns;
	return &the_db;
}

void db_free(struct db *db)
{
	(void)db;
}

enum verr db_ping(struct db *db)
{
	(void)db;
	return take("db_ping", "%s", "").e;
}

enum verr db_probe(struct db *db)
{
	(void)db;
	return take("db_probe", "%s", "").e;
}

enum verr db_apikey_find(struct db *db, const char *hash_hex, char *name, size_t namesz,
                         bool *read_all)
{
	struct fakedb_result r = take("db_apikey_find", "hash=%s", str(hash_hex));

	(void)db;
	if (r.e == VERR_OK) {
		str_copy(name, namesz, r.name != NULL ? r.name : "key");
		*read_all = r.read_all;
	}
	if (r.keys_gen != 0)
		fake.keys_gen = r.keys_gen;
	return r.e;
}

bool db_keys_watch(struct db *db)
{
	(void)db;
	return true;
}

unsigned long long db_keys_generation(struct db *db)
{
	(void)db;
	return fake.keys_gen;
}

enum verr db_call_event_record(struct db *db, const struct call_event *ev,
                               const char *idempotency_token, bool *stored)
{
	struct fakedb_result r = take("db_call_event_record", "call_sid=%s status=%s token=%s",
	                              ev->call_sid, ev->status, str(idempotency_token));

	(void)db;
	*stored = r.e == VERR_OK && r.stored;
	return r.e;
}

void db_call_events_record(struct db *db, struct db_event *evs, size_t n)
{
	size_t i;

	(void)db;
	for (i = 0; i < n; i++) {
		struct fakedb_result r = take("db_call_events_record", "call_sid=%s status=%s token=%s",
		                              evs[i].ev->call_sid, evs[i].ev->status, str(evs[i].token));

		evs[i].result = r.e;
		evs[i].stored = r.e == VERR_OK && r.stored;
	}
}

enum verr db_idem_claim(struct db *db, const char *api_key_name, const char *key,
                        const char *hash_hex, long long lease_ms, enum db_idem *outcome,
                        int *status, struct buf *body, char call_sid[DB_MAX_SID])
{
	struct fakedb_result r = take("db_idem_claim", "api_key_name=%s key=%s hash=%s lease_ms=%lld",
	                              str(api_key_name), str(key), str(hash_hex), lease_ms);

	(void)db;
	*outcome = r.idem;
	*status = r.status;
	put_json(body, r.body);
	str_copy(call_sid, DB_MAX_SID, r.sid != NULL ? r.sid : "");
	return r.e;
}

enum verr db_idem_complete(struct db *db, const char *api_key_name, const char *key, int status,
                           const char *body, const char *call_sid)
{
	(void)db;
	return take("db_idem_complete", "api_key_name=%s key=%s status=%d call_sid=%s body=%s",
	            str(api_key_name), str(key), status, str(call_sid), str(body))
	    .e;
}

enum verr db_idem_release(struct db *db, const char *api_key_name, const char *key)
{
	(void)db;
	return take("db_idem_release", "api_key_name=%s key=%s", str(api_key_name), str(key)).e;
}

enum verr db_idem_purge(struct db *db, long long *deleted)
{
	(void)db;
	*deleted = 0;
	return take("db_idem_purge", "%s", "").e;
}

enum verr db_call_insert(struct db *db, const struct db_call *call, struct buf *json)
{
	struct fakedb_result r = take("db_call_insert",
	                              "call_sid=%s account_sid=%s direction=%s from=%s to=%s "
	                              "status=%s api_key_name=%s",
	                              str(call->call_sid), str(call->account_sid),
	                              str(call->direction), str(call->from), str(call->to),
	                              str(call->status), str(call->api_key_name));

	(void)db;
	if (r.e == VERR_OK)
		put_json(json, r.body != NULL ? r.body : "{}");
	return r.e;
}

enum verr db_call_get(struct db *db, const char *call_sid, const char *owner, struct buf *json)
{
	struct fakedb_result r = take("db_call_get", "call_sid=%s owner=%s", str(call_sid),
	                              str(owner));

	(void)db;
	if (r.e == VERR_OK)
		put_json(json, r.body);
	return r.e;
}

enum verr db_call_state(struct db *db, const char *call_sid, const char *owner,
                        char status[DB_MAX_STATUS], struct buf *json)
{
	struct fakedb_result r = take("db_call_state", "call_sid=%s owner=%s", str(call_sid),
	                              str(owner));

	(void)db;
	str_copy(status, DB_MAX_STATUS, r.sid != NULL ? r.sid : "");
	if (r.e == VERR_OK)
		put_json(json, r.body);
	return r.e;
}

enum verr db_calls_list(struct db *db, const struct callsquery_filter *f, struct buf *json,
                        bool *more, char last_created[CURSOR_MAX_PIECE],
                        char last_sid[CURSOR_MAX_PIECE])
{
	struct fakedb_result r = take("db_calls_list", "owner=%s limit=%d", str(f->owner), f->limit);

	(void)db;
	*more = false;
	last_created[0] = last_sid[0] = '\0';
	if (r.e == VERR_OK)
		put_json(json, r.body != NULL ? r.body : "[]");
	return r.e;
}

enum verr db_recording_record(struct db *db, const struct recording_event *rec, bool *stored)
{
	struct fakedb_result r = take("db_recording_record", "recording_sid=%s call_sid=%s status=%s",
	                              rec->recording_sid, rec->call_sid, rec->status);

	(void)db;
	*stored = r.e == VERR_OK && r.stored;
	return r.e;
}

enum verr db_recording_get(struct db *db, const char *recording_sid, const char *owner,
                           struct buf *json)
{
	struct fakedb_result r = take("db_recording_get", "recording_sid=%s owner=%s",
	                              str(recording_sid), str(owner));

	(void)db;
	if (r.e == VERR_OK)
		put_json(json, r.body);
	return r.e;
}

enum verr db_idem_dialing(struct db *db, const char *api_key_name, const char *key,
                          const char *to, const char *from)
{
	(void)db;
	return take("db_idem_dialing", "api_key_name=%s key=%s to=%s from=%s", str(api_key_name),
	            str(key), str(to), str(from))
	    .e;
}

enum verr db_reconcile_lease(struct db *db, const char *holder, int lease_ms, int every_ms,
                             bool *taken, int *backoff_s)
{
	struct fakedb_result r = take("db_reconcile_lease", "holder=%s lease_ms=%d every_ms=%d",
	                              str(holder), lease_ms, every_ms);

	(void)db;
	*taken = r.e == VERR_OK && r.stored;
	*backoff_s = r.status;
	return r.e;
}

enum verr db_reconcile_release(struct db *db, const char *holder, int pause_s, int backoff_s)
{
	(void)db;
	return take("db_reconcile_release", "holder=%s pause_s=%d backoff_s=%d", str(holder), pause_s,
	            backoff_s)
	    .e;
}

enum verr db_reconcile_stale(struct db *db, const char *account_sid, int after_s,
                             struct db_stale_call *out, int max, int *n)
{
	(void)db;
	(void)out;
	*n = 0;
	return take("db_reconcile_stale", "account_sid=%s after_s=%d max=%d", str(account_sid),
	            after_s, max)
	    .e;
}

void db_reconcile_checked(struct db *db, const char *call_sid)
{
	(void)db;
	(void)take("db_reconcile_checked", "call_sid=%s", str(call_sid));
}

enum verr db_reconcile_dials(struct db *db, int after_s, int grace_s, int max_lookups,
                             struct db_dial *out, int max, int *n)
{
	(void)db;
	(void)out;
	*n = 0;
	return take("db_reconcile_dials", "after_s=%d grace_s=%d max_lookups=%d max=%d", after_s,
	            grace_s, max_lookups, max)
	    .e;
}

void db_reconcile_dial_looked(struct db *db, const char *api_key_name, const char *key)
{
	(void)db;
	(void)take("db_reconcile_dial_looked", "api_key_name=%s key=%s", str(api_key_name),
	           str(key));
}

enum verr db_reconcile_call_state(struct db *db, const char *call_sid, bool *known, bool *taken,
                                  char status[DB_MAX_CALL_STATUS])
{
	struct fakedb_result r = take("db_reconcile_call_state", "call_sid=%s", str(call_sid));

	(void)db;
	*known = r.e == VERR_OK && r.stored;
	*taken = r.e == VERR_OK && r.read_all;
	str_copy(status, DB_MAX_CALL_STATUS, r.sid != NULL ? r.sid : "");
	return r.e;
}

enum verr db_reconcile_link(struct db *db, const char *api_key_name, const char *key,
                            const struct db_call *call, bool *linked)
{
	struct fakedb_result r = take("db_reconcile_link", "api_key_name=%s key=%s call_sid=%s",
	                              str(api_key_name), str(key), str(call->call_sid));

	(void)db;
	*linked = r.e == VERR_OK && r.stored;
	return r.e;
}
