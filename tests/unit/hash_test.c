/*
 * SHA-256 in hex (hash_sha256_hex: FIPS 180-2 vectors and bodies that the
 * webhook signatures hash) and hex encoding (hash_hex).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hash.h"

static void test_sha256_hex(void **state)
{
	static const struct {
		const char *in, *hex;
	} valid[] = {
		{ "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
		{ "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
		{ "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
		  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
		{ "{}", "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a" },
		{ "{\"property\": \"value\", \"boolean\": true}",
		  "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620" },
	};
	char out[HASH_SHA256_HEX];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof valid / sizeof valid[0]; i++) {
		assert_int_equal(hash_sha256_hex(valid[i].in, strlen(valid[i].in), out), VERR_OK);
		assert_string_equal(out, valid[i].hex);
	}
}

/* Bytes after an embedded NUL count: len decides, not strlen. */
static void test_sha256_hex_binary(void **state)
{
	static const char in[] = { 'a', '\0', 'b' };
	char out[HASH_SHA256_HEX], a[HASH_SHA256_HEX];

	(void)state;
	assert_int_equal(hash_sha256_hex(in, sizeof in, out), VERR_OK);
	assert_int_equal(hash_sha256_hex("a", 1, a), VERR_OK);
	assert_string_not_equal(out, a);
	assert_int_equal(strlen(out), HASH_SHA256_HEX - 1);
}

static void test_sha256_hex_invalid(void **state)
{
	char out[HASH_SHA256_HEX];

	(void)state;
	assert_int_equal(hash_sha256_hex(NULL, 0, out), VERR_OK);
	assert_string_equal(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	assert_int_equal(hash_sha256_hex(NULL, 1, out), VERR_INVALID);
	assert_string_equal(out, "");
}

static void test_hex(void **state)
{
	static const struct {
		const unsigned char in[4];
		size_t n;
		const char *want;
	} valid[] = {
		{ { 0 }, 0, "" },
		{ { 0x00 }, 1, "00" },
		{ { 0xff }, 1, "ff" },
		{ { 0x0f, 0xf0 }, 2, "0ff0" },
		{ { 0x01, 0x23, 0xab, 0xcd }, 4, "0123abcd" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof valid / sizeof valid[0]; i++) {
		char out[9];

		memset(out, 'x', sizeof out);
		hash_hex(valid[i].in, valid[i].n, out);
		assert_string_equal(out, valid[i].want);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sha256_hex),
		cmocka_unit_test(test_sha256_hex_binary),
		cmocka_unit_test(test_sha256_hex_invalid),
		cmocka_unit_test(test_hex),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
