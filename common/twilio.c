#include "twilio.h"

#include <curl/curl.h>
#include <json-c/json.h>

#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "callback.h"
#include "clock.h"
#include "form.h"
#include "log.h"
#include "metrics.h"
#include "num.h"
#include "sid.h"
#include "twiml.h"
#include "utf8.h"

#define CALLS_PATH_FMT "%s/2010-04-01/Accounts/%s/Calls.json"
#define MAX_URL (CONFIG_MAX_URL + 96)
#define MAX_USER_AGENT 96
#define MAX_REQUEST_ID 64   /* Twilio-Request-Id we keep for logs */
#define MAX_RETRY_AFTER 3600
#define JSON_MAX_DEPTH 16
#define BACKOFF_BASE_MS 250
#define BACKOFF_CAP_MS 2000
#define MIN_ATTEMPT_MS 1000 /* do not start a retry with less time than this */
/*
 * A kept-alive connection idle longer than this is not reused, so the server
 * rarely closes one under us. (When a reused connection dies before any
 * response byte, libcurl would re-send the request on a new one; on_seek
 * makes that fail instead once body bytes went out, see there.)
 */
#define MAX_IDLE_CONN_S 30L
/*
 * Connections the shared cache keeps. libcurl's default (5) is checked
 * against the whole shared cache each time a transfer ends, so with more
 * calls in flight than that every finished call closed a connection and the
 * next one handshook again (12,035 connections for 12,856 calls under load).
 * Idle ones still go after MAX_IDLE_CONN_S.
 */
#define MAX_KEPT_CONNS 1024L

/* One thread's client: an easy handle and the state of its current request.
 * The first one, configured by twilio_new, is the template the others are
 * duplicated from (curl_easy_duphandle) and owns the header list. */
struct session {
	CURL *curl;
	struct curl_slist *headers; /* template only */
	char url[MAX_URL];
	char errbuf[CURL_ERROR_SIZE];
	long long timeout_ms;
	/* per attempt, reset before each request */
	const char *req;     /* body being sent, borrowed for the attempt */
	size_t req_len, req_off;
	struct buf resp;
	enum verr resp_err;
	int retry_after;
	char request_id[MAX_REQUEST_ID];
	uint64_t rng;
	/* GET requests (reconciliation): a handle of their own, made on first
	 * use, so the POST handle's options are never switched back and forth */
	CURL *get_curl;
	struct curl_slist *get_headers;
};

/* Shared by every thread: the template, and one connection cache (a curl
 * share), so the threads reuse each other's kept-alive connections. */
struct twilio {
	struct session *tmpl;
	CURLSH *share;
	pthread_mutex_t locks[CURL_LOCK_DATA_LAST];
	pthread_key_t key; /* this thread's struct session */
	bool key_ok;
	/* for the requests other than Calls create and fetch (their URLs) */
	char base[CONFIG_MAX_URL];
	char account_sid[CONFIG_MAX_SID];
};

/* The outcome of one HTTP attempt. */
struct attempt {
	CURLcode rc;
	long http_status;
	long long latency_ms;
	bool not_sent;  /* failed before any request byte was written */
	bool retryable;
	int n;          /* the try's number, from 1 (rest_run) */
};

/* The Calls create StatusCallbackEvent values, in the order Twilio fires them. */
static const char *const callback_events[] = { "initiated", "ringing", "answered", "completed" };
/* RecordingStatusCallbackEvent values (Calls create): every one there is. */
static const char *const recording_events[] = { "in-progress", "completed", "absent" };


/* s, or NULL (which the logger omits) when s is empty. */
static const char *nonempty(const char *s)
{
	return s[0] != '\0' ? s : NULL;
}

/* xorshift64: jitter only, not security. */
static uint64_t rng_next(struct session *t)
{
	uint64_t x = t->rng;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	t->rng = x;
	return x;
}

/*
 * Copies src into dst for display: control characters become spaces, bytes
 * that are not UTF-8 become '?', and a sequence that does not fit whole is
 * left out. Always NUL-terminates (dstsz > 0).
 */
static void copy_text(char *dst, size_t dstsz, const char *src)
{
	const unsigned char *p = (const unsigned char *)src;
	size_t left = strlen(src), o = 0;

	while (left > 0) {
		size_t n = utf8_decode(p, left, NULL);

		if (n == 0 || n == 1) {
			if (o + 1 >= dstsz)
				break;
			dst[o++] = n == 0 ? '?' : (*p < 0x20 || *p == 0x7f) ? ' ' : (char)*p;
			n = 1;
		} else {
			if (o + n >= dstsz)
				break;
			memcpy(dst + o, p, n);
			o += n;
		}
		p += n;
		left -= n;
	}
	dst[o] = '\0';
}

/*
 * Parses exactly one JSON object from len bytes. Returns a new reference
 * (caller puts it) or NULL with *e set: VERR_TOOBIG past TWILIO_MAX_RESPONSE,
 * VERR_INVALID for anything that is not one object (trailing whitespace is
 * allowed), VERR_NOMEM.
 */
static struct json_object *parse_object(const char *body, size_t len, enum verr *e)
{
	struct json_tokener *tok;
	struct json_object *obj;
	size_t end;

	*e = VERR_INVALID;
	if (len > TWILIO_MAX_RESPONSE) {
		*e = VERR_TOOBIG;
		return NULL;
	}
	if (body == NULL || len == 0 || memchr(body, '\0', len) != NULL)
		return NULL;
	tok = json_tokener_new_ex(JSON_MAX_DEPTH);
	if (tok == NULL) {
		*e = VERR_NOMEM;
		return NULL;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	obj = json_tokener_parse_ex(tok, body, (int)len);
	if (obj == NULL || json_tokener_get_error(tok) != json_tokener_success ||
	    !json_object_is_type(obj, json_type_object))
		goto bad;
	for (end = json_tokener_get_parse_end(tok); end < len; end++) {
		if (strchr(" \t\r\n", body[end]) == NULL)
			goto bad;
	}
	json_tokener_free(tok);
	*e = VERR_OK;
	return obj;
bad:
	json_object_put(obj);
	json_tokener_free(tok);
	return NULL;
}

/* parse_object for a list page whose member key must be an array: the
 * object (caller puts it) with *arr borrowed from it, or NULL with *e set
 * (VERR_INVALID too when key is absent or not an array). */
static struct json_object *parse_list(const char *body, size_t len, const char *key,
                                      struct json_object **arr, enum verr *e)
{
	struct json_object *obj = parse_object(body, len, e);

	if (obj != NULL && (!json_object_object_get_ex(obj, key, arr) ||
	                    !json_object_is_type(*arr, json_type_array))) {
		json_object_put(obj);
		*e = VERR_INVALID;
		return NULL;
	}
	return obj;
}

/*
 * Copies the string member key of o into dst; "" when absent or null.
 * VERR_INVALID when it is another type, holds a NUL, or does not fit.
 */
static enum verr get_string(struct json_object *o, const char *key, char *dst, size_t dstsz)
{
	struct json_object *v; /* borrowed from o */
	const char *s;

	dst[0] = '\0';
	if (!json_object_object_get_ex(o, key, &v) || v == NULL)
		return VERR_OK;
	if (!json_object_is_type(v, json_type_string))
		return VERR_INVALID;
	s = json_object_get_string(v);
	if (strlen(s) != (size_t)json_object_get_string_len(v))
		return VERR_INVALID;
	return str_copy(dst, dstsz, s) ? VERR_OK : VERR_INVALID;
}

enum verr twilio_call_parse(const char *body, size_t len, struct twilio_call *out)
{
	struct json_object *obj;
	enum verr e;

