#include "reconcile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "clock.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "num.h"
#include "sid.h"
#include "stop.h"

#define MAX_HOLDER 65 /* reconcile_lease.holder: at most 64 bytes */
#define MAX_DIALS (RECONCILE_BUDGET / 2)

struct reconcile {
	struct db *db;              /* borrowed */
	struct twilio *tw;          /* borrowed */
	char account_sid[CONFIG_MAX_SID];
	int after_s;                /* 0: off */
	long long every_ms;         /* passes at most this often */
	char holder[MAX_HOLDER];
	long long next_try_ms;      /* when to ask for the lease again */
	/* the pass in progress */
	bool active;
	long long pass_end_ms;
	int budget;                 /* Twilio requests left */
	int backoff_s;              /* what the lease said the last pass left */
	int pause_s;                /* > 0: rate limited, pause everyone */
	int counts[METRICS_RECONCILE_RATE_LIMITED + 1];
	struct db_dial dials[MAX_DIALS];
	int ndials, idial;
	struct db_stale_call stale[RECONCILE_BUDGET];
	int nstale, istale;
	struct twilio_call_page *page; /* the lookup's current page (large) */
};

enum verr reconcile_settings_load(struct reconcile_settings *s, char *err, size_t errsz)
{
	const char *v = config_get("VOICE_RECONCILE_AFTER_S");
	long long n = RECONCILE_DEFAULT_AFTER_S;

	if (v != NULL && v[0] != '\0' && !num_parse(v, 0, RECONCILE_MAX_AFTER_S, &n)) {
		snprintf(err, errsz,
		         "VOICE_RECONCILE_AFTER_S must be an integer from 0 (off) to %d seconds",
		         RECONCILE_MAX_AFTER_S);
		return VERR_CONFIG;
	}
	s->after_s = (int)n;
	return VERR_OK;
}

/* ---- pure helpers ---------------------------------------------------- */

static int rank(const char *status)
{
	static const char *const live[] = { "queued", "initiated", "ringing", "in-progress" };
	size_t i;

	for (i = 0; i < sizeof live / sizeof live[0]; i++)
		if (strcmp(status, live[i]) == 0)
			return (int)i;
	return callback_status_valid(status) ? 4 : -1;
}

bool reconcile_advances(const char *ours, const char *theirs)
{
	int t = rank(theirs);

	return t >= 0 && t > rank(ours);
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian; Howard Hinnant's
 * days_from_civil). */
