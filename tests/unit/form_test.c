#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "form.h"

#define MAX_PAIRS 4

struct kv {
	const char *k;
	const char *v;
};

struct valid_case {
	const char *in;
	size_t n;
	struct kv p[MAX_PAIRS];
};

static const struct valid_case valid[] = {
	{ "", 0, { { NULL, NULL } } },
	{ "&", 0, { { NULL, NULL } } },
	{ "&&&", 0, { { NULL, NULL } } },
	{ "a=1", 1, { { "a", "1" } } },
	{ "a=1&b=2", 2, { { "a", "1" }, { "b", "2" } } },
	{ "a=1&&b=2", 2, { { "a", "1" }, { "b", "2" } } },
	{ "&a=1&", 1, { { "a", "1" } } },
	{ "a", 1, { { "a", "" } } },
	{ "a=", 1, { { "a", "" } } },
	{ "a&b=", 2, { { "a", "" }, { "b", "" } } },
	{ "=v", 1, { { "", "v" } } },
	{ "=", 1, { { "", "" } } },
	{ "a=1&a=2&a=1", 3, { { "a", "1" }, { "a", "2" }, { "a", "1" } } },
	{ "To=%2B14155550100", 1, { { "To", "+14155550100" } } },
	{ "To=+14155550100", 1, { { "To", " 14155550100" } } },
	{ "x=a+b", 1, { { "x", "a b" } } },
	{ "x=a%20b", 1, { { "x", "a b" } } },
	{ "x=%7e%7E%2b%2B", 1, { { "x", "~~++" } } },
	{ "x=a=b", 1, { { "x", "a=b" } } },
	{ "x=%25", 1, { { "x", "%" } } },
	{ "x=%26y%3D1", 1, { { "x", "&y=1" } } },
	{ "Body=It%27s+amazing", 1, { { "Body", "It's amazing" } } },
	{ "%41=%42", 1, { { "A", "B" } } },
	{ "a+b=c", 1, { { "a b", "c" } } },
	{ "k=%C3%A9", 1, { { "k", "\xc3\xa9" } } },
	{ "k=\xc3\xa9", 1, { { "k", "\xc3\xa9" } } },
	{ "k=%F0%9F%98%80", 1, { { "k", "\xf0\x9f\x98\x80" } } },
	{ "k=%EF%BF%BF&l=%F4%8F%BF%BF", 2, { { "k", "\xef\xbf\xbf" }, { "l", "\xf4\x8f\xbf\xbf" } } },
	{ "x=;y", 1, { { "x", ";y" } } },
	{ "CallSid=CA1234567890ABCDE&CallStatus=in-progress&SequenceNumber=2", 3,
	  { { "CallSid", "CA1234567890ABCDE" }, { "CallStatus", "in-progress" },
	    { "SequenceNumber", "2" } } },
};

struct invalid_case {
	const char *in;
	size_t len; /* 0: strlen(in) */
	enum verr want;
	const char *detail;
};

static const struct invalid_case invalid[] = {
	{ "x=%", 0, VERR_INVALID, "parameter 'x' has a malformed percent escape" },
	{ "x=%4", 0, VERR_INVALID, "parameter 'x' has a malformed percent escape" },
	{ "x=%zz", 0, VERR_INVALID, "parameter 'x' has a malformed percent escape" },
	{ "x=%4g", 0, VERR_INVALID, "parameter 'x' has a malformed percent escape" },
	{ "x=%%41", 0, VERR_INVALID, "parameter 'x' has a malformed percent escape" },
	{ "a=1&%=1", 0, VERR_INVALID, "parameter #2 name has a malformed percent escape" },
	{ "x=%00", 0, VERR_INVALID, "parameter 'x' contains a nul byte" },
	{ "x=a\0b", 5, VERR_INVALID, "parameter 'x' contains a nul byte" },
	{ "%00=1", 0, VERR_INVALID, "parameter #1 name contains a nul byte" },
	{ "To=%FF", 0, VERR_INVALID, "parameter 'To' is not valid utf-8" },
	{ "To=\xff", 0, VERR_INVALID, "parameter 'To' is not valid utf-8" },
	{ "x=%C3", 0, VERR_INVALID, "parameter 'x' is not valid utf-8" },
	{ "x=%C3%28", 0, VERR_INVALID, "parameter 'x' is not valid utf-8" },
	{ "x=%C0%AF", 0, VERR_INVALID, "parameter 'x' is not valid utf-8" },
	{ "x=%E0%80%AF", 0, VERR_INVALID, "parameter 'x' is not valid utf-8" },
	{ "x=%ED%A0%80", 0, VERR_INVALID, "parameter 'x' is not valid utf-8" },
	{ "x=%F4%90%80%80", 0, VERR_INVALID, "parameter 'x' is not valid utf-8" },
	{ "x=%F8%88%80%80%80", 0, VERR_INVALID, "parameter 'x' is not valid utf-8" },
	{ "%FF=1", 0, VERR_INVALID, "parameter #1 name is not valid utf-8" },
	{ "it%27s=%FF", 0, VERR_INVALID, "parameter #1 is not valid utf-8" },
};