	memset(out, 0, sizeof(*out));
	obj = parse_object(body, len, &e);
	if (obj == NULL)
		return e;
	if ((e = get_string(obj, "sid", out->sid, sizeof(out->sid))) == VERR_OK &&
	    (e = get_string(obj, "status", out->status, sizeof(out->status))) == VERR_OK &&
	    (e = get_string(obj, "direction", out->direction, sizeof(out->direction))) == VERR_OK &&
	    (e = get_string(obj, "from", out->from, sizeof(out->from))) == VERR_OK &&
	    (e = get_string(obj, "to", out->to, sizeof(out->to))) == VERR_OK &&
	    (e = get_string(obj, "account_sid", out->account_sid, sizeof(out->account_sid))) == VERR_OK)
		e = get_string(obj, "date_created", out->date_created, sizeof(out->date_created));
	if (e == VERR_OK && !sid_valid(out->sid, "CA"))
		e = VERR_INVALID;
	if (e == VERR_OK && out->account_sid[0] != '\0' && !sid_valid(out->account_sid, "AC"))
		e = VERR_INVALID;
	json_object_put(obj);
	if (e != VERR_OK)
		memset(out, 0, sizeof(*out));
	return e;
}

/* A Twilio error code: a JSON integer, or a string of digits, in 1..999999. */
static int error_code_of(struct json_object *obj)
{
	struct json_object *v; /* borrowed from obj */
	long long n;

	if (!json_object_object_get_ex(obj, "code", &v) || v == NULL)
		return 0;
	if (json_object_is_type(v, json_type_int)) {
		n = (long long)json_object_get_int64(v);
		return n >= 1 && n <= 999999 ? (int)n : 0;
	}
	if (json_object_is_type(v, json_type_string) &&
	    num_parse(json_object_get_string(v), 1, 999999, &n))
		return (int)n;
	return 0;
}

void twilio_error_parse(int http_status, const char *body, size_t len, struct twilio_error *out)
{
	static const char *const message_keys[] = { "message", "detail", "title" };
	struct json_object *obj, *v; /* v borrowed from obj */
	enum verr e;
	size_t i;

	memset(out, 0, sizeof(*out));
	out->kind = VERR_UPSTREAM;
	out->http_status = http_status;
	out->may_exist = (http_status >= 200 && http_status <= 299) || http_status >= 500;
	obj = parse_object(body, len, &e);
	if (obj != NULL) {
		out->code = error_code_of(obj);
		for (i = 0; i < sizeof(message_keys) / sizeof(message_keys[0]); i++) {
			if (json_object_object_get_ex(obj, message_keys[i], &v) &&
			    json_object_is_type(v, json_type_string) &&
			    json_object_get_string_len(v) > 0) {
				copy_text(out->message, sizeof(out->message), json_object_get_string(v));
				break;
			}
		}
		json_object_put(obj);
	}
	if (out->message[0] == '\0')
		snprintf(out->message, sizeof(out->message), "twilio answered http %d", http_status);
}

enum verr twilio_call_body(const struct twilio_call_params *p, struct buf *out)
{
	size_t mark = out->len, i;
	enum verr e;
	char num[16];

	if (p->to == NULL || p->to[0] == '\0' || p->from == NULL || p->from[0] == '\0')
		return VERR_INVALID;
	if ((p->url == NULL) == (p->twiml == NULL))
		return VERR_INVALID;
	if ((p->url != NULL && p->url[0] == '\0') || (p->twiml != NULL && p->twiml[0] == '\0'))
		return VERR_INVALID;
	if (p->twiml != NULL && strlen(p->twiml) > TWIML_MAX_INLINE)
		return VERR_TOOBIG;
	if (p->timeout < 0 || p->timeout > TWILIO_MAX_CALL_TIMEOUT)
		return VERR_INVALID;
	if ((e = form_append(out, "To", p->to)) != VERR_OK ||
	    (e = form_append(out, "From", p->from)) != VERR_OK)
		goto out;
	if (p->url != NULL)
		e = form_append(out, "Url", p->url);
	else
		e = form_append(out, "Twiml", p->twiml);
	if (e != VERR_OK)
		goto out;
	if (p->status_callback != NULL) {
		if ((e = form_append(out, "StatusCallback", p->status_callback)) != VERR_OK ||
		    (e = form_append(out, "StatusCallbackMethod", "POST")) != VERR_OK)
			goto out;
		for (i = 0; i < sizeof(callback_events) / sizeof(callback_events[0]); i++) {
			if ((e = form_append(out, "StatusCallbackEvent", callback_events[i])) != VERR_OK)
				goto out;
		}
	}
	if (p->timeout > 0) {
		snprintf(num, sizeof(num), "%d", p->timeout);
		if ((e = form_append(out, "Timeout", num)) != VERR_OK)
			goto out;
	}
	if (p->record && (e = form_append(out, "Record", "true")) != VERR_OK)
		goto out;
	if (p->record && p->recording_status_callback != NULL) {
		if ((e = form_append(out, "RecordingStatusCallback", p->recording_status_callback)) !=
		        VERR_OK ||
		    (e = form_append(out, "RecordingStatusCallbackMethod", "POST")) != VERR_OK)
			goto out;
		for (i = 0; i < sizeof(recording_events) / sizeof(recording_events[0]); i++) {
			if ((e = form_append(out, "RecordingStatusCallbackEvent", recording_events[i])) !=
			    VERR_OK)
				goto out;
		}
	}
	if (p->machine_detection)
		e = form_append(out, "MachineDetection", "Enable");
out:
	if (e != VERR_OK)
		buf_truncate(out, mark);
	return e;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct session *t = ud;
	enum verr e;

	/* size is 1 (libcurl documents it); refuse rather than overflow */
	if (size != 1) {
		t->resp_err = VERR_INVALID;
		return 0;
	}
	e = buf_append(&t->resp, ptr, nmemb);
	if (e != VERR_OK) {
		t->resp_err = e;
		return 0; /* CURLE_WRITE_ERROR */
	}
	return nmemb;
}

/*
 * The body goes through a read callback, not CURLOPT_POSTFIELDS, for one
 * reason: libcurl silently re-sends a request on a fresh connection when a
 * reused one dies before any response byte (Curl_retry_request), and to do so
 * it must rewind the body. Refusing that rewind once any body byte was handed
 * over turns the re-send into CURLE_SEND_FAIL_REWIND: Twilio may have created
 * the call, and a second POST could dial twice.
 */
static size_t on_read(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct session *t = ud;
	size_t n = t->req_len - t->req_off;

	if (size != 1)
		return CURL_READFUNC_ABORT;
	if (n > nmemb)
		n = nmemb;
	memcpy(ptr, t->req + t->req_off, n);
	t->req_off += n;
	return n;
}

static int on_seek(void *ud, curl_off_t offset, int origin)
{
	struct session *t = ud;

	if (offset == 0 && origin == SEEK_SET && t->req_off == 0)
		return CURL_SEEKFUNC_OK;
	return CURL_SEEKFUNC_CANTSEEK;
}

/* Header value after "name:" with surrounding blanks removed, copied into
 * dst, when the line is that header; false otherwise. */
static bool header_value(const char *line, size_t n, const char *name, char *dst, size_t dstsz)
{
	size_t k = strlen(name), a, b, len;

	if (n <= k || strncasecmp(line, name, k) != 0 || line[k] != ':')
		return false;
	a = k + 1;
	b = n;
	while (a < b && (line[a] == ' ' || line[a] == '\t'))
		a++;
	while (b > a && strchr(" \t\r\n", line[b - 1]) != NULL)
		b--;
	len = b - a;
	if (len >= dstsz)
		len = dstsz - 1;
	memcpy(dst, line + a, len);
	dst[len] = '\0';
	return true;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct session *t = ud;
	char v[MAX_REQUEST_ID];
	long long secs;

	if (size != 1)
		return 0;
	if (nmemb >= 5 && memcmp(ptr, "HTTP/", 5) == 0) {
		/* a new response (after 100 Continue): forget the last one's headers */
		t->retry_after = 0;
		t->request_id[0] = '\0';
	} else if (header_value(ptr, nmemb, "Retry-After", v, sizeof(v))) {
		/* delta-seconds only, clamped; an HTTP-date is ignored */
		if (num_parse(v, 0, LLONG_MAX, &secs))
			t->retry_after = secs > MAX_RETRY_AFTER ? MAX_RETRY_AFTER : (int)secs;
	} else if (header_value(ptr, nmemb, "Twilio-Request-Id", v, sizeof(v))) {
		copy_text(t->request_id, sizeof(t->request_id), v);
	}
	return nmemb;
}

/* Refuses to send credentials in clear text anywhere but loopback. */
static bool base_url_ok(const char *base)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL;
	bool ok = false;

