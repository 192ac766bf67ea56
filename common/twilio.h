#ifndef VOICE_TWILIO_H
#define VOICE_TWILIO_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "config.h"
#include "err.h"

/*
 * Twilio REST client for the Calls resource (docs/TWILIO.md, "The Calls
 * API"; Calls create in twilio_api_v2010.json). One struct twilio per worker
 * process, created after fork and shared by its threads: each thread gets
 * its own libcurl easy handle on first use, and all of them share one
 * connection cache (a curl share), so kept-alive TLS connections to Twilio
 * are reused by whichever thread places the next call instead of handshaking
 * per call.
 * twilio_call_create is thread-safe; twilio_new and twilio_free are not.
 */

#define TWILIO_MAX_REQUEST (16 * 1024)  /* form body we send */
#define TWILIO_MAX_RESPONSE (64 * 1024) /* body we accept; more is an error */
#define TWILIO_MAX_ATTEMPTS 3           /* tries, only where a retry is safe */
#define TWILIO_MAX_TOTAL_MS 25000       /* all tries and waits; nginx gives /call 30 s */
#define TWILIO_MAX_SID 35               /* "CA" + 32 hex + NUL */
#define TWILIO_MAX_STATUS 32
#define TWILIO_MAX_DIRECTION 32
#define TWILIO_MAX_ENDPOINT 128         /* to / from as Twilio echoes them */
#define TWILIO_MAX_DATE 64              /* RFC 2822 date */
#define TWILIO_MAX_MESSAGE 512
#define TWILIO_MAX_CALL_TIMEOUT 600     /* Calls "Timeout", seconds */
#define TWILIO_MAX_NAME 256             /* an account's friendly name */

struct twilio;

/*
 * Creates the client from cfg (read now; cfg may be freed afterwards).
 * Authenticates with HTTP Basic using the API key pair when both
 * api_key_sid and api_key_secret are set (Twilio's recommendation), else
 * account_sid:auth_token. TLS peer and host verification are on, only http
 * and https are allowed, redirects are not followed, and the connect and total
 * timeouts come from cfg->twilio_connect_timeout_ms and cfg->twilio_timeout_ms
 * (the total capped at TWILIO_MAX_TOTAL_MS). api_base_url must be https, or
 * http to 127.0.0.1, localhost or [::1] (a local simulator): credentials never
 * cross a network in clear text.
 * Returns NULL (and logs why, without secrets) when memory or libcurl
 * initialisation fails, or cfg lacks a valid account SID, credentials or base
 * URL (config_load with CONFIG_NEED_REST guarantees them). The caller frees
 * the result with twilio_free.
 */
struct twilio *twilio_new(const struct config *cfg);

/* Closes the connection and frees t; t may be NULL. */
void twilio_free(struct twilio *t);

/*
 * What to send to Calls create. Strings are borrowed for the duration of the
 * call. to and from are required; exactly one of url and twiml is required.
 */
struct twilio_call_params {
	const char *to;              /* E.164 */
	const char *from;            /* E.164; a Twilio number or verified caller ID */
	const char *url;             /* TwiML URL, or NULL */
	const char *twiml;           /* inline TwiML (<= TWIML_MAX_INLINE bytes), or NULL */
	const char *status_callback; /* NULL: no StatusCallback, no events */
	int timeout;                 /* ring seconds 1..TWILIO_MAX_CALL_TIMEOUT; 0 = Twilio's default */
	bool record;                 /* Record=true */
	const char *recording_status_callback; /* with record: RecordingStatusCallback; NULL: none */
	bool machine_detection;      /* MachineDetection=Enable */
	long long deadline_ms;       /* clock_mono_ms() by which every try must be over
	                              * (the client's budget); 0: TWILIO_MAX_TOTAL_MS */
};

/* The created Call resource. Absent or null fields are "". */
struct twilio_call {
	char sid[TWILIO_MAX_SID];           /* always ^CA[0-9a-fA-F]{32}$ */
	char status[TWILIO_MAX_STATUS];     /* "queued" for a new call */
	char direction[TWILIO_MAX_DIRECTION];
	char from[TWILIO_MAX_ENDPOINT];
	char to[TWILIO_MAX_ENDPOINT];
	char account_sid[TWILIO_MAX_SID];
	char date_created[TWILIO_MAX_DATE]; /* RFC 2822, as Twilio wrote it */
};

