#ifndef SIM_REST_H
#define SIM_REST_H

#include "http.h"
#include "reqctx.h"
#include "simcfg.h"

/*
 * The simulator's HTTP surface (a server_handler_fn; ctx is a const struct
 * simcfg *):
 *   POST /2010-04-01/Accounts/{AccountSid}/Calls.json        create a call
 *   GET  /2010-04-01/Accounts/{AccountSid}/Calls.json        list calls (sim/calllist.h)
 *   GET  /2010-04-01/Accounts/{AccountSid}/Calls/{Sid}.json  fetch a call
 *   POST /2010-04-01/Accounts/{AccountSid}/Calls/{Sid}.json  update (Status)
 *   GET  /2010-04-01/Accounts/{Sid}.json                     fetch the account
 *   GET  …/IncomingPhoneNumbers.json, …/OutgoingCallerIds.json  list numbers
 *   GET|DELETE /_sim/requests, /_sim/callbacks   introspection for tests
 *   GET  /_sim/params, /_sim/scenarios, /_sim/calls/{Sid}, /_sim/healthz
 * Twilio routes answer Twilio's error shape {code,message,more_info,status},
 * the /_sim routes the service's own (common/apierr.h);
 * HTTP Basic auth (account SID + auth token, or API key SID + secret) is
 * checked before anything else and the path's account must be ours (401 /
 * 20003 otherwise).
 */
#define SIMREST_MAX_BODY (64 * 1024)

void simrest_handle(const struct http_req *req, struct req_ctx *rc, struct http_resp *resp,
                    void *ctx);

#endif
