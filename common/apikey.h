#ifndef VOICE_APIKEY_H
#define VOICE_APIKEY_H

#include <stdbool.h>
#include <stddef.h>

#include "db.h"
#include "err.h"

/*
 * API keys: "vk_" + 64 lowercase hex (32 random bytes, minted by
 * `deploy/voicectl key create`). Only the lowercase hex SHA-256 of the whole
 * key is stored (api_keys.key_hash); keys carry 256 bits of entropy, so a
 * fast hash is enough and lookups stay one index probe.
 */
#define APIKEY_PREFIX "vk_"
#define APIKEY_LEN (3 + 64)

/* True if s has the shape of an API key. */
bool apikey_well_formed(const char *s);

/*
 * The keys a worker process found, remembered while db_keys_generation()
 * says no change to api_keys can have gone unseen (db.h: a LISTEN on the
 * trigger of migration 0008), so a request with a known key costs no round
 * trip, and a key revoked or changed is looked up again from the next
 * request on. Found keys only: an unknown key is always looked up, and each
 * answer is remembered for at most APIKEY_CACHE_MS. Thread-safe.
 */
#define APIKEY_CACHE_SLOTS 256
#define APIKEY_CACHE_MS 60000
struct apikey_cache;
struct apikey_cache *apikey_cache_new(void); /* NULL when out of memory */
void apikey_cache_free(struct apikey_cache *cache);

/*
 * Authenticates an Authorization header value ("Bearer <key>", scheme
 * case-insensitive). On success writes the key's name into name and into
 * *read_all whether the key reads every call (else only those placed with
 * its name; db_apikey_find). cache may be NULL (always looked up).
 * VERR_AUTH: header missing or malformed, key unknown or revoked (the database
 * is not asked about malformed keys). VERR_DB_DOWN / VERR_DB: could not check.
 */
enum verr apikey_authenticate(struct db *db, struct apikey_cache *cache, const char *authorization,
                              char *name, size_t namesz, bool *read_all);

#endif
