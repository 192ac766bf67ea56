#include "utf8.h"

size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
	/* the least code point each length may encode; below it is overlong */
	static const uint32_t least[5] = { 0, 0, 0x80, 0x800, 0x10000 };
	uint32_t c;
	size_t len, k;

	if (n == 0)
		return 0;
	c = s[0];
	len = c < 0x80 ? 1 : c < 0xc0 ? 0 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : c < 0xf8 ? 4 : 0;
	if (len == 0 || n < len)
		return 0;
	if (len > 1)
		c &= 0x7fu >> len;
	for (k = 1; k < len; k++) {
		if ((s[k] & 0xc0u) != 0x80u)
			return 0;
		c = (c << 6) | (s[k] & 0x3fu);
	}
	if (c < least[len] || (c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff)
		return 0;
	if (cp != NULL)
		*cp = c;
	return len;
}

bool utf8_valid(const void *s, size_t n)
{
	const unsigned char *p = s;

	while (n > 0) {
		size_t k = utf8_decode(p, n, NULL);

		if (k == 0)
			return false;
		p += k;
		n -= k;
	}
	return true;
}
