#include "buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_init(struct buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

void buf_free(struct buf *b)
{
	if (b == NULL)
		return;
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void buf_reset(struct buf *b)
{
	buf_truncate(b, 0);
}

void buf_truncate(struct buf *b, size_t len)
{
	if (len > b->len)
		return;
	b->len = len;
	if (b->data != NULL)
		b->data[len] = '\0';
}

static enum verr buf_reserve(struct buf *b, size_t extra)
{
	size_t need, ncap;
	char *p;

	if (b->len + extra < b->len || b->len + extra > b->max)
		return VERR_TOOBIG;
	need = b->len + extra + 1;
	if (need <= b->cap)
		return VERR_OK;
	ncap = b->cap ? b->cap : 256;
	while (ncap < need)
		ncap = ncap > (size_t)-1 / 2 ? need : ncap * 2;
	p = realloc(b->data, ncap);
	if (p == NULL)
		return VERR_NOMEM;
	b->data = p;
	b->cap = ncap;
	return VERR_OK;
}

enum verr buf_append(struct buf *b, const void *p, size_t n)
{
	enum verr e = buf_reserve(b, n);

	if (e != VERR_OK)
		return e;
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return VERR_OK;
}

enum verr buf_puts(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

enum verr buf_putc(struct buf *b, char c)
{
	return buf_append(b, &c, 1);
}

enum verr buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	va_list cp;
	int n;
	enum verr e;

	va_copy(cp, ap);
	n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0)
		return VERR_INVALID;
	if ((e = buf_reserve(b, (size_t)n)) != VERR_OK)
		return e;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return VERR_OK;
}

enum verr buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	enum verr e;

	va_start(ap, fmt);
	e = buf_vprintf(b, fmt, ap);
	va_end(ap);
	return e;
}

const char *buf_str(const struct buf *b)
{
	return b->data != NULL ? b->data : "";
}

bool str_copy(char *dst, size_t dstsz, const char *src)
{
	size_t n;

	if (dstsz == 0)
		return false;
	n = strlen(src);
	if (n >= dstsz) {
		memcpy(dst, src, dstsz - 1);
		dst[dstsz - 1] = '\0';
		return false;
	}
	memcpy(dst, src, n + 1);
	return true;
}
