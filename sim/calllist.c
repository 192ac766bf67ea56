#define _XOPEN_SOURCE 700 /* strptime */

#include "calllist.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "buf.h"
#include "form.h"
#include "jsonfield.h"
#include "num.h"
#include "sid.h"
#include "store.h"

/* ListCall's query parameters (twilio_api_v2010.json), in the order page
 * URIs repeat them. */
enum key {
	K_TO, K_FROM, K_PARENT, K_STATUS,
	K_START_ON, K_START_BEFORE, K_START_AFTER, K_END_ON, K_END_BEFORE, K_END_AFTER,
	K_PAGE_SIZE, K_PAGE, K_PAGE_TOKEN, K__COUNT
};
static const char *const keys[K__COUNT] = { "To", "From", "ParentCallSid", "Status",
	"StartTime", "StartTime<", "StartTime>", "EndTime", "EndTime<", "EndTime>", "PageSize",
	"Page", "PageToken" };
/* call_enum_status */
static const char *const statuses[] = { "queued", "ringing", "in-progress", "canceled",
	"completed", "failed", "busy", "no-answer" };

/* YYYY-MM-DD (midnight UTC, day set) or YYYY-MM-DDTHH:MM:SSZ. */
static bool parse_time(const char *s, struct simlist_time *out)
{
	struct tm tm;
	const char *end;

	memset(&tm, 0, sizeof tm);
	end = strptime(s, "%Y-%m-%d", &tm);
	if (end == NULL || end - s != 10)
		return false;
	out->day = *end == '\0';
	if (!out->day) {
		end = strptime(end, "T%H:%M:%SZ", &tm);
		if (end == NULL || *end != '\0')
			return false;
	}
	out->set = true;
	out->t = (long long)timegm(&tm);
	return true;
}

enum verr simlist_query_parse(const char *query, struct simlist_query *q, struct simerror *err)
{
	struct form f = { 0 };
	struct buf filters;
	char ferr[FORM_MAX_ERROR];
	enum verr e = VERR_OK;
	size_t i;
	int k;

	memset(q, 0, sizeof *q);
	memset(err, 0, sizeof *err);
	q->page_size = SIMLIST_DEFAULT_PAGE_SIZE;
	if (form_parse(query, strlen(query), &f, ferr, sizeof ferr) != VERR_OK)
		return simerror_invalid(err, 21200, "Invalid query string: %s", ferr);
	buf_init(&filters, SIMLIST_MAX_FILTERS - 1);
	for (i = 0; e == VERR_OK && i < f.n; i++) {
		const char *key = f.params[i].key, *v = f.params[i].value;
		struct simlist_time *t = NULL;
		long long n;
		size_t s;

		for (k = 0; k < K__COUNT && strcmp(key, keys[k]) != 0; k++)
			;
		if (k == K__COUNT) {
			e = simerror_invalid(err, 20001, "Unknown parameter %.200s", key);
			break;
		}
		if (form_count(&f, key) > 1) {
			e = simerror_invalid(err, 21200, "Parameter %s may be given once", keys[k]);
			break;
		}
		if (strlen(v) >= SIMLIST_MAX_TEXT) {
			e = simerror_invalid(err, 21200, "Invalid value for %s", keys[k]);
			break;
		}
		switch (k) {
		case K_TO:
			str_copy(q->to, sizeof q->to, v);
			break;
		case K_FROM:
			str_copy(q->from, sizeof q->from, v);
			break;
		case K_PARENT:
			if (!sid_valid(v, "CA"))
				e = simerror_invalid(err, 21200, "Invalid value for %s", keys[k]);
			str_copy(q->parent_call_sid, sizeof q->parent_call_sid, v);
			break;
		case K_STATUS:
			for (s = 0; s < sizeof statuses / sizeof statuses[0] && strcmp(v, statuses[s]) != 0; s++)
				;
			if (s == sizeof statuses / sizeof statuses[0])
				e = simerror_invalid(err, 21200, "Invalid value for %s", keys[k]);
			str_copy(q->status, sizeof q->status, v);
			break;
		case K_START_ON: t = &q->start_on; break;
		case K_START_BEFORE: t = &q->start_before; break;
		case K_START_AFTER: t = &q->start_after; break;
		case K_END_ON: t = &q->end_on; break;
		case K_END_BEFORE: t = &q->end_before; break;
		case K_END_AFTER: t = &q->end_after; break;
		case K_PAGE_SIZE:
			if (!num_parse(v, 1, SIMLIST_MAX_PAGE_SIZE, &n))
				e = simerror_invalid(err, 21200, "Invalid value for %s", keys[k]);
			q->page_size = n;
			break;
		case K_PAGE:
			if (!num_parse(v, 0, 1000000, &n))
				e = simerror_invalid(err, 21200, "Invalid value for %s", keys[k]);
			q->page = n;
			break;
		default:
			str_copy(q->page_token, sizeof q->page_token, v);
			break;
		}
		if (e == VERR_OK && t != NULL && !parse_time(v, t))
			e = simerror_invalid(err, 21200, "Invalid value for %s: use YYYY-MM-DD", keys[k]);
	}
	/* the filters again, in ListCall's order, for the page URIs */
	for (k = 0; e == VERR_OK && k < K_PAGE_SIZE; k++) {
		const char *v = form_get(&f, keys[k]);

		if (v != NULL && form_append(&filters, keys[k], v) != VERR_OK)
			e = simerror_invalid(err, 21200, "%s", "Query too long");
	}
	if (e == VERR_OK)
		str_copy(q->filters, sizeof q->filters, buf_str(&filters));
	buf_free(&filters);
	form_free(&f);
	return e;
}

