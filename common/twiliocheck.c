#include "twiliocheck.h"

#include <stdarg.h>
#include <string.h>

#include "buf.h"
#include "log.h"
#include "twilio.h"

/* Counts and prints one problem line. */
static void problem(int *n, FILE *out, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void problem(int *n, FILE *out, const char *fmt, ...)
{
	va_list ap;

	(*n)++;
	fputs("problem: ", out);
	va_start(ap, fmt);
	vfprintf(out, fmt, ap);
	va_end(ap);
	fputc('\n', out);
}

/* The problem line for a failed request; what names the request, creds the
 * settings to check when Twilio refused the credentials. */
static void request_problem(int *n, FILE *out, const char *base, const char *what,
                            const char *creds, const struct twilio_error *e)
{
	if (e->kind == VERR_UPSTREAM_DOWN)
		problem(n, out, "could not reach Twilio at %s (%s): %s", base, what, e->message);
	else if (e->kind == VERR_TIMEOUT)
		problem(n, out, "Twilio at %s did not answer in time (%s; TWILIO_TIMEOUT_MS)", base, what);
	else if (e->kind != VERR_UPSTREAM)
		problem(n, out, "could not ask Twilio (%s): %s", what, e->message);
	else if (e->code == 20003 || e->http_status == 401)
		problem(n, out, "Twilio refused the credentials (%s: http %d, code %d): check %s", what,
		        e->http_status, e->code, creds);
	else if (e->code == 20404 || e->http_status == 404)
		problem(n, out, "Twilio does not know this account (%s: http %d, code %d): check "
		        "TWILIO_ACCOUNT_SID", what, e->http_status, e->code);
	else
		problem(n, out, "Twilio refused the request (%s: http %d, code %d): %s", what,
		        e->http_status, e->code, e->message);
}

/* Fetches the account with cfg's credentials; true when it worked. */
static bool account(const struct config *cfg, struct twilio *tw, const char *creds, int *n,
                    FILE *out, struct twilio_account *acct)
{
	struct twilio_error err;

	if (twilio_account_fetch(tw, acct, &err) == VERR_OK)
		return true;
	request_problem(n, out, cfg->api_base_url, "account fetch", creds, &err);
	return false;
}

/* With an API key configured, the auth token is only proven by asking with
 * it: webhook signatures depend on it. */
static void auth_token(const struct config *cfg, int *n, FILE *out)
{
	struct config tok = *cfg;
	struct twilio_account acct;
	struct twilio *tw;

	if (cfg->auth_token[0] == '\0') {
		problem(n, out, "TWILIO_AUTH_TOKEN is not set: webhook_fcgi needs it to verify "
		        "X-Twilio-Signature");
		return;
	}
	tok.api_key_sid[0] = tok.api_key_secret[0] = '\0';
	tw = twilio_new(&tok);
	if (tw == NULL) {
		problem(n, out, "could not set up a Twilio client with the auth token");
		return;
	}
	if (account(cfg, tw, "TWILIO_AUTH_TOKEN (webhook signatures will not verify)", n, out,
	            &acct))
		fprintf(out, "auth token: accepted by Twilio (it verifies webhook signatures)\n");
	twilio_free(tw);
}

/* Where TWILIO_FROM_NUMBER stands: a number of the account, else a verified
 * caller ID, else a problem. */
static void caller_id(const struct config *cfg, struct twilio *tw, int *n, FILE *out)
{
	char masked[LOG_MASKED_MAX];
	struct twilio_number num;
	struct twilio_error err;

	if (cfg->from_number[0] == '\0') {
		fprintf(out, "caller ID: TWILIO_FROM_NUMBER is not set: every POST /call must give "
		        "\"from\"\n");
		return;
	}
	log_mask_phone(cfg->from_number, masked, sizeof masked);
	if (twilio_number_find(tw, TWILIO_NUMBER_INCOMING, cfg->from_number, &num, &err) != VERR_OK) {
		request_problem(n, out, cfg->api_base_url, "phone number lookup", "the credentials", &err);
		return;
	}
	if (num.found && num.voice) {
		fprintf(out, "caller ID: TWILIO_FROM_NUMBER %s is a phone number of this account (%s)\n",
		        masked, num.sid);
		return;
	}
	if (num.found) {
		problem(n, out, "TWILIO_FROM_NUMBER %s is a phone number of this account (%s) without "
		        "voice capability: calls from it fail", masked, num.sid);
		return;
	}
	if (twilio_number_find(tw, TWILIO_NUMBER_CALLER_ID, cfg->from_number, &num, &err) != VERR_OK) {
		request_problem(n, out, cfg->api_base_url, "caller ID lookup", "the credentials", &err);
		return;
	}
	if (num.found)
		fprintf(out, "caller ID: TWILIO_FROM_NUMBER %s is a verified caller ID of this account "
		        "(%s)\n", masked, num.sid);
	else
		problem(n, out, "TWILIO_FROM_NUMBER %s is neither a phone number of this account nor a "
		        "verified caller ID: calls from it fail (422 caller_id_not_verified)", masked);
}

int twiliocheck_run(const struct config *cfg, FILE *out)
{
	bool api_key = cfg->api_key_sid[0] != '\0' && cfg->api_key_secret[0] != '\0';
	const char *creds = api_key ? "TWILIO_API_KEY_SID and TWILIO_API_KEY_SECRET"
	                            : "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN";
	struct twilio_account acct;
	struct twilio *tw;
	int n = 0;

	fprintf(out, "twilio: %s, account %s, %s%s\n", cfg->api_base_url, cfg->account_sid,
	        api_key ? "API key " : "auth token", api_key ? cfg->api_key_sid : "");
	tw = twilio_new(cfg);
	if (tw == NULL) {
		problem(&n, out, "could not set up the Twilio client (the log line above says why)");
		goto done;
	}
	if (account(cfg, tw, creds, &n, out, &acct)) {
		fprintf(out, "account: \"%s\" (%s), status %s, type %s\n", acct.friendly_name, acct.sid,
		        acct.status, acct.type[0] ? acct.type : "unknown");
		if (strcmp(acct.status, "active") != 0)
			problem(&n, out, "the account is %s: Twilio places no calls for it", acct.status);
		if (strcmp(acct.type, "Trial") == 0)
			fprintf(out, "note: a trial account calls only verified numbers and plays a trial "
			        "message first\n");
		if (api_key)
			auth_token(cfg, &n, out);
		caller_id(cfg, tw, &n, out);
	} else {
		fprintf(out, "note: the caller ID was not checked (the account fetch failed)\n");
	}
	twilio_free(tw);
done:
	if (n == 0)
		fprintf(out, "ok: the credentials work%s\n",
		        cfg->from_number[0] ? " and the caller ID can place calls" : "");
	else
		fprintf(out, "%d problem%s found\n", n, n == 1 ? "" : "s");
	fflush(out);
	return n;
}
