#ifndef SIM_INBOUND_H
#define SIM_INBOUND_H

#include "simcfg.h"

/*
 * `twilio_sim inbound`: plays one incoming call against our service.
 *   --from E164 --to E164 --url URL [--method POST|GET]
 *   [--status-callback URL] [--status-callback-method POST|GET]
 *   [--duration SECONDS (0..3600, default 5)]
 * Sends the signed Voice URL request (Direction=inbound, CallStatus=ringing),
 * prints the answer body on stdout, then, with --status-callback, the status
 * callbacks ringing, in-progress, completed (or busy / no-answer for a first
 * <Reject reason="busy|rejected">, failed for an unusable answer).
 * Returns the process exit status: 0 when the answer was TwiML (HTTP 200,
 * XML with a <Response> root), 1 when it was not, 3 when the Voice URL
 * could not be reached, 64 for a usage error.
 */
int siminbound_main(const struct simcfg *cfg, int argc, char **argv);

#endif
