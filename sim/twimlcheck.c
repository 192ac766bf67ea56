#include "twimlcheck.h"

#include <stdio.h>
#include <string.h>

#include "buf.h"

struct cursor {
	const char *p;
	const char *end;
	struct simtwiml *out;
};

static bool bad(struct cursor *c, const char *why)
{
	str_copy(c->out->why, sizeof c->out->why, why);
	return false;
}

static bool at(const struct cursor *c, const char *s)
{
	size_t n = strlen(s);

	return (size_t)(c->end - c->p) >= n && memcmp(c->p, s, n) == 0;
}

static bool is_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

static void skip_space(struct cursor *c)
{
	while (c->p < c->end && is_space(*c->p))
		c->p++;
}

static bool name_start(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' || ch == ':' ||
	       (unsigned char)ch >= 0x80;
}

static bool name_char(char ch)
{
	return name_start(ch) || (ch >= '0' && ch <= '9') || ch == '-' || ch == '.';
}

/* Reads a name into buf (truncated names still compare unequal safely). */
static bool read_name(struct cursor *c, char *buf, size_t bufsz)
{
	size_t n = 0;

	if (c->p >= c->end || !name_start(*c->p))
		return false;
	while (c->p < c->end && name_char(*c->p)) {
		if (n + 1 < bufsz)
			buf[n++] = *c->p;
		c->p++;
	}
	buf[n] = '\0';
	return true;
}

/* Skips until the terminator s, which is consumed. */
static bool skip_past(struct cursor *c, const char *s)
{
	size_t n = strlen(s);

	while ((size_t)(c->end - c->p) >= n) {
		if (memcmp(c->p, s, n) == 0) {
			c->p += n;
			return true;
		}
		c->p++;
	}
	return false;
}

/* A reference after '&': name; or #digits; or #xhex; */
static bool reference(struct cursor *c)
{
	char name[SIMTWIML_MAX_NAME];

	c->p++;
	if (c->p < c->end && *c->p == '#') {
		bool hex = false;
		size_t digits = 0;

		c->p++;
		if (c->p < c->end && *c->p == 'x') {
			hex = true;
			c->p++;
		}
		while (c->p < c->end && ((*c->p >= '0' && *c->p <= '9') ||
		                         (hex && ((*c->p >= 'a' && *c->p <= 'f') ||
		                                  (*c->p >= 'A' && *c->p <= 'F'))))) {
			c->p++;
			digits++;
		}
		if (digits == 0)
			return false;
	} else if (!read_name(c, name, sizeof name)) {
		return false;
	} else if (strcmp(name, "amp") != 0 && strcmp(name, "lt") != 0 && strcmp(name, "gt") != 0 &&
	           strcmp(name, "quot") != 0 && strcmp(name, "apos") != 0) {
		return false;
	}
	if (c->p >= c->end || *c->p != ';')
		return false;
	c->p++;
	return true;
}

/* Comments, processing instructions, whitespace: allowed around the root. */
static bool misc(struct cursor *c)
{
	for (;;) {
		skip_space(c);
		if (at(c, "<!--")) {
			c->p += 4;
			if (!skip_past(c, "-->"))
				return bad(c, "unterminated comment");
		} else if (at(c, "<?")) {
			c->p += 2;
			if (!skip_past(c, "?>"))
				return bad(c, "unterminated processing instruction");
		} else if (at(c, "<!")) {
			return bad(c, "doctype or declaration not allowed");
		} else {
			return true;
		}
	}
}

