/*
 * Reconciliation reads Twilio's answers, untrusted bytes: a Calls fetch
 * body (twilio_call_info_parse), a Calls list page (twilio_call_page_parse)
 * and the RFC 2822 dates in them (reconcile_rfc2822). What is accepted must
 * hold what the callers rely on: valid sids and statuses, calls of our
 * account only, a next_page_uri of our own call list, at most
 * TWILIO_MAX_PAGE calls.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "callback.h"
#include "reconcile.h"
#include "sid.h"
#include "twilio.h"

#define ACCOUNT "AC0123456789abcdef0123456789abcdef"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what)
{
	fprintf(stderr, "fuzz_reconcile: %s\n", what);
	abort();
}

static void check_call(const struct twilio_call_info *c)
{
	if (!sid_valid(c->call.sid, "CA") || !callback_status_valid(c->call.status) ||
	    c->duration < -1)
		fail("accepted a call resource it should not");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct twilio_call_page page;
	struct twilio_call_info c;
	char date[128];
	long long epoch;
	size_t i;

	if (twilio_call_info_parse((const char *)data, size, &c) == VERR_OK)
		check_call(&c);
	if (twilio_call_page_parse((const char *)data, size, ACCOUNT, &page) == VERR_OK) {
		if (page.n > TWILIO_MAX_PAGE)
			fail("page longer than TWILIO_MAX_PAGE");
		for (i = 0; i < page.n; i++) {
			check_call(&page.calls[i]);
			if (strcmp(page.calls[i].call.account_sid, ACCOUNT) != 0)
				fail("accepted a call of another account");
		}
		if (page.next_page_uri[0] != '\0' &&
		    strncmp(page.next_page_uri, "/2010-04-01/Accounts/" ACCOUNT "/Calls.json?",
		            sizeof "/2010-04-01/Accounts/" ACCOUNT "/Calls.json?" - 1) != 0)
			fail("accepted a next_page_uri outside our call list");
	}
	if (size < sizeof date) {
		memcpy(date, data, size);
		date[size] = '\0';
		(void)reconcile_rfc2822(date, &epoch);
	}
	return 0;
}
