#include "sig.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "hash.h"

#define SIG_SHA1_LEN 20
#define SIG_B64_LEN 28        /* strlen of the base64 of SIG_SHA1_LEN bytes */
#define SIG_MAX_SEGS 6        /* pieces a candidate URL is hashed from */
#define SIG_BODY_HASH_KEY "bodySHA256"

/* A piece of the signed URL; candidates are hashed piecewise, never built. */
struct seg {
	const char *p;
	size_t n;
};

/* The params in signing order with duplicate pairs dropped. */
struct sorted {
	const struct form_param **p;
	size_t n;
};

static int pair_cmp(const void *a, const void *b)
{
	const struct form_param *x = *(const struct form_param *const *)a;
	const struct form_param *y = *(const struct form_param *const *)b;
	int c = strcmp(x->key, y->key);

	return c != 0 ? c : strcmp(x->value, y->value);
}

static enum verr sorted_init(struct sorted *s, const struct form *params)
{
	size_t i, k;

	s->p = NULL;
	s->n = 0;
	if (params == NULL || params->n == 0)
		return VERR_OK;
	for (i = 0; i < params->n; i++)
		if (params->params[i].key == NULL || params->params[i].value == NULL)
			return VERR_INVALID;
	if (params->n > (size_t)-1 / sizeof *s->p)
		return VERR_TOOBIG;
	s->p = malloc(params->n * sizeof *s->p);
	if (s->p == NULL)
		return VERR_NOMEM;
	for (i = 0; i < params->n; i++)
		s->p[i] = &params->params[i];
	qsort(s->p, params->n, sizeof *s->p, pair_cmp);
	for (i = 0, k = 0; i < params->n; i++)
		if (k == 0 || pair_cmp(&s->p[k - 1], &s->p[i]) != 0)
			s->p[k++] = s->p[i];
	s->n = k;
	return VERR_OK;
}

static void sorted_free(struct sorted *s)
{
	free(s->p);
	s->p = NULL;
	s->n = 0;
}

static bool mac_update(EVP_MAC_CTX *c, const char *p, size_t n)
{
	return n == 0 || EVP_MAC_update(c, (const unsigned char *)p, n) == 1;
}

/* OpenSSL's HMAC, fetched once per process: a fetch looks the algorithm up
 * in the provider store under its lock, and perf put EVP_MAC_fetch at 2 % of
 * the webhook worker's samples when every signature check fetched it. The
 * fetched EVP_MAC is immutable and shared by every thread; it lives as long
 * as the process. */
static EVP_MAC *hmac;
static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;