	if (u == NULL)
		return false;
	if (curl_url_set(u, CURLUPART_URL, base, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
		goto out;
	if (strcmp(scheme, "https") == 0)
		ok = true;
	else if (strcmp(scheme, "http") == 0)
		ok = strcmp(host, "127.0.0.1") == 0 || strcmp(host, "localhost") == 0 ||
		     strcmp(host, "[::1]") == 0;
out:
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return ok;
}

#define SETOPT(t, opt, val) (curl_easy_setopt((t)->curl, (opt), (val)) == CURLE_OK)

static void session_free(struct session *t)
{
	if (t == NULL)
		return;
	if (t->curl != NULL)
		curl_easy_cleanup(t->curl);
	if (t->get_curl != NULL)
		curl_easy_cleanup(t->get_curl);
	curl_slist_free_all(t->get_headers);
	curl_slist_free_all(t->headers);
	buf_free(&t->resp);
	free(t);
}

/* Configures the template session (not thread-safe; once per client). */
static struct session *session_new(const struct config *cfg)
{
	struct session *t = NULL;
	const char *user, *pass, *why = "out of memory";
	char ua[MAX_USER_AGENT];
	struct curl_slist *h;
	int n;

	if (!sid_valid(cfg->account_sid, "AC")) {
		why = "TWILIO_ACCOUNT_SID is not AC followed by 32 hex digits";
		goto fail;
	}
	if (cfg->api_key_sid[0] != '\0' && cfg->api_key_secret[0] != '\0') {
		user = cfg->api_key_sid;
		pass = cfg->api_key_secret;
	} else if (cfg->auth_token[0] != '\0') {
		user = cfg->account_sid;
		pass = cfg->auth_token;
	} else {
		why = "no twilio rest credentials configured";
		goto fail;
	}
	if (!base_url_ok(cfg->api_base_url)) {
		why = "TWILIO_API_BASE_URL must be https (http only for loopback)";
		goto fail;
	}
	if (cfg->twilio_timeout_ms <= 0 || cfg->twilio_connect_timeout_ms <= 0) {
		why = "twilio timeouts must be positive";
		goto fail;
	}
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		goto fail;
	buf_init(&t->resp, TWILIO_MAX_RESPONSE);
	t->timeout_ms = cfg->twilio_timeout_ms < TWILIO_MAX_TOTAL_MS ? cfg->twilio_timeout_ms
	                                                              : TWILIO_MAX_TOTAL_MS;
	t->rng = ((uint64_t)getpid() << 32) ^ (uint64_t)clock_mono_ms() ^ (uint64_t)(uintptr_t)t;
	if (t->rng == 0)
		t->rng = 0x9e3779b97f4a7c15ull;
	n = snprintf(t->url, sizeof(t->url), CALLS_PATH_FMT, cfg->api_base_url, cfg->account_sid);
	if (n < 0 || (size_t)n >= sizeof(t->url)) {
		why = "TWILIO_API_BASE_URL is too long";
		goto fail;
	}
	snprintf(ua, sizeof(ua), "twilio-voice-c/1.0 libcurl/%s", curl_version_info(CURLVERSION_NOW)->version);
	t->curl = curl_easy_init();
	if (t->curl == NULL) {
		why = "libcurl easy handle could not be created";
		goto fail;
	}
	/* "Expect:" stops libcurl waiting for 100 Continue on larger bodies */
	if ((t->headers = curl_slist_append(NULL, "Accept: application/json")) == NULL ||
	    (h = curl_slist_append(t->headers, "Content-Type: application/x-www-form-urlencoded")) == NULL ||
	    (h = curl_slist_append(h, "Expect:")) == NULL)
		goto fail;
	if (!SETOPT(t, CURLOPT_URL, t->url) || !SETOPT(t, CURLOPT_POST, 1L) ||
	    !SETOPT(t, CURLOPT_HTTPHEADER, t->headers) || !SETOPT(t, CURLOPT_USERAGENT, ua) ||
	    !SETOPT(t, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC) || !SETOPT(t, CURLOPT_USERNAME, user) ||
	    !SETOPT(t, CURLOPT_PASSWORD, pass) || !SETOPT(t, CURLOPT_SSL_VERIFYPEER, 1L) ||
	    !SETOPT(t, CURLOPT_SSL_VERIFYHOST, 2L) || !SETOPT(t, CURLOPT_NOSIGNAL, 1L) ||
	    !SETOPT(t, CURLOPT_CONNECTTIMEOUT_MS, (long)cfg->twilio_connect_timeout_ms) ||
	    !SETOPT(t, CURLOPT_TIMEOUT_MS, (long)t->timeout_ms) ||
	    !SETOPT(t, CURLOPT_PROTOCOLS_STR, "http,https") ||
	    !SETOPT(t, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") ||
	    !SETOPT(t, CURLOPT_FOLLOWLOCATION, 0L) || !SETOPT(t, CURLOPT_TCP_KEEPALIVE, 1L) ||
	    !SETOPT(t, CURLOPT_MAXAGE_CONN, MAX_IDLE_CONN_S) ||
	    !SETOPT(t, CURLOPT_MAXCONNECTS, MAX_KEPT_CONNS) ||
	    !SETOPT(t, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)TWILIO_MAX_RESPONSE) ||
	    !SETOPT(t, CURLOPT_ERRORBUFFER, t->errbuf) || !SETOPT(t, CURLOPT_WRITEFUNCTION, on_body) ||
	    !SETOPT(t, CURLOPT_WRITEDATA, t) || !SETOPT(t, CURLOPT_READFUNCTION, on_read) ||
	    !SETOPT(t, CURLOPT_READDATA, t) || !SETOPT(t, CURLOPT_SEEKFUNCTION, on_seek) ||
	    !SETOPT(t, CURLOPT_SEEKDATA, t) || !SETOPT(t, CURLOPT_HEADERFUNCTION, on_header) ||
	    !SETOPT(t, CURLOPT_HEADERDATA, t)) {
		why = "libcurl rejected an option";
		goto fail;
	}
	return t;
fail:
	log_error("could not create twilio client", LF_STR("reason", why));
	session_free(t);
	return NULL;
}

/* A copy of the template for one thread, using the shared connection cache.
 * NULL when out of memory. */
static struct session *session_dup(const struct twilio *tw)
{
	const struct session *tmpl = tw->tmpl;
	struct session *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	memcpy(t->url, tmpl->url, sizeof(t->url));
	t->timeout_ms = tmpl->timeout_ms;
	buf_init(&t->resp, TWILIO_MAX_RESPONSE);
	t->rng = tmpl->rng ^ ((uint64_t)(uintptr_t)t * 0x9e3779b97f4a7c15ull);
	if (t->rng == 0)
		t->rng = 0x9e3779b97f4a7c15ull;
	t->curl = curl_easy_duphandle(tmpl->curl);
	if (t->curl == NULL || !SETOPT(t, CURLOPT_SHARE, tw->share) ||
	    !SETOPT(t, CURLOPT_ERRORBUFFER, t->errbuf) || !SETOPT(t, CURLOPT_WRITEDATA, t) ||
	    !SETOPT(t, CURLOPT_READDATA, t) || !SETOPT(t, CURLOPT_SEEKDATA, t) ||
	    !SETOPT(t, CURLOPT_HEADERDATA, t)) {
		session_free(t);
		return NULL;
	}
	return t;
}

static void session_destroy(void *p)
{
	session_free(p);
}

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *ud)
{
	struct twilio *tw = ud;

	(void)h;
	(void)access;
	if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
		pthread_mutex_lock(&tw->locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *ud)
{
	struct twilio *tw = ud;

	(void)h;
	if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
		pthread_mutex_unlock(&tw->locks[data]);
}

struct twilio *twilio_new(const struct config *cfg)
{
	struct twilio *tw;
	int i;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_error("could not create twilio client", LF_STR("reason", "libcurl initialisation failed"));
		return NULL;
	}
	tw = calloc(1, sizeof(*tw));
	if (tw == NULL) {
		curl_global_cleanup();
		return NULL;
	}
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&tw->locks[i], NULL);
	tw->key_ok = pthread_key_create(&tw->key, session_destroy) == 0;
	tw->share = curl_share_init();
	if (!tw->key_ok || tw->share == NULL ||
	    curl_share_setopt(tw->share, CURLSHOPT_LOCKFUNC, share_lock) != CURLSHE_OK ||
	    curl_share_setopt(tw->share, CURLSHOPT_UNLOCKFUNC, share_unlock) != CURLSHE_OK ||
	    curl_share_setopt(tw->share, CURLSHOPT_USERDATA, tw) != CURLSHE_OK ||
	    curl_share_setopt(tw->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT) != CURLSHE_OK ||
	    curl_share_setopt(tw->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK ||
	    curl_share_setopt(tw->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK) {
		log_error("could not create twilio client", LF_STR("reason", "libcurl share setup failed"));
		twilio_free(tw);
		return NULL;
	}
	tw->tmpl = session_new(cfg);
	if (tw->tmpl == NULL || !str_copy(tw->base, sizeof tw->base, cfg->api_base_url) ||
	    !str_copy(tw->account_sid, sizeof tw->account_sid, cfg->account_sid)) {
		twilio_free(tw);
		return NULL;
	}
	return tw;
}

/* The calling thread's session, made on first use; NULL when out of memory. */
static struct session *session_get(struct twilio *tw)
{
	struct session *s = pthread_getspecific(tw->key);

	if (s == NULL) {
		s = session_dup(tw);
		if (s != NULL && pthread_setspecific(tw->key, s) != 0) {
			session_free(s);
			s = NULL;
		}
	}
	return s;
}

/* Points t's POST handle at url (Calls create's, or one call's for an
 * update); libcurl copies it. */
static void post_url(struct session *t, const char *url)
{
	curl_easy_setopt(t->curl, CURLOPT_URL, url);
}

void twilio_free(struct twilio *tw)
{
	int i;

	if (tw == NULL)
		return;
	if (tw->key_ok) {
		session_free(pthread_getspecific(tw->key));
		pthread_setspecific(tw->key, NULL);
		pthread_key_delete(tw->key);
	}
	session_free(tw->tmpl);
	if (tw->share != NULL)
		curl_share_cleanup(tw->share);
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&tw->locks[i]);
	free(tw);
	curl_global_cleanup();
}

/* Clears what the last request left in t and a, before the next one. */
static void attempt_reset(struct session *t, struct attempt *a)
{
	buf_reset(&t->resp);
	t->resp_err = VERR_OK;
	t->retry_after = 0;
	t->request_id[0] = '\0';
	t->errbuf[0] = '\0';
	a->http_status = 0;
	a->not_sent = false;
	a->retryable = false;
}

/* Runs one POST with body and fills a from what libcurl saw. */
static void attempt_run(struct session *t, const struct buf *body, long long budget_ms,
                        struct attempt *a)
{
	long long start = clock_mono_ms();
	long sent = 0;

