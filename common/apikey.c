#include "apikey.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "clock.h"
#include "hash.h"
#include "metrics.h"

bool apikey_well_formed(const char *s)
{
	size_t i;

	if (strncmp(s, APIKEY_PREFIX, 3) != 0 || strlen(s) != APIKEY_LEN)
		return false;
	for (i = 3; i < APIKEY_LEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* One remembered key, in the slot its hash's first two hex digits name
 * (a SHA-256 spreads keys evenly; a key that lands in a taken slot
 * replaces the one there). */
struct cached_key {
	char hash[HASH_SHA256_HEX];
	char name[DB_MAX_KEY_NAME];
	bool read_all;
	unsigned long long gen; /* 0: empty */
	long long at_ms;
};

struct apikey_cache {
	pthread_mutex_t mu;
	struct cached_key slot[APIKEY_CACHE_SLOTS];
};

struct apikey_cache *apikey_cache_new(void)
{
	struct apikey_cache *cache = calloc(1, sizeof *cache);

	if (cache != NULL)
		pthread_mutex_init(&cache->mu, NULL);
	return cache;
}

void apikey_cache_free(struct apikey_cache *cache)
{
	if (cache == NULL)
		return;
	pthread_mutex_destroy(&cache->mu);
	free(cache);
}

static struct cached_key *slot_of(struct apikey_cache *cache, const char *hash)
{
	static const char hex[] = "0123456789abcdef";

	return &cache->slot[(strchr(hex, hash[0]) - hex) * 16 + (strchr(hex, hash[1]) - hex)];
}

/* The remembered answer for hash, if read under generation gen (not 0)
 * and not too old. */
static bool cache_get(struct apikey_cache *cache, const char *hash, unsigned long long gen,
                      char *name, size_t namesz, bool *read_all)
{
	struct cached_key *k = slot_of(cache, hash);
	bool hit;

	pthread_mutex_lock(&cache->mu);
	hit = k->gen == gen && strcmp(k->hash, hash) == 0 &&
	      clock_mono_ms() - k->at_ms < APIKEY_CACHE_MS;
	if (hit) {
		str_copy(name, namesz, k->name);
		*read_all = k->read_all;
	}
	pthread_mutex_unlock(&cache->mu);
	return hit;
}

static void cache_put(struct apikey_cache *cache, const char *hash, unsigned long long gen,
                      const char *name, bool read_all)
{
	struct cached_key *k = slot_of(cache, hash);

	pthread_mutex_lock(&cache->mu);
	str_copy(k->hash, sizeof k->hash, hash);
	str_copy(k->name, sizeof k->name, name);
	k->read_all = read_all;
	k->gen = gen;
	k->at_ms = clock_mono_ms();
	pthread_mutex_unlock(&cache->mu);
}

enum verr apikey_authenticate(struct db *db, struct apikey_cache *cache, const char *authorization,
                              char *name, size_t namesz, bool *read_all)
{
	const char *key;
	char hash[HASH_SHA256_HEX];
	unsigned long long gen;
	enum verr e;

	*read_all = false;
	if (strncasecmp(authorization, "Bearer ", 7) != 0)
		return VERR_AUTH;
	key = authorization + 7;
	while (*key == ' ')
		key++;
	if (!apikey_well_formed(key))
		return VERR_AUTH;
	if (hash_sha256_hex(key, APIKEY_LEN, hash) != VERR_OK)
		return VERR_NOMEM;
	gen = cache != NULL ? db_keys_generation(db) : 0;
	if (gen != 0 && cache_get(cache, hash, gen, name, namesz, read_all)) {
		metrics_count_apikey(true);
		return VERR_OK;
	}
	metrics_count_apikey(false);
	e = db_apikey_find(db, hash, name, namesz, read_all);
	/* only what was read under a generation that is still current: a
	 * change noticed meanwhile may be this key's revocation */
	if (e == VERR_OK && gen != 0 && db_keys_generation(db) == gen)
		cache_put(cache, hash, gen, name, *read_all);
	return e == VERR_NOTFOUND ? VERR_AUTH : e;
}
