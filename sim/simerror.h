#ifndef SIM_SIMERROR_H
#define SIM_SIMERROR_H

#include "err.h"

#define SIMERROR_MAX_MESSAGE 256

/* A Twilio REST error: HTTP status, Twilio code and message. */
struct simerror {
	int status;
	int code;
	char message[SIMERROR_MAX_MESSAGE];
};

/* Fills err as a 400 with Twilio's code and the message fmt formats
 * (truncated to fit), and returns VERR_INVALID: the answer to a request
 * parameter Twilio refuses. */
enum verr simerror_invalid(struct simerror *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
