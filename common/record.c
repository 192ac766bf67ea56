#include "record.h"

#include <string.h>

#include <json-c/json.h>

#include "clock.h"
#include "form.h"
#include "jsonfield.h"
#include "log.h"
#include "metrics.h"
#include "recording.h"
#include "spool.h"
#include "stop.h"


/* Serialises a record {"kind":…, fields…} into the spool and counts it.
 * Takes o (NULL: allocation failed) and frees it. */
static enum verr spool_record(const char *spool_dir, struct json_object *o)
{
	size_t len = 0;
	const char *s = o != NULL ? json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &len)
	                          : NULL;
	enum verr e = s != NULL ? spool_put(spool_dir, s, len) : VERR_NOMEM;

	json_object_put(o);
	if (e == VERR_OK)
		metrics_count_spool(METRICS_SPOOL_SPOOLED);
	return e;
}

/* Adds key: value unless value (or o) is NULL. */
static void add_str(struct json_object *o, const char *key, const char *value)
{
	if (o != NULL && value != NULL)
		json_object_object_add(o, key, json_object_new_string(value));
}

/* Adds key: value, JSON null when value is NULL. */
static void add_str_or_null(struct json_object *o, const char *key, const char *value)
{
	json_object_object_add(o, key, value != NULL ? json_object_new_string(value) : NULL);
}

enum verr record_event(struct db *db, const char *spool_dir, const struct call_event *ev,
                       const char *token, const char *body, size_t body_len, bool *stored,
                       bool *spooled)
{
	struct json_object *o;
	enum verr e = db_call_event_record(db, ev, token, stored);

	*spooled = false;
	if (e != VERR_DB_DOWN) /* a refused statement would be refused again */
		return e;
	o = json_object_new_object();
	add_str(o, "kind", "event");
	add_str(o, "token", token);
	if (o != NULL)
		json_object_object_add(o, "body", json_object_new_string_len(body, (int)body_len));
	e = spool_record(spool_dir, o);
	if (e == VERR_OK) {
		*spooled = *stored = true;
		log_warn("database unavailable: call event spooled", LF_STR("call_sid", ev->call_sid),
		         LF_STR("status", ev->status));
	}
	return e;
}

enum verr record_recording(struct db *db, const char *spool_dir,
                           const struct recording_event *rec, const char *body,
                           size_t body_len, bool *stored, bool *spooled)
{
	struct json_object *o;
	enum verr e = db_recording_record(db, rec, stored);

	*spooled = false;
	if (e != VERR_DB_DOWN) /* a refused statement would be refused again */
		return e;
	o = json_object_new_object();
	add_str(o, "kind", "recording");
	if (o != NULL)
		json_object_object_add(o, "body", json_object_new_string_len(body, (int)body_len));
	e = spool_record(spool_dir, o);
	if (e == VERR_OK) {
		*spooled = *stored = true;
		log_warn("database unavailable: recording spooled", LF_STR("call_sid", rec->call_sid),
		         LF_STR("recording_sid", rec->recording_sid), LF_STR("status", rec->status));
	}
	return e;
}

/* The API's call object (db.h DB_CALL_OBJECT) for a call not (yet) in the
 * database, created_at = updated_at = now. */
static void call_json(const struct db_call *c, struct buf *json)
{
	struct json_object *o = json_object_new_object();
	char now[LOG_MAX_TIME];
	const char *text;

	log_timestamp(now, sizeof now, true);
	buf_reset(json);
	if (o == NULL)
		return;
#define ADD_FIELD(key, sql, value) add_str_or_null(o, key, value);
	DB_CALL_OBJECT(ADD_FIELD, )
#undef ADD_FIELD
	text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	/* out of memory: the answer goes without the call object (json empty) */
	if (text == NULL || buf_puts(json, text) != VERR_OK)
		log_warn("could not build the call object of a call not recorded yet",
		         LF_STR("call_sid", c->call_sid));
	json_object_put(o);
}

enum verr record_call(struct db *db, const char *spool_dir, const struct db_call *call,
                      struct buf *json, bool *spooled)
{
	struct json_object *o;
	enum verr e = db_call_insert(db, call, json);

	*spooled = false;
	if (e == VERR_OK)
		return e;
	call_json(call, json);
	if (e != VERR_DB_DOWN) /* a refused statement would be refused again */
		return e;
	o = json_object_new_object();
	add_str(o, "kind", "call");
	add_str(o, "call_sid", call->call_sid);
	add_str(o, "account_sid", call->account_sid);
	add_str(o, "direction", call->direction);
	add_str(o, "from", call->from);
	add_str(o, "to", call->to);
	add_str(o, "status", call->status);
	add_str(o, "api_key_name", call->api_key_name);
	e = spool_record(spool_dir, o);
	if (e == VERR_OK) {
		*spooled = true;
		log_warn("database unavailable: call record spooled", LF_STR("call_sid", call->call_sid));
	}
	return e;
}

struct replay_ctx {
	struct db *db;
	const char *account_sid;
};

/* A spooled callback, parsed for db_call_events_record. */
struct replay_event {
	struct json_object *o; /* owns the token string */
	struct form form;
	struct call_event ev;
};

