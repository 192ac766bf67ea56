/*
 * API keys (common/apikey.h) against the fake database (tests/unit/fakedb.c):
 * which headers reach the database at all, what it is asked (the SHA-256 of
 * the key, never the key), and how its answers become the result: an unknown
 * or revoked key is an authentication failure, an unreachable or refusing
 * database is not. And when a found key is remembered: only under a key
 * watch generation (db_keys_generation) that is not 0 and did not change
 * during the lookup, and only until the generation changes.
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
static struct apikey_cache *cache;

static int setup(void **state)
{
	(void)state;
	fakedb_reset();
	db = db_new("fake", 1);
	cache = apikey_cache_new();
	return cache == NULL;
}

static int teardown(void **state)
{
	(void)state;
	apikey_cache_free(cache);
	cache = NULL;
	return 0;
}

/* Authenticates KEY; asserts the outcome and the name found. */
static void auth_key(enum verr want, const char *want_name)
{
	char name[DB_MAX_KEY_NAME + 1] = "";
	bool read_all = true;
	enum verr e = apikey_authenticate(db, cache, "Bearer " KEY, name, sizeof name, &read_all);

	if (e != want)
		fail_msg("%s, want %s", verr_strerror(e), verr_strerror(want));
	if (want == VERR_OK)
		assert_string_equal(name, want_name);
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

		if (apikey_authenticate(db, cache, invalid[i], name, sizeof name, &read_all) != VERR_AUTH)
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
		e = apikey_authenticate(db, cache, cases[i].header, name, sizeof name, &read_all);
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

/* Without a watch (generation 0) every request asks the database. */
static void test_no_watch_no_memory(void **state)
{
	struct fakedb_result found = { .e = VERR_OK, .name = "billing" };

	(void)state;
	fakedb_default(&found);
	auth_key(VERR_OK, "billing");
	auth_key(VERR_OK, "billing");
	assert_int_equal(fakedb_count("db_apikey_find"), 2);
	/* the same without a cache at all */
	assert_int_equal(apikey_authenticate(db, NULL, "Bearer " KEY, (char[DB_MAX_KEY_NAME]){ 0 },
	                                     DB_MAX_KEY_NAME, &(bool){ false }),
	                 VERR_OK);
	assert_int_equal(fakedb_count("db_apikey_find"), 3);
}

/* Under a generation a found key is remembered; a new generation (a change
 * to api_keys, a reconnection) makes the next request ask again, and that
 * answer (revoked: not found) is what the client gets. */
static void test_remembered_until_change(void **state)
{
	struct fakedb_result found = { .e = VERR_OK, .name = "billing" },
	                     gone = { .e = VERR_NOTFOUND };

	(void)state;
	fakedb_keys_generation(7);
	fakedb_script(&found);
	auth_key(VERR_OK, "billing");
	auth_key(VERR_OK, "billing");
	auth_key(VERR_OK, "billing");
	assert_int_equal(fakedb_count("db_apikey_find"), 1);
	fakedb_keys_generation(8); /* revoked */
	fakedb_script(&gone);
	auth_key(VERR_AUTH, NULL);
	assert_int_equal(fakedb_count("db_apikey_find"), 2);
	/* an unknown key is never remembered */
	fakedb_script(&gone);
	auth_key(VERR_AUTH, NULL);
	assert_int_equal(fakedb_count("db_apikey_find"), 3);
	/* nor an answer the database could not give */
	fakedb_next(VERR_DB_DOWN);
	auth_key(VERR_DB_DOWN, NULL);
	fakedb_keys_generation(0); /* the watch lost: asked again, whatever was remembered */
	fakedb_script(&found);
	auth_key(VERR_OK, "billing");
	assert_int_equal(fakedb_count("db_apikey_find"), 5);
}

/* A change seen while the lookup ran may be this key's revocation: that
 * answer is used once but not remembered. */
static void test_change_during_lookup(void **state)
{
	struct fakedb_result raced = { .e = VERR_OK, .name = "billing", .keys_gen = 4 },
	                     found = { .e = VERR_OK, .name = "billing" };

	(void)state;
	fakedb_keys_generation(3);
	fakedb_script(&raced);
	auth_key(VERR_OK, "billing");
	fakedb_script(&found);
	auth_key(VERR_OK, "billing"); /* asked again: nothing was remembered */
	auth_key(VERR_OK, "billing"); /* remembered under 4 */
	assert_int_equal(fakedb_count("db_apikey_find"), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lookup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_watch_no_memory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remembered_until_change, setup, teardown),
		cmocka_unit_test_setup_teardown(test_change_during_lookup, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