/*
 * Why a request failed. kind is the value twilio_call_create returned:
 *   VERR_UPSTREAM       Twilio answered: http_status is set, code when the
 *                       body carried one (also used for an unreadable 2xx)
 *   VERR_UPSTREAM_DOWN  no request reached Twilio (DNS, refused, TLS, or the
 *                       connect phase timed out): http_status 0
 *   VERR_TIMEOUT        the request may have been sent but no complete answer
 *                       came (timed out, or the connection dropped after
 *                       sending): Twilio may have placed the call
 * message is Twilio's text (it may quote the numbers sent, so log it only
 * masked or not at all) or ours. retry_after is Twilio's Retry-After in
 * seconds, 0 when not known (1 for a 429 that gave none).
 * may_exist is true when Twilio may have created the call despite the error:
 * after VERR_TIMEOUT, a 2xx whose body was unreadable or too large, or a 5xx.
 * A caller must not let a client retry dial again in that case.
 */
struct twilio_error {
	enum verr kind;
	int http_status;
	int code;
	char message[TWILIO_MAX_MESSAGE];
	int retry_after;
	bool may_exist;
};

/*
 * Appends the form body of Calls create to out (initialise out with
 * TWILIO_MAX_REQUEST): To, From, Url or Twiml, then, when status_callback is
 * set, StatusCallback, StatusCallbackMethod=POST and StatusCallbackEvent once
 * each for initiated, ringing, answered, completed (Twilio sends only
 * "completed" otherwise), then Timeout, Record=true when asked for (and
 * with it, when recording_status_callback is set, RecordingStatusCallback,
 * RecordingStatusCallbackMethod=POST and RecordingStatusCallbackEvent once
 * each for in-progress, completed, absent: Twilio's default is completed
 * alone), then MachineDetection=Enable when asked for. Encoded with
 * form_append (quote_plus, as twilio-python).
 * Errors: VERR_INVALID (to or from NULL or empty, neither or both of url and
 * twiml, timeout out of range), VERR_TOOBIG (twiml over TWIML_MAX_INLINE, or
 * out's max), VERR_NOMEM. out is unchanged on error.
 */
enum verr twilio_call_body(const struct twilio_call_params *p, struct buf *out) VOICE_MUST_USE;

/*
 * Creates a call: POST {api_base_url}/2010-04-01/Accounts/{AccountSid}/Calls.json
 * with twilio_call_body. On success fills out. On failure fills err (kind,
 * status, code, message, retry_after) and returns:
 *   VERR_INVALID, VERR_TOOBIG, VERR_NOMEM  from twilio_call_body; nothing sent
 *   VERR_UPSTREAM        Twilio answered with an error or an unreadable body
 *   VERR_UPSTREAM_DOWN   Twilio could not be reached; the request was not sent
 *   VERR_TIMEOUT         sent but no complete answer in time; the call may exist
 * Retries only what Twilio guarantees was not processed: error 20429 and
 * failures to connect or resolve before anything was sent, at most
 * TWILIO_MAX_ATTEMPTS tries with jittered exponential backoff, all within
 * TWILIO_MAX_TOTAL_MS. Never retries after a timeout or once the request may
 * have been sent. Logs every attempt (numbers masked, no credentials) and
 * counts it in voice_twilio_requests_total (common/metrics.h).
 * out and err may not be NULL.
 */
enum verr twilio_call_create(struct twilio *t, const struct twilio_call_params *p,
                             struct twilio_call *out, struct twilio_error *err);

/*
 * Parses a 2xx Calls create body (len bytes, need not be NUL-terminated) into
 * out. Only the fields of struct twilio_call are read; others are ignored,
 * because Twilio adds fields without notice. Errors: VERR_TOOBIG (len over
 * TWILIO_MAX_RESPONSE), VERR_INVALID (not one JSON object, an embedded NUL,
 * sid missing or not ^CA[0-9a-fA-F]{32}$, account_sid not ^AC[0-9a-fA-F]{32}$,
 * or a known field that is not a string or null or does not fit). out is
 * zeroed on error.
 */
enum verr twilio_call_parse(const char *body, size_t len, struct twilio_call *out);

/*
 * Fills out from an HTTP error answer. Understands Twilio's body
 * {"code","message","more_info","status"} and RFC 9457 problem details
 * {"type","title","status","detail","code"}; anything else (HTML, empty,
 * truncated) leaves code 0 with a message naming the HTTP status. Sets kind
 * to VERR_UPSTREAM, retry_after to 0 and may_exist for a 2xx or 5xx status. Control characters in the message
 * become spaces; it is cut at a UTF-8 boundary to fit. Never fails.
 */
void twilio_error_parse(int http_status, const char *body, size_t len, struct twilio_error *out);

