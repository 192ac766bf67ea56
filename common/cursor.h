#ifndef VOICE_CURSOR_H
#define VOICE_CURSOR_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Opaque keyset cursors for GET /calls: base64url (no padding) of
 * "<created_at>|<call sid>", where created_at is the RFC 3339 UTC timestamp
 * with microseconds that db_calls_list returns. Clients must treat it as
 * opaque; the server validates every byte of it on the way back in.
 */
#define CURSOR_MAX 128
/* A decoded piece with its NUL, with room to spare: created_at (RFC 3339 UTC
 * with microseconds, as db_calls_list returns it) or a call sid. */
#define CURSOR_MAX_PIECE 40

/* Encodes; false if the pieces do not fit CURSOR_MAX. */
bool cursor_encode(const char *created_at, const char *call_sid, char out[CURSOR_MAX]);

/* Decodes and validates (the timestamp's shape and that it names a real
 * instant: month 01-12, a day the month has, hour 00-23, minute and second
 * 00-59; the SID's shape); false when malformed. */
bool cursor_decode(const char *in, char created_at[CURSOR_MAX_PIECE],
                   char call_sid[CURSOR_MAX_PIECE]);

#endif
