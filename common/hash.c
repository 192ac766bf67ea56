#include "hash.h"

#include <openssl/evp.h>

#define HASH_SHA256_LEN 32

void hash_hex(const unsigned char *in, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = hex[in[i] >> 4];
		out[2 * i + 1] = hex[in[i] & 0x0f];
	}
	out[2 * n] = '\0';
}

enum verr hash_sha256_hex(const void *data, size_t len, char out[HASH_SHA256_HEX])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	out[0] = '\0';
	if (data == NULL && len > 0)
		return VERR_INVALID;
	if (EVP_Digest(data != NULL ? data : "", len, md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen != HASH_SHA256_LEN)
		return VERR_NOMEM;
	hash_hex(md, mdlen, out);
	return VERR_OK;
}