static void hmac_fetch(void)
{
	hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

/* HMAC-SHA1(token, segs... + key1 value1 key2 value2 ...) as base64 into out. */
static bool sign(const char *token, const struct seg *segs, size_t nsegs,
                 const struct sorted *s, char out[SIG_MAX_B64])
{
	unsigned char mac[SIG_SHA1_LEN];
	char digest[] = "SHA1";
	OSSL_PARAM op[2];
	EVP_MAC_CTX *c = NULL;
	size_t i, maclen = 0;
	bool ok = false;

	out[0] = '\0';
	op[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
	op[1] = OSSL_PARAM_construct_end();
	if (pthread_once(&hmac_once, hmac_fetch) != 0 || hmac == NULL ||
	    (c = EVP_MAC_CTX_new(hmac)) == NULL)
		goto out;
	if (EVP_MAC_init(c, (const unsigned char *)token, strlen(token), op) != 1)
		goto out;
	for (i = 0; i < nsegs; i++)
		if (!mac_update(c, segs[i].p, segs[i].n))
			goto out;
	for (i = 0; i < s->n; i++)
		if (!mac_update(c, s->p[i]->key, strlen(s->p[i]->key)) ||
		    !mac_update(c, s->p[i]->value, strlen(s->p[i]->value)))
			goto out;
	if (EVP_MAC_final(c, mac, &maclen, sizeof mac) != 1 || maclen != sizeof mac)
		goto out;
	if (EVP_EncodeBlock((unsigned char *)out, mac, (int)sizeof mac) != SIG_B64_LEN)
		goto out;
	ok = true;
out:
	if (!ok)
		out[0] = '\0';
	EVP_MAC_CTX_free(c);
	OPENSSL_cleanse(mac, sizeof mac);
	return ok;
}

enum verr sig_compute(const char *token, const char *url, const struct form *params,
                      char *out, size_t outsz)
{
	struct sorted s;
	struct seg seg;
	enum verr e;

	if (out != NULL && outsz > 0)
		out[0] = '\0';
	if (out == NULL || outsz < SIG_MAX_B64)
		return VERR_TOOBIG;
	if (token == NULL || token[0] == '\0' || url == NULL)
		return VERR_INVALID;
	if ((e = sorted_init(&s, params)) != VERR_OK)
		return e;
	seg.p = url;
	seg.n = strlen(url);
	e = sign(token, &seg, 1, &s, out) ? VERR_OK : VERR_NOMEM;
	sorted_free(&s);
	return e;
}

/*
 * Where the port sits in a base URL "scheme://[userinfo@]host[:port][/...]".
 * colon is the offset of the ':' before the port (or auth_end when there is
 * no port); auth_end is where the authority ends.
 */
struct base_parts {
	size_t scheme_len;
	size_t colon;
	size_t auth_end;
	size_t len;
};

static bool base_parse(const char *base, struct base_parts *bp)
{
	const char *sep = strstr(base, "://");
	size_t i, host, auth, end;

	if (sep == NULL || sep == base)
		return false;
	bp->scheme_len = (size_t)(sep - base);
	for (i = 0; i < bp->scheme_len; i++) {
		char c = base[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (i > 0 && ((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.'))))
			return false;
	}
	bp->len = strlen(base);
	auth = bp->scheme_len + 3;
	end = auth + strcspn(base + auth, "/?#");
	host = auth;
	for (i = auth; i < end; i++)
		if (base[i] == '@')
			host = i + 1;
	if (host == end)
		return false;
	bp->auth_end = end;
	bp->colon = end;
	if (base[host] == '[') {
		const char *rb = memchr(base + host, ']', end - host);

		if (rb == NULL)
			return false;
		if ((size_t)(rb - base) + 1 < end) {
			if (rb[1] != ':')
				return false;
			bp->colon = (size_t)(rb - base) + 1;
		}
	} else {
		for (i = end; i > host; i--)
			if (base[i - 1] == ':') {
				bp->colon = i - 1;
				break;
			}
	}
	return true;
}

static const char *default_port(const char *base, size_t scheme_len)
{
	if (scheme_len == 5 && strncasecmp(base, "https", 5) == 0)
		return ":443";
	if (scheme_len == 4 && strncasecmp(base, "http", 4) == 0)
		return ":80";
	return NULL;
}

/*
 * True when the first bodySHA256 in the query of request_uri equals the hex
 * SHA-256 of the body (docs/TWILIO.md, "JSON bodies").
 */
static bool body_hash_ok(const char *request_uri, const char *body, size_t body_len)
{
	static const char key[] = SIG_BODY_HASH_KEY "=";
	char want[HASH_SHA256_HEX];
	const char *q = strchr(request_uri, '?');

	if (q == NULL)
		return false;
	for (q++; *q != '\0';) {
		size_t n = strcspn(q, "&");

		if (n >= sizeof key - 1 && strncmp(q, key, sizeof key - 1) == 0) {
			if (n - (sizeof key - 1) != HASH_SHA256_HEX - 1)
				return false;
			if (hash_sha256_hex(body, body_len, want) != VERR_OK)
				return false;
			return CRYPTO_memcmp(q + sizeof key - 1, want, HASH_SHA256_HEX - 1) == 0;
		}
		q += n;
		if (*q == '&')
			q++;
	}
	return false;
}

static bool sig_equal(const char *header, size_t hlen, const char *computed)
{
	return computed[0] != '\0' && hlen == SIG_B64_LEN &&
	       CRYPTO_memcmp(header, computed, SIG_B64_LEN) == 0;
}

bool sig_verify(const char *token, const char *public_base_url, const char *request_uri,
                const struct form *params, const char *body, size_t body_len,
                bool body_is_json, const char *header)
{
	struct seg with[SIG_MAX_SEGS], without[SIG_MAX_SEGS];
	char c_with[SIG_MAX_B64], c_without[SIG_MAX_B64];
	size_t nwith = 0, nwithout = 0, hlen;
	struct base_parts bp;
	struct sorted s;
	const char *port;
	bool ok_with, ok_without;

	if (header == NULL || header[0] == '\0' || token == NULL || token[0] == '\0' ||
	    public_base_url == NULL || request_uri == NULL || request_uri[0] != '/')
		return false;
	if (!base_parse(public_base_url, &bp))
		return false;
	if (body_is_json) {
		if (body == NULL && body_len > 0)
			return false;
		if (!body_hash_ok(request_uri, body, body_len))
			return false;
		params = NULL;
	}
	if (sorted_init(&s, params) != VERR_OK)
		return false;

	/* without any port: up to the ':' before it, then from the authority's end */
	without[nwithout++] = (struct seg){ public_base_url, bp.colon };
	without[nwithout++] = (struct seg){ public_base_url + bp.auth_end, bp.len - bp.auth_end };
	without[nwithout++] = (struct seg){ request_uri, strlen(request_uri) };

	/* with a port: as given when one is present, else the scheme's default */
	port = bp.colon == bp.auth_end ? default_port(public_base_url, bp.scheme_len) : NULL;
	with[nwith++] = (struct seg){ public_base_url, bp.auth_end };
	if (port != NULL)
		with[nwith++] = (struct seg){ port, strlen(port) };
	with[nwith++] = (struct seg){ public_base_url + bp.auth_end, bp.len - bp.auth_end };
	with[nwith++] = (struct seg){ request_uri, strlen(request_uri) };

	ok_with = sign(token, with, nwith, &s, c_with);
	ok_without = sign(token, without, nwithout, &s, c_without);
	sorted_free(&s);
	hlen = strlen(header);
	ok_with = ok_with && sig_equal(header, hlen, c_with);
	ok_without = ok_without && sig_equal(header, hlen, c_without);
	return ok_with || ok_without;
}
