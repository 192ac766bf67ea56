/*
 * cursor_decode on arbitrary bytes (GET /calls?cursor=… is client input).
 * Whatever decodes must round-trip: encoding the decoded pieces gives back a
 * cursor that decodes to the same pieces.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cursor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char in[CURSOR_MAX + 8], ts[CURSOR_MAX_PIECE], sid[CURSOR_MAX_PIECE], again[CURSOR_MAX];
	char ts2[CURSOR_MAX_PIECE], sid2[CURSOR_MAX_PIECE];

	if (size >= sizeof in)
		return 0;
	memcpy(in, data, size);
	in[size] = '\0';
	if (!cursor_decode(in, ts, sid))
		return 0;
	if (!cursor_encode(ts, sid, again) || !cursor_decode(again, ts2, sid2) ||
	    strcmp(ts, ts2) != 0 || strcmp(sid, sid2) != 0) {
		fprintf(stderr, "fuzz_cursor: round trip failed for %s\n", in);
		abort();
	}
	return 0;
}