	attempt_reset(t, a);
	if (budget_ms > t->timeout_ms)
		budget_ms = t->timeout_ms;
	if (budget_ms < 1)
		budget_ms = 1; /* 0 would mean no timeout at all */
	curl_easy_setopt(t->curl, CURLOPT_TIMEOUT_MS, (long)budget_ms);
	t->req = buf_str(body);
	t->req_len = body->len;
	t->req_off = 0;
	curl_easy_setopt(t->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body->len);
	a->rc = curl_easy_perform(t->curl);
	a->latency_ms = clock_mono_ms() - start;
	curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &a->http_status);
	if (a->rc != CURLE_OK && a->rc != CURLE_WRITE_ERROR && a->rc != CURLE_FILESIZE_EXCEEDED) {
		/* nothing written to the socket yet: Twilio cannot have seen it */
		curl_easy_getinfo(t->curl, CURLINFO_REQUEST_SIZE, &sent);
		a->not_sent = sent == 0;
		a->retryable = a->not_sent && (a->rc == CURLE_COULDNT_CONNECT ||
		                               a->rc == CURLE_COULDNT_RESOLVE_HOST);
	}
}

/* Fills err from a failed attempt and returns its kind. */
static enum verr attempt_error(struct session *t, const struct attempt *a, struct twilio_error *err)
{
	const char *detail = t->errbuf[0] != '\0' ? t->errbuf : curl_easy_strerror(a->rc);

	/* on_seek refused libcurl's silent re-send on a new connection */
	if (a->rc == CURLE_SEND_FAIL_REWIND)
		detail = "connection closed before any answer";

	memset(err, 0, sizeof(*err));
	if (a->rc == CURLE_OK) {
		twilio_error_parse((int)a->http_status, t->resp.data, t->resp.len, err);
		err->retry_after = t->retry_after;
		return VERR_UPSTREAM;
	}
	if (a->rc == CURLE_WRITE_ERROR || a->rc == CURLE_FILESIZE_EXCEEDED) {
		err->kind = VERR_UPSTREAM;
		err->http_status = (int)a->http_status;
		err->may_exist = (a->http_status >= 200 && a->http_status <= 299) || a->http_status >= 500;
		snprintf(err->message, sizeof(err->message),
		         "twilio response larger than %d bytes", TWILIO_MAX_RESPONSE);
		return VERR_UPSTREAM;
	}
	if (a->not_sent) {
		err->kind = VERR_UPSTREAM_DOWN;
		snprintf(err->message, sizeof(err->message), "could not reach twilio: %s", detail);
		return VERR_UPSTREAM_DOWN;
	}
	err->kind = VERR_TIMEOUT;
	err->http_status = 0;
	err->may_exist = true;
	snprintf(err->message, sizeof(err->message), "no answer from twilio after sending: %s", detail);
	return VERR_TIMEOUT;
}

/* Jittered exponential backoff for retry number n (1-based), in ms. */
static long long backoff_ms(struct session *t, int n, int retry_after)
{
	long long d = (long long)BACKOFF_BASE_MS << (n - 1);

	if (d > BACKOFF_CAP_MS)
		d = BACKOFF_CAP_MS;
	d = d / 2 + (long long)(rng_next(t) % (uint64_t)(d / 2 + 1));
	if ((long long)retry_after * 1000 > d)
		d = (long long)retry_after * 1000;
	return d;
}

/* After failed attempt n: counts it, and returns how long to wait before
 * the next one, or 0 to give up (not retryable, out of tries, or no time
 * left before deadline). Twilio's 20429 (too many requests) is retryable. */
static long long attempt_failed(struct session *t, struct attempt *a,
                                const struct twilio_error *err, enum verr e, int n,
                                long long deadline)
{
	long long wait;

	metrics_count_twilio(e == VERR_UPSTREAM_DOWN ? METRICS_TWILIO_UNAVAILABLE
	                     : e == VERR_TIMEOUT     ? METRICS_TWILIO_TIMEOUT
	                                             : METRICS_TWILIO_ERROR,
	                     err->code);
	if (e == VERR_UPSTREAM && err->code == 20429)
		a->retryable = true;
	if (!a->retryable || n >= TWILIO_MAX_ATTEMPTS)
		return 0;
	wait = backoff_ms(t, n, err->retry_after);
	return clock_mono_ms() + wait + MIN_ATTEMPT_MS > deadline ? 0 : wait;
}