/* An RFC 2822 date as the simulator writes it (simcall_rfc2822). */
static bool rfc2822(const char *s, long long *t)
{
	struct tm tm;
	const char *end;

	if (s == NULL)
		return false;
	memset(&tm, 0, sizeof tm);
	end = strptime(s, "%a, %d %b %Y %H:%M:%S %z", &tm);
	if (end == NULL || *end != '\0')
		return false;
	*t = (long long)timegm(&tm) - tm.tm_gmtoff;
	return true;
}

/* t within the bounds of on/before/after (unset ones pass). */
static bool in_bounds(bool known, long long t, const struct simlist_time *on,
                      const struct simlist_time *before, const struct simlist_time *after)
{
	long long day;

	if (!on->set && !before->set && !after->set)
		return true;
	if (!known)
		return false;
	day = on->t - on->t % 86400;
	return (!on->set || (t >= day && t < day + 86400)) && (!before->set || t < before->t) &&
	       (!after->set || t >= after->t);
}

static bool eq_or_unset(const char *want, const char *have)
{
	return want[0] == '\0' || (have != NULL && strcmp(want, have) == 0);
}

bool simlist_match(const struct simlist_query *q, struct json_object *call)
{
	long long start = 0, end = 0;
	bool started = rfc2822(jsonfield_str(call, "start_time"), &start) ||
	               rfc2822(jsonfield_str(call, "date_created"), &start);
	bool ended = rfc2822(jsonfield_str(call, "end_time"), &end);

	return eq_or_unset(q->to, jsonfield_str(call, "to")) && eq_or_unset(q->from, jsonfield_str(call, "from")) &&
	       eq_or_unset(q->parent_call_sid, jsonfield_str(call, "parent_call_sid")) &&
	       eq_or_unset(q->status, jsonfield_str(call, "status")) &&
	       in_bounds(started, start, &q->start_on, &q->start_before, &q->start_after) &&
	       in_bounds(ended, end, &q->end_on, &q->end_before, &q->end_after);
}

struct hit {
	long long created;
	struct json_object *call; /* a reference of our own */
};

/* Newest first; the sid breaks ties (one second resolution). */
static int by_created_desc(const void *a, const void *b)
{
	const struct hit *x = a, *y = b;

	if (x->created != y->created)
		return x->created < y->created ? 1 : -1;
	return strcmp(jsonfield_str(y->call, "sid"), jsonfield_str(x->call, "sid"));
}

/* Reads every call of the account that matches q into *hits (*n). */
static enum verr collect(const struct simcfg *cfg, const struct simlist_query *q,
                         struct hit **hits, size_t *n)
{
	char path[SIMCFG_MAX_PATH + 8];
	struct dirent *d;
	size_t cap = 0, seen = 0;
	enum verr e = VERR_OK;
	DIR *dir;

