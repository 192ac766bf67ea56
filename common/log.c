#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_MAX_LINE (16 * 1024)
#define LOG_MAX_SECRET_LEN 256
#define LOG_REDACTED "[redacted]"

static enum log_level min_level = LOG_INFO;
static _Thread_local char request_id[LOG_MAX_REQUEST_ID + 1]; /* per request thread */
static char secrets[LOG_MAX_SECRETS][LOG_MAX_SECRET_LEN + 1];
static size_t nsecrets;

bool log_level_parse(const char *s, enum log_level *out)
{
	static const char *const names[] = { "debug", "info", "warn", "error" };
	size_t i;

	for (i = 0; i < sizeof names / sizeof names[0]; i++) {
		if (s != NULL && strcmp(s, names[i]) == 0) {
			*out = (enum log_level)i;
			return true;
		}
	}
	return false;
}

void log_set_level(enum log_level level)
{
	min_level = level;
}

static bool log_enabled(enum log_level level)
{
	return level >= min_level;
}

void log_add_secret(const char *secret)
{
	size_t n, i;

	if (secret == NULL || nsecrets >= LOG_MAX_SECRETS)
		return;
	n = strlen(secret);
	if (n < 4 || n > LOG_MAX_SECRET_LEN)
		return;
	for (i = 0; i < nsecrets; i++) /* a reloaded configuration adds its secrets again */
		if (strcmp(secrets[i], secret) == 0)
			return;
	memcpy(secrets[nsecrets++], secret, n + 1);
}

void log_set_request_id(const char *rid)
{
	if (rid == NULL)
		request_id[0] = '\0';
	else
		str_copy(request_id, sizeof request_id, rid);
}

#define MASK "\xe2\x80\xa2\xe2\x80\xa2\xe2\x80\xa2" /* "•••" */
#define ALNUM "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

/*
 * Digits of the country calling code that starts d (ITU-T E.164 assigned
 * codes, which are prefix-free): 1 and 7 have one digit, the codes below
 * two, every other code three. tests/unit/log_test.c checks this against
 * every code libphonenumber knows.
 */
static size_t cc_len(const char *d)
{
	static const char two[] = "20 27 30 31 32 33 34 36 39 40 41 43 44 45 46 47 48 49 51 52 53 54 "
	                          "55 56 57 58 60 61 62 63 64 65 66 81 82 84 86 90 91 92 93 94 95 98";
	size_t i;

	if (d[0] == '1' || d[0] == '7')
		return 1;
	for (i = 0; i + 1 < sizeof two; i += 3)
		if (two[i] == d[0] && two[i + 1] == d[1])
			return 2;
	return 3;
}

void log_mask_phone(const char *in, char *out, size_t outsz)
{
	size_t n, digits, cc, rest, keep;

	if (outsz == 0)
		return;
	out[0] = '\0';
	if (in == NULL)
		return;
	n = strlen(in);
	digits = n > 0 ? strspn(in + 1, "0123456789") : 0;
	if (in[0] == '+' && digits == n - 1 && digits >= 4 && digits <= 15 && in[1] != '0') {
		/* E.164: the country code and the last few digits, by length */
		cc = cc_len(in + 1);
		rest = digits - cc;
		keep = rest >= 9 ? 4 : rest >= 7 ? 3 : rest >= 4 ? 2 : 0;
		snprintf(out, outsz, "+%.*s" MASK "%s", (int)cc, in + 1, in + n - keep);
	} else if (n >= 6 && n < 64 && strchr(ALNUM, in[n - 1]) != NULL &&
	           strchr(ALNUM, in[n - 2]) != NULL) {
		/* anything else (client:, sip:, "anonymous"): the last two characters */
		snprintf(out, outsz, MASK "%s", in + n - 2);
	} else {
		snprintf(out, outsz, MASK);
	}
}

enum verr log_json_string(struct buf *b, const char *s)
{
	enum verr e = buf_putc(b, '"');
	const unsigned char *p;

