#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "utf8.h"

struct valid_case {
	const char *s; /* one whole sequence */
	size_t len;
	uint32_t cp;
};

static const struct valid_case valid[] = {
	{ "\x00", 1, 0x0 },
	{ "A", 1, 0x41 },
	{ "\x7f", 1, 0x7f },
	{ "\xc2\x80", 2, 0x80 },
	{ "\xc3\xa9", 2, 0xe9 },
	{ "\xdf\xbf", 2, 0x7ff },
	{ "\xe0\xa0\x80", 3, 0x800 },
	{ "\xe2\x82\xac", 3, 0x20ac },
	{ "\xed\x9f\xbf", 3, 0xd7ff },
	{ "\xee\x80\x80", 3, 0xe000 },
	{ "\xef\xbf\xbe", 3, 0xfffe },
	{ "\xef\xbf\xbf", 3, 0xffff },
	{ "\xf0\x90\x80\x80", 4, 0x10000 },
	{ "\xf0\x9f\x98\x80", 4, 0x1f600 },
	{ "\xf4\x8f\xbf\xbf", 4, 0x10ffff },
};

struct invalid_case {
	const char *s;
	size_t n;
	const char *why;
};

static const struct invalid_case invalid[] = {
	{ "\x80", 1, "stray continuation byte" },
	{ "\xbf", 1, "stray continuation byte" },
	{ "\xc0\x80", 2, "overlong U+0000 (0xc0)" },
	{ "\xc0\xaf", 2, "overlong '/' (0xc0)" },
	{ "\xc1\xbf", 2, "overlong U+007F (0xc1)" },
	{ "\xe0\x80\x80", 3, "overlong U+0000 in three bytes" },
	{ "\xe0\x9f\xbf", 3, "overlong U+07FF in three bytes" },
	{ "\xf0\x80\x80\x80", 4, "overlong U+0000 in four bytes" },
	{ "\xf0\x8f\xbf\xbf", 4, "overlong U+FFFF in four bytes" },
	{ "\xed\xa0\x80", 3, "surrogate U+D800" },
	{ "\xed\xad\xbf", 3, "surrogate U+DB7F" },
	{ "\xed\xb0\x80", 3, "surrogate U+DC00" },
	{ "\xed\xbf\xbf", 3, "surrogate U+DFFF" },
	{ "\xed\xa0\xbd\xed\xb8\x80", 6, "surrogate pair (CESU-8)" },
	{ "\xf4\x90\x80\x80", 4, "U+110000" },
	{ "\xf5\x80\x80\x80", 4, "lead 0xf5" },
	{ "\xf7\xbf\xbf\xbf", 4, "lead 0xf7" },
	{ "\xf8\x88\x80\x80\x80", 5, "lead 0xf8 (five bytes)" },
	{ "\xfc\x84\x80\x80\x80\x80", 6, "lead 0xfc (six bytes)" },
	{ "\xfe", 1, "byte 0xfe" },
	{ "\xff", 1, "byte 0xff" },
	{ "\xc3", 1, "truncated two-byte sequence" },
	{ "\xe2\x82", 2, "truncated three-byte sequence" },
	{ "\xe2", 1, "truncated three-byte sequence" },
	{ "\xf0\x9f\x98", 3, "truncated four-byte sequence" },
	{ "\xc3\x41", 2, "ascii where a continuation byte belongs" },
	{ "\xe2\x82\x41", 3, "ascii in the last continuation byte" },
	{ "\xf0\x9f\xc3\xa9", 4, "lead byte where a continuation byte belongs" },
	{ "\xc3\xc3", 2, "two lead bytes" },
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static void test_valid(void **state)
{
	unsigned char padded[8];
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(valid); i++) {
		const unsigned char *s = (const unsigned char *)valid[i].s;
		uint32_t cp = 0xdeadbeef;

		assert_int_equal(utf8_decode(s, valid[i].len, &cp), valid[i].len);
		assert_int_equal(cp, valid[i].cp);
		assert_int_equal(utf8_decode(s, valid[i].len, NULL), valid[i].len);
		assert_true(utf8_valid(s, valid[i].len));
		/* bytes after the sequence are not part of it */
		memcpy(padded, s, valid[i].len);
		memcpy(padded + valid[i].len, "\xff\xff\xff", 3);
		assert_int_equal(utf8_decode(padded, valid[i].len + 3, &cp), valid[i].len);
		assert_false(utf8_valid(padded, valid[i].len + 3));
		/* every cut of a multi-byte sequence is truncated, never shorter */
		if (valid[i].len > 1)
			assert_int_equal(utf8_decode(s, valid[i].len - 1, &cp), 0);
	}
}

static void test_invalid(void **state)
{
	unsigned char buf[16];
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(invalid); i++) {
		uint32_t cp = 0xdeadbeef;

		buf[0] = 'a';
		memcpy(buf + 1, invalid[i].s, invalid[i].n);
		if (utf8_decode((const unsigned char *)invalid[i].s, invalid[i].n, &cp) != 0 ||
		    cp != 0xdeadbeef || utf8_valid(invalid[i].s, invalid[i].n) ||
		    utf8_valid(buf, invalid[i].n + 1))
			fail_msg("accepted: %s", invalid[i].why);
	}
}

static void test_strings(void **state)
{
	static const char mixed[] = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";
	uint32_t cp = 7;

	(void)state;
	assert_int_equal(utf8_decode((const unsigned char *)"A", 0, &cp), 0);
	assert_int_equal(cp, 7);
	assert_true(utf8_valid("", 0));
	assert_true(utf8_valid("a\0b", 3));
	assert_true(utf8_valid(mixed, sizeof mixed - 1));
	assert_false(utf8_valid(mixed, sizeof mixed - 2)); /* the emoji cut short */
}

/* Encodes cp the RFC 3629 way, for the exhaustive round trip. */
static size_t encode(uint32_t cp, unsigned char out[4])
{
	if (cp < 0x80) {
		out[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (unsigned char)(0xc0 | (cp >> 6));
		out[1] = (unsigned char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (unsigned char)(0xe0 | (cp >> 12));
		out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (unsigned char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (unsigned char)(0xf0 | (cp >> 18));
	out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (unsigned char)(0x80 | (cp & 0x3f));
	return 4;
}

static void test_every_code_point(void **state)
{
	unsigned char s[4];
	uint32_t c;

	(void)state;
	for (c = 0; c <= 0x10ffff; c++) {
		uint32_t cp = 0xdeadbeef;
		size_t n = encode(c, s);
		bool surrogate = c >= 0xd800 && c <= 0xdfff;

		if (utf8_decode(s, n, &cp) != (surrogate ? 0 : n) || (!surrogate && cp != c))
			fail_msg("U+%04X decoded wrong", (unsigned)c);
	}
}

/* Every lead byte outside RFC 3629's table is rejected whatever follows. */
static void test_bad_lead_bytes(void **state)
{
	unsigned char s[4] = { 0, 0x80, 0x80, 0x80 };
	unsigned b;

	(void)state;
	for (b = 0x80; b <= 0xff; b++) {
		s[0] = (unsigned char)b;
		if (b <= 0xc1 || b >= 0xf5)
			assert_int_equal(utf8_decode(s, sizeof s, NULL), 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_every_code_point),
		cmocka_unit_test(test_bad_lead_bytes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
