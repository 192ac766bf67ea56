/*
 * Fuzz callreq_parse (then callreq_numbers on what it accepts). The body is
 * copied into a buffer of exactly size bytes, not NUL-terminated, so any
 * read past the end trips AddressSanitizer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "callreq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct call_request r;
	struct callreq_error err;
	struct phone_policy pol;
	struct phone_number to, from;
	char perr[PHONE_MAX_REASON];
	char *body = malloc(size ? size : 1);
	enum verr e;

	if (body == NULL)
		return 0;
	if (size > 0)
		memcpy(body, data, size);
	e = callreq_parse(body, size, &r, &err);
	free(body);

	if (e != VERR_OK) {
		if (err.code == APIERR_NONE || err.message[0] == '\0')
			abort();
		return 0;
	}
	if (err.code != APIERR_NONE || strnlen(r.to, sizeof r.to) == sizeof r.to ||
	    strnlen(r.from, sizeof r.from) == sizeof r.from ||
	    strnlen(r.say, sizeof r.say) == sizeof r.say ||
	    strnlen(r.url, sizeof r.url) == sizeof r.url || strlen(r.country) % 2 != 0 ||
	    (r.say[0] != '\0' && r.url[0] != '\0') ||
	    (r.has_timeout && (r.timeout < CALLREQ_TIMEOUT_MIN || r.timeout > CALLREQ_TIMEOUT_MAX)))
		abort();
	if (phone_policy_parse("*", NULL, NULL, &pol, perr, sizeof perr) != VERR_OK)
		abort();
	e = callreq_numbers(&r, "+14155550199", &pol, &to, &from, &err);
	if (e != VERR_OK && (err.code == APIERR_NONE || err.message[0] == '\0'))
		abort();
	return 0;
}