/* ---- Calls fetch and Calls list (reconciliation) ---------------------- */

#define CALLS_PATH_TAIL_LEN (sizeof "/2010-04-01/Accounts/" - 1 + 34 + sizeof "/Calls.json" - 1)

/* Twilio's "duration": a string of digits (the OAS type), also accepted as a
 * JSON integer; -1 when absent or null. */
static enum verr get_duration(struct json_object *o, long long *out)
{
	struct json_object *v; /* borrowed from o */
	long long n;

	*out = -1;
	if (!json_object_object_get_ex(o, "duration", &v) || v == NULL)
		return VERR_OK;
	if (json_object_is_type(v, json_type_int)) {
		n = (long long)json_object_get_int64(v);
	} else if (!json_object_is_type(v, json_type_string) ||
	           !num_parse(json_object_get_string(v), 0, 999999999, &n)) {
		return VERR_INVALID;
	}
	if (n < 0 || n > 999999999)
		return VERR_INVALID;
	*out = n;
	return VERR_OK;
}

/* One Call resource object into out (zeroed, duration -1, on error). */
static enum verr info_from_object(struct json_object *o, struct twilio_call_info *out)
{
	struct twilio_call *c = &out->call;
	enum verr e;

	memset(out, 0, sizeof(*out));
	out->duration = -1;
	if (!json_object_is_type(o, json_type_object))
		return VERR_INVALID;
	if ((e = get_string(o, "sid", c->sid, sizeof(c->sid))) == VERR_OK &&
	    (e = get_string(o, "status", c->status, sizeof(c->status))) == VERR_OK &&
	    (e = get_string(o, "direction", c->direction, sizeof(c->direction))) == VERR_OK &&
	    (e = get_string(o, "from", c->from, sizeof(c->from))) == VERR_OK &&
	    (e = get_string(o, "to", c->to, sizeof(c->to))) == VERR_OK &&
	    (e = get_string(o, "account_sid", c->account_sid, sizeof(c->account_sid))) == VERR_OK &&
	    (e = get_string(o, "date_created", c->date_created, sizeof(c->date_created))) == VERR_OK &&
	    (e = get_string(o, "start_time", out->start_time, sizeof(out->start_time))) == VERR_OK &&
	    (e = get_string(o, "end_time", out->end_time, sizeof(out->end_time))) == VERR_OK &&
	    (e = get_string(o, "answered_by", out->answered_by, sizeof(out->answered_by))) == VERR_OK)
		e = get_duration(o, &out->duration);
	if (e == VERR_OK && (!sid_valid(c->sid, "CA") || !callback_status_valid(c->status)))
		e = VERR_INVALID;
	if (e == VERR_OK && c->account_sid[0] != '\0' && !sid_valid(c->account_sid, "AC"))
		e = VERR_INVALID;
	if (e != VERR_OK) {
		memset(out, 0, sizeof(*out));
		out->duration = -1;
	}
	return e;
}

enum verr twilio_call_info_parse(const char *body, size_t len, struct twilio_call_info *out)
{
	struct json_object *obj;
	enum verr e;

	memset(out, 0, sizeof(*out));
	out->duration = -1;
	obj = parse_object(body, len, &e);
	if (obj == NULL)
		return e;
	e = info_from_object(obj, out);
	json_object_put(obj);
	return e;
}

/* True for "/2010-04-01/Accounts/{account_sid}/Calls.json?" followed by
 * printable ASCII without spaces, all shorter than TWILIO_MAX_PAGE_URI. */
static bool page_uri_ok(const char *uri, const char *account_sid)
{
	char prefix[96];
	size_t n = strlen(uri), k, i;

	snprintf(prefix, sizeof(prefix), "/2010-04-01/Accounts/%s/Calls.json?", account_sid);
	k = strlen(prefix);
	if (n >= TWILIO_MAX_PAGE_URI || n <= k || strncmp(uri, prefix, k) != 0)
		return false;
	for (i = k; i < n; i++)
		if (uri[i] <= 0x20 || uri[i] >= 0x7f)
			return false;
	return true;
}

enum verr twilio_call_page_parse(const char *body, size_t len, const char *account_sid,
                                 struct twilio_call_page *out)
{
	struct json_object *obj, *arr; /* arr borrowed from obj */
	enum verr e;
	size_t i, n;

	memset(out, 0, sizeof(*out));
	obj = parse_list(body, len, "calls", &arr, &e);
	if (obj == NULL)
		return e;
	e = VERR_INVALID;
	n = json_object_array_length(arr);
	if (n > TWILIO_MAX_PAGE) {
		e = VERR_TOOBIG;
		goto out;
	}
	for (i = 0; i < n; i++) {
		struct twilio_call_info *c = &out->calls[i];

		if (info_from_object(json_object_array_get_idx(arr, i), c) != VERR_OK ||
		    strcmp(c->call.account_sid, account_sid) != 0)
			goto out;
	}
	out->n = n;
	if (get_string(obj, "next_page_uri", out->next_page_uri, sizeof(out->next_page_uri)) != VERR_OK ||
	    (out->next_page_uri[0] != '\0' && !page_uri_ok(out->next_page_uri, account_sid)))
		goto out;
	e = VERR_OK;
out:
	json_object_put(obj);
	if (e != VERR_OK)
		memset(out, 0, sizeof(*out));
	return e;
}

enum verr twilio_calls_query_string(const struct twilio_calls_query *q, struct buf *out)
{
	size_t mark = out->len, i;
	const char *d = q->started_on_or_after;
	char size[8];
	enum verr e;

	if (q->to == NULL || q->to[0] == '\0' || q->from == NULL || q->from[0] == '\0' || d == NULL ||
	    strlen(d) != 10)
		return VERR_INVALID;
	for (i = 0; i < 10; i++)
		if ((i == 4 || i == 7) ? d[i] != '-' : (d[i] < '0' || d[i] > '9'))
			return VERR_INVALID;
	snprintf(size, sizeof(size), "%d", TWILIO_MAX_PAGE);
	if ((e = form_append(out, "To", q->to)) != VERR_OK ||
	    (e = form_append(out, "From", q->from)) != VERR_OK ||
	    (e = form_append(out, "StartTime>", d)) != VERR_OK ||
	    (e = form_append(out, "PageSize", size)) != VERR_OK)
		buf_truncate(out, mark);
	return e;
}

/* This thread's GET handle: a copy of the template switched to GET with
 * "Accept: application/json" only, on the shared connection cache. NULL
 * when out of memory. */
static CURL *get_handle(struct twilio *tw, struct session *t)
{
	CURL *c;

	if (t->get_curl != NULL)
		return t->get_curl;
	if (t->get_headers == NULL &&
	    (t->get_headers = curl_slist_append(NULL, "Accept: application/json")) == NULL)
		return NULL;
	c = curl_easy_duphandle(tw->tmpl->curl);
	if (c == NULL)
		return NULL;
	if (curl_easy_setopt(c, CURLOPT_HTTPGET, 1L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_HTTPHEADER, t->get_headers) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_SHARE, tw->share) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, t->errbuf) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_WRITEDATA, t) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_HEADERDATA, t) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_READDATA, t) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_SEEKDATA, t) != CURLE_OK) {
		curl_easy_cleanup(c);
		return NULL;
	}
	t->get_curl = c;
	return c;
}

/* One GET of url on c within timeout_ms (0: TWILIO_MAX_FETCH_MS, capped at
 * the client's timeout); fills a as attempt_run does. */
static void get_run(struct session *t, CURL *c, const char *url, long long timeout_ms,
                    struct attempt *a)
{
	long long start = clock_mono_ms();
	long sent = 0;

