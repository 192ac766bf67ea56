#include "twiml.h"

#include <string.h>

#include "utf8.h"

#define XML_DECL "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"

/*
 * Appends s escaped for XML character data (in_attr false) or a
 * double-quoted attribute value (in_attr true). VERR_INVALID for a string
 * that is not XML-safe UTF-8. May leave a partial append on error; callers
 * restore the buffer.
 */
static enum verr put_escaped(struct buf *b, const char *s, bool in_attr)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t left = strlen(s);
	enum verr e = VERR_OK;

	while (left > 0 && e == VERR_OK) {
		const char *ref = NULL;
		size_t n = 1;
		uint32_t cp;

		switch (*p) {
		case '&': ref = "&amp;"; break;
		case '<': ref = "&lt;"; break;
		case '>': ref = "&gt;"; break;
		case '"': ref = "&quot;"; break;
		case '\'': ref = "&apos;"; break;
		case '\r': ref = "&#13;"; break;
		case '\t': ref = in_attr ? "&#9;" : NULL; break;
		case '\n': ref = in_attr ? "&#10;" : NULL; break;
		default:
			/* an XML 1.0 Char (section 2.2) other than the C0 controls */
			n = utf8_decode(p, left, &cp);
			if (n == 0 || cp < 0x20 || cp == 0xfffe || cp == 0xffff)
				return VERR_INVALID;
			break;
		}
		if (ref != NULL)
			e = buf_puts(b, ref);
		else
			e = buf_append(b, p, n);
		p += n;
		left -= n;
	}
	return e;
}

/* Appends ' name="value"' unless value is NULL or empty. */
static enum verr put_attr(struct buf *b, const char *name, const char *value)
{
	enum verr e;

	if (value == NULL || value[0] == '\0')
		return VERR_OK;
	if ((e = buf_putc(b, ' ')) != VERR_OK || (e = buf_puts(b, name)) != VERR_OK ||
	    (e = buf_puts(b, "=\"")) != VERR_OK || (e = put_escaped(b, value, true)) != VERR_OK)
		return e;
	return buf_putc(b, '"');
}

/* Opens <Response> before the first verb. */
static enum verr verb_start(struct twiml *t)
{
	if (t->b == NULL || t->finished)
		return VERR_INVALID;
	if (t->verbs == 0)
		return buf_puts(t->b, "<Response>");
	return VERR_OK;
}

/* Common tail of every verb writer: count it on success, undo on failure. */
static enum verr verb_done(struct twiml *t, size_t mark, enum verr e)
{
	if (e != VERR_OK) {
		if (t->b != NULL)
			buf_truncate(t->b, mark);
		return e;
	}
	t->verbs++;
	return VERR_OK;
}

static bool is_e164(const char *s)
{
	size_t i;

	if (s == NULL || s[0] != '+' || s[1] < '1' || s[1] > '9')
		return false;
	for (i = 2; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9' || i > 15)
			return false;
	}
	return i >= 3;
}

enum verr twiml_begin(struct twiml *t, struct buf *b)
{
	size_t mark = b->len;
	enum verr e;

	t->b = NULL;
	t->verbs = 0;
	t->finished = false;
	if ((e = buf_puts(b, XML_DECL)) != VERR_OK) {
		buf_truncate(b, mark);
		return e;
	}
	t->b = b;
	return VERR_OK;
}

enum verr twiml_say(struct twiml *t, const char *text, const char *voice, const char *language)
{
	size_t mark = t->b != NULL ? t->b->len : 0;
	enum verr e;

	if (text == NULL || text[0] == '\0')
		return VERR_INVALID;
	if ((e = verb_start(t)) == VERR_OK && (e = buf_puts(t->b, "<Say")) == VERR_OK &&
	    (e = put_attr(t->b, "voice", voice)) == VERR_OK &&
	    (e = put_attr(t->b, "language", language)) == VERR_OK &&
	    (e = buf_putc(t->b, '>')) == VERR_OK && (e = put_escaped(t->b, text, false)) == VERR_OK)
		e = buf_puts(t->b, "</Say>");
	return verb_done(t, mark, e);
}

enum verr twiml_dial(struct twiml *t, const char *e164)
{
	size_t mark = t->b != NULL ? t->b->len : 0;
	enum verr e;

	if (!is_e164(e164))
		return VERR_INVALID;
	if ((e = verb_start(t)) == VERR_OK && (e = buf_puts(t->b, "<Dial><Number>")) == VERR_OK &&
	    (e = put_escaped(t->b, e164, false)) == VERR_OK)
		e = buf_puts(t->b, "</Number></Dial>");
	return verb_done(t, mark, e);
}

enum verr twiml_reject(struct twiml *t, enum twiml_reject_reason reason)
{
	size_t mark = t->b != NULL ? t->b->len : 0;
	const char *r;
	enum verr e;

	switch (reason) {
	case TWIML_REJECT_REJECTED: r = "rejected"; break;
	case TWIML_REJECT_BUSY: r = "busy"; break;
	default: return VERR_INVALID;
	}
	if (t->verbs != 0)
		return VERR_INVALID;
	if ((e = verb_start(t)) == VERR_OK && (e = buf_puts(t->b, "<Reject")) == VERR_OK &&
	    (e = put_attr(t->b, "reason", r)) == VERR_OK)
		e = buf_puts(t->b, " />");
	return verb_done(t, mark, e);
}

enum verr twiml_hangup(struct twiml *t)
{
	size_t mark = t->b != NULL ? t->b->len : 0;
	enum verr e;

	if ((e = verb_start(t)) == VERR_OK)
		e = buf_puts(t->b, "<Hangup />");
	return verb_done(t, mark, e);
}

enum verr twiml_pause(struct twiml *t, int seconds)
{
	size_t mark = t->b != NULL ? t->b->len : 0;
	enum verr e;

	if (seconds < 1 || seconds > TWIML_MAX_PAUSE)
		return VERR_INVALID;
	if ((e = verb_start(t)) == VERR_OK)
		e = buf_printf(t->b, "<Pause length=\"%d\" />", seconds);
	return verb_done(t, mark, e);
}

enum verr twiml_finish(struct twiml *t)
{
	size_t mark;
	enum verr e;

	if (t->b == NULL || t->finished)
		return VERR_INVALID;
	mark = t->b->len;
	e = buf_puts(t->b, t->verbs == 0 ? "<Response />" : "</Response>");
	if (e != VERR_OK) {
		buf_truncate(t->b, mark);
		return e;
	}
	t->finished = true;
	return VERR_OK;
}
