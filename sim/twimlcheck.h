#ifndef SIM_TWIMLCHECK_H
#define SIM_TWIMLCHECK_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Checks a TwiML answer the way the simulator judges one: a well-formed XML
 * document (elements, attributes, text, comments, CDATA, processing
 * instructions and character/entity references checked structurally; a
 * DOCTYPE is refused) whose root element is <Response> (Twilio api/errors
 * 12102). Not a validating parser: verbs are not checked against the TwiML
 * schema. Pure logic.
 */
#define SIMTWIML_MAX_DEPTH 32
#define SIMTWIML_MAX_NAME 32
#define SIMTWIML_MAX_WHY 96

struct simtwiml {
	char first_verb[SIMTWIML_MAX_NAME];   /* first child of <Response>, "" if none */
	char reject_reason[SIMTWIML_MAX_NAME]; /* reason of a first <Reject>, default "rejected" */
	char why[SIMTWIML_MAX_WHY];           /* lowercase reason when invalid */
};

/* True if len bytes of doc are TwiML as described above; fills *out either
 * way (why says what is wrong when false). doc may be NULL when len is 0. */
bool simtwiml_check(const char *doc, size_t len, struct simtwiml *out);

#endif
