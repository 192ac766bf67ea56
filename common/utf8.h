#ifndef VOICE_UTF8_H
#define VOICE_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Strict UTF-8 as RFC 3629 section 4 defines it: no overlong forms, no
 * surrogates (U+D800..U+DFFF), nothing above U+10FFFF. Policy on top (which
 * code points a caller accepts) stays with the caller.
 */

/*
 * Decodes the code point at s, reading at most n bytes. Returns its length
 * (1 to 4) and stores it in *cp (cp may be NULL), or returns 0 when n is 0 or
 * s does not start with a whole well-formed sequence (*cp untouched).
 */
size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);

/* True when the n bytes at s are well-formed UTF-8 (NUL counts as U+0000). */
bool utf8_valid(const void *s, size_t n);

#endif