static long long days_from_civil(long long y, int m, int d)
{
	long long era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* Reads exactly n digits at *p into *out and advances *p. */
static bool digits(const char **p, int n, int *out)
{
	int v = 0, i;

	for (i = 0; i < n; i++) {
		if ((*p)[i] < '0' || (*p)[i] > '9')
			return false;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return true;
}

bool reconcile_rfc2822(const char *s, long long *epoch)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	const char *p = s, *m;
	int day, year, hh, mm, ss = 0, zh, zm, mon;
	char sign;

	if (p == NULL)
		return false;
	if (strlen(p) >= 5 && p[3] == ',' && p[4] == ' ')
		p += 5; /* "Tue, " */
	if (p[0] == '\0' || !digits(&p, p[1] == ' ' ? 1 : 2, &day) || *p++ != ' ' || strlen(p) < 4)
		return false;
	for (m = months; *m != '\0'; m += 3)
		if (strncmp(p, m, 3) == 0)
			break;
	if (*m == '\0' || p[3] != ' ')
		return false;
	mon = (int)((m - months) / 3) + 1;
	p += 4;
	if (!digits(&p, 4, &year) || *p++ != ' ' || !digits(&p, 2, &hh) || *p++ != ':' ||
	    !digits(&p, 2, &mm))
		return false;
	if (*p == ':') {
		p++;
		if (!digits(&p, 2, &ss))
			return false;
	}
	if (*p++ != ' ')
		return false;
	sign = *p++;
	if ((sign != '+' && sign != '-') || !digits(&p, 2, &zh) || !digits(&p, 2, &zm) || *p != '\0')
		return false;
	if (day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60 || zh > 23 || zm > 59)
		return false;
	*epoch = days_from_civil(year, mon, day) * 86400 + hh * 3600 + mm * 60 + ss -
	         (sign == '+' ? 1 : -1) * (zh * 3600 + zm * 60);
	return true;
}

size_t reconcile_matches(const struct twilio_call_page *page, const char *to, const char *from,
                         long long dialed_epoch, size_t *idx, size_t max, bool *older)
{
	long long lo = dialed_epoch - RECONCILE_MATCH_WINDOW_S;
	long long hi = dialed_epoch + TWILIO_MAX_TOTAL_MS / 1000 + RECONCILE_MATCH_WINDOW_S;
	size_t i, n = 0;

	*older = false;
	for (i = 0; i < page->n; i++) {
		const struct twilio_call *c = &page->calls[i].call;
		long long at;

		if (!reconcile_rfc2822(c->date_created, &at))
			continue;
		if (at < lo) {
			*older = true;
			continue;
		}
		if (at > hi || strcmp(c->to, to) != 0 || strcmp(c->from, from) != 0)
			continue;
		if (n < max)
			idx[n] = i;
		n++;
	}
	return n;
}

enum verr reconcile_event(const struct twilio_call_info *c, struct call_event *ev,
                          char token[RECONCILE_MAX_TOKEN])
{
	const struct twilio_call *k = &c->call;
	char dur[24] = "";
	const char *const kv[][2] = {
		{ "source", RECONCILE_SOURCE }, { "CallSid", k->sid }, { "AccountSid", k->account_sid },
		{ "CallStatus", k->status }, { "Direction", k->direction }, { "From", k->from },
		{ "To", k->to }, { "CallDuration", dur }, { "AnsweredBy", c->answered_by },
		{ "DateCreated", k->date_created }, { "StartTime", c->start_time },
		{ "EndTime", c->end_time },
	};
	bool final = rank(k->status) == 4;
	enum verr e = VERR_INVALID;

	memset(ev, 0, sizeof *ev);
	ev->sequence_number = -1;
	ev->duration_seconds = final ? c->duration : -1;
	ev->sip_response_code = -1;
	token[0] = '\0';
	if (!sid_valid(k->sid, "CA") || !sid_valid(k->account_sid, "AC") ||
	    rank(k->status) < 0 || k->direction[0] == '\0' ||
	    !str_copy(ev->call_sid, sizeof ev->call_sid, k->sid) ||
	    !str_copy(ev->account_sid, sizeof ev->account_sid, k->account_sid) ||
	    !str_copy(ev->status, sizeof ev->status, k->status) ||
	    !str_copy(ev->direction, sizeof ev->direction, k->direction) ||
	    !str_copy(ev->from, sizeof ev->from, k->from) || !str_copy(ev->to, sizeof ev->to, k->to) ||
	    !str_copy(ev->answered_by, sizeof ev->answered_by, c->answered_by))
		goto fail;
	if (final && c->duration >= 0)
		snprintf(dur, sizeof dur, "%lld", c->duration);
	e = VERR_NOMEM;
	if ((ev->payload = callback_payload_pairs(kv, sizeof kv / sizeof kv[0])) == NULL)
		goto fail;
	snprintf(token, RECONCILE_MAX_TOKEN, "reconcile:%s:%s", ev->call_sid, ev->status);
	return VERR_OK;
fail:
	callback_event_free(ev);
	return e;
}

/* ---- the reconciler ---------------------------------------------------- */

struct reconcile *reconcile_new(struct db *db, struct twilio *tw, const char *account_sid,
                                const struct reconcile_settings *s)
{
	struct reconcile *r = calloc(1, sizeof *r);
	unsigned char rnd[4] = { 0 };
	char host[41];

	if (r == NULL)
		return NULL;
	r->page = calloc(1, sizeof *r->page);
	if (r->page == NULL) {
		free(r);
		return NULL;
	}
	r->db = db;
	r->tw = tw;
	str_copy(r->account_sid, sizeof r->account_sid, account_sid);
	r->after_s = s->after_s;
	r->every_ms = (long long)s->after_s * 1000;
	if (r->every_ms > RECONCILE_MAX_EVERY_MS)
		r->every_ms = RECONCILE_MAX_EVERY_MS;
	if (gethostname(host, sizeof host) != 0)
		str_copy(host, sizeof host, "host");
	host[sizeof host - 1] = '\0';
	(void)RAND_bytes(rnd, sizeof rnd); /* tells apart workers that reuse a pid */
	snprintf(r->holder, sizeof r->holder, "%s:%d:%02x%02x%02x%02x", host, (int)getpid(), rnd[0],
	         rnd[1], rnd[2], rnd[3]);
	return r;
}

/* Seconds to pause every worker after a 429: Twilio's Retry-After, and at
 * least a backoff that doubles with each rate-limited pass. */
static int next_backoff(int prev)
{
	int b = prev < RECONCILE_BACKOFF_MIN_S ? RECONCILE_BACKOFF_MIN_S : prev * 2;

	return b > RECONCILE_BACKOFF_MAX_S ? RECONCILE_BACKOFF_MAX_S : b;
}

static void count(struct reconcile *r, enum metrics_reconcile outcome)
{
	metrics_count_reconcile(outcome);
	r->counts[outcome]++;
}

static void pass_end(struct reconcile *r)
{
	int backoff = r->pause_s > 0 ? next_backoff(r->backoff_s) : 0;
	int pause = r->pause_s > backoff ? r->pause_s : backoff;
	enum verr e;

	e = db_reconcile_release(r->db, r->holder, r->pause_s > 0 ? pause : 0, backoff);
	if (e != VERR_OK)
		log_warn("could not end the reconciliation pass (its lease expires by itself)",
		         LF_STR("error", verr_strerror(e)));
	if (r->counts[METRICS_RECONCILE_ADVANCED] + r->counts[METRICS_RECONCILE_LINKED] +
	        r->counts[METRICS_RECONCILE_NOT_FOUND] + r->counts[METRICS_RECONCILE_AMBIGUOUS] +
	        r->counts[METRICS_RECONCILE_ERROR] + r->counts[METRICS_RECONCILE_RATE_LIMITED] >
	    0)
		log_info("reconciliation pass", LF_INT("advanced", r->counts[METRICS_RECONCILE_ADVANCED]),
		         LF_INT("unchanged", r->counts[METRICS_RECONCILE_UNCHANGED]),
		         LF_INT("linked", r->counts[METRICS_RECONCILE_LINKED]),
		         LF_INT("not_found", r->counts[METRICS_RECONCILE_NOT_FOUND]),
		         LF_INT("ambiguous", r->counts[METRICS_RECONCILE_AMBIGUOUS]),
		         LF_INT("errors", r->counts[METRICS_RECONCILE_ERROR]),
		         LF_INT("paused_s", r->pause_s > 0 ? pause : 0));
	r->active = false;
}

static void pass_begin(struct reconcile *r, long long now)
{
	bool taken = false;
	int dial_after = r->after_s < RECONCILE_DIAL_DELAY_MAX_S ? r->after_s
	                                                         : RECONCILE_DIAL_DELAY_MAX_S;

	if (db_reconcile_lease(r->db, r->holder, RECONCILE_LEASE_MS, (int)r->every_ms, &taken,
	                       &r->backoff_s) != VERR_OK ||
	    !taken)
		return;
	r->active = true;
	r->pass_end_ms = now + RECONCILE_MAX_PASS_MS;
	r->budget = RECONCILE_BUDGET;
	r->pause_s = 0;
	memset(r->counts, 0, sizeof r->counts);
	r->ndials = r->idial = r->nstale = r->istale = 0;
	if (db_reconcile_dials(r->db, dial_after, RECONCILE_OWNER_GRACE_S, RECONCILE_DIAL_LOOKUPS,
	                       r->dials, MAX_DIALS, &r->ndials) != VERR_OK)
		r->ndials = 0;
	if (db_reconcile_stale(r->db, r->account_sid, r->after_s, r->stale,
	                       RECONCILE_BUDGET - r->ndials, &r->nstale) != VERR_OK)
		r->nstale = 0;
}

/* A failed Twilio request: rate limited (pause the pass) or an error. */
static void request_failed(struct reconcile *r, const struct twilio_error *err)
{
	if (err->http_status == 429 || err->code == 20429) {
		count(r, METRICS_RECONCILE_RATE_LIMITED);
		r->pause_s = err->retry_after > 0 ? err->retry_after : 1;
	} else {
		count(r, METRICS_RECONCILE_ERROR);
	}
}

/* Stores what Twilio said of c (a call of ours) as a reconciliation event
 * when it is further along than what we have (ours; "" when unknown).
 * True when an event was stored. */
static bool store_event(struct reconcile *r, const struct twilio_call_info *c, const char *ours,
                        enum verr *e)
{
	struct call_event ev;
	char token[RECONCILE_MAX_TOKEN];
	bool stored = false;

	*e = VERR_OK;
	if (ours[0] != '\0' && !reconcile_advances(ours, c->call.status))
		return false;
	*e = reconcile_event(c, &ev, token);
	if (*e == VERR_OK)
		*e = db_call_event_record(r->db, &ev, token, &stored);
	callback_event_free(&ev);
	return stored;
}

/* Fetches one stale call and stores its status when Twilio has it further. */
static void step_stale(struct reconcile *r, const struct db_stale_call *s)
{
	struct twilio_call_info c;
	struct twilio_error err;
	enum verr e;

	r->budget--;
	e = twilio_call_fetch(r->tw, s->call_sid, 0, &c, &err);
	if (e != VERR_OK) {
		if (err.http_status == 404) {
			count(r, METRICS_RECONCILE_NOT_FOUND);
			log_warn("reconciliation: twilio has no such call", LF_STR("call_sid", s->call_sid));
		} else {
			request_failed(r, &err);
		}
		if (r->pause_s == 0)
			db_reconcile_checked(r->db, s->call_sid);
		return;
	}
	if (strcmp(c.call.account_sid, r->account_sid) != 0) {
		count(r, METRICS_RECONCILE_ERROR);
		log_warn("reconciliation: twilio answered a call of another account",
		         LF_STR("call_sid", s->call_sid));
	} else if (store_event(r, &c, s->status, &e)) {
		count(r, METRICS_RECONCILE_ADVANCED);
		log_info("reconciliation: call status brought up to date", LF_STR("call_sid", s->call_sid),
		         LF_STR("from_status", s->status), LF_STR("status", c.call.status));
	} else if (e != VERR_OK) {
		count(r, METRICS_RECONCILE_ERROR);
		log_warn("reconciliation: could not store a call's status", LF_STR("call_sid", s->call_sid),
		         LF_STR("status", c.call.status), LF_STR("error", verr_strerror(e)));
	} else {
		count(r, METRICS_RECONCILE_UNCHANGED);
	}
	db_reconcile_checked(r->db, s->call_sid);
}

/* Records the one call found for d and links it to d's key. */
static void link_call(struct reconcile *r, const struct db_dial *d,
                      const struct twilio_call_info *c, const char *ours)
{
	struct db_call row = {
		.call_sid = c->call.sid,
		.account_sid = c->call.account_sid,
		.direction = c->call.direction[0] ? c->call.direction : "outbound-api",
		.from = d->from,
		.to = d->to,
		.status = c->call.status,
		.api_key_name = d->api_key_name,
	};
	bool linked = false;
	enum verr e;

	/* the event first: a call never recorded is created by it (and counted
	 * final once), as a callback would have */
	store_event(r, c, ours, &e);
	if (e == VERR_OK)
		e = db_reconcile_link(r->db, d->api_key_name, d->idem_key, &row, &linked);
	if (e != VERR_OK) {
		count(r, METRICS_RECONCILE_ERROR);
		log_warn("reconciliation: could not link a call to its idempotency key",
		         LF_STR("call_sid", c->call.sid), LF_STR("error", verr_strerror(e)));
		return;
	}
	if (!linked) {
		/* the key was answered meanwhile, or the call was taken by another
		 * request: nothing to do */
		count(r, METRICS_RECONCILE_AMBIGUOUS);
		log_warn("reconciliation: call found but not linked (already answered or taken)",
		         LF_STR("call_sid", c->call.sid), LF_STR("api_key", d->api_key_name));
		db_reconcile_dial_looked(r->db, d->api_key_name, d->idem_key);
		return;
	}
	count(r, METRICS_RECONCILE_LINKED);
	log_info("reconciliation: a lost POST /call answer was found; a retry with its key returns "
	         "the call",
	         LF_STR("call_sid", c->call.sid), LF_STR("api_key", d->api_key_name),
	         LF_PHONE("to", d->to), LF_STR("status", c->call.status));
}

/* Looks a lost POST /call answer up in Twilio's call list. */
static void step_dial(struct reconcile *r, const struct db_dial *d)
{
	struct twilio_calls_query q = { d->to, d->from, d->start_date, NULL };
	struct twilio_call_info found[RECONCILE_MAX_MATCHES];
	struct twilio_error err;
	size_t nfound = 0, idx[RECONCILE_MAX_MATCHES], i, n;
	char next[TWILIO_MAX_PAGE_URI];
	bool older = false, ambiguous = false;
	int pages;

	for (pages = 0; pages < RECONCILE_MAX_PAGES && r->budget > 0 && !older; pages++) {
		r->budget--;
		if (twilio_calls_list(r->tw, &q, 0, r->page, &err) != VERR_OK) {
			request_failed(r, &err);
			if (r->pause_s == 0)
				db_reconcile_dial_looked(r->db, d->api_key_name, d->idem_key);
			return;
		}
		n = reconcile_matches(r->page, d->to, d->from, d->started_epoch, idx,
		                      RECONCILE_MAX_MATCHES, &older);
		for (i = 0; i < n && i < RECONCILE_MAX_MATCHES; i++) {
			const struct twilio_call_info *c = &r->page->calls[idx[i]];
			char ours[DB_MAX_CALL_STATUS];
			bool known = false, taken = false;

			/* a call a POST /call already owns answers that request */
			if (db_reconcile_call_state(r->db, c->call.sid, &known, &taken, ours) != VERR_OK) {
				count(r, METRICS_RECONCILE_ERROR);
				return;
			}
			if (taken)
				continue;
			if (nfound < RECONCILE_MAX_MATCHES)
				found[nfound] = *c;
			nfound++;
		}
		if (r->page->next_page_uri[0] == '\0' || stop_requested())
			break;
		str_copy(next, sizeof next, r->page->next_page_uri);
		q.page_uri = next;
	}
	ambiguous = nfound > 1;
	if (nfound == 1) {
		char ours[DB_MAX_CALL_STATUS];
		bool known = false, taken = false;

		if (db_reconcile_call_state(r->db, found[0].call.sid, &known, &taken, ours) != VERR_OK) {
			count(r, METRICS_RECONCILE_ERROR);
			return;
		}
		link_call(r, d, &found[0], ours);
		return;
	}
	count(r, ambiguous ? METRICS_RECONCILE_AMBIGUOUS : METRICS_RECONCILE_NOT_FOUND);
	log_emit(ambiguous ? LOG_WARN : LOG_INFO,
	         ambiguous ? "reconciliation: several calls match a lost POST /call; not linked"
	                   : "reconciliation: no call matches a lost POST /call yet",
	         LF_STR("api_key", d->api_key_name), LF_PHONE("to", d->to),
	         LF_INT("matches", (long long)nfound), LF_END);
	db_reconcile_dial_looked(r->db, d->api_key_name, d->idem_key);
}

void reconcile_tick(struct reconcile *r)
{
	long long now;

	if (r == NULL || r->after_s == 0)
		return;
	now = clock_mono_ms();
	if (!r->active) {
		if (now < r->next_try_ms)
			return;
		r->next_try_ms = now + r->every_ms;
		pass_begin(r, now);
		if (!r->active)
			return;
	}
	if (r->budget <= 0 || r->pause_s > 0 || now >= r->pass_end_ms || stop_requested() ||
	    (r->idial >= r->ndials && r->istale >= r->nstale)) {
		pass_end(r);
		return;
	}
	if (r->idial < r->ndials)
		step_dial(r, &r->dials[r->idial++]);
	else
		step_stale(r, &r->stale[r->istale++]);
}

void reconcile_free(struct reconcile *r)
{
	if (r == NULL)
		return;
	if (r->active)
		pass_end(r);
	free(r->page);
	free(r);
}
