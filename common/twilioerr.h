#ifndef VOICE_TWILIOERR_H
#define VOICE_TWILIOERR_H

#include "apierr.h"
#include "twilio.h"

/*
 * Our API's answer to a failed Twilio request. The Twilio client
 * (common/twilio.h) reports Twilio's facts in struct twilio_error; this is
 * where they become an error of our catalogue (common/apierr.h), for
 * POST /call and for cancel and hang up alike.
 */

/* What the failed request was doing: it decides the wording, the field and
 * the Retry-After. */
enum twilioerr_op {
	TWILIOERR_CREATE, /* Calls create (POST /call) */
	TWILIOERR_UPDATE, /* Calls update (cancel, hang up) */
};

/*
 * Fills out from e. Pure and table-driven.
 *   21211, 21214, 21217          422 invalid_phone_number   field to
 *   21212                        422 invalid_phone_number   field from
 *   21210                        422 caller_id_not_verified field from
 *       (From is a valid number that Twilio will not present as caller ID
 *       for this account; the caller's "from", or our TWILIO_FROM_NUMBER
 *       when the caller gave none, must change - so not a 502)
 *   21215, 21216                 403 destination_not_allowed field to
 *   20003                        502 twilio_auth_failed
 *   20429, or HTTP 429           503 twilio_unavailable
 *   other HTTP 5xx               503 twilio_unavailable
 *   a 2xx that may have created  502 outcome_unknown
 *       the call but could not be read
 *   any other answer             502 twilio_error
 *   kind VERR_UPSTREAM_DOWN      503 twilio_unavailable
 *   kind VERR_TIMEOUT            504 twilio_timeout
 *   kind anything else           500 internal_error (a local failure)
 * Fields are named only for TWILIOERR_CREATE (they are POST /call's body
 * fields). twilio_code is e->code. retry_after is Twilio's Retry-After when
 * it gave one, else, for TWILIOERR_CREATE, TWILIOERR_RETRY_S on a 503.
 * The message is Twilio's own text when Twilio refused the request with a
 * 4xx carrying an error code (it is about the client's request, e.g.
 * 21211), otherwise a fixed sentence for the kind of failure: never
 * e->message then, which holds libcurl's text (addresses, ports, TLS
 * detail) or ours, for the log only. out->message is borrowed from e or
 * static.
 */
#define TWILIOERR_RETRY_S 5

void twilioerr_map(const struct twilio_error *e, enum twilioerr_op op, struct apierr_detail *out);

#endif
