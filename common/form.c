#include "form.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

/* Longest key quoted by name in an error detail; longer keys go by position. */
#define FORM_MAX_QUOTED_KEY 40

enum decode_fail {
	DECODE_OK = 0,
	DECODE_ESCAPE,
	DECODE_NUL,
	DECODE_UTF8,
	DECODE_TOOBIG
};

static const char *const decode_reason[] = {
	[DECODE_OK] = "is valid",
	[DECODE_ESCAPE] = "has a malformed percent escape",
	[DECODE_NUL] = "contains a nul byte",
	[DECODE_UTF8] = "is not valid utf-8",
	[DECODE_TOOBIG] = "is too long",
};

static void set_err(char *err, size_t errsz, const char *msg)
{
	if (err != NULL && errsz > 0)
		str_copy(err, errsz, msg);
}

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Decodes n bytes of s into d (room for min(n, max) bytes plus a NUL), as
 * a NUL-terminated string of at most max bytes; its length goes to *len.
 */
static enum decode_fail decode(const char *s, size_t n, size_t max, char *d, size_t *len)
{
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '+') {
			c = ' ';
		} else if (c == '%') {
			int h, l;

			if (n - i < 3 || (h = hexval((unsigned char)s[i + 1])) < 0 ||
			    (l = hexval((unsigned char)s[i + 2])) < 0)
				return DECODE_ESCAPE;
			c = (unsigned char)(h * 16 + l);
			i += 2;
		}
		if (c == '\0')
			return DECODE_NUL;
		if (o == max)
			return DECODE_TOOBIG;
		d[o++] = (char)c;
	}
	d[o] = '\0';
	*len = o;
	return utf8_valid(d, o) ? DECODE_OK : DECODE_UTF8;
}

/* Appends a pair whose key and value f (or the caller) already holds. */
static enum verr form_push(struct form *f, char *key, char *value)
{
	if (f->n >= FORM_MAX_PARAMS)
		return VERR_TOOBIG;
	if (f->n == f->cap) {
		size_t cap = f->cap < 8 ? 8 : f->cap * 2;
		struct form_param *p = realloc(f->params, cap * sizeof *p);

		if (p == NULL)
			return VERR_NOMEM;
		f->params = p;
		f->cap = cap;
	}
	f->params[f->n].key = key;
	f->params[f->n].value = value;
	f->n++;
	return VERR_OK;
}

static bool quotable(const char *key)
{
	size_t i, n = strlen(key);

	if (n == 0 || n > FORM_MAX_QUOTED_KEY)
		return false;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)key[i];

		if (c < 0x20 || c > 0x7e || c == '\'' || c == '\\' || c == '"')
			return false;
	}
	return true;
}

static void decode_err(char *err, size_t errsz, enum decode_fail why, const char *key,
                       size_t index)
{
	char msg[FORM_MAX_ERROR];

	if (err == NULL || errsz == 0)
		return;
	if (why == DECODE_TOOBIG) {
		if (key == NULL)
			snprintf(msg, sizeof msg, "parameter #%zu name is longer than %d bytes",
			         index, FORM_MAX_KEY);
		else if (quotable(key))
			snprintf(msg, sizeof msg, "parameter '%s' is longer than %d bytes", key,
			         FORM_MAX_VALUE);
		else
			snprintf(msg, sizeof msg, "parameter #%zu is longer than %d bytes", index,
			         FORM_MAX_VALUE);
	} else if (key == NULL) {
		snprintf(msg, sizeof msg, "parameter #%zu name %s", index, decode_reason[why]);
	} else if (quotable(key)) {
		snprintf(msg, sizeof msg, "parameter '%s' %s", key, decode_reason[why]);
	} else {
		snprintf(msg, sizeof msg, "parameter #%zu %s", index, decode_reason[why]);
	}
	set_err(err, errsz, msg);
}

static enum verr decode_verr(enum decode_fail why, bool nomem)
{
	if (nomem)
		return VERR_NOMEM;
	return why == DECODE_TOOBIG ? VERR_TOOBIG : VERR_INVALID;
}

/*
 * Every decoded key and value of a parsed form lives in one block (the
 * arena): a decoded pair takes at most its raw bytes plus two NULs. perf
 * under callback load showed the allocator (two strings a pair, an array
 * grown one pair at a time) in a tenth of webhook_fcgi's time.
 */
enum verr form_parse(const char *data, size_t len, struct form *out, char *err, size_t errsz)
{
	struct form f = { 0 };
	size_t pos = 0, index = 0, used = 0, pairs = 1, i;
	enum verr e = VERR_OK;

