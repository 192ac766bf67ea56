#ifndef SIM_HOOK_H
#define SIM_HOOK_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "err.h"
#include "form.h"
#include "sig.h"
#include "simcfg.h"

/*
 * Outbound webhooks as Twilio sends them (docs/TWILIO.md, "Signatures" and
 * "Status callbacks"):
 * POST with a form-encoded body, or GET with the parameters appended to the
 * query; X-Twilio-Signature = HMAC-SHA1 (auth token) over the exact URL
 * requested (plus the sorted POST parameters); I-Twilio-Idempotency-Token
 * when given. The URL's fragment (Twilio's connection overrides) is never
 * sent nor signed. TLS is verified (SIM_CA_FILE or the system store);
 * redirects are not followed.
 */
#define SIMHOOK_MAX_BODY (64 * 1024)   /* response body kept */
#define SIMHOOK_MAX_URL 8192           /* URL requested, GET query included */
#define SIMHOOK_TIMEOUT_MS 15000       /* Twilio's voice webhook limit */
#define SIMHOOK_CONNECT_MS 5000
#define SIMHOOK_MAX_ERROR 160

struct simhook_res {
	long status;                 /* HTTP status; 0 when none was received */
	bool connect_failed;         /* TCP or TLS could not be set up */
	char error[SIMHOOK_MAX_ERROR]; /* lowercase transport error, "" if none */
	char signature[SIG_MAX_B64];
	char content_type[128];
	struct buf url;              /* the URL requested (and signed) */
	struct buf body;             /* at most SIMHOOK_MAX_BODY bytes */
};

void simhook_res_init(struct simhook_res *r);
/* Frees the buffers; r may be NULL. */
void simhook_res_free(struct simhook_res *r);

/*
 * Sends one signed request to url with method "GET" or "POST" and params
 * (borrowed; may be empty). token may be NULL for no idempotency header.
 * The caller has run curl_global_init. Returns VERR_OK when an HTTP response
 * arrived (whatever its status), VERR_UPSTREAM_DOWN (connect/TLS failure),
 * VERR_TIMEOUT, VERR_TOOBIG (body over SIMHOOK_MAX_BODY or URL too long),
 * VERR_INVALID (bad url or method), VERR_NOMEM, VERR_IO; res->error says
 * what happened in every failure case. res must be initialised.
 */
enum verr simhook_send(const struct simcfg *cfg, const char *url, const char *method,
                       const struct form *params, const char *token, struct simhook_res *res);

#endif
