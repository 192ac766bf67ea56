#include "cursor.h"

#include <string.h>

#include <openssl/evp.h>

#include "callback.h"

/* "2026-11-24T01:27:42.858661Z" */
static bool ts_valid(const char *s)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd.ddddddZ";
	size_t i;

	if (strlen(s) != sizeof shape - 1)
		return false;
	for (i = 0; shape[i] != '\0'; i++)
		if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != shape[i])
			return false;
	return true;
}

bool cursor_encode(const char *created_at, const char *call_sid, char out[CURSOR_MAX])
{
	unsigned char raw[DB_MAX_TS * 2 + 2];
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

bool cursor_decode(const char *in, char created_at[DB_MAX_TS], char call_sid[DB_MAX_TS])
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
	if (!ts_valid((char *)raw) || !callback_sid_valid(bar + 1, "CA"))
		return false;
	memcpy(created_at, raw, strlen((char *)raw) + 1);
	memcpy(call_sid, bar + 1, strlen(bar + 1) + 1);
	return true;
}
