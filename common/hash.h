#ifndef VOICE_HASH_H
#define VOICE_HASH_H

#include <stddef.h>

#include "err.h"

/*
 * Digests and their hex form, on OpenSSL's libcrypto. Base layer: links no
 * network, database or phone-number library.
 */
#define HASH_SHA256_HEX 65 /* 64 lowercase hex digits plus NUL */

/*
 * Writes the lowercase hex SHA-256 of len bytes of data, NUL-terminated, to
 * out. data may be NULL only when len is 0.
 * Errors: VERR_INVALID (data NULL with len > 0), VERR_NOMEM (OpenSSL failed).
 * out is "" on error.
 */
enum verr hash_sha256_hex(const void *data, size_t len, char out[HASH_SHA256_HEX]);

/* Writes n bytes of in as 2n lowercase hex digits and a NUL to out, which
 * holds at least 2n + 1 bytes. */
void hash_hex(const unsigned char *in, size_t n, char *out);

#endif
