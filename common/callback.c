#include "callback.h"

#include <stdlib.h>
#include <string.h>


#include "buf.h"
#include "log.h"
#include "num.h"
#include "sid.h"

bool callback_one_of(const char *s, const char *const *list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(s, list[i]) == 0)
			return true;
	return false;
}

bool callback_status_valid(const char *s)
{
	static const char *const statuses[] = { "queued", "initiated", "ringing", "in-progress",
		"completed", "busy", "failed", "no-answer", "canceled" };

	return callback_one_of(s, statuses, sizeof statuses / sizeof statuses[0]);
}

static bool direction_valid(const char *s)
{
	static const char *const directions[] = { "inbound", "outbound-api", "outbound-dial",
		"trunking-originating", "trunking-terminating" };

	return callback_one_of(s, directions, sizeof directions / sizeof directions[0]);
}

bool callback_text_valid(const char *s, size_t max)
{
	const unsigned char *p;

	if (strlen(s) >= max)
		return false;
	for (p = (const unsigned char *)s; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

/* Writes a member's key and ':' into b, after a ',' unless it is the first. */
static enum verr put_key(struct buf *b, bool *first, const char *key)
{
	enum verr e = *first ? VERR_OK : buf_putc(b, ',');

	*first = false;
	if (e == VERR_OK)
		e = log_json_string(b, key);
	return e == VERR_OK ? buf_putc(b, ':') : e;
}

/* Closes the object in b unless e failed: the text (the caller frees it), or
 * NULL with b freed. */
static char *put_end(struct buf *b, enum verr e)
{
	if (e == VERR_OK)
		e = buf_putc(b, '}');
	if (e != VERR_OK) {
		buf_free(b);
		return NULL;
	}
	return b->data;
}

/* Written by hand: json-c built an object for every value (perf under
 * callback load: a twentieth of webhook_fcgi's time). */
char *callback_payload_json(const struct form *f)
{
	bool written[FORM_MAX_PARAMS] = { false }; /* a later pair of a key already written */
	struct buf b;
	enum verr e;
	size_t i, j;
	bool first = true;

	if (f->n > FORM_MAX_PARAMS) /* form_parse and form_add never make one */
		return NULL;
	buf_init(&b, (size_t)1 << 24);
	e = buf_putc(&b, '{');
	for (i = 0; e == VERR_OK && i < f->n; i++) {
		const char *key = f->params[i].key;
		size_t n = 1;

		if (written[i])
			continue;
		for (j = i + 1; j < f->n; j++)
			if (!written[j] && strcmp(f->params[j].key, key) == 0) {
				written[j] = true;
				n++;
			}
		e = put_key(&b, &first, key);
		if (e == VERR_OK && n > 1)
			e = buf_putc(&b, '[');
		if (e == VERR_OK)
			e = log_json_string(&b, f->params[i].value);
		for (j = i + 1; e == VERR_OK && n > 1 && j < f->n; j++)
			if (written[j] && strcmp(f->params[j].key, key) == 0) {
				e = buf_putc(&b, ',');
				if (e == VERR_OK)
					e = log_json_string(&b, f->params[j].value);
			}
		if (e == VERR_OK && n > 1)
			e = buf_putc(&b, ']');
	}
	return put_end(&b, e);
}

char *callback_payload_pairs(const char *const (*kv)[2], size_t n)
{
	struct buf b;
	enum verr e;
	size_t i;
	bool first = true;

	buf_init(&b, (size_t)1 << 24);
	e = buf_putc(&b, '{');
	for (i = 0; e == VERR_OK && i < n; i++) {
		if (kv[i][1] == NULL || kv[i][1][0] == '\0')
			continue;
		e = put_key(&b, &first, kv[i][0]);
		if (e == VERR_OK)
			e = log_json_string(&b, kv[i][1]);
	}
	return put_end(&b, e);
}

bool callback_opt_int(const struct form *f, const char *key, long long min, long long max,
                      long long absent, long long *out)
{
	const char *v = form_get(f, key);

	*out = absent;
	if (v == NULL || v[0] == '\0')
		return true;
	return num_parse(v, min, max, out);
}

bool callback_once(const struct form *f, const char *const *typed, size_t n, char *field,
                   size_t fieldsz)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (form_count(f, typed[i]) > 1) {
			str_copy(field, fieldsz, typed[i]);
			return false;
		}
	}
	return true;
}

