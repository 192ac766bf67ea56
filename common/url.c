#include "url.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

static bool is_alnum(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* A present part of u (caller frees with curl_free), or NULL. */
static char *part(CURLU *u, CURLUPart what)
{
	char *v = NULL;

	if (curl_url_get(u, what, &v, 0) != CURLUE_OK)
		return NULL;
	return v;
}

/* A host name as the rules want it (IPv6 literals are libcurl's to judge). */
static bool name_ok(const char *h, unsigned flags)
{
	size_t i;

	if (h[0] == '.' || h[0] == '-')
		return false;
	for (i = 0; h[i] != '\0'; i++)
		if (!is_alnum(h[i]) && h[i] != '.' && h[i] != '-' &&
		    (h[i] != '_' || (flags & URL_HOSTNAME)))
			return false;
	return i > 0;
}

/*
 * The authority as written (a, n bytes) against what libcurl made of it:
 * the same host, byte for byte (IPv6: no zone), then nothing or ":" and 1 to
 * 5 digits that libcurl read as a port other than 0.
 */
static bool authority_ok(const char *a, size_t n, const char *host, const char *zone,
                         const char *port, unsigned flags)
{
	size_t hn = strlen(host), pn;

	if (host[0] == '[') {
		const char *close = memchr(a, ']', n);

		if (zone != NULL || a[0] != '[' || close == NULL)
			return false;
		hn = (size_t)(close - a) + 1;
	} else if (!name_ok(host, flags) || hn > n || memcmp(a, host, hn) != 0) {
		return false;
	}
	if (hn == n)
		return port == NULL;
	pn = n - hn - 1;
	return a[hn] == ':' && pn >= 1 && pn <= 5 && port != NULL && strcmp(port, "0") != 0 &&
	       strspn(a + hn + 1, "0123456789") >= pn;
}

/* Path, query and fragment as written: RFC 3986 pchar / "/" / "?", valid
 * percent-escapes, at most one '#' (none, nor '?', with URL_NO_QUERY). */
static bool rest_ok(const char *p, unsigned flags)
{
	static const char extra[] = "-._~!$&'()*+,;=:@/?";
	bool fragment = false;
	size_t i;

	for (i = 0; p[i] != '\0'; i++) {
		char c = p[i];

		if (c == '%') {
			if (!is_hex(p[i + 1]) || !is_hex(p[i + 2]))
				return false;
			i += 2;
		} else if (c == '#') {
			if (fragment || (flags & URL_NO_QUERY))
				return false;
			fragment = true;
		} else if (c == '?' && (flags & URL_NO_QUERY)) {
			return false;
		} else if (!is_alnum(c) && strchr(extra, c) == NULL) {
			return false;
		}
	}
	return true;
}

enum verr url_check(const char *s, unsigned flags)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *user = NULL, *pass = NULL, *host = NULL, *zone = NULL, *port = NULL;
	enum verr e = VERR_INVALID;
	CURLUcode rc;
	size_t sn, an;
	const char *a;

	if (u == NULL)
		return VERR_NOMEM;
	rc = curl_url_set(u, CURLUPART_URL, s, 0);
	if (rc == CURLUE_OUT_OF_MEMORY)
		e = VERR_NOMEM;
	if (rc != CURLUE_OK || (scheme = part(u, CURLUPART_SCHEME)) == NULL ||
	    (strcmp(scheme, "https") != 0 && !((flags & URL_HTTP) && strcmp(scheme, "http") == 0)))
		goto out;
	/* as written: "scheme://" then the authority (libcurl also takes one or
	 * three slashes, or backslashes) */
	sn = strlen(scheme);
	if (((flags & URL_ANY_CASE) ? strncasecmp(s, scheme, sn) : strncmp(s, scheme, sn)) != 0 ||
	    strncmp(s + sn, "://", 3) != 0)
		goto out;
	a = s + sn + 3;
	an = strcspn(a, "/?#");
	if (an == 0)
		goto out;
	if ((user = part(u, CURLUPART_USER)) != NULL || (pass = part(u, CURLUPART_PASSWORD)) != NULL) {
		e = VERR_FORBIDDEN;
		goto out;
	}
	host = part(u, CURLUPART_HOST);
	zone = part(u, CURLUPART_ZONEID);
	port = part(u, CURLUPART_PORT);
	if (host != NULL && authority_ok(a, an, host, zone, port, flags) && rest_ok(a + an, flags))
		e = VERR_OK;
out:
	curl_free(scheme);
	curl_free(user);
	curl_free(pass);
	curl_free(host);
	curl_free(zone);
	curl_free(port);
	curl_url_cleanup(u);
	return e;
}
