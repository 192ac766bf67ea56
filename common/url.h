#ifndef VOICE_URL_H
#define VOICE_URL_H

#include "err.h"

/*
 * Absolute http(s) URLs that we hand to Twilio or build on: TwiML URLs,
 * status callbacks, the public and Twilio API base URLs. libcurl's URL API
 * (curl_url_set) parses; the rules below keep only the plain RFC 3986 form
 * that every consumer reads the same way. Links libcurl.
 */

#define URL_HTTP (1u << 0)     /* http:// is accepted besides https:// */
#define URL_NO_QUERY (1u << 1) /* no query and no fragment */
#define URL_HOSTNAME (1u << 2) /* host names as RFC 1123 has them: no '_' */
#define URL_ANY_CASE (1u << 3) /* the scheme in any case ("HTTPS://"), not only lowercase */

/*
 * Checks that s is an absolute URL of scheme https (with URL_HTTP also
 * http), in lowercase unless URL_ANY_CASE, written "scheme://authority"
 * with exactly two slashes, then an optional path, query and fragment,
 * where:
 *   - the authority is a host and an optional port, without userinfo;
 *   - the host is a bracketed IPv6 address (no zone) or a name of ASCII
 *     letters, digits, '.', '-' and '_' (not with URL_HOSTNAME) that starts
 *     with neither '.' nor '-' and that libcurl takes as written (a numeric
 *     form such as "0x7f.1", which it rewrites, or a percent-encoded name
 *     is refused);
 *   - the port, when its ':' is present, is 1 to 5 digits worth 1..65535;
 *   - path, query and fragment use only RFC 3986 pchar, '/' and '?', with
 *     well-formed percent-escapes and at most one '#'.
 * Spaces, control characters and non-ASCII bytes are refused everywhere.
 * Returns VERR_OK; VERR_FORBIDDEN when libcurl parses s as an http(s) URL
 * that carries userinfo (a user or password, even empty), whatever else is
 * wrong with it; VERR_INVALID for anything else refused; VERR_NOMEM when
 * libcurl could not allocate. s must not be NULL.
 */
enum verr url_check(const char *s, unsigned flags);

#endif