/*
 * Reconciliation (common/reconcile.h) reads calls back: Calls fetch
 * (GET /2010-04-01/Accounts/{AccountSid}/Calls/{Sid}.json) and Calls list
 * (GET /2010-04-01/Accounts/{AccountSid}/Calls.json with To, From,
 * StartTime>, PageSize and Twilio's next_page_uri), as twilio_api_v2010.json
 * (FetchCall, ListCall) describes them. Both are thread-safe (each thread
 * uses a GET handle of its own beside its POST one, sharing the connection
 * cache), send one request (a later pass is the retry) with the client's
 * credentials, and count nothing in voice_twilio_requests_total (the caller
 * counts its outcome in voice_reconcile_total).
 */
#define TWILIO_MAX_ANSWERED_BY 32
#define TWILIO_MAX_PAGE 20           /* PageSize asked for; a longer page is refused */
#define TWILIO_MAX_PAGE_URI 1024     /* next_page_uri we follow */
#define TWILIO_MAX_FETCH_MS 5000     /* default per request; a pass must stay short */

/* A Call resource as fetch and list return it. Absent or null strings are
 * "", an absent or null duration is -1. */
struct twilio_call_info {
	struct twilio_call call;            /* sid, status, direction, from, to, account_sid, date_created */
	char start_time[TWILIO_MAX_DATE];   /* RFC 2822; "" until the call was dialed */
	char end_time[TWILIO_MAX_DATE];
	char answered_by[TWILIO_MAX_ANSWERED_BY];
	long long duration;                 /* seconds, Twilio's "duration" string */
};

/*
 * Parses one Call resource (len bytes, need not be NUL-terminated). As
 * twilio_call_parse, plus start_time, end_time, answered_by (strings or
 * null) and duration (a string of 0..999999999 digits, or null). Also
 * VERR_INVALID when status is missing or not one of Twilio's CallStatus
 * values. out is zeroed (duration -1) on error.
 */
enum verr twilio_call_info_parse(const char *body, size_t len, struct twilio_call_info *out);

/*
 * Fetches call sid (^CA[0-9a-fA-F]{32}$, else VERR_INVALID and nothing is
 * sent). timeout_ms bounds the request (0: TWILIO_MAX_FETCH_MS; never more
 * than the client's total timeout). On success fills out. On failure fills
 * err as twilio_call_create does (kind, http_status, code, message,
 * retry_after; may_exist is false) and returns VERR_UPSTREAM (Twilio
 * answered an error, e.g. 404 / 20404 for an unknown call, 429 / 20429, or an
 * unreadable body), VERR_UPSTREAM_DOWN (not reached) or VERR_TIMEOUT (no
 * complete answer in time); VERR_NOMEM. out and err may not be NULL.
 */
enum verr twilio_call_fetch(struct twilio *t, const char *sid, long long timeout_ms,
                            struct twilio_call_info *out, struct twilio_error *err);

/* What to list. to and from are E.164 (required); started_on_or_after is a
 * UTC date YYYY-MM-DD (StartTime>; required). page_uri, when not NULL, is a
 * previous page's next_page_uri and replaces the other fields. */
struct twilio_calls_query {
	const char *to, *from;
	const char *started_on_or_after;
	const char *page_uri;
};

/* One page of Calls list, in Twilio's order (newest first). */
struct twilio_call_page {
	struct twilio_call_info calls[TWILIO_MAX_PAGE];
	size_t n;
	char next_page_uri[TWILIO_MAX_PAGE_URI]; /* "" on the last page */
};

/*
 * Appends Calls list's query string (without '?') for q to out: To, From,
 * StartTime> and PageSize=TWILIO_MAX_PAGE, encoded with form_append.
 * VERR_INVALID (a field missing or empty, or a date that is not
 * YYYY-MM-DD), VERR_TOOBIG; out is unchanged on error.
 */
enum verr twilio_calls_query_string(const struct twilio_calls_query *q, struct buf *out)
	VOICE_MUST_USE;

/*
 * Parses a Calls list page. Every entry must parse as twilio_call_info_parse
 * and belong to account_sid; next_page_uri must be null, "", or a path of
 * this account's Calls list ("/2010-04-01/Accounts/{account_sid}/Calls.json?"
 * then printable ASCII without spaces, shorter than TWILIO_MAX_PAGE_URI),
 * because the client sends its credentials there. VERR_TOOBIG (len over
 * TWILIO_MAX_RESPONSE, or more than TWILIO_MAX_PAGE calls), VERR_INVALID.
 * out is zeroed on error.
 */
enum verr twilio_call_page_parse(const char *body, size_t len, const char *account_sid,
                                 struct twilio_call_page *out);