static void test_valid(void **state)
{
	size_t i, j;

	(void)state;
	for (i = 0; i < sizeof valid / sizeof valid[0]; i++) {
		struct form f = { 0 };
		char err[FORM_MAX_ERROR] = "";
		enum verr e = form_parse(valid[i].in, strlen(valid[i].in), &f, err, sizeof err);

		if (e != VERR_OK)
			fail_msg("valid[%zu] \"%s\": %s (%s)", i, valid[i].in, verr_strerror(e), err);
		if (f.n != valid[i].n)
			fail_msg("valid[%zu] \"%s\": %zu pairs, want %zu", i, valid[i].in, f.n,
			         valid[i].n);
		for (j = 0; j < f.n; j++) {
			assert_string_equal(f.params[j].key, valid[i].p[j].k);
			assert_string_equal(f.params[j].value, valid[i].p[j].v);
		}
		form_free(&f);
		assert_null(f.params);
		assert_int_equal(f.n, 0);
	}
}

static void test_invalid(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
		struct form f = { 0 };
		char err[FORM_MAX_ERROR] = "";
		size_t len = invalid[i].len ? invalid[i].len : strlen(invalid[i].in);
		enum verr e = form_parse(invalid[i].in, len, &f, err, sizeof err);

		if (e != invalid[i].want)
			fail_msg("invalid[%zu] \"%s\": got %s", i, invalid[i].in, verr_strerror(e));
		assert_string_equal(err, invalid[i].detail);
		assert_null(f.params);
		assert_int_equal(f.n, 0);
		/* no detail buffer at all, and a tiny one, must be safe */
		assert_int_equal(form_parse(invalid[i].in, len, &f, NULL, 0), invalid[i].want);
		{
			char tiny[6] = "xxxxx";

			assert_int_equal(form_parse(invalid[i].in, len, &f, tiny, sizeof tiny),
			                 invalid[i].want);
			assert_int_equal(strlen(tiny), sizeof tiny - 1);
		}
	}
}

/* Builds "k0=v&k1=v&..." with n pairs. */
static void many_pairs(struct buf *b, size_t n, const char *sep)
{
	size_t i;

	for (i = 0; i < n; i++)
		assert_int_equal(buf_printf(b, "%sk%zu=v", i ? sep : "", i), VERR_OK);
}

static void repeat(struct buf *b, const char *s, size_t times)
{
	size_t i;

	for (i = 0; i < times; i++)
		assert_int_equal(buf_puts(b, s), VERR_OK);
}

