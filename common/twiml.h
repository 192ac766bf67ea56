#ifndef VOICE_TWIML_H
#define VOICE_TWIML_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "err.h"

/*
 * A small TwiML writer (https://www.twilio.com/docs/voice/twiml). It appends
 * one document to a caller-owned struct buf: the XML declaration Twilio
 * recommends (api/errors/11750), then a <Response> root (api/errors/12102)
 * holding the verbs in the order they were added. Output has the shape
 * twilio-python produces (ElementTree): no whitespace between elements and
 * "<Name />" for empty elements, e.g.
 *   <?xml version="1.0" encoding="UTF-8"?><Response><Hangup /></Response>
 *
 * Every string written into text or an attribute is escaped: & < > " ' always,
 * plus CR in text and TAB, LF, CR in attributes as character references so an
 * XML parser gives back the exact bytes. Input must be valid UTF-8 made of
 * XML 1.0 characters: any other control character (U+0000-U+001F except TAB,
 * LF, CR), U+FFFE, U+FFFF or malformed UTF-8 is VERR_INVALID.
 *
 * Every function that fails leaves the buffer exactly as it was before the
 * call, so a caller may try something else (for example a shorter text).
 */

/* Inline TwiML (the Calls API "Twiml" parameter) is limited to 4000
 * characters (twilio_api_v2010.json, Calls create). We count bytes, which are
 * never fewer than characters. Use this as the buf max for inline TwiML. */
#define TWIML_MAX_INLINE 4000
/* Our cap for TwiML answered to a webhook; use it as the buf max there. */
#define TWIML_MAX_RESPONSE (64 * 1024)
/* Longest <Pause length> we write, in seconds. */
#define TWIML_MAX_PAUSE 600

/* <Reject reason="..."> (docs voice/twiml/reject). */
enum twiml_reject_reason {
	TWIML_REJECT_REJECTED = 0, /* Twilio's default */
	TWIML_REJECT_BUSY,
};

/*
 * Writer state. Fields are private to twiml.c; the struct is public only so
 * callers can keep it on the stack. The buffer is borrowed, not owned.
 */
struct twiml {
	struct buf *b;
	size_t verbs;
	bool finished;
};

/*
 * Starts a document in b (appends the XML declaration; b should be empty and
 * its max TWIML_MAX_INLINE or TWIML_MAX_RESPONSE). b is borrowed until
 * twiml_finish returns; the caller keeps owning and freeing it.
 * Errors: VERR_TOOBIG (b's max), VERR_NOMEM.
 */
enum verr twiml_begin(struct twiml *t, struct buf *b) VOICE_MUST_USE;

/*
 * <Say voice="..." language="...">text</Say>. voice and language may be NULL
 * or "" to leave the attribute out (Twilio's defaults then apply).
 * Errors: VERR_INVALID (text NULL or empty, a string that is not XML-safe
 * UTF-8 as described above, or the document already finished), VERR_TOOBIG,
 * VERR_NOMEM.
 */
enum verr twiml_say(struct twiml *t, const char *text, const char *voice, const char *language)
	VOICE_MUST_USE;

/*
 * <Dial><Number>e164</Number></Dial>. Twilio requires E.164 inside <Number>
 * (warning 13223): '+', a non-zero digit, then 1 to 14 digits.
 * Errors: VERR_INVALID (not E.164, or finished), VERR_TOOBIG, VERR_NOMEM.
 */
enum verr twiml_dial(struct twiml *t, const char *e164) VOICE_MUST_USE;

/*
 * <Reject reason="rejected|busy" />. Twilio honours <Reject> only as the first
 * verb (docs voice/twiml/reject), so it is VERR_INVALID after any other verb
 * (or when finished). VERR_INVALID also for an unknown reason. VERR_TOOBIG,
 * VERR_NOMEM.
 */
enum verr twiml_reject(struct twiml *t, enum twiml_reject_reason reason) VOICE_MUST_USE;

/* <Hangup />. Errors: VERR_INVALID (finished), VERR_TOOBIG, VERR_NOMEM. */
enum verr twiml_hangup(struct twiml *t) VOICE_MUST_USE;

/*
 * <Pause length="seconds" />, seconds in 1..TWIML_MAX_PAUSE.
 * Errors: VERR_INVALID (out of range, or finished), VERR_TOOBIG, VERR_NOMEM.
 */
enum verr twiml_pause(struct twiml *t, int seconds) VOICE_MUST_USE;

/*
 * Closes the document: "</Response>", or "<Response />" when no verb was
 * added (the empty answer Twilio accepts for status callbacks). After success
 * the buffer holds the complete document and t may be discarded.
 * Errors: VERR_INVALID (already finished), VERR_TOOBIG, VERR_NOMEM.
 */
enum verr twiml_finish(struct twiml *t) VOICE_MUST_USE;

#endif