	if (timeout_ms <= 0)
		timeout_ms = TWILIO_MAX_FETCH_MS;
	if (timeout_ms > t->timeout_ms)
		timeout_ms = t->timeout_ms;
	attempt_reset(t, a);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	a->rc = curl_easy_perform(c);
	a->latency_ms = clock_mono_ms() - start;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a->http_status);
	if (a->rc != CURLE_OK && a->rc != CURLE_WRITE_ERROR && a->rc != CURLE_FILESIZE_EXCEEDED) {
		curl_easy_getinfo(c, CURLINFO_REQUEST_SIZE, &sent);
		a->not_sent = sent == 0;
	}
}

/*
 * The outcome of a GET: VERR_OK when Twilio answered 2xx and parse took the
 * body, else err filled (a 2xx that parse refused is VERR_UPSTREAM with
 * http_status set and code 0). A read creates nothing: may_exist is false.
 * Logs the request (endpoint, status, latency, the call sid or the masked
 * destination).
 */
static enum verr get_finish(struct session *t, const struct attempt *a, const char *endpoint,
                            const char *call_sid, const char *to, enum verr parsed,
                            struct twilio_error *err)
{
	enum verr e;

	memset(err, 0, sizeof(*err));
	if (a->rc == CURLE_OK && a->http_status >= 200 && a->http_status <= 299) {
		if (parsed == VERR_OK) {
			log_info("twilio request", LF_STR("endpoint", endpoint),
			         LF_INT("http_status", a->http_status), LF_INT("latency_ms", a->latency_ms),
			         LF_STR("call_sid", call_sid), LF_PHONE("to", to),
			         LF_STR("twilio_request_id", nonempty(t->request_id)));
			return VERR_OK;
		}
		err->kind = e = VERR_UPSTREAM;
		err->http_status = (int)a->http_status;
		snprintf(err->message, sizeof(err->message), "twilio answered http %ld with an unreadable %s",
		         a->http_status, strcmp(endpoint, "calls.list") == 0 ? "call list" : "call resource");
	} else {
		e = attempt_error(t, a, err);
	}
	err->may_exist = false;
	log_warn("twilio request", LF_STR("endpoint", endpoint), LF_INT("http_status", err->http_status),
	         LF_INT("twilio_code", err->code), LF_INT("latency_ms", a->latency_ms),
	         LF_STR("call_sid", call_sid), LF_PHONE("to", to), LF_STR("result", verr_strerror(e)),
	         LF_STR("error", e == VERR_UPSTREAM ? NULL : err->message),
	         LF_STR("twilio_request_id", nonempty(t->request_id)));
	return e;
}

/* The common start of a GET: this thread's session and GET handle. */
static enum verr get_begin(struct twilio *tw, struct session **t, CURL **c,
                           struct twilio_error *err)
{
	*t = session_get(tw);
	*c = *t != NULL ? get_handle(tw, *t) : NULL;
	if (*c == NULL) {
		err->kind = VERR_NOMEM;
		snprintf(err->message, sizeof(err->message), "could not set up a twilio client");
		return VERR_NOMEM;
	}
	return VERR_OK;
}

enum verr twilio_call_fetch(struct twilio *tw, const char *sid, long long timeout_ms,
                            struct twilio_call_info *out, struct twilio_error *err)
{
	struct session *t;
	struct attempt a;
	char url[MAX_URL + 48];
	size_t n;
	CURL *c;
	enum verr e;

	memset(out, 0, sizeof(*out));
	out->duration = -1;
	memset(err, 0, sizeof(*err));
	if (!sid_valid(sid, "CA")) {
		err->kind = VERR_INVALID;
		snprintf(err->message, sizeof(err->message), "not a call sid");
		return VERR_INVALID;
	}
	if ((e = get_begin(tw, &t, &c, err)) != VERR_OK)
		return e;
	/* t->url is …/Calls.json: the call is …/Calls/{Sid}.json */
	n = strlen(t->url) - (sizeof ".json" - 1);
	snprintf(url, sizeof(url), "%.*s/%s.json", (int)n, t->url, sid);
	get_run(t, c, url, timeout_ms, &a);
	e = a.rc == CURLE_OK && a.http_status >= 200 && a.http_status <= 299
	        ? twilio_call_info_parse(t->resp.data, t->resp.len, out)
	        : VERR_UPSTREAM;
	e = get_finish(t, &a, "calls.fetch", sid, NULL, e, err);
	if (e == VERR_OK && strcmp(out->call.sid, sid) != 0) {
		err->kind = e = VERR_UPSTREAM;
		err->http_status = (int)a.http_status;
		snprintf(err->message, sizeof(err->message), "twilio answered another call than asked for");
	}
	if (e != VERR_OK) {
		memset(out, 0, sizeof(*out));
		out->duration = -1;
	}
	return e;
}

enum verr twilio_calls_list(struct twilio *tw, const struct twilio_calls_query *q,
                            long long timeout_ms, struct twilio_call_page *out,
                            struct twilio_error *err)
{
	struct session *t;
	struct attempt a;
	struct buf url;
	char account[CONFIG_MAX_SID];
	size_t base;
	CURL *c;
	enum verr e;

	memset(out, 0, sizeof(*out));
	memset(err, 0, sizeof(*err));
	if ((e = get_begin(tw, &t, &c, err)) != VERR_OK)
		return e;
	buf_init(&url, MAX_URL + TWILIO_MAX_PAGE_URI);
	/* t->url is {base}/2010-04-01/Accounts/{AccountSid}/Calls.json */
	base = strlen(t->url) - CALLS_PATH_TAIL_LEN;
	memcpy(account, t->url + base + sizeof "/2010-04-01/Accounts/" - 1, 34);
	account[34] = '\0';
	if (q->page_uri != NULL) {
		e = page_uri_ok(q->page_uri, account) ? buf_append(&url, t->url, base) : VERR_INVALID;
		if (e == VERR_OK)
			e = buf_puts(&url, q->page_uri);
	} else {
		struct buf query;

		/* the query on its own: form_append puts '&' after anything */
		buf_init(&query, TWILIO_MAX_PAGE_URI);
		e = twilio_calls_query_string(q, &query);
		if (e == VERR_OK)
			e = buf_printf(&url, "%s?%s", t->url, buf_str(&query));
		buf_free(&query);
	}
	if (e != VERR_OK) {
		err->kind = e;
		snprintf(err->message, sizeof(err->message), "could not build the call list request: %s",
		         verr_strerror(e));
		goto out;
	}
	get_run(t, c, buf_str(&url), timeout_ms, &a);
	e = a.rc == CURLE_OK && a.http_status >= 200 && a.http_status <= 299
	        ? twilio_call_page_parse(t->resp.data, t->resp.len, account, out)
	        : VERR_UPSTREAM;
	e = get_finish(t, &a, "calls.list", NULL, q->to, e, err);
out:
	buf_free(&url);
	return e;
}

/*
 * The requests with retries: Calls create, Calls update (cancel, hang up),
 * the Account fetch and the IncomingPhoneNumbers / OutgoingCallerIds lists
 * (the credential check), on this thread's POST handle (pointed at Calls or
 * at one call) or GET handle, all under Calls create's retry rules.
 */

#define MAX_QUERY 128

struct rest_req {
	const char *endpoint;   /* for the logs: "calls.create", … */
	bool post;              /* POST body on the POST handle, else a GET */
	bool creates;           /* Calls create: a failed try may have created the call
	                         * (may_exist as attempt_error says), and the caller
	                         * logs a 2xx once it has read the body */
	const char *url;
	const struct buf *body; /* the form body of a POST */
	long long deadline;     /* clock_mono_ms() by which every try must be over;
	                         * 0: TWILIO_MAX_TOTAL_MS from the first */
	const char *call_sid;   /* for the logs, or NULL */
	const char *to, *from;  /* for the logs (masked), or NULL */
	const char *number;     /* for the logs (masked), or NULL */
};

/* err for a request that was not sent (bad arguments, no memory). */
static enum verr not_sent(const char *endpoint, enum verr e, const char *why,
                          struct twilio_error *err)
{
	memset(err, 0, sizeof(*err));
	err->kind = e;
	str_copy(err->message, sizeof(err->message), why);
	log_error("twilio request not sent", LF_STR("endpoint", endpoint), LF_STR("error", why));
	return e;
}