enum verr callback_account_check(const char *acct, const char *account_sid, char *field,
                                 size_t fieldsz)
{
	enum verr e = acct == NULL || !sid_valid(acct, "AC")   ? VERR_INVALID
	              : strcmp(acct, account_sid) != 0 ? VERR_FORBIDDEN
	                                               : VERR_OK;

	if (e != VERR_OK)
		str_copy(field, fieldsz, "AccountSid");
	return e;
}

enum verr callback_parse(const struct form *f, const char *account_sid, struct call_event *ev,
                         char *field, size_t fieldsz)
{
	/* every parameter we interpret must appear at most once: a repeated one
	 * is ambiguous (which value would be stored?) */
	static const char *const typed[] = { "CallSid", "AccountSid", "CallStatus", "Direction",
		"From", "To", "AnsweredBy", "SequenceNumber", "CallDuration", "SipResponseCode" };
	const char *sid = form_get(f, "CallSid"), *acct = form_get(f, "AccountSid"),
		   *status = form_get(f, "CallStatus"), *dir = form_get(f, "Direction"),
		   *from = form_get(f, "From"), *to = form_get(f, "To"),
		   *answered = form_get(f, "AnsweredBy");
	enum verr e;

#define BAD(name)                                   \
	do {                                            \
		str_copy(field, fieldsz, (name));           \
		return VERR_INVALID;                        \
	} while (0)

	memset(ev, 0, sizeof *ev);
	if (!callback_once(f, typed, sizeof typed / sizeof typed[0], field, fieldsz))
		return VERR_INVALID;
	if (sid == NULL || !sid_valid(sid, "CA"))
		BAD("CallSid");
	if ((e = callback_account_check(acct, account_sid, field, fieldsz)) != VERR_OK)
		return e;
	if (status == NULL || !callback_status_valid(status))
		BAD("CallStatus");
	if (dir == NULL || !direction_valid(dir))
		BAD("Direction");
	if (from == NULL || !callback_text_valid(from, sizeof ev->from))
		BAD("From");
	if (to == NULL || !callback_text_valid(to, sizeof ev->to))
		BAD("To");
	if (answered != NULL && !callback_text_valid(answered, sizeof ev->answered_by))
		BAD("AnsweredBy");
	if (!callback_opt_int(f, "SequenceNumber", 0, 1000000, -1, &ev->sequence_number))
		BAD("SequenceNumber");
	if (!callback_opt_int(f, "CallDuration", 0, 100000000, -1, &ev->duration_seconds))
		BAD("CallDuration");
	if (!callback_opt_int(f, "SipResponseCode", 100, 699, -1, &ev->sip_response_code))
		BAD("SipResponseCode");
#undef BAD
	str_copy(ev->call_sid, sizeof ev->call_sid, sid);
	str_copy(ev->account_sid, sizeof ev->account_sid, acct);
	str_copy(ev->status, sizeof ev->status, status);
	str_copy(ev->direction, sizeof ev->direction, dir);
	str_copy(ev->from, sizeof ev->from, from);
	str_copy(ev->to, sizeof ev->to, to);
	str_copy(ev->answered_by, sizeof ev->answered_by, answered != NULL ? answered : "");
	ev->payload = callback_payload_json(f);
	return ev->payload != NULL ? VERR_OK : VERR_NOMEM;
}

void callback_event_free(struct call_event *ev)
{
	if (ev == NULL)
		return;
	free(ev->payload);
	ev->payload = NULL;
}
