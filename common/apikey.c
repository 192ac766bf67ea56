#include "apikey.h"

#include <string.h>
#include <strings.h>

#include "hash.h"

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

enum verr apikey_authenticate(struct db *db, const char *authorization, char *name, size_t namesz,
                              bool *read_all)
{
	const char *key;
	char hash[HASH_SHA256_HEX];
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
	e = db_apikey_find(db, hash, name, namesz, read_all);
	return e == VERR_NOTFOUND ? VERR_AUTH : e;
}