/* Formats a request's URL into url (size bytes); VERR_TOOBIG (err filled and
 * logged) when it does not fit. */
static enum verr rest_url(char *url, size_t size, const char *endpoint, struct twilio_error *err,
                          const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static enum verr rest_url(char *url, size_t size, const char *endpoint, struct twilio_error *err,
                          const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(url, size, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= size)
		return not_sent(endpoint, VERR_TOOBIG, "TWILIO_API_BASE_URL is too long", err);
	return VERR_OK;
}

/*
 * Sends rq, retrying only what Twilio cannot have processed (20429, and a
 * connection or name resolution that failed before anything was sent), at
 * most TWILIO_MAX_ATTEMPTS tries before rq->deadline. VERR_OK when Twilio
 * answered 2xx (a holds the last try, err is zeroed): the body is in t->resp
 * until this thread's next request. Otherwise err is filled and its kind
 * returned (VERR_UPSTREAM, VERR_UPSTREAM_DOWN, VERR_TIMEOUT; VERR_NOMEM).
 * Every failed try is logged and counts in voice_twilio_requests_total; a 2xx
 * is logged unless rq->creates.
 */
static enum verr rest_run(struct twilio *tw, struct session *t, const struct rest_req *rq,
                          struct attempt *a, struct twilio_error *err)
{
	long long deadline = rq->deadline > 0 ? rq->deadline : clock_mono_ms() + TWILIO_MAX_TOTAL_MS;
	long long wait, left;
	CURL *get = NULL;
	enum verr e;

	memset(err, 0, sizeof(*err));
	memset(a, 0, sizeof(*a));
	if (rq->post)
		post_url(t, rq->url); /* this thread's POST handle may hold another URL */
	else if ((get = get_handle(tw, t)) == NULL)
		return not_sent(rq->endpoint, VERR_NOMEM, "could not set up a twilio client", err);
	for (a->n = 1;; a->n++) {
		left = deadline - clock_mono_ms();
		if (rq->post) {
			attempt_run(t, rq->body, left, a);
		} else {
			get_run(t, get, rq->url, left > 0 ? left : 1, a);
			a->retryable = a->not_sent && (a->rc == CURLE_COULDNT_CONNECT ||
			                               a->rc == CURLE_COULDNT_RESOLVE_HOST);
		}
		if (a->rc == CURLE_OK && a->http_status >= 200 && a->http_status <= 299) {
			memset(err, 0, sizeof(*err));
			if (!rq->creates)
				log_info("twilio request", LF_STR("endpoint", rq->endpoint),
				         LF_INT("attempt", a->n), LF_INT("http_status", a->http_status),
				         LF_INT("latency_ms", a->latency_ms), LF_STR("call_sid", rq->call_sid),
				         LF_PHONE("phone_number", rq->number),
				         LF_STR("twilio_request_id", nonempty(t->request_id)));
			return VERR_OK;
		}
		e = attempt_error(t, a, err);
		if (!rq->creates)
			err->may_exist = false; /* none of the other requests creates anything */
		wait = attempt_failed(t, a, err, e, a->n, deadline);
		log_warn("twilio request", LF_STR("endpoint", rq->endpoint), LF_INT("attempt", a->n),
		         LF_INT("http_status", err->http_status), LF_INT("twilio_code", err->code),
		         LF_INT("latency_ms", a->latency_ms), LF_STR("call_sid", rq->call_sid),
		         LF_PHONE("to", rq->to), LF_PHONE("from", rq->from),
		         LF_PHONE("phone_number", rq->number), LF_STR("result", verr_strerror(e)),
		         LF_STR("error", e == VERR_UPSTREAM ? NULL : err->message),
		         LF_INT("retry_in_ms", wait), LF_STR("twilio_request_id", nonempty(t->request_id)));
		if (wait == 0)
			break;
		/* a signal (SIGTERM) cuts the wait short; the retry then starts early,
		 * which is still safe because only unprocessed requests are retried */
		clock_sleep_ms(wait);
	}
	/* rate limited with no Retry-After: Twilio says retry with backoff; give
	 * the client a second rather than nothing */
	if (err->retry_after == 0 && (err->code == 20429 || err->http_status == 429))
		err->retry_after = 1;
	return e;
}

/* err for a 2xx whose body is not the resource expected. */
static enum verr unreadable(const char *endpoint, long status, struct twilio_error *err)
{
	memset(err, 0, sizeof(*err));
	err->kind = VERR_UPSTREAM;
	err->http_status = (int)status;
	snprintf(err->message, sizeof(err->message), "twilio answered http %ld with an unreadable %s",
	         status, endpoint);
	metrics_count_twilio(METRICS_TWILIO_ERROR, 0);
	log_warn("twilio request", LF_STR("endpoint", endpoint), LF_INT("http_status", status),
	         LF_STR("error", "unreadable resource"));
	return VERR_UPSTREAM;
}

enum verr twilio_call_create(struct twilio *tw, const struct twilio_call_params *p,
                             struct twilio_call *out, struct twilio_error *err)
{
	static const char endpoint[] = "calls.create";
	struct session *t = session_get(tw);
	struct rest_req rq;
	struct attempt a;
	struct buf body;
	char why[sizeof err->message];
	long long deadline = clock_mono_ms() + TWILIO_MAX_TOTAL_MS;
	enum verr e;

	if (p->deadline_ms > 0 && p->deadline_ms < deadline)
		deadline = p->deadline_ms; /* what is left of the client's budget */
	memset(out, 0, sizeof(*out));
	if (t == NULL)
		return not_sent(endpoint, VERR_NOMEM, "could not set up a twilio client", err);
	buf_init(&body, TWILIO_MAX_REQUEST);
	e = twilio_call_body(p, &body);
	if (e != VERR_OK) {
		buf_free(&body);
		snprintf(why, sizeof(why), "could not build the call request: %s", verr_strerror(e));
		return not_sent(endpoint, e, why, err);
	}
	rq = (struct rest_req){ .endpoint = endpoint, .post = true, .creates = true, .url = t->url,
	                        .body = &body, .deadline = deadline, .to = p->to, .from = p->from };
	e = rest_run(tw, t, &rq, &a, err);
	if (e != VERR_OK)
		goto out;
	e = twilio_call_parse(t->resp.data, t->resp.len, out);
	if (e == VERR_OK) {
		metrics_count_twilio(METRICS_TWILIO_CREATED, 0);
		log_info("twilio request", LF_STR("endpoint", endpoint), LF_INT("attempt", a.n),
		         LF_INT("http_status", a.http_status), LF_INT("latency_ms", a.latency_ms),
		         LF_PHONE("to", p->to), LF_PHONE("from", p->from), LF_STR("call_sid", out->sid),
		         LF_STR("call_status", out->status),
		         LF_STR("twilio_request_id", nonempty(t->request_id)));
		goto out;
	}
	err->kind = e = VERR_UPSTREAM;
	err->http_status = (int)a.http_status;
	err->may_exist = true;
	snprintf(err->message, sizeof(err->message),
	         "twilio answered http %ld with an unreadable call resource", a.http_status);
	metrics_count_twilio(METRICS_TWILIO_ERROR, 0);
	log_warn("twilio request", LF_STR("endpoint", endpoint), LF_INT("attempt", a.n),
	         LF_INT("http_status", a.http_status), LF_INT("latency_ms", a.latency_ms),
	         LF_PHONE("to", p->to), LF_PHONE("from", p->from),
	         LF_STR("error", "unreadable call resource"),
	         LF_STR("twilio_request_id", nonempty(t->request_id)));
out:
	buf_free(&body);
	return e;
}

enum verr twilio_call_update(struct twilio *tw, const char *call_sid, const char *status,
                             struct twilio_call *out, struct twilio_error *err)
{
	static const char endpoint[] = "calls.update";
	struct session *t;
	struct rest_req rq;
	struct buf body;
	char url[MAX_URL];
	struct attempt a;
	enum verr e;

	memset(out, 0, sizeof(*out));
	memset(err, 0, sizeof(*err));
	if (call_sid == NULL || !sid_valid(call_sid, "CA"))
		return not_sent(endpoint, VERR_INVALID, "the call sid is not CA followed by 32 hex digits", err);
	if (status == NULL || (strcmp(status, "canceled") != 0 && strcmp(status, "completed") != 0))
		return not_sent(endpoint, VERR_INVALID, "a call can only be updated to canceled or completed", err);
	if ((e = rest_url(url, sizeof(url), endpoint, err, "%s/2010-04-01/Accounts/%s/Calls/%s.json",
	                  tw->base, tw->account_sid, call_sid)) != VERR_OK)
		return e;
	t = session_get(tw);
	if (t == NULL)
		return not_sent(endpoint, VERR_NOMEM, "could not set up a twilio client", err);
	buf_init(&body, TWILIO_MAX_REQUEST);
	if ((e = form_append(&body, "Status", status)) != VERR_OK) {
		buf_free(&body);
		return not_sent(endpoint, e, "could not build the request", err);
	}
	rq = (struct rest_req){ .endpoint = endpoint, .post = true, .url = url, .body = &body,
	                        .call_sid = call_sid };
	e = rest_run(tw, t, &rq, &a, err);
	if (e == VERR_OK && (twilio_call_parse(t->resp.data, t->resp.len, out) != VERR_OK ||
	                     strcmp(out->sid, call_sid) != 0)) {
		memset(out, 0, sizeof(*out));
		e = unreadable(endpoint, a.http_status, err);
	}
	buf_free(&body);
	return e;
}

/* Copies the string member key of o for display (copy_text); "" when it is
 * absent, null or another type. */
static void get_text(struct json_object *o, const char *key, char *dst, size_t dstsz)
{
	struct json_object *v; /* borrowed from o */

	dst[0] = '\0';
	if (json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string))
		copy_text(dst, dstsz, json_object_get_string(v));
}

