/*
 * Fuzz phone_parse and phone_policy_parse. Input: two bytes of default
 * region (a NUL first byte means none), then the number. Whatever parses must
 * be canonical E.164 that parses again to itself.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "phone.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_INPUT 256

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char region[3] = "", input[MAX_INPUT + 1], err[PHONE_MAX_REASON], why[PHONE_MAX_REASON];
	struct phone_number n, again;
	struct phone_policy pol;
	size_t len, digits;

	if (size < 2)
		return 0;
	memcpy(region, data, 2);
	len = size - 2 > MAX_INPUT ? MAX_INPUT : size - 2;
	memcpy(input, data + 2, len);
	input[len] = '\0';

	if (phone_parse(input, region[0] != '\0' ? region : NULL, &n, err, sizeof err) == VERR_OK) {
		len = strlen(n.e164);
		digits = strspn(n.e164 + 1, "0123456789");
		if (n.e164[0] != '+' || len < 2 || len > 16 || digits != len - 1 ||
		    (unsigned)n.type >= PHONE_TYPE__COUNT || n.region[0] == '\0')
			abort();
		if (phone_parse(n.e164, NULL, &again, err, sizeof err) != VERR_OK ||
		    strcmp(again.e164, n.e164) != 0 || strcmp(again.region, n.region) != 0 ||
		    again.type != n.type)
			abort();
		if (phone_policy_parse("*", NULL, NULL, &pol, err, sizeof err) != VERR_OK)
			abort();
		(void)phone_policy_allows(&pol, &n, why, sizeof why);
	} else if (strlen(err) == 0) {
		abort(); /* every refusal says why */
	}

	/* the same bytes as configuration lists */
	if (phone_policy_parse(input, input, input, &pol, err, sizeof err) == VERR_OK) {
		if (pol.n_allowed > PHONE_MAX_ALLOWED || (pol.blocked >> PHONE_TYPE__COUNT) != 0)
			abort();
	}
	return 0;
}