/* Parses the attributes and the end of a start tag; *empty for "/>". */
static bool tag_rest(struct cursor *c, bool *empty, bool capture_reason)
{
	for (;;) {
		char aname[SIMTWIML_MAX_NAME];
		char quote;
		const char *vstart;

		skip_space(c);
		if (at(c, "/>")) {
			c->p += 2;
			*empty = true;
			return true;
		}
		if (at(c, ">")) {
			c->p++;
			*empty = false;
			return true;
		}
		if (!read_name(c, aname, sizeof aname))
			return bad(c, "malformed attribute");
		skip_space(c);
		if (c->p >= c->end || *c->p != '=')
			return bad(c, "attribute without value");
		c->p++;
		skip_space(c);
		if (c->p >= c->end || (*c->p != '"' && *c->p != '\''))
			return bad(c, "attribute value not quoted");
		quote = *c->p++;
		vstart = c->p;
		while (c->p < c->end && *c->p != quote) {
			if (*c->p == '<')
				return bad(c, "'<' in attribute value");
			if (*c->p == '&') {
				if (!reference(c))
					return bad(c, "malformed reference");
				continue;
			}
			c->p++;
		}
		if (c->p >= c->end)
			return bad(c, "unterminated attribute value");
		if (capture_reason && strcmp(aname, "reason") == 0) {
			size_t n = (size_t)(c->p - vstart);

			if (n >= sizeof c->out->reject_reason)
				n = sizeof c->out->reject_reason - 1;
			memcpy(c->out->reject_reason, vstart, n);
			c->out->reject_reason[n] = '\0';
		}
		c->p++;
	}
}

bool simtwiml_check(const char *doc, size_t len, struct simtwiml *out)
{
	struct cursor c = { doc, doc + len, out };
	char stack[SIMTWIML_MAX_DEPTH][SIMTWIML_MAX_NAME];
	size_t depth = 0;
	bool empty;

	memset(out, 0, sizeof *out);
	if (doc == NULL || len == 0)
		return bad(&c, "empty body");
	if (memchr(doc, '\0', len) != NULL)
		return bad(&c, "nul byte in body");
	if (at(&c, "\xef\xbb\xbf"))
		c.p += 3;
	if (!misc(&c))
		return false;
	if (!at(&c, "<"))
		return bad(&c, "no root element");
	c.p++;
	if (!read_name(&c, stack[0], sizeof stack[0]))
		return bad(&c, "malformed root element");
	if (strcmp(stack[0], "Response") != 0)
		return bad(&c, "root element is not <Response>");
	if (!tag_rest(&c, &empty, false))
		return false;
	depth = empty ? 0 : 1;
	while (depth > 0) {
		if (c.p >= c.end)
			return bad(&c, "unclosed element");
		if (at(&c, "<!--")) {
			c.p += 4;
			if (!skip_past(&c, "-->"))
				return bad(&c, "unterminated comment");
		} else if (at(&c, "<![CDATA[")) {
			c.p += 9;
			if (!skip_past(&c, "]]>"))
				return bad(&c, "unterminated cdata section");
		} else if (at(&c, "<?")) {
			c.p += 2;
			if (!skip_past(&c, "?>"))
				return bad(&c, "unterminated processing instruction");
		} else if (at(&c, "</")) {
			char name[SIMTWIML_MAX_NAME];

			c.p += 2;
			if (!read_name(&c, name, sizeof name) || strcmp(name, stack[depth - 1]) != 0)
				return bad(&c, "mismatched end tag");
			skip_space(&c);
			if (!at(&c, ">"))
				return bad(&c, "malformed end tag");
			c.p++;
			depth--;
		} else if (at(&c, "<")) {
			bool first = depth == 1 && out->first_verb[0] == '\0';

			if (depth >= SIMTWIML_MAX_DEPTH)
				return bad(&c, "elements nested too deeply");
			c.p++;
			if (!read_name(&c, stack[depth], sizeof stack[depth]))
				return bad(&c, "malformed element");
			if (first) {
				str_copy(out->first_verb, sizeof out->first_verb, stack[depth]);
				if (strcmp(stack[depth], "Reject") == 0)
					str_copy(out->reject_reason, sizeof out->reject_reason, "rejected");
			}
			if (!tag_rest(&c, &empty, first && strcmp(stack[depth], "Reject") == 0))
				return false;
			if (!empty)
				depth++;
		} else if (*c.p == '&') {
			if (!reference(&c))
				return bad(&c, "malformed reference");
		} else if (*c.p == '>' && c.p - doc >= 2 && c.p[-1] == ']' && c.p[-2] == ']') {
			return bad(&c, "']]>' in text");
		} else {
			c.p++;
		}
	}
	if (!misc(&c))
		return false;
	if (c.p != c.end)
		return bad(&c, "content after the root element");
	return true;
}
