/*
 * API keys (common/apikey.h) against the fake database (tests/unit/fakedb.c):
 * which headers reach the database at all, what it is asked (the SHA-256 of
 * the key, never the key), and how its answers become the result: an unknown
 * or revoked key is an authentication failure, an unreachable or refusing
 * database is not.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "apikey.h"
#include "fakedb.h"

#define KEY "vk_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
/* sha256(KEY), lowercase hex */
#define KEY_HASH "5c7cf52825809a98d14bd4eca4caad089ed4c9065dd39eaa7eb567fb99a016aa"

static struct db *db;

static int setup(void **state)
{
	(void)state;
	fakedb_reset();
	db = db_new("fake", 1);
	return 0;
}

/* Headers refused before any database work: the database is not asked. */
static void test_malformed(void **state)
{
	static const char *const invalid[] = {
		"",
		"Bearer",
		"Bearer ",
		"Basic " KEY,
		"Token " KEY,
		"Bearer" KEY,
		"Bearer vk_0123",
		"Bearer " KEY "0",
		"Bearer " KEY " ",
		"Bearer vk_0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
		"Bearer vk_0123456789abcdeg0123456789abcdef0123456789abcdef0123456789abcdef",
		"Bearer xk_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		"Bearer \t" KEY,
	};
	char name[DB_MAX_KEY_NAME + 1];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
		bool read_all = true;

		if (apikey_authenticate(db, invalid[i], name, sizeof name, &read_all) != VERR_AUTH)
			fail_msg("accepted: \"%s\"", invalid[i]);
		assert_false(read_all);
	}
	assert_int_equal(fakedb_calls(), 0);
	assert_true(apikey_well_formed(KEY));
	assert_false(apikey_well_formed(KEY "0"));
}

/* What the database answers, and what the caller gets. */
static void test_lookup(void **state)
{
	static const struct {
		const char *header;
		struct fakedb_result db;
		enum verr want;
		const char *name; /* when VERR_OK */
		bool read_all;
	} cases[] = {
		{ "Bearer " KEY, { .e = VERR_OK, .name = "billing" }, VERR_OK, "billing", false },
		{ "Bearer " KEY, { .e = VERR_OK, .name = "ops", .read_all = true }, VERR_OK, "ops", true },
		{ "bearer " KEY, { .e = VERR_OK, .name = "lower" }, VERR_OK, "lower", false },
		{ "BEARER   " KEY, { .e = VERR_OK, .name = "spaces" }, VERR_OK, "spaces", false },
		/* unknown and revoked keys are the same to the database: not found */
		{ "Bearer " KEY, { .e = VERR_NOTFOUND }, VERR_AUTH, NULL, false },
		{ "Bearer " KEY, { .e = VERR_DB_DOWN }, VERR_DB_DOWN, NULL, false },
		{ "Bearer " KEY, { .e = VERR_DB }, VERR_DB, NULL, false },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char name[DB_MAX_KEY_NAME + 1] = "";
		bool read_all = !cases[i].read_all;
		enum verr e;

		fakedb_reset();
		fakedb_script(&cases[i].db);
		e = apikey_authenticate(db, cases[i].header, name, sizeof name, &read_all);
		if (e != cases[i].want)
			fail_msg("case %zu: %s, want %s", i, verr_strerror(e), verr_strerror(cases[i].want));
		assert_int_equal(fakedb_count("db_apikey_find"), 1);
		/* the database sees the key's hash, not the key */
		assert_string_equal(fakedb_last_params(), "hash=" KEY_HASH);
		if (e == VERR_OK) {
			assert_string_equal(name, cases[i].name);
			assert_true(read_all == cases[i].read_all);
		} else {
			assert_false(read_all);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_malformed, setup),
		cmocka_unit_test_setup(test_lookup, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