enum verr twilio_account_parse(const char *body, size_t len, struct twilio_account *out)
{
	struct json_object *obj;
	enum verr e;

	memset(out, 0, sizeof(*out));
	obj = parse_object(body, len, &e);
	if (obj == NULL)
		return e;
	if ((e = get_string(obj, "sid", out->sid, sizeof(out->sid))) == VERR_OK &&
	    (e = get_string(obj, "status", out->status, sizeof(out->status))) == VERR_OK)
		e = get_string(obj, "type", out->type, sizeof(out->type));
	if (e == VERR_OK && (!sid_valid(out->sid, "AC") || out->status[0] == '\0'))
		e = VERR_INVALID;
	if (e == VERR_OK)
		get_text(obj, "friendly_name", out->friendly_name, sizeof(out->friendly_name));
	json_object_put(obj);
	if (e != VERR_OK)
		memset(out, 0, sizeof(*out));
	return e;
}

enum verr twilio_number_parse(const char *body, size_t len, enum twilio_number_kind kind,
                              const char *e164, struct twilio_number *out)
{
	const char *list = kind == TWILIO_NUMBER_INCOMING ? "incoming_phone_numbers"
	                                                  : "outgoing_caller_ids";
	struct json_object *obj, *arr, *item, *caps, *voice; /* all but obj borrowed from obj */
	char number[TWILIO_MAX_ENDPOINT], sid[TWILIO_MAX_SID];
	enum verr e;
	size_t i, n;

	memset(out, 0, sizeof(*out));
	obj = parse_list(body, len, list, &arr, &e);
	if (obj == NULL)
		return e;
	e = VERR_INVALID;
	n = json_object_array_length(arr);
	for (i = 0; i < n; i++) {
		item = json_object_array_get_idx(arr, i);
		if (!json_object_is_type(item, json_type_object) ||
		    get_string(item, "phone_number", number, sizeof(number)) != VERR_OK ||
		    get_string(item, "sid", sid, sizeof(sid)) != VERR_OK)
			goto out;
		if (strcmp(number, e164) != 0)
			continue; /* Twilio's PhoneNumber filter may match more loosely */
		if (!sid_valid(sid, "PN"))
			goto out;
		out->found = true;
		memcpy(out->sid, sid, sizeof(sid));
		memcpy(out->phone_number, number, sizeof(number));
		out->voice = true;
		if (json_object_object_get_ex(item, "capabilities", &caps) &&
		    json_object_is_type(caps, json_type_object) &&
		    json_object_object_get_ex(caps, "voice", &voice) &&
		    json_object_is_type(voice, json_type_boolean))
			out->voice = json_object_get_boolean(voice);
		break;
	}
	e = VERR_OK;
out:
	json_object_put(obj);
	if (e != VERR_OK)
		memset(out, 0, sizeof(*out));
	return e;
}

enum verr twilio_account_fetch(struct twilio *tw, struct twilio_account *out,
                               struct twilio_error *err)
{
	static const char endpoint[] = "accounts.fetch";
	struct session *t;
	struct rest_req rq;
	char url[MAX_URL];
	struct attempt a;
	enum verr e;

	memset(out, 0, sizeof(*out));
	if ((e = rest_url(url, sizeof(url), endpoint, err, "%s/2010-04-01/Accounts/%s.json", tw->base,
	                  tw->account_sid)) != VERR_OK)
		return e;
	t = session_get(tw);
	if (t == NULL)
		return not_sent(endpoint, VERR_NOMEM, "could not set up a twilio client", err);
	rq = (struct rest_req){ .endpoint = endpoint, .url = url };
	e = rest_run(tw, t, &rq, &a, err);
	if (e == VERR_OK && (twilio_account_parse(t->resp.data, t->resp.len, out) != VERR_OK ||
	                     strcmp(out->sid, tw->account_sid) != 0)) {
		memset(out, 0, sizeof(*out));
		e = unreadable(endpoint, a.http_status, err);
	}
	return e;
}

enum verr twilio_number_find(struct twilio *tw, enum twilio_number_kind kind, const char *e164,
                             struct twilio_number *out, struct twilio_error *err)
{
	const char *endpoint = kind == TWILIO_NUMBER_INCOMING ? "incoming_phone_numbers.list"
	                                                      : "outgoing_caller_ids.list";
	const char *resource = kind == TWILIO_NUMBER_INCOMING ? "IncomingPhoneNumbers"
	                                                      : "OutgoingCallerIds";
	struct session *t;
	struct rest_req rq;
	struct buf query;
	char url[MAX_URL + MAX_QUERY];
	struct attempt a;
	enum verr e;

	memset(out, 0, sizeof(*out));
	if (e164 == NULL || e164[0] != '+' || strlen(e164) >= TWILIO_MAX_ENDPOINT)
		return not_sent(endpoint, VERR_INVALID, "the phone number is not E.164", err);
	buf_init(&query, MAX_QUERY);
	if (form_append(&query, "PhoneNumber", e164) != VERR_OK) {
		buf_free(&query);
		return not_sent(endpoint, VERR_TOOBIG, "the phone number is too long", err);
	}
	e = rest_url(url, sizeof(url), endpoint, err, "%s/2010-04-01/Accounts/%s/%s.json?%s", tw->base,
	             tw->account_sid, resource, buf_str(&query));
	buf_free(&query);
	if (e != VERR_OK)
		return e;
	t = session_get(tw);
	if (t == NULL)
		return not_sent(endpoint, VERR_NOMEM, "could not set up a twilio client", err);
	rq = (struct rest_req){ .endpoint = endpoint, .url = url, .number = e164 };
	e = rest_run(tw, t, &rq, &a, err);
	if (e == VERR_OK && twilio_number_parse(t->resp.data, t->resp.len, kind, e164, out) != VERR_OK)
		e = unreadable(endpoint, a.http_status, err);
	return e;
}