/* A refused statement (VERR_DB) would be refused again: set it aside. */
static enum verr replay_result(enum verr e)
{
	if (e == VERR_DB)
		e = VERR_INVALID;
	if (e == VERR_OK)
		metrics_count_spool(METRICS_SPOOL_REPLAYED);
	else if (e == VERR_INVALID)
		metrics_count_spool(METRICS_SPOOL_REJECTED);
	return e;
}

/* Stores one spooled call record. */
static enum verr replay_call(struct replay_ctx *ctx, struct json_object *o)
{
	struct db_call c = {
		.call_sid = jsonfield_str(o, "call_sid"),
		.account_sid = jsonfield_str(o, "account_sid"),
		.direction = jsonfield_str(o, "direction"),
		.from = jsonfield_str(o, "from"),
		.to = jsonfield_str(o, "to"),
		.status = jsonfield_str(o, "status"),
		.api_key_name = jsonfield_str(o, "api_key_name"),
	};
	struct buf json;
	enum verr e = VERR_INVALID;

	buf_init(&json, 64 * 1024);
	if (c.call_sid != NULL && c.account_sid != NULL && c.direction != NULL && c.from != NULL &&
	    c.to != NULL && c.status != NULL)
		e = db_call_insert(ctx->db, &c, &json);
	buf_free(&json);
	return e;
}

/* Stores one spooled recording callback, validated as on arrival. */
static enum verr replay_recording(struct replay_ctx *ctx, struct json_object *o)
{
	const char *body = jsonfield_str(o, "body");
	struct form f = { 0 };
	struct recording_event rec;
	char err[FORM_MAX_ERROR], field[64];
	enum verr e = VERR_INVALID;
	bool stored;

	memset(&rec, 0, sizeof rec);
	if (body != NULL && form_parse(body, strlen(body), &f, err, sizeof err) == VERR_OK &&
	    recording_parse(&f, ctx->account_sid, &rec, field, sizeof field) == VERR_OK)
		e = db_recording_record(ctx->db, &rec, &stored);
	recording_event_free(&rec);
	form_free(&f);
	return e;
}

/* spool_batch_fn: the callbacks of a batch go to the database together
 * (db_call_events_record), calls and recordings one by one. */
static void replay_batch(struct spool_rec *recs, size_t n, void *arg)
{
	struct replay_ctx *ctx = arg;
	struct replay_event *rev = calloc(n, sizeof *rev);
	struct db_event *evs = calloc(n, sizeof *evs);
	size_t *of = calloc(n, sizeof *of), m = 0, i;

	if (rev == NULL || evs == NULL || of == NULL) {
		for (i = 0; i < n; i++)
			recs[i].result = VERR_NOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		struct json_object *o = json_tokener_parse(recs[i].data);
		const char *kind = o != NULL ? jsonfield_str(o, "kind") : NULL;
		const char *body = o != NULL ? jsonfield_str(o, "body") : NULL;
		char err[FORM_MAX_ERROR], field[64];

		rev[i].o = o;
		recs[i].result = VERR_INVALID;
		if (kind != NULL && strcmp(kind, "call") == 0) {
			recs[i].result = replay_result(replay_call(ctx, o));
		} else if (kind != NULL && strcmp(kind, "recording") == 0) {
			recs[i].result = replay_result(replay_recording(ctx, o));
		} else if (kind != NULL && strcmp(kind, "event") == 0 && body != NULL &&
		           form_parse(body, strlen(body), &rev[i].form, err, sizeof err) == VERR_OK &&
		           callback_parse(&rev[i].form, ctx->account_sid, &rev[i].ev, field,
		                          sizeof field) == VERR_OK) {
			const char *token = jsonfield_str(o, "token");

			evs[m].ev = &rev[i].ev;
			evs[m].token = token != NULL ? token : "";
			of[m++] = i;
		} else {
			replay_result(VERR_INVALID);
		}
	}
	db_call_events_record(ctx->db, evs, m);
	for (i = 0; i < m; i++)
		recs[of[i]].result = replay_result(evs[i].result);
out:
	for (i = 0; rev != NULL && i < n; i++) {
		callback_event_free(&rev[i].ev);
		form_free(&rev[i].form);
		json_object_put(rev[i].o);
	}
	free(rev);
	free(evs);
	free(of);
}

void record_replay(struct db *db, const char *spool_dir, const char *account_sid)
{
	static long long next_try; /* only one thread per process replays */
	struct replay_ctx ctx = { db, account_sid };
	long long start = clock_mono_ms();
	size_t done, total = 0;
	enum verr e = VERR_OK;

	if (start < next_try || !spool_pending(spool_dir))
		return;
	/* batch after batch while they go in, bounded so stop stays prompt */
	do {
		e = spool_replay(spool_dir, replay_batch, &ctx, SPOOL_MAX_BATCH, &done);
		total += done;
	} while (e == VERR_OK && done > 0 && !stop_requested() &&
	         clock_mono_ms() - start < RECORD_REPLAY_SLICE_MS);
	if (e != VERR_OK)
		next_try = clock_mono_ms() + RECORD_REPLAY_INTERVAL_MS;
	if (total > 0 || e != VERR_OK)
		log_info("spool replayed", LF_INT("records", (long long)total),
		         LF_INT("ms", clock_mono_ms() - start),
		         LF_STR("stopped_by", e != VERR_OK ? verr_strerror(e) : NULL));
}
