#include "sid.h"

#include <string.h>

bool sid_valid(const char *s, const char *prefix)
{
	size_t i;

	if (strncmp(s, prefix, 2) != 0)
		return false;
	for (i = 2; i < SID_LEN; i++) {
		char c = s[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
			return false;
	}
	return s[SID_LEN] == '\0';
}
