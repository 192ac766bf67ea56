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
 * Authenticates an Authorization header value ("Bearer <key>", scheme
 * case-insensitive). On success writes the key's name into name and into
 * *read_all whether the key reads every call (else only those placed with
 * its name; db_apikey_find).
 * VERR_AUTH: header missing or malformed, key unknown or revoked (the database
 * is not asked about malformed keys). VERR_DB_DOWN / VERR_DB: could not check.
 */
enum verr apikey_authenticate(struct db *db, const char *authorization, char *name, size_t namesz,
                              bool *read_all);

#endif
