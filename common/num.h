#ifndef VOICE_NUM_H
#define VOICE_NUM_H

#include <stdbool.h>

/*
 * The one checked integer conversion: s must be a complete base-10 integer
 * (optional leading '-', digits only, no spaces, no '+', no leading zeros
 * beyond a lone "0") within [min, max]. Returns false otherwise; *out is
 * written only on success.
 */
bool num_parse(const char *s, long long min, long long max, long long *out);

#endif
