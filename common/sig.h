#ifndef VOICE_SIG_H
#define VOICE_SIG_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"
#include "form.h"

/*
 * X-Twilio-Signature (docs/TWILIO.md, "Signatures"; twilio-python
 * twilio/request_validator.py, twilio-node src/webhooks/webhooks.ts,
 * twilio-go client/request_validator.go).
 */
#define SIG_MAX_B64 29    /* base64 of a 20-byte HMAC-SHA1, with padding, plus NUL */

/*
 * Computes the signature Twilio sends for a request to url with the decoded
 * form params: HMAC-SHA1 keyed with token over url followed, for each
 * distinct key in byte-wise (strcmp) order, by that key's distinct values in
 * byte-wise order, each appended as key + value with no separators. Keys are
 * sorted before values are considered (never the joined key+value string, the
 * old twilio-go bug #139); duplicate values are counted once as twilio-node
 * (PR #782) and twilio-python do. url is hashed byte for byte, userinfo and
 * port included. params may be NULL (GET, or a JSON body signed through
 * bodySHA256). The standard base64 (with padding) goes into out.
 * Errors: VERR_INVALID (token empty or NULL, url NULL, a pair with a NULL
 * key or value), VERR_TOOBIG (outsz < SIG_MAX_B64), VERR_NOMEM (including
 * an OpenSSL failure). out is "" on error when outsz > 0.
 */
enum verr sig_compute(const char *token, const char *url, const struct form *params,
                      char *out, size_t outsz);

/*
 * True when header is the X-Twilio-Signature of this request.
 * The URL is public_base_url (the configured public origin, e.g.
 * "https://voice.example.com" or "https://voice.example.com:8443", no
 * trailing slash; never derived from Host) followed by request_uri exactly as
 * received (REQUEST_URI: never decoded, re-encoded or re-sorted; it must start
 * with '/'). As the SDKs do ("sig generation on back end is inconsistent"),
 * two forms of that URL are tried: with any port removed, and with the
 * scheme's default port (443 for https, 80 for http) added when none is
 * present; an explicit port is otherwise left unchanged. Userinfo in the base
 * is hashed as given, as the SDK vectors do.
 *
 * Form bodies (body_is_json false): params are the decoded body (NULL for
 * none, e.g. GET, whose parameters are in the query); body is not used.
 * JSON bodies (body_is_json true): params are ignored and the URL alone is
 * signed; the first "bodySHA256" in the query of request_uri must equal the
 * lowercase hex SHA-256 of the raw body (body_len bytes; body may be NULL only
 * when body_len is 0), compared in constant time. A missing bodySHA256 fails
 * closed (unlike twilio-python with a dict; like twilio-go ValidateBody).
 *
 * Signatures are compared with CRYPTO_memcmp after a length check. Returns
 * false for a NULL or empty header, token or base URL, a malformed base URL
 * (no "scheme://"), or any failure. The caller tells a missing header (400)
 * from a bad one (403) itself.
 */
bool sig_verify(const char *token, const char *public_base_url, const char *request_uri,
                const struct form *params, const char *body, size_t body_len,
                bool body_is_json, const char *header);

#endif