	memset(out, 0, sizeof *out);
	if (data == NULL && len > 0) {
		set_err(err, errsz, "form data missing");
		return VERR_INVALID;
	}
	if (len == 0)
		return VERR_OK;
	for (i = 0; i < len; i++)
		pairs += data[i] == '&';
	f.cap = pairs < FORM_MAX_PARAMS ? pairs : FORM_MAX_PARAMS; /* empty pairs aside */
	f.params = malloc(f.cap * sizeof *f.params);
	f.arena = malloc(len + 2 * pairs);
	if (f.params == NULL || f.arena == NULL) {
		free(f.params);
		free(f.arena);
		set_err(err, errsz, "out of memory decoding form");
		return VERR_NOMEM;
	}
	f.arena_len = len + 2 * pairs;
	while (pos < len) {
		const char *pair = data + pos, *amp, *eq;
		size_t plen, klen, n;
		char *key, *value;
		enum decode_fail why;

		amp = memchr(pair, '&', len - pos);
		plen = amp != NULL ? (size_t)(amp - pair) : len - pos;
		pos += plen + 1;
		if (plen == 0)
			continue;
		index++;
		if (f.n >= FORM_MAX_PARAMS) {
			char msg[FORM_MAX_ERROR];

			snprintf(msg, sizeof msg, "more than %d parameters", FORM_MAX_PARAMS);
			set_err(err, errsz, msg);
			e = VERR_TOOBIG;
			goto out;
		}
		eq = memchr(pair, '=', plen);
		klen = eq != NULL ? (size_t)(eq - pair) : plen;
		key = f.arena + used;
		why = decode(pair, klen, FORM_MAX_KEY, key, &n);
		if (why != DECODE_OK) {
			decode_err(err, errsz, why, NULL, index);
			e = decode_verr(why, false);
			goto out;
		}
		used += n + 1;
		value = f.arena + used;
		why = decode(eq != NULL ? eq + 1 : "", eq != NULL ? plen - klen - 1 : 0,
		             FORM_MAX_VALUE, value, &n);
		if (why != DECODE_OK) {
			decode_err(err, errsz, why, key, index);
			e = decode_verr(why, false);
			goto out;
		}
		used += n + 1;
		if ((e = form_push(&f, key, value)) != VERR_OK) {
			set_err(err, errsz, "out of memory decoding form");
			goto out;
		}
	}
out:
	if (e != VERR_OK) {
		form_free(&f);
		return e;
	}
	*out = f;
	return VERR_OK;
}

/* True when s is inside f's arena (then the arena owns it). */
static bool in_arena(const struct form *f, const char *s)
{
	uintptr_t a = (uintptr_t)f->arena, p = (uintptr_t)s;

	return f->arena != NULL && p >= a && p < a + f->arena_len;
}

void form_free(struct form *f)
{
	size_t i;

	if (f == NULL)
		return;
	for (i = 0; i < f->n; i++)
		if (!in_arena(f, f->params[i].key))
			free(f->params[i].key); /* form_add's pair: the value shares it */
	free(f->params);
	free(f->arena);
	memset(f, 0, sizeof *f);
}

const char *form_get(const struct form *f, const char *key)
{
	size_t i;

	if (f == NULL || key == NULL)
		return NULL;
	for (i = 0; i < f->n; i++)
		if (strcmp(f->params[i].key, key) == 0)
			return f->params[i].value;
	return NULL;
}

size_t form_count(const struct form *f, const char *key)
{
	size_t i, c = 0;

	if (f == NULL || key == NULL)
		return 0;
	for (i = 0; i < f->n; i++)
		if (strcmp(f->params[i].key, key) == 0)
			c++;
	return c;
}

enum verr form_add(struct form *f, const char *key, const char *value)
{
	size_t klen, vlen;
	char *k, *v;
	enum verr e;

	if (f == NULL || key == NULL || value == NULL)
		return VERR_INVALID;
	klen = strlen(key);
	vlen = strlen(value);
	if (klen > FORM_MAX_KEY || vlen > FORM_MAX_VALUE || f->n >= FORM_MAX_PARAMS)
		return VERR_TOOBIG;
	if (!utf8_valid(key, klen) || !utf8_valid(value, vlen))
		return VERR_INVALID;
	k = malloc(klen + 1 + vlen + 1); /* one block: key, then value */
	if (k == NULL)
		return VERR_NOMEM;
	memcpy(k, key, klen + 1);
	v = k + klen + 1;
	memcpy(v, value, vlen + 1);
	e = form_push(f, k, v);
	if (e != VERR_OK)
		free(k);
	return e;
}

static bool unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

static enum verr encode(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	char chunk[192];
	size_t n = 0;
	enum verr e;

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (n > sizeof chunk - 3) {
			if ((e = buf_append(b, chunk, n)) != VERR_OK)
				return e;
			n = 0;
		}
		if (unreserved(c)) {
			chunk[n++] = (char)c;
		} else if (c == ' ') {
			chunk[n++] = '+';
		} else {
			chunk[n++] = '%';
			chunk[n++] = hex[c >> 4];
			chunk[n++] = hex[c & 0x0f];
		}
	}
	return buf_append(b, chunk, n);
}

enum verr form_append(struct buf *b, const char *key, const char *value)
{
	size_t old;
	enum verr e = VERR_OK;

	if (b == NULL || key == NULL || value == NULL)
		return VERR_INVALID;
	old = b->len;
	if (old > 0)
		e = buf_putc(b, '&');
	if (e == VERR_OK)
		e = encode(b, key);
	if (e == VERR_OK)
		e = buf_putc(b, '=');
	if (e == VERR_OK)
		e = encode(b, value);
	if (e != VERR_OK)
		buf_truncate(b, old);
	return e;
}
