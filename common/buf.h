#ifndef VOICE_BUF_H
#define VOICE_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "err.h"

/*
 * Bounded growable byte buffer. data is always NUL-terminated (when non-NULL)
 * so it can be used as a C string; len excludes the terminator. Appending past
 * max fails with VERR_TOOBIG and leaves the buffer unchanged.
 */
struct buf {
	char *data;
	size_t len;
	size_t cap;
	size_t max;
};

/* Empty buffer holding at most max bytes (excluding the terminator). */
void buf_init(struct buf *b, size_t max);
/* Frees the storage; b may be NULL. b is left empty and reusable. */
void buf_free(struct buf *b);
/* Empties b keeping its storage. */
void buf_reset(struct buf *b);
/* Drops everything after the first len bytes (a mark taken from b->len
 * earlier), keeping the storage; a len past b->len changes nothing. */
void buf_truncate(struct buf *b, size_t len);
/* Appends n bytes of p. VERR_TOOBIG past max, VERR_NOMEM. */
enum verr buf_append(struct buf *b, const void *p, size_t n) VOICE_MUST_USE;
/* Appends the C string s. */
enum verr buf_puts(struct buf *b, const char *s) VOICE_MUST_USE;
/* Appends one byte. */
enum verr buf_putc(struct buf *b, char c) VOICE_MUST_USE;
/* printf-style append. VERR_TOOBIG, VERR_NOMEM, VERR_INVALID (bad format). */
enum verr buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3))) VOICE_MUST_USE;
enum verr buf_vprintf(struct buf *b, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0))) VOICE_MUST_USE;
/* Returns data, or "" for a buffer that never held anything. Borrowed. */
const char *buf_str(const struct buf *b);

/*
 * Copies at most dstsz-1 bytes of src into dst and NUL-terminates it.
 * Returns false when src did not fit (dst then holds a truncated copy).
 */
bool str_copy(char *dst, size_t dstsz, const char *src);

#endif
