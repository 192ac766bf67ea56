#include "callreq.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "buf.h"
#include "url.h"
#include "utf8.h"

/* json-c nesting limit: the object plus room for a wrong-typed array or
 * object value to be reported as invalid_type rather than invalid_json. */
#define JSON_MAX_DEPTH 8
/* A member name with escapes spelled out is at most this long when it can be
 * one of ours ("machine_detection" fully \u-escaped is 17 * 6 + 2). */
#define MAX_RAW_KEY 128

static void set_error(struct callreq_error *err, enum apierr code, const char *field,
                      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* field: a member name (NUL-terminated), truncated on a UTF-8 boundary. */
static void copy_field(char *dst, size_t dstsz, const char *field)
{
	size_t n = strlen(field);

	if (n >= dstsz) {
		n = dstsz - 1;
		while (n > 0 && ((unsigned char)field[n] & 0xc0) == 0x80)
			n--;
	}
	memcpy(dst, field, n);
	dst[n] = '\0';
}

static void set_error(struct callreq_error *err, enum apierr code, const char *field,
                      const char *fmt, ...)
{
	va_list ap;
	size_t n;

	err->code = code;
	copy_field(err->field, sizeof err->field, field != NULL ? field : "");
	va_start(ap, fmt);
	if (vsnprintf(err->message, sizeof err->message, fmt, ap) < 0)
		err->message[0] = '\0';
	va_end(ap);
	/* never leave half a UTF-8 sequence at a truncation point */
	n = strlen(err->message);
	if (n == sizeof err->message - 1) {
		while (n > 0 && ((unsigned char)err->message[n] & 0xc0) == 0x80)
			n--;
		err->message[n] = '\0';
	}
}

static void clear_error(struct callreq_error *err)
{
	err->code = APIERR_NONE;
	err->field[0] = '\0';
	err->message[0] = '\0';
}

/* ---- strict syntax and duplicate members ---- */

/* Indexed like the fields[] table below. */
static const char *const field_names[] = {
	"to", "from", "country", "say", "url", "timeout", "record", "machine_detection",
};
#define N_FIELDS (sizeof field_names / sizeof field_names[0])

static int field_index(const char *name, size_t n)
{
	size_t i;

	for (i = 0; i < N_FIELDS; i++)
		if (strlen(field_names[i]) == n && memcmp(field_names[i], name, n) == 0)
			return (int)i;
	return -1;
}

/* The member name at raw (its JSON string token, quotes included, already
 * validated by json-c) as one of ours, or -1. */
static int raw_key_index(const char *raw, size_t n, enum verr *e)
{
	char tmp[MAX_RAW_KEY + 1];
	struct json_object *s;
	int idx;

	*e = VERR_OK;
	if (n < 2 || n > MAX_RAW_KEY)
		return -1;
	if (memchr(raw, '\\', n) == NULL)
		return field_index(raw + 1, n - 2);
	memcpy(tmp, raw, n);
	tmp[n] = '\0';
	s = json_tokener_parse(tmp);
	if (s == NULL) {
		*e = VERR_NOMEM; /* the token already parsed once */
		return -1;
	}
	idx = json_object_is_type(s, json_type_string)
	          ? field_index(json_object_get_string(s), (size_t)json_object_get_string_len(s))
	          : -1;
	json_object_put(s);
	return idx;
}

/*
 * json-c's strict mode still takes single quotes, NaN, Infinity and raw
 * control characters in strings, lets overlong UTF-8 through even with
 * JSON_TOKENER_VALIDATE_UTF8, and silently keeps the last of duplicate
 * members (and cuts member names at an escaped NUL, so "to\u0000x" would
 * become "to"). This pass over text json-c has already accepted closes
 * those gaps.
 */
static enum verr scan_strict(const char *s, size_t n, struct callreq_error *err)
{
	static const char outside[] = " \t\n\r{}[]:,-+.0123456789eEtrufalsn";
	unsigned seen = 0;
	bool top_object = false, expect_key = false;
	int depth = 0;
	size_t i = 0, j;
	enum verr e;

	while (i < n) {
		char c = s[i];

		if (c == '"') {
			bool nul = false;

			for (j = i + 1; j < n && s[j] != '"'; j++) {
				size_t u;

				if ((unsigned char)s[j] < 0x20) {
					set_error(err, APIERR_INVALID_JSON, NULL,
					          "body is not valid json: raw control character in a string");
					return VERR_INVALID;
				}
				u = utf8_decode((const unsigned char *)s + j, n - j, NULL);
				if (u == 0) {
					set_error(err, APIERR_INVALID_JSON, NULL,
					          "body is not valid json: invalid utf-8 at byte %zu", j);
					return VERR_INVALID;
				}
				j += u - 1;
				if (s[j] == '\\' && j + 1 < n) {
					if (s[j + 1] == 'u' && j + 5 < n && memcmp(s + j + 2, "0000", 4) == 0)
						nul = true;
					j++;
				}
			}
			if (j >= n) {
				set_error(err, APIERR_INVALID_JSON, NULL, "body is not valid json");
				return VERR_INVALID;
			}
			if (depth == 1 && top_object && expect_key) {
				int idx;

				if (nul) {
					set_error(err, APIERR_INVALID_JSON, NULL,
					          "body is not valid json: member name contains a nul character");
					return VERR_INVALID;
				}
				idx = raw_key_index(s + i, j - i + 1, &e);
				if (e != VERR_OK) {
					set_error(err, APIERR_INTERNAL, NULL, "could not parse body: out of memory");
					return e;
				}
				if (idx >= 0 && (seen & (1u << idx))) {
					set_error(err, APIERR_INVALID_JSON, field_names[idx],
					          "%s appears more than once", field_names[idx]);
					return VERR_INVALID;
				}
				if (idx >= 0)
					seen |= 1u << idx;
				expect_key = false;
			}
			i = j + 1;
			continue;
		}
		if (strchr(outside, c) == NULL || c == '\0') {
			set_error(err, APIERR_INVALID_JSON, NULL,
			          "body is not valid json: unexpected character at byte %zu", i);
			return VERR_INVALID;
		}
		if (c == '{' || c == '[') {
			if (depth == 0)
				top_object = c == '{';
			depth++;
			expect_key = depth == 1 && c == '{';
		} else if (c == '}' || c == ']') {
			depth--;
		} else if (c == ',' && depth == 1) {
			expect_key = true;
		}
		i++;
	}
	return VERR_OK;
}

/* ---- field validators ---- */

/*
 * A string member: wrong type, an embedded NUL or more than maxlen bytes is
 * an error. On success *sp and *np describe json-c's copy (borrowed from v).
 */
static bool get_string(struct json_object *v, const char *name, size_t maxlen, const char **sp,
                       size_t *np, struct callreq_error *err)
{
	const char *s;
	size_t n;

	if (!json_object_is_type(v, json_type_string)) {
		set_error(err, APIERR_INVALID_TYPE, name, "%s must be a string", name);
		return false;
	}
	s = json_object_get_string(v);
	n = (size_t)json_object_get_string_len(v);
	if (strlen(s) != n) {
		set_error(err, APIERR_INVALID_VALUE, name, "%s must not contain nul characters", name);
		return false;
	}
	if (n > maxlen) {
		set_error(err, APIERR_INVALID_VALUE, name, "%s is too long (at most %zu bytes)", name,
		          maxlen);
		return false;
	}
	*sp = s;
	*np = n;
	return true;
}

static bool v_number(struct json_object *v, const char *name, char *dst,
                     struct callreq_error *err)
{
	const char *s;
	size_t n;

	if (!get_string(v, name, CALLREQ_MAX_NUMBER - 1, &s, &n, err))
		return false;
	memcpy(dst, s, n + 1);
	return true;
}

static bool v_to(struct json_object *v, struct call_request *r, struct callreq_error *err)
{
	return v_number(v, "to", r->to, err);
}

static bool v_from(struct json_object *v, struct call_request *r, struct callreq_error *err)
{
	r->has_from = v_number(v, "from", r->from, err);
	return r->has_from;
}

static bool v_country(struct json_object *v, struct call_request *r, struct callreq_error *err)
{
	const char *s;
	size_t n;

	if (!get_string(v, "country", CALLREQ_MAX_FIELD, &s, &n, err))
		return false;
	if (n != 2 || !phone_region_known(s)) {
		if (n == 2 && s[strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")] ==
		                  '\0')
			set_error(err, APIERR_INVALID_VALUE, "country", "unknown country '%s'", s);
		else
			set_error(err, APIERR_INVALID_VALUE, "country",
			          "country must be a two-letter iso 3166 code");
		return false;
	}
	r->country[0] = (char)(s[0] >= 'a' ? s[0] - 'a' + 'A' : s[0]);
	r->country[1] = (char)(s[1] >= 'a' ? s[1] - 'a' + 'A' : s[1]);
	r->country[2] = '\0';
	return true;
}

static bool v_say(struct json_object *v, struct call_request *r, struct callreq_error *err)
{
	const char *s;
	size_t n, i = 0, chars = 0;
	bool blank = true;

	if (!get_string(v, "say", CALLREQ_MAX_SAY - 1, &s, &n, err))
		return false;
	while (i < n) {
		uint32_t c;
		size_t k = utf8_decode((const unsigned char *)s + i, n - i, &c);

		/* scan_strict and json-c leave valid utf-8; k == 0 stops, not stalls */
		if (k == 0 || (c < 0x20 && c != '\t' && c != '\n' && c != '\r') ||
		    (c >= 0x7f && c <= 0x9f) || c == 0xfffe || c == 0xffff) {
			set_error(err, APIERR_INVALID_VALUE, "say",
			          "say must not contain control characters other than tab and newline");
			return false;
		}
		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			blank = false;
		chars++;
		i += k;
	}
	if (chars > CALLREQ_MAX_SAY_CHARS) {
		set_error(err, APIERR_INVALID_VALUE, "say", "say is too long (at most %d characters)",
		          CALLREQ_MAX_SAY_CHARS);
		return false;
	}
	if (blank) {
		set_error(err, APIERR_INVALID_VALUE, "say", "say must not be empty");
		return false;
	}
	memcpy(r->say, s, n + 1);
	return true;
}

static bool v_url(struct json_object *v, struct call_request *r, struct callreq_error *err)
{
	const char *s;
	size_t n;
	enum verr e;

	if (!get_string(v, "url", CALLREQ_MAX_URL - 1, &s, &n, err))
		return false;
	e = url_check(s, URL_ANY_CASE);
	if (e == VERR_FORBIDDEN) {
		set_error(err, APIERR_INVALID_VALUE, "url", "url must not contain credentials");
		return false;
	}
	if (e != VERR_OK) {
		set_error(err, APIERR_INVALID_VALUE, "url", "url must be an absolute https:// url");
		return false;
	}
	memcpy(r->url, s, n + 1);
	return true;
}

static bool v_timeout(struct json_object *v, struct call_request *r, struct callreq_error *err)
{
	int64_t t;

	if (!json_object_is_type(v, json_type_int)) {
		set_error(err, APIERR_INVALID_TYPE, "timeout", "timeout must be an integer");
		return false;
	}
	/* json-c clamps values beyond int64 to its limits: still out of range */
	t = json_object_get_int64(v);
	if (t < CALLREQ_TIMEOUT_MIN || t > CALLREQ_TIMEOUT_MAX) {
		set_error(err, APIERR_INVALID_VALUE, "timeout", "timeout must be between %d and %d seconds",
		          CALLREQ_TIMEOUT_MIN, CALLREQ_TIMEOUT_MAX);
		return false;
	}
	r->timeout = (int)t;
	r->has_timeout = true;
	return true;
}

static bool get_bool(struct json_object *v, const char *name, bool *dst,
                     struct callreq_error *err)
{
	if (!json_object_is_type(v, json_type_boolean)) {
		set_error(err, APIERR_INVALID_TYPE, name, "%s must be true or false", name);
		return false;
	}
	*dst = json_object_get_boolean(v) != 0;
	return true;
}

static bool v_record(struct json_object *v, struct call_request *r, struct callreq_error *err)
{
	return get_bool(v, "record", &r->record, err);
}

static bool v_machine_detection(struct json_object *v, struct call_request *r,
                                struct callreq_error *err)
{
	return get_bool(v, "machine_detection", &r->machine_detection, err);
}

/* Same order as field_names[]. */
static bool (*const validators[])(struct json_object *, struct call_request *,
                                  struct callreq_error *) = {
	v_to, v_from, v_country, v_say, v_url, v_timeout, v_record, v_machine_detection,
};

_Static_assert(sizeof validators / sizeof validators[0] == N_FIELDS, "one validator per field");

enum verr callreq_parse(const char *body, size_t len, struct call_request *out,
                        struct callreq_error *err)
{
	struct json_tokener *tok = NULL;
	struct json_object *root = NULL;
	enum json_tokener_error jerr;
	enum verr rc = VERR_INVALID;
	size_t end;
	bool has_to = false;

	memset(out, 0, sizeof *out);
	clear_error(err);
	if (len > CALLREQ_MAX_BODY) {
		set_error(err, APIERR_PAYLOAD_TOO_LARGE, NULL, "body is larger than %d bytes", CALLREQ_MAX_BODY);
		return VERR_TOOBIG;
	}
	if (body == NULL || len == 0) {
		set_error(err, APIERR_INVALID_JSON, NULL, "body is empty");
		return VERR_INVALID;
	}
	if (memchr(body, '\0', len) != NULL) {
		set_error(err, APIERR_INVALID_JSON, NULL, "body is not valid json: nul byte");
		return VERR_INVALID;
	}

	/* An object ends itself at '}'; a bare scalar would need json-c's
	 * end-of-input dance and is refused anyway. */
	for (end = 0; end < len && (body[end] == ' ' || body[end] == '\t' || body[end] == '\r' ||
	                            body[end] == '\n');
	     end++)
		;
	if (end == len) {
		set_error(err, APIERR_INVALID_JSON, NULL, "body is empty");
		return VERR_INVALID;
	}
	if (body[end] != '{') {
		set_error(err, APIERR_INVALID_JSON, NULL, "body must be a json object");
		return VERR_INVALID;
	}

	tok = json_tokener_new_ex(JSON_MAX_DEPTH);
	if (tok == NULL) {
		set_error(err, APIERR_INTERNAL, NULL, "could not parse body: out of memory");
		rc = VERR_NOMEM;
		goto out;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	root = json_tokener_parse_ex(tok, body, (int)len);
	jerr = json_tokener_get_error(tok);
	if (root == NULL) {
		set_error(err, APIERR_INVALID_JSON, NULL, "body is not valid json: %s",
		          jerr == json_tokener_continue ? "unexpected end of body"
		                                        : json_tokener_error_desc(jerr));
		goto out;
	}
	end = json_tokener_get_parse_end(tok);
	while (end < len && (body[end] == ' ' || body[end] == '\t' || body[end] == '\r' ||
	                     body[end] == '\n'))
		end++;
	if (end != len) {
		set_error(err, APIERR_INVALID_JSON, NULL, "body is not valid json: data after the object");
		goto out;
	}
	if ((rc = scan_strict(body, len, err)) != VERR_OK)
		goto out;
	rc = VERR_INVALID;
	if (!json_object_is_type(root, json_type_object)) {
		set_error(err, APIERR_INVALID_JSON, NULL, "body must be a json object");
		goto out;
	}

	{
		json_object_object_foreach(root, key, val)
		{
			int idx = field_index(key, strlen(key));

			if (idx < 0) {
				char shown[CALLREQ_MAX_FIELD];

				copy_field(shown, sizeof shown, key);
				set_error(err, APIERR_UNKNOWN_FIELD, key, "unknown field '%s'", shown);
				goto out;
			}
			if (!validators[idx](val, out, err))
				goto out;
			if (idx == 0)
				has_to = true;
		}
	}
	if (!has_to) {
		set_error(err, APIERR_MISSING_FIELD, "to", "to is required");
		goto out;
	}
	if (out->say[0] != '\0' && out->url[0] != '\0') {
		set_error(err, APIERR_INVALID_VALUE, "url", "say and url cannot be used together");
		goto out;
	}
	clear_error(err);
	rc = VERR_OK;
out:
	json_object_put(root);
	if (tok != NULL)
		json_tokener_free(tok);
	if (rc != VERR_OK)
		memset(out, 0, sizeof *out);
	return rc;
}

enum verr callreq_numbers(const struct call_request *req, const char *default_from,
                          const struct phone_policy *policy, struct phone_number *to,
                          struct phone_number *from, struct callreq_error *err)
{
	char why[PHONE_MAX_REASON];
	const char *from_in;
	enum verr e;

	clear_error(err);
	e = phone_parse(req->to, req->country, to, why, sizeof why);
	if (e != VERR_OK) {
		if (e == VERR_INVALID)
			set_error(err, APIERR_INVALID_PHONE_NUMBER, "to", "to: %s", why);
		else
			set_error(err, APIERR_INTERNAL, "to", "%s", why);
		return e;
	}
	if (!phone_policy_allows(policy, to, why, sizeof why)) {
		set_error(err, APIERR_DESTINATION_NOT_ALLOWED, "to", "%s", why);
		return VERR_FORBIDDEN;
	}

	from_in = req->has_from ? req->from : default_from;
	if (from_in == NULL || from_in[0] == '\0') {
		if (req->has_from) {
			set_error(err, APIERR_INVALID_PHONE_NUMBER, "from", "from: phone number is empty");
			return VERR_INVALID;
		}
		set_error(err, APIERR_MISSING_FIELD, "from",
		          "from is required: no default caller id is configured");
		return VERR_INVALID;
	}
	e = phone_parse(from_in, req->country, from, why, sizeof why);
	if (e == VERR_INVALID && !req->has_from) {
		set_error(err, APIERR_INTERNAL, NULL,
		          "the configured caller id is not a valid phone number");
		return VERR_CONFIG;
	}
	if (e != VERR_OK) {
		if (e == VERR_INVALID)
			set_error(err, APIERR_INVALID_PHONE_NUMBER, "from", "from: %s", why);
		else
			set_error(err, APIERR_INTERNAL, "from", "%s", why);
		return e;
	}
	return VERR_OK;
}