static void test_caps(void **state)
{
	struct form f = { 0 };
	struct buf b;
	char err[FORM_MAX_ERROR];

	(void)state;
	buf_init(&b, 1024 * 1024);

	many_pairs(&b, FORM_MAX_PARAMS, "&");
	assert_int_equal(form_parse(b.data, b.len, &f, err, sizeof err), VERR_OK);
	assert_int_equal(f.n, FORM_MAX_PARAMS);
	form_free(&f);
	buf_reset(&b);
	/* empty pairs do not count */
	many_pairs(&b, FORM_MAX_PARAMS, "&&&");
	assert_int_equal(form_parse(b.data, b.len, &f, err, sizeof err), VERR_OK);
	assert_int_equal(f.n, FORM_MAX_PARAMS);
	form_free(&f);
	buf_reset(&b);
	many_pairs(&b, FORM_MAX_PARAMS + 1, "&");
	assert_int_equal(form_parse(b.data, b.len, &f, err, sizeof err), VERR_TOOBIG);
	assert_string_equal(err, "more than 256 parameters");
	assert_null(f.params);

	/* key: decoded length counts, so FORM_MAX_KEY escapes are fine */
	buf_reset(&b);
	repeat(&b, "%41", FORM_MAX_KEY);
	assert_int_equal(buf_puts(&b, "=1"), VERR_OK);
	assert_int_equal(form_parse(b.data, b.len, &f, err, sizeof err), VERR_OK);
	assert_int_equal(strlen(f.params[0].key), FORM_MAX_KEY);
	form_free(&f);
	buf_reset(&b);
	repeat(&b, "k", FORM_MAX_KEY + 1);
	assert_int_equal(form_parse(b.data, b.len, &f, err, sizeof err), VERR_TOOBIG);
	assert_string_equal(err, "parameter #1 name is longer than 256 bytes");

	/* value */
	buf_reset(&b);
	assert_int_equal(buf_puts(&b, "Body="), VERR_OK);
	repeat(&b, "%C3%A9", FORM_MAX_VALUE / 2);
	assert_int_equal(form_parse(b.data, b.len, &f, err, sizeof err), VERR_OK);
	assert_int_equal(strlen(form_get(&f, "Body")), FORM_MAX_VALUE);
	form_free(&f);
	assert_int_equal(buf_puts(&b, "+"), VERR_OK);
	assert_int_equal(form_parse(b.data, b.len, &f, err, sizeof err), VERR_TOOBIG);
	assert_string_equal(err, "parameter 'Body' is longer than 16384 bytes");
	assert_null(f.params);

	buf_free(&b);
}

static void test_get_count(void **state)
{
	static const char in[] = "a=1&b=2&a=3&c";
	struct form f = { 0 }, zero = { 0 };

	(void)state;
	assert_int_equal(form_parse(in, strlen(in), &f, NULL, 0), VERR_OK);
	assert_string_equal(form_get(&f, "a"), "1");
	assert_string_equal(form_get(&f, "b"), "2");
	assert_string_equal(form_get(&f, "c"), "");
	assert_null(form_get(&f, "d"));
	assert_null(form_get(&f, "A"));
	assert_int_equal(form_count(&f, "a"), 2);
	assert_int_equal(form_count(&f, "c"), 1);
	assert_int_equal(form_count(&f, "d"), 0);
	assert_null(form_get(NULL, "a"));
	assert_int_equal(form_count(NULL, "a"), 0);
	assert_null(form_get(&zero, "a"));
	form_free(&f);
	form_free(&f);
	form_free(&zero);
	form_free(NULL);
	assert_int_equal(form_parse(NULL, 0, &f, NULL, 0), VERR_OK);
	assert_int_equal(f.n, 0);
	assert_int_equal(form_parse(NULL, 1, &f, NULL, 0), VERR_INVALID);
}

struct enc_case {
	const char *k;
	const char *v;
	const char *want; /* expected encoding of this pair alone */
};

static const struct enc_case enc[] = {
	{ "To", "+14155550100", "To=%2B14155550100" },
	{ "Body", "It's amazing", "Body=It%27s+amazing" },
	{ "Url", "https://x.example/a?b=1&c=2", "Url=https%3A%2F%2Fx.example%2Fa%3Fb%3D1%26c%3D2" },
	{ "k", "", "k=" },
	{ "", "", "=" },
	{ "a b", "+ %", "a+b=%2B+%25" },
	{ "AZaz09-._~", "*!()", "AZaz09-._~=%2A%21%28%29" },
	{ "StatusCallbackEvent", "initiated", "StatusCallbackEvent=initiated" },
	{ "StatusCallbackEvent", "answered", "StatusCallbackEvent=answered" },
	{ "e", "\xc3\xa9\xf0\x9f\x98\x80", "e=%C3%A9%F0%9F%98%80" },
	{ "ctl", "\t\r\n\x7f", "ctl=%09%0D%0A%7F" },
};