	for (p = (const unsigned char *)s; e == VERR_OK && *p != '\0'; p++) {
		switch (*p) {
		case '"': e = buf_puts(b, "\\\""); break;
		case '\\': e = buf_puts(b, "\\\\"); break;
		case '\n': e = buf_puts(b, "\\n"); break;
		case '\r': e = buf_puts(b, "\\r"); break;
		case '\t': e = buf_puts(b, "\\t"); break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				e = buf_printf(b, "\\u%04x", *p);
			else
				e = buf_putc(b, (char)*p);
		}
	}
	return e == VERR_OK ? buf_putc(b, '"') : e;
}

/* Replaces every registered secret in b with LOG_REDACTED (or with stars
 * when the marker is longer than the secret), in place. */
static void redact(struct buf *b)
{
	size_t i;

	if (b->data == NULL)
		return;
	for (i = 0; i < nsecrets; i++) {
		size_t slen = strlen(secrets[i]), rlen = sizeof LOG_REDACTED - 1;
		char *from = b->data, *hit;

		while ((hit = strstr(from, secrets[i])) != NULL) {
			size_t tail = b->len - (size_t)(hit - b->data) - slen;

			if (rlen <= slen) {
				memcpy(hit, LOG_REDACTED, rlen);
				memmove(hit + rlen, hit + slen, tail + 1);
				b->len -= slen - rlen;
				from = hit + rlen;
			} else {
				memset(hit, '*', slen);
				from = hit + slen;
			}
		}
	}
}

void log_timestamp(char *out, size_t outsz, bool micro)
{
	struct timespec ts;
	struct tm tm;
	int frac;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	frac = (int)(micro ? ts.tv_nsec / 1000L : ts.tv_nsec / 1000000L) % (micro ? 1000000 : 1000);
	/* values are clamped so the compiler can prove the output fits */
	snprintf(out, outsz, "%04d-%02d-%02dT%02d:%02d:%02d.%0*dZ", (tm.tm_year + 1900) % 10000,
	         (tm.tm_mon + 1) % 100, tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100,
	         tm.tm_sec % 100, micro ? 6 : 3, frac);
}

void log_emit(enum log_level level, const char *msg, ...)
{
	static const char *const names[] = { "debug", "info", "warn", "error" };
	char ts[LOG_MAX_TIME], masked[LOG_MASKED_MAX];
	struct buf b;
	struct log_field f;
	va_list ap;
	enum verr e;

	if (!log_enabled(level))
		return;
	buf_init(&b, LOG_MAX_LINE);
	log_timestamp(ts, sizeof ts, false);
	e = buf_printf(&b, "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":", ts, names[level]);
	if (e == VERR_OK)
		e = log_json_string(&b, msg);
	if (e == VERR_OK && request_id[0] != '\0') {
		e = buf_puts(&b, ",\"request_id\":");
		if (e == VERR_OK)
			e = log_json_string(&b, request_id);
	}
	va_start(ap, msg);
	for (f = va_arg(ap, struct log_field); e == VERR_OK && f.kind != LOG_F_END;
	     f = va_arg(ap, struct log_field)) {
		if (f.kind != LOG_F_INT && f.str == NULL)
			continue;
		e = buf_putc(&b, ',');
		if (e == VERR_OK)
			e = log_json_string(&b, f.key);
		if (e == VERR_OK)
			e = buf_putc(&b, ':');
		if (e != VERR_OK)
			break;
		if (f.kind == LOG_F_INT) {
			e = buf_printf(&b, "%lld", f.num);
		} else if (f.kind == LOG_F_PHONE) {
			log_mask_phone(f.str, masked, sizeof masked);
			e = log_json_string(&b, masked);
		} else {
			e = log_json_string(&b, f.str);
		}
	}
	va_end(ap);
	if (e == VERR_OK)
		e = buf_puts(&b, "}\n");
	if (e != VERR_OK) {
		buf_reset(&b);
		if (buf_printf(&b, "{\"time\":\"%s\",\"level\":\"error\",\"msg\":\"log line dropped: %s\"}\n",
		               ts, verr_strerror(e)) != VERR_OK)
			buf_reset(&b); /* out of memory: nothing is written */
	}
	redact(&b);
	/* one write per line so concurrent workers sharing a file never interleave */
	if (b.data != NULL && write(STDERR_FILENO, b.data, b.len) < 0) {
		/* nowhere left to report it */
	}
	buf_free(&b);
}
