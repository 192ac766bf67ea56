/*
 * Twilio's answers are untrusted bytes too: twilio_call_parse on a 2xx body
 * and twilio_error_parse + twilio_error_map on an error body, for arbitrary
 * input. A parsed call must carry a well-formed sid; the error map must
 * always give a status in 4xx/5xx and a code.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "callback.h"
#include "sid.h"
#include "twilio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int statuses[] = { 400, 401, 404, 429, 500, 503 };
	struct twilio_call call;
	struct twilio_error err;
	const char *code = NULL, *field = NULL;
	int status = 0;

	memset(&call, 0, sizeof call);
	if (twilio_call_parse((const char *)data, size, &call) == VERR_OK &&
	    !sid_valid(call.sid, "CA")) {
		fprintf(stderr, "fuzz_twilio: accepted sid %s\n", call.sid);
		abort();
	}
	memset(&err, 0, sizeof err);
	twilio_error_parse(statuses[size % 6], (const char *)data, size, &err);
	err.kind = VERR_UPSTREAM;
	twilio_error_map(&err, &status, &code, &field);
	if (status < 400 || status > 599 || code == NULL || code[0] == '\0') {
		fprintf(stderr, "fuzz_twilio: mapped to %d %s\n", status, code ? code : "(null)");
		abort();
	}
	return 0;
}