static void test_append_roundtrip(void **state)
{
	struct buf b, one;
	struct form f = { 0 };
	size_t i, n = sizeof enc / sizeof enc[0];

	(void)state;
	buf_init(&b, 4096);
	buf_init(&one, 4096);
	for (i = 0; i < n; i++) {
		buf_reset(&one);
		assert_int_equal(form_append(&one, enc[i].k, enc[i].v), VERR_OK);
		assert_string_equal(buf_str(&one), enc[i].want);
		assert_int_equal(form_append(&b, enc[i].k, enc[i].v), VERR_OK);
	}
	assert_int_equal(form_parse(b.data, b.len, &f, NULL, 0), VERR_OK);
	assert_int_equal(f.n, n);
	for (i = 0; i < n; i++) {
		assert_string_equal(f.params[i].key, enc[i].k);
		assert_string_equal(f.params[i].value, enc[i].v);
	}
	assert_int_equal(form_count(&f, "StatusCallbackEvent"), 2);
	form_free(&f);
	buf_free(&one);
	buf_free(&b);
}

static void test_append_every_byte(void **state)
{
	char v[256];
	struct buf b;
	struct form f = { 0 };
	size_t i;

	(void)state;
	for (i = 1; i < 128; i++)
		v[i - 1] = (char)i;
	v[127] = '\0';
	buf_init(&b, 4096);
	assert_int_equal(form_append(&b, v, v), VERR_OK);
	assert_int_equal(form_parse(b.data, b.len, &f, NULL, 0), VERR_OK);
	assert_int_equal(f.n, 1);
	assert_string_equal(f.params[0].key, v);
	assert_string_equal(f.params[0].value, v);
	form_free(&f);
	buf_free(&b);
}

static void test_append_errors(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 12);
	assert_int_equal(form_append(&b, "a", "1"), VERR_OK);
	assert_int_equal(form_append(&b, "b", "2"), VERR_OK);
	assert_string_equal(buf_str(&b), "a=1&b=2");
	/* "&c=%2B%2B" does not fit: b is left as it was */
	assert_int_equal(form_append(&b, "c", "++"), VERR_TOOBIG);
	assert_string_equal(buf_str(&b), "a=1&b=2");
	assert_int_equal(b.len, 7);
	assert_int_equal(form_append(&b, NULL, "1"), VERR_INVALID);
	assert_int_equal(form_append(&b, "a", NULL), VERR_INVALID);
	assert_int_equal(form_append(NULL, "a", "1"), VERR_INVALID);
	buf_free(&b);
}

static void test_add(void **state)
{
	struct form f = { 0 };
	char *big;
	size_t i;

	(void)state;
	assert_int_equal(form_add(&f, "To", "+14155550100"), VERR_OK);
	assert_int_equal(form_add(&f, "To", "+14155550101"), VERR_OK);
	assert_int_equal(form_add(&f, "e", "\xc3\xa9"), VERR_OK);
	assert_int_equal(f.n, 3);
	assert_string_equal(form_get(&f, "To"), "+14155550100");
	assert_int_equal(form_count(&f, "To"), 2);

	assert_int_equal(form_add(&f, "x", "\xff"), VERR_INVALID);
	assert_int_equal(form_add(&f, "\xc3", "x"), VERR_INVALID);
	assert_int_equal(form_add(&f, NULL, "x"), VERR_INVALID);
	assert_int_equal(form_add(&f, "x", NULL), VERR_INVALID);
	assert_int_equal(form_add(NULL, "x", "y"), VERR_INVALID);

	big = malloc(FORM_MAX_VALUE + 2);
	assert_non_null(big);
	memset(big, 'a', FORM_MAX_VALUE + 1);
	big[FORM_MAX_VALUE + 1] = '\0';
	assert_int_equal(form_add(&f, "x", big), VERR_TOOBIG);
	big[FORM_MAX_VALUE] = '\0';
	assert_int_equal(form_add(&f, "x", big), VERR_OK);
	big[FORM_MAX_KEY + 1] = '\0';
	assert_int_equal(form_add(&f, big, "y"), VERR_TOOBIG);
	big[FORM_MAX_KEY] = '\0';
	assert_int_equal(form_add(&f, big, "y"), VERR_OK);
	free(big);
	assert_int_equal(f.n, 5);

	for (i = f.n; i < FORM_MAX_PARAMS; i++)
		assert_int_equal(form_add(&f, "k", "v"), VERR_OK);
	assert_int_equal(form_add(&f, "k", "v"), VERR_TOOBIG);
	assert_int_equal(f.n, FORM_MAX_PARAMS);
	form_free(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_caps),
		cmocka_unit_test(test_get_count),
		cmocka_unit_test(test_append_roundtrip),
		cmocka_unit_test(test_append_every_byte),
		cmocka_unit_test(test_append_errors),
		cmocka_unit_test(test_add),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
