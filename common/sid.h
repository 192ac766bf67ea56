#ifndef VOICE_SID_H
#define VOICE_SID_H

#include <stdbool.h>

/*
 * Twilio resource SIDs: a two-letter type prefix ("CA" call, "AC" account,
 * "RE" recording, "SK" API key, "PN" phone number...) followed by 32 hex
 * digits. Base layer: libc only.
 */
#define SID_LEN 34 /* characters, without the NUL */

/* True when s is prefix's first two characters followed by exactly 32 hex
 * digits (either case) and nothing else. s and prefix must not be NULL. */
bool sid_valid(const char *s, const char *prefix);

#endif
