#include "phone.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"

/* Indexed by enum phone_type. name: the configuration/API spelling; label:
 * how a sentence says it. */
static const struct {
	const char *name;
	const char *label;
} phone_types[PHONE_TYPE__COUNT] = {
	[PHONE_FIXED_LINE] = { "fixed_line", "fixed line" },
	[PHONE_MOBILE] = { "mobile", "mobile" },
	[PHONE_FIXED_LINE_OR_MOBILE] = { "fixed_line_or_mobile", "fixed line or mobile" },
	[PHONE_TOLL_FREE] = { "toll_free", "toll free" },
	[PHONE_PREMIUM_RATE] = { "premium_rate", "premium rate" },
	[PHONE_SHARED_COST] = { "shared_cost", "shared cost" },
	[PHONE_VOIP] = { "voip", "voip" },
	[PHONE_PERSONAL_NUMBER] = { "personal_number", "personal" },
	[PHONE_PAGER] = { "pager", "pager" },
	[PHONE_UAN] = { "uan", "universal access (uan)" },
	[PHONE_VOICEMAIL] = { "voicemail", "voicemail access" },
	[PHONE_UNKNOWN] = { "unknown", "unclassified" },
};

static void set_msg(char *dst, size_t dstsz, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_msg(char *dst, size_t dstsz, const char *fmt, ...)
{
	va_list ap;

	if (dst == NULL || dstsz == 0)
		return;
	va_start(ap, fmt);
	if (vsnprintf(dst, dstsz, fmt, ap) < 0)
		dst[0] = '\0';
	va_end(ap);
}

const char *phone_type_name(enum phone_type t)
{
	if ((unsigned)t >= PHONE_TYPE__COUNT)
		return phone_types[PHONE_UNKNOWN].name;
	return phone_types[t].name;
}

bool phone_type_parse(const char *name, enum phone_type *out)
{
	int i;

	if (name == NULL)
		return false;
	for (i = 0; i < PHONE_TYPE__COUNT; i++) {
		if (strcmp(name, phone_types[i].name) == 0) {
			*out = (enum phone_type)i;
			return true;
		}
	}
	return false;
}

static bool ascii_alpha(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static char ascii_upper(char c)
{
	return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

/* Copies a two-letter code upper-cased into out[3]; false unless s is
 * exactly n == 2 ASCII letters. */
static bool region_norm(const char *s, size_t n, char out[3])
{
	if (n != 2 || !ascii_alpha(s[0]) || !ascii_alpha(s[1]))
		return false;
	out[0] = ascii_upper(s[0]);
	out[1] = ascii_upper(s[1]);
	out[2] = '\0';
	return true;
}

bool phone_region_known(const char *region)
{
	char rc[3];

	return region != NULL && region_norm(region, strlen(region), rc) &&
	       phone_lnp_region_supported(rc);
}

/*
 * The character rule of docs/API.md, "POST /call": ASCII digits, spaces and
 * + ( ) - . only ('+' only as the first character that is not a space). Sets
 * *international when the first non-space character is '+' and counts
 * digits.
 */
static bool input_chars_ok(const char *s, bool *international, size_t *digits)
{
	bool seen = false;
	size_t i;

	*international = false;
	*digits = 0;
	for (i = 0; s[i] != '\0'; i++) {
		char c = s[i];

		if (c >= '0' && c <= '9') {
			(*digits)++;
		} else if (c == '+') {
			if (seen)
				return false;
			*international = true;
		} else if (c != ' ' && c != '(' && c != ')' && c != '-' && c != '.') {
			return false;
		}
		if (c != ' ')
			seen = true;
	}
	return true;
}

/*
 * libphonenumber costs 50 to 80 us a number (perf under POST /call load:
 * a fifth of call_fcgi's time): the parse, then regular expressions over
 * every region that shares the calling code, once for the region and again
 * for the type. The same numbers come back again and again, caller IDs
 * above all, and the answer depends only on the input and the region (the
 * metadata is compiled in), so each thread remembers its recent answers.
 */
#define PHONE_MEMO 64 /* entries per thread, a power of two */

struct phone_memo {
	char input[PHONE_MAX_INPUT + 1]; /* "" while unused */
	char rc[3];
	enum phone_lnp_status st;
	char e164[PHONE_MAX_E164];
	char region[PHONE_MAX_REGION];
	int type;
};

static _Thread_local struct phone_memo phone_memo[PHONE_MEMO];

static enum phone_lnp_status lnp_parse_memo(const char *input, const char rc[3],
                                            char e164[PHONE_MAX_E164],
                                            char region[PHONE_MAX_REGION], int *type)
{
	unsigned h = 2166136261u; /* FNV-1a over input and rc */
	const char *p;
	struct phone_memo *m;

	for (p = input; *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	for (p = rc; *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	m = &phone_memo[h & (PHONE_MEMO - 1)];
	if (m->input[0] == '\0' || strcmp(m->input, input) != 0 || strcmp(m->rc, rc) != 0) {
		m->st = phone_lnp_parse(input, rc, m->e164, sizeof m->e164, m->region,
		                        sizeof m->region, &m->type);
		if (m->st == PHONE_LNP_NOMEM || m->st == PHONE_LNP_FAILED) {
			m->input[0] = '\0'; /* not an answer about the number */
			return m->st;
		}
		str_copy(m->input, sizeof m->input, input);
		str_copy(m->rc, sizeof m->rc, rc);
	}
	if (m->st == PHONE_LNP_OK) {
		memcpy(e164, m->e164, sizeof m->e164);
		memcpy(region, m->region, sizeof m->region);
		*type = m->type;
	}
	return m->st;
}

enum verr phone_parse(const char *input, const char *default_region, struct phone_number *out,
                      char *err, size_t errsz)
{
	char rc[3] = "";
	char region[PHONE_MAX_REGION];
	bool international;
	size_t len, digits, i;
	int type = PHONE_UNKNOWN;

	set_msg(err, errsz, "%s", "");
	if (input == NULL || input[0] == '\0') {
		set_msg(err, errsz, "phone number is empty");
		return VERR_INVALID;
	}
	len = strnlen(input, PHONE_MAX_INPUT + 1);
	if (len > PHONE_MAX_INPUT) {
		set_msg(err, errsz, "phone number is too long");
		return VERR_INVALID;
	}
	if (!input_chars_ok(input, &international, &digits)) {
		set_msg(err, errsz, "only digits, spaces and + ( ) - . are allowed");
		return VERR_INVALID;
	}
	if (digits == 0) {
		set_msg(err, errsz, "%s", strspn(input, " ") == len ? "phone number is empty"
		                                                     : "not a valid phone number");
		return VERR_INVALID;
	}
	if (!international) {
		if (default_region == NULL || default_region[0] == '\0') {
			set_msg(err, errsz, "country is required for a national number");
			return VERR_INVALID;
		}
		if (!region_norm(default_region, strlen(default_region), rc)) {
			set_msg(err, errsz, "country must be a two-letter iso 3166 code");
			return VERR_INVALID;
		}
		if (!phone_lnp_region_supported(rc)) {
			set_msg(err, errsz, "unknown country '%s'", rc);
			return VERR_INVALID;
		}
	}

	switch (lnp_parse_memo(input, rc, out->e164, region, &type)) {
	case PHONE_LNP_OK:
		break;
	case PHONE_LNP_NOMEM:
		set_msg(err, errsz, "could not parse phone number: out of memory");
		return VERR_NOMEM;
	case PHONE_LNP_FAILED:
		set_msg(err, errsz, "could not parse phone number: libphonenumber failed");
		return VERR_IO;
	case PHONE_LNP_NO_COUNTRY:
	case PHONE_LNP_INVALID:
	default:
		set_msg(err, errsz, "not a valid phone number");
		return VERR_INVALID;
	}

	/* E.164 allows at most 15 digits after '+' (ITU-T E.164 §6). */
	len = strlen(out->e164);
	if (len < 2 || len > 16 || out->e164[0] != '+' ||
	    strspn(out->e164 + 1, "0123456789") != len - 1) {
		set_msg(err, errsz, "not a valid phone number");
		return VERR_INVALID;
	}
	for (i = 0; region[i] != '\0'; i++)
		region[i] = ascii_upper(region[i]);
	if (!str_copy(out->region, sizeof out->region, region)) {
		set_msg(err, errsz, "not a valid phone number");
		return VERR_INVALID;
	}
	out->type = type >= 0 && type < PHONE_TYPE__COUNT ? (enum phone_type)type : PHONE_UNKNOWN;
	return VERR_OK;
}

/* Next comma-separated entry of *s with surrounding spaces and tabs removed:
 * sets *p and *n, advances *s past the comma. False at the end. */
static bool next_entry(const char **s, const char **p, size_t *n)
{
	const char *b = *s, *e;

	if (b == NULL)
		return false;
	e = strchr(b, ',');
	*s = e != NULL ? e + 1 : NULL;
	if (e == NULL)
		e = b + strlen(b);
	while (b < e && (*b == ' ' || *b == '\t'))
		b++;
	while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	*p = b;
	*n = (size_t)(e - b);
	return true;
}

static bool blank(const char *s)
{
	return s[strspn(s, " \t")] == '\0';
}

/* Entries are shown to the operator at most this long. */
#define SHOW_MAX 32

/* The default when no countries are listed: the caller ID's own country. */
static enum verr allowed_default(const char *caller_id, struct phone_policy *out, char *err,
                                 size_t errsz)
{
	struct phone_number n;
	char why[PHONE_MAX_REASON];

	if (caller_id == NULL || caller_id[0] == '\0') {
		set_msg(err, errsz, "CALL_ALLOWED_COUNTRIES and TWILIO_FROM_NUMBER are both unset: "
		        "list the countries calls may go to ('*' for all)");
		return VERR_CONFIG;
	}
	if (phone_parse(caller_id, NULL, &n, why, sizeof why) != VERR_OK ||
	    strcmp(n.region, PHONE_REGION_NONGEO) == 0) {
		set_msg(err, errsz, "CALL_ALLOWED_COUNTRIES is unset and TWILIO_FROM_NUMBER has no "
		        "country: list the countries calls may go to ('*' for all)");
		return VERR_CONFIG;
	}
	memcpy(out->allowed[0], n.region, sizeof out->allowed[0]);
	out->n_allowed = 1;
	out->from_caller_id = true;
	return VERR_OK;
}

static enum verr parse_allowed(const char *list, const char *caller_id, struct phone_policy *out,
                               char *err, size_t errsz)
{
	const char *cur = list, *p;
	size_t n, i;
	char rc[3];

	if (list == NULL || blank(list))
		return allowed_default(caller_id, out, err, errsz);
	if (list[strspn(list, " \t")] == '*' && blank(list + strspn(list, " \t") + 1)) {
		out->all_countries = true; /* said explicitly: every country */
		return VERR_OK;
	}
	while (next_entry(&cur, &p, &n)) {
		if (n == 0) {
			set_msg(err, errsz, "empty entry in allowed countries");
			return VERR_CONFIG;
		}
		if (n == 1 && *p == '*') {
			set_msg(err, errsz, "'*' (every country) cannot be combined with countries in "
			        "allowed countries");
			return VERR_CONFIG;
		}
		if (!region_norm(p, n, rc)) {
			set_msg(err, errsz,
			        "invalid country '%.*s' in allowed countries: expected two letters",
			        (int)(n > SHOW_MAX ? SHOW_MAX : n), p);
			return VERR_CONFIG;
		}
		if (!phone_lnp_region_supported(rc)) {
			set_msg(err, errsz, "unknown country '%s' in allowed countries", rc);
			return VERR_CONFIG;
		}
		for (i = 0; i < out->n_allowed; i++)
			if (strcmp(out->allowed[i], rc) == 0)
				break;
		if (i < out->n_allowed)
			continue;
		if (out->n_allowed == PHONE_MAX_ALLOWED) {
			set_msg(err, errsz, "too many allowed countries (at most %d)",
			        PHONE_MAX_ALLOWED);
			return VERR_CONFIG;
		}
		memcpy(out->allowed[out->n_allowed++], rc, sizeof rc);
	}
	return VERR_OK;
}

static enum verr parse_blocked(const char *list, struct phone_policy *out, char *err,
                               size_t errsz)
{
	const char *cur = list, *p;
	char name[SHOW_MAX + 1];
	enum phone_type t;
	size_t n;

	if (list == NULL) {
		out->blocked = PHONE_BLOCKED_DEFAULT;
		return VERR_OK;
	}
	out->blocked = 0;
	if (blank(list))
		return VERR_OK;
	while (next_entry(&cur, &p, &n)) {
		if (n == 0) {
			set_msg(err, errsz, "empty entry in blocked types");
			return VERR_CONFIG;
		}
		memcpy(name, p, n < SHOW_MAX ? n : SHOW_MAX);
		name[n < SHOW_MAX ? n : SHOW_MAX] = '\0';
		if (n > SHOW_MAX || !phone_type_parse(name, &t)) {
			set_msg(err, errsz, "unknown phone type '%s' in blocked types", name);
			return VERR_CONFIG;
		}
		out->blocked |= 1u << t;
	}
	return VERR_OK;
}

enum verr phone_policy_parse(const char *allowed_countries, const char *caller_id,
                             const char *blocked_types, struct phone_policy *out, char *err,
                             size_t errsz)
{
	enum verr e;

	set_msg(err, errsz, "%s", "");
	memset(out, 0, sizeof *out);
	e = parse_allowed(allowed_countries, caller_id, out, err, errsz);
	if (e != VERR_OK)
		return e;
	return parse_blocked(blocked_types, out, err, errsz);
}

bool phone_policy_allows(const struct phone_policy *p, const struct phone_number *n, char *why,
                         size_t whysz)
{
	enum phone_type t = (unsigned)n->type < PHONE_TYPE__COUNT ? n->type : PHONE_UNKNOWN;
	size_t i;

	set_msg(why, whysz, "%s", "");
	if (strcmp(n->region, PHONE_REGION_NONGEO) == 0) {
		set_msg(why, whysz, "calls to non-geographic numbers are not allowed");
		return false;
	}
	if (!p->all_countries) {
		for (i = 0; i < p->n_allowed; i++)
			if (strcmp(p->allowed[i], n->region) == 0)
				break;
		if (i == p->n_allowed) {
			set_msg(why, whysz, "calls to %s are not allowed", n->region);
			return false;
		}
	}
	if (p->blocked & (1u << t)) {
		set_msg(why, whysz, "calls to %s numbers are not allowed", phone_types[t].label);
		return false;
	}
	return true;
}
