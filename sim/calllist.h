#ifndef SIM_CALLLIST_H
#define SIM_CALLLIST_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"
#include "params.h"
#include "simcfg.h"

/*
 * Calls list of Twilio's REST API v2010 (twilio_api_v2010.json:
 * GET /2010-04-01/Accounts/{AccountSid}/Calls.json, operation ListCall):
 * its query parameters, the filters they select and the pages answered.
 */
#define SIMLIST_DEFAULT_PAGE_SIZE 50   /* the OAS: "The default is 50" */
#define SIMLIST_MAX_PAGE_SIZE 1000     /* "... and the maximum is 1000" */
#define SIMLIST_MAX_CALLS 100000       /* call documents one request reads */
#define SIMLIST_MAX_TEXT 256
#define SIMLIST_MAX_FILTERS 4096

/* A time bound: unset, or seconds since the epoch (UTC); a YYYY-MM-DD date
 * is its midnight, with day set. */
struct simlist_time {
	bool set;
	bool day;
	long long t;
};

/* A validated ListCall query. Strings are "" when absent. */
struct simlist_query {
	char to[SIMLIST_MAX_TEXT], from[SIMLIST_MAX_TEXT];
	char parent_call_sid[SIMLIST_MAX_TEXT], status[SIMLIST_MAX_TEXT];
	struct simlist_time start_on, start_before, start_after; /* StartTime, StartTime<, StartTime> */
	struct simlist_time end_on, end_before, end_after;       /* EndTime, EndTime<, EndTime> */
	long long page_size, page;
	char page_token[SIMLIST_MAX_TEXT];
	char filters[SIMLIST_MAX_FILTERS]; /* the filter parameters re-encoded, for page URIs */
};

/*
 * Validates a query string as Twilio's ListCall parameters: every key is one
 * of To, From, ParentCallSid, Status, StartTime, StartTime<, StartTime>,
 * EndTime, EndTime<, EndTime>, PageSize, Page, PageToken (else 400 / 20001;
 * real Twilio ignores unknown keys, the simulator refuses them so our client
 * is held to the OAS); none repeats (400 / 21200); Status is a
 * call_enum_status value, ParentCallSid a CA sid, the times YYYY-MM-DD (as
 * the OAS describes them) or YYYY-MM-DDTHH:MM:SSZ, PageSize 1..1000, Page
 * >= 0, strings shorter than SIMLIST_MAX_TEXT (400 / 21200). VERR_OK, or
 * VERR_INVALID with *err filled.
 */
enum verr simlist_query_parse(const char *query, struct simlist_query *q, struct simerror *err);

/* True when the Call resource call (a json_object) passes q's filters. A
 * StartTime filter reads start_time, or date_created for a call not started
 * yet; an EndTime filter excludes calls that have not ended. */
struct json_object;
bool simlist_match(const struct simlist_query *q, struct json_object *call);

/*
 * Answers Calls list for cfg's account: the calls of the state directory
 * that match q, newest first (date_created, then sid), page q->page of
 * q->page_size, as Twilio's ListCallResponse (calls, start, end, page,
 * page_size, uri, first_page_uri, next_page_uri, previous_page_uri; the
 * next page's URI carries the filters, Page and a PageToken). *out is a new
 * object (caller puts it). VERR_IO (the directory), VERR_TOOBIG (more than
 * SIMLIST_MAX_CALLS documents), VERR_NOMEM.
 */
enum verr simlist_calls(const struct simcfg *cfg, const struct simlist_query *q,
                        struct json_object **out);

#endif
