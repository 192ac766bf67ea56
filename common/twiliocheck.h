#ifndef VOICE_TWILIOCHECK_H
#define VOICE_TWILIOCHECK_H

#include <stdio.h>

#include "config.h"

/*
 * The Twilio check behind `deploy/voicectl twilio check` (call_fcgi
 * --check-twilio): with the configuration and the REST client the workers
 * use (common/twilio.h), it
 *   1. fetches the account (GET /2010-04-01/Accounts/{Sid}.json) with the
 *      configured credentials (the API key when set, else the auth token):
 *      friendly name, status, type (Trial or Full);
 *   2. when an API key is used, fetches it again with the auth token, which
 *      the webhook pool needs to verify X-Twilio-Signature;
 *   3. looks TWILIO_FROM_NUMBER up among the account's phone numbers
 *      (IncomingPhoneNumbers.json?PhoneNumber=), then its verified caller
 *      IDs (OutgoingCallerIds.json?PhoneNumber=).
 * It writes one line per finding to out, and one line starting "problem: "
 * per problem: credentials refused, account not active, auth token refused
 * or missing, caller ID not usable, Twilio unreachable or failing. Phone
 * numbers are masked, secrets never written. The last line says "ok: …" or
 * how many problems there were.
 */

/* Runs the check; returns the number of problems (0: all is well). */
int twiliocheck_run(const struct config *cfg, FILE *out);

#endif