	*hits = NULL;
	*n = 0;
	snprintf(path, sizeof path, "%s/calls", cfg->state_dir);
	dir = opendir(path);
	if (dir == NULL)
		return VERR_IO;
	while (e == VERR_OK && (d = readdir(dir)) != NULL) {
		struct json_object *doc = NULL, *call;
		char sid[40];
		size_t len = strlen(d->d_name);
		const char *acct;

		if (len != 34 + 5 || strcmp(d->d_name + 34, ".json") != 0)
			continue;
		memcpy(sid, d->d_name, 34);
		sid[34] = '\0';
		if (!sid_valid(sid, "CA"))
			continue;
		if (++seen > SIMLIST_MAX_CALLS) {
			e = VERR_TOOBIG;
			break;
		}
		if (simstore_call_get(cfg->state_dir, sid, &doc) != VERR_OK ||
		    !json_object_object_get_ex(doc, "call", &call) ||
		    (acct = jsonfield_str(call, "account_sid")) == NULL || strcmp(acct, cfg->account_sid) != 0 ||
		    !simlist_match(q, call)) {
			json_object_put(doc);
			continue;
		}
		if (*n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct hit *h = realloc(*hits, ncap * sizeof *h);

			if (h == NULL) {
				json_object_put(doc);
				e = VERR_NOMEM;
				break;
			}
			*hits = h;
			cap = ncap;
		}
		(*hits)[*n].call = json_object_get(call);
		if (!rfc2822(jsonfield_str(call, "date_created"), &(*hits)[*n].created))
			(*hits)[*n].created = 0;
		(*n)++;
		json_object_put(doc);
	}
	closedir(dir);
	return e;
}

/* "/2010-04-01/Accounts/{AccountSid}/Calls.json?<filters>&PageSize=N&Page=P[&PageToken=T]" */
static struct json_object *page_uri(const struct simcfg *cfg, const struct simlist_query *q,
                                    long long page, const char *token)
{
	struct buf query, uri;
	struct json_object *s = NULL;
	char size[24], num[24];

	buf_init(&query, SIMLIST_MAX_FILTERS + 256);
	buf_init(&uri, SIMLIST_MAX_FILTERS + 512);
	snprintf(size, sizeof size, "%lld", q->page_size);
	snprintf(num, sizeof num, "%lld", page);
	if (buf_puts(&query, q->filters) == VERR_OK && form_append(&query, "PageSize", size) == VERR_OK &&
	    form_append(&query, "Page", num) == VERR_OK &&
	    (token == NULL || form_append(&query, "PageToken", token) == VERR_OK) &&
	    buf_printf(&uri, "/2010-04-01/Accounts/%s/Calls.json?%s", cfg->account_sid,
	               buf_str(&query)) == VERR_OK)
		s = json_object_new_string(buf_str(&uri));
	buf_free(&query);
	buf_free(&uri);
	return s;
}

enum verr simlist_calls(const struct simcfg *cfg, const struct simlist_query *q,
                        struct json_object **out)
{
	struct hit *hits = NULL;
	struct json_object *page = NULL, *calls = NULL;
	size_t n = 0, i, first, last;
	char token[SIMLIST_MAX_TEXT];
	enum verr e;

	*out = NULL;
	e = collect(cfg, q, &hits, &n);
	if (e != VERR_OK)
		goto out;
	if (n > 1) /* hits is NULL when nothing matched */
		qsort(hits, n, sizeof *hits, by_created_desc);
	first = (size_t)(q->page * q->page_size);
	if (first > n)
		first = n;
	last = first + (size_t)q->page_size;
	if (last > n)
		last = n;
	e = VERR_NOMEM;
	page = json_object_new_object();
	calls = json_object_new_array();
	if (page == NULL || calls == NULL)
		goto out;
	for (i = first; i < last; i++)
		json_object_array_add(calls, json_object_get(hits[i].call));
	json_object_object_add(page, "calls", calls);
	calls = NULL;
	json_object_object_add(page, "end", json_object_new_int64(last > first ? (int64_t)last - 1 : 0));
	json_object_object_add(page, "first_page_uri", page_uri(cfg, q, 0, NULL));
	if (last < n) {
		snprintf(token, sizeof token, "PA%s", jsonfield_str(hits[last - 1].call, "sid"));
		json_object_object_add(page, "next_page_uri", page_uri(cfg, q, q->page + 1, token));
	} else {
		json_object_object_add(page, "next_page_uri", NULL);
	}
	json_object_object_add(page, "page", json_object_new_int64(q->page));
	json_object_object_add(page, "page_size", json_object_new_int64(q->page_size));
	json_object_object_add(page, "previous_page_uri",
	                       q->page > 0 ? page_uri(cfg, q, q->page - 1, NULL) : NULL);
	json_object_object_add(page, "start", json_object_new_int64((int64_t)first));
	json_object_object_add(page, "uri", page_uri(cfg, q, q->page, q->page_token[0] ? q->page_token : NULL));
	*out = page;
	page = NULL;
	e = VERR_OK;
out:
	for (i = 0; i < n; i++)
		json_object_put(hits[i].call);
	free(hits);
	json_object_put(calls);
	json_object_put(page);
	return e;
}
