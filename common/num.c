#include "num.h"

#include <stddef.h>

bool num_parse(const char *s, long long min, long long max, long long *out)
{
	bool neg = false;
	unsigned long long v = 0, limit;
	long long r;
	size_t i = 0;

	if (s == NULL || min > max)
		return false;
	if (s[0] == '-') {
		neg = true;
		i = 1;
	}
	if (s[i] == '\0' || (s[i] == '0' && (s[i + 1] != '\0' || neg)))
		return false;
	if (neg ? min >= 0 : max < 0)
		return false;
	/* magnitude bound: |min| for negatives, max for positives */
	limit = neg ? (unsigned long long)(-(min + 1)) + 1u : (unsigned long long)max;
	for (; s[i] != '\0'; i++) {
		unsigned d;

		if (s[i] < '0' || s[i] > '9')
			return false;
		d = (unsigned)(s[i] - '0');
		if (v > limit / 10 || (v == limit / 10 && d > limit % 10))
			return false;
		v = v * 10 + d;
	}
	r = neg ? -(long long)(v - 1) - 1 : (long long)v;
	if (r < min || r > max)
		return false;
	*out = r;
	return true;
}
