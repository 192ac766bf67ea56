#include "cursor.h"

#include <string.h>

#include <openssl/evp.h>

#include "callback.h"
#include "sid.h"

/* The decimal value of the n digits at s (already checked to be digits). */
static int digits(const char *s, int n)
{
	int v = 0;

	while (n-- > 0)
		v = v * 10 + (*s++ - '0');
	return v;
}

/* "2026-11-24T01:27:42.858661Z": the shape, then every field in its range
 * (a real date, no leap second), so the database never sees a timestamp it
 * would refuse: a bad cursor is the client's error, not the database's. */
static bool ts_valid(const char *s)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd.ddddddZ";
	static const int mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int year, month, day;
	size_t i;

	if (strlen(s) != sizeof shape - 1)
		return false;
	for (i = 0; shape[i] != '\0'; i++)
		if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != shape[i])
			return false;
	year = digits(s, 4);
	month = digits(s + 5, 2);
	day = digits(s + 8, 2);
	if (year < 1 || month < 1 || month > 12 || day < 1 || day > mdays[month - 1])
		return false;
	if (month == 2 && day == 29 && !(year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)))
		return false;
	return digits(s + 11, 2) <= 23 && digits(s + 14, 2) <= 59 && digits(s + 17, 2) <= 59;
}

bool cursor_encode(const char *created_at, const char *call_sid, char out[CURSOR_MAX])
{
	unsigned char raw[CURSOR_MAX_PIECE * 2 + 2];
	size_t n = strlen(created_at), m = strlen(call_sid), i;
	int len;

	if (n + m + 1 > sizeof raw || ((n + m + 1 + 2) / 3) * 4 >= CURSOR_MAX)
		return false;
	memcpy(raw, created_at, n);
	raw[n] = '|';
	memcpy(raw + n + 1, call_sid, m);
	len = EVP_EncodeBlock((unsigned char *)out, raw, (int)(n + m + 1));
	for (i = 0; i < (size_t)len; i++) {
		if (out[i] == '+')
			out[i] = '-';
		else if (out[i] == '/')
			out[i] = '_';
		else if (out[i] == '=')
			break;
	}
	out[i] = '\0';
	return true;
}

bool cursor_decode(const char *in, char created_at[CURSOR_MAX_PIECE], char call_sid[CURSOR_MAX_PIECE])
{
	char b64[CURSOR_MAX + 4];
	unsigned char raw[CURSOR_MAX];
	size_t n = strlen(in), i;
	int len;
	char *bar;

	if (n == 0 || n >= CURSOR_MAX || n % 4 == 1)
		return false;
	for (i = 0; i < n; i++) {
		char c = in[i];

		if (c == '-')
			c = '+';
		else if (c == '_')
			c = '/';
		else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
			return false;
		b64[i] = c;
	}
	while (n % 4 != 0)
		b64[n++] = '=';
	b64[n] = '\0';
	len = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)n);
	if (len < 0)
		return false;
	/* EVP_DecodeBlock counts padding bytes as zeros: drop them */
	for (i = strlen(in); i % 4 != 0; i++)
		len--;
	raw[len] = '\0';
	if (memchr(raw, '\0', (size_t)len) != NULL)
		return false;
	bar = strchr((char *)raw, '|');
	if (bar == NULL)
		return false;
	*bar = '\0';
	if (!ts_valid((char *)raw) || !sid_valid(bar + 1, "CA"))
		return false;
	memcpy(created_at, raw, strlen((char *)raw) + 1);
	memcpy(call_sid, bar + 1, strlen(bar + 1) + 1);
	return true;
}