/*
 * Lists calls (one page). timeout_ms as for twilio_call_fetch. On success
 * fills out; on failure err and the same returns as twilio_call_fetch, plus
 * VERR_INVALID for a bad query (nothing sent). out (large: allocate it) and
 * err may not be NULL.
 */
enum verr twilio_calls_list(struct twilio *t, const struct twilio_calls_query *q,
                            long long timeout_ms, struct twilio_call_page *out,
                            struct twilio_error *err);

/*
 * Calls update (twilio_api_v2010.json UpdateCall): POST
 * {api_base_url}/2010-04-01/Accounts/{AccountSid}/Calls/{Sid}.json with the
 * single form parameter Status=status, "canceled" (Twilio ends a queued or
 * ringing call and leaves one in progress alone) or "completed" (Twilio ends
 * the call whatever its stage). On success out holds the Call resource
 * Twilio answered with (its status is Twilio's view at that moment). Errors
 * as for twilio_call_create, and the same retry rules; VERR_INVALID (nothing
 * sent) when call_sid is not ^CA[0-9a-fA-F]{32}$ or status is neither.
 * Twilio answers a call that has already ended with a 4xx (its code in
 * err->code, 21220 "call is not in-progress"). may_exist is always false.
 * Uses this thread's POST handle (Calls create points it back at Calls.json).
 * Thread-safe; logs every attempt (call sid, never a credential); failed
 * attempts count in voice_twilio_requests_total. out and err may not be
 * NULL.
 */
enum verr twilio_call_update(struct twilio *t, const char *call_sid, const char *status,
                             struct twilio_call *out, struct twilio_error *err);

/* The Account resource (schema api.v2010.account). Absent fields are "". */
struct twilio_account {
	char sid[TWILIO_MAX_SID];            /* ^AC[0-9a-fA-F]{32}$ */
	char friendly_name[TWILIO_MAX_NAME]; /* for display: control characters become spaces */
	char status[TWILIO_MAX_STATUS];      /* active, suspended, closed */
	char type[TWILIO_MAX_STATUS];        /* Trial, Full */
};

/*
 * Account fetch (FetchAccount): GET {api_base_url}/2010-04-01/Accounts/
 * {AccountSid}.json with the client's credentials: the cheapest request that
 * proves them (a wrong token or key is 401 with code 20003). Errors and
 * retries as for twilio_call_update, on this thread's GET handle;
 * thread-safe. An answer for another account than ours is VERR_UPSTREAM.
 */
enum verr twilio_account_fetch(struct twilio *t, struct twilio_account *out,
                               struct twilio_error *err);

/* Parses a 2xx Account body into out (only the fields above; others are
 * ignored). VERR_TOOBIG, VERR_INVALID (not one JSON object, sid not an AC
 * sid, status missing, a field of the wrong type or too long). out is zeroed
 * on error. */
enum verr twilio_account_parse(const char *body, size_t len, struct twilio_account *out);

/* Which list twilio_number_find searches. */
enum twilio_number_kind {
	TWILIO_NUMBER_INCOMING,  /* IncomingPhoneNumbers: numbers of the account */
	TWILIO_NUMBER_CALLER_ID, /* OutgoingCallerIds: verified caller IDs */
};

/* A phone number found in one of those lists. */
struct twilio_number {
	bool found;
	char sid[TWILIO_MAX_SID];                 /* ^PN[0-9a-fA-F]{32}$ */
	char phone_number[TWILIO_MAX_ENDPOINT];
	bool voice; /* capabilities.voice of an incoming number; true when absent and for caller IDs */
};

/*
 * Looks e164 up in the account's IncomingPhoneNumbers (ListIncomingPhoneNumber)
 * or OutgoingCallerIds (ListOutgoingCallerId): GET …/{Resource}.json?
 * PhoneNumber={e164} (form-encoded, "+" as %2B), the only query parameter
 * sent. out->found only for an entry whose phone_number equals e164.
 * VERR_INVALID (nothing sent) when e164 does not start with '+' or is too
 * long; otherwise as twilio_account_fetch.
 */
enum verr twilio_number_find(struct twilio *t, enum twilio_number_kind kind, const char *e164,
                             struct twilio_number *out, struct twilio_error *err);

/* Parses a 2xx list body: the array incoming_phone_numbers or
 * outgoing_caller_ids (by kind) must be there; out->found for the first
 * entry whose phone_number equals e164 (its sid must be a PN sid).
 * VERR_TOOBIG, VERR_INVALID; out is zeroed on error. */
enum verr twilio_number_parse(const char *body, size_t len, enum twilio_number_kind kind,
                              const char *e164, struct twilio_number *out);

#endif
