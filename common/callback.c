#include "callback.h"

#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "buf.h"
#include "num.h"
#include "sid.h"

bool callback_status_valid(const char *s)
{
	static const char *const statuses[] = { "queued", "initiated", "ringing", "in-progress",
		"completed", "busy", "failed", "no-answer", "canceled" };
	size_t i;

	for (i = 0; i < sizeof statuses / sizeof statuses[0]; i++)
		if (strcmp(s, statuses[i]) == 0)
			return true;
	return false;
}

static bool direction_valid(const char *s)
{
	static const char *const directions[] = { "inbound", "outbound-api", "outbound-dial",
		"trunking-originating", "trunking-terminating" };
	size_t i;

	for (i = 0; i < sizeof directions / sizeof directions[0]; i++)
		if (strcmp(s, directions[i]) == 0)
			return true;
	return false;
}

/* Printable text without control characters, at most max-1 bytes. */
static bool text_valid(const char *s, size_t max)
{
	const unsigned char *p;

	if (strlen(s) >= max)
		return false;
	for (p = (const unsigned char *)s; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

char *callback_payload_json(const struct form *f)
{
	struct json_object *o = json_object_new_object();
	char *out = NULL;
	size_t i;

	if (o == NULL)
		return NULL;
	for (i = 0; i < f->n; i++) {
		struct json_object *prev, *v = json_object_new_string(f->params[i].value);

		if (v == NULL)
			goto out;
		if (!json_object_object_get_ex(o, f->params[i].key, &prev)) {
			json_object_object_add(o, f->params[i].key, v);
		} else if (json_object_is_type(prev, json_type_array)) {
			json_object_array_add(prev, v);
		} else {
			struct json_object *arr = json_object_new_array();

			if (arr == NULL) {
				json_object_put(v);
				goto out;
			}
			json_object_array_add(arr, json_object_get(prev));
			json_object_array_add(arr, v);
			json_object_object_add(o, f->params[i].key, arr);
		}
	}
	out = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
out:
	json_object_put(o);
	return out;
}

/* Optional non-negative integer parameter; -1 when absent or empty. */
static bool get_int(const struct form *f, const char *key, long long min, long long max,
                    long long *out)
{
	const char *v = form_get(f, key);

	*out = -1;
	if (v == NULL || v[0] == '\0')
		return true;
	return num_parse(v, min, max, out);
}

/* Every parameter we interpret must appear at most once: a repeated one is
 * ambiguous (which value would be stored?). */
static bool no_repeats(const struct form *f, char *field, size_t fieldsz)
{
	static const char *const typed[] = { "CallSid", "AccountSid", "CallStatus", "Direction",
		"From", "To", "AnsweredBy", "SequenceNumber", "CallDuration", "SipResponseCode" };
	size_t i;

	for (i = 0; i < sizeof typed / sizeof typed[0]; i++) {
		if (form_count(f, typed[i]) > 1) {
			str_copy(field, fieldsz, typed[i]);
			return false;
		}
	}
	return true;
}

enum verr callback_parse(const struct form *f, const char *account_sid, struct call_event *ev,
                         char *field, size_t fieldsz)
{
	const char *sid = form_get(f, "CallSid"), *acct = form_get(f, "AccountSid"),
		   *status = form_get(f, "CallStatus"), *dir = form_get(f, "Direction"),
		   *from = form_get(f, "From"), *to = form_get(f, "To"),
		   *answered = form_get(f, "AnsweredBy");

#define BAD(name)                                   \
	do {                                            \
		str_copy(field, fieldsz, (name));           \
		return VERR_INVALID;                        \
	} while (0)

	memset(ev, 0, sizeof *ev);
	if (!no_repeats(f, field, fieldsz))
		return VERR_INVALID;
	if (sid == NULL || !sid_valid(sid, "CA"))
		BAD("CallSid");
	if (acct == NULL || !sid_valid(acct, "AC"))
		BAD("AccountSid");
	if (strcmp(acct, account_sid) != 0) {
		str_copy(field, fieldsz, "AccountSid");
		return VERR_FORBIDDEN;
	}
	if (status == NULL || !callback_status_valid(status))
		BAD("CallStatus");
	if (dir == NULL || !direction_valid(dir))
		BAD("Direction");
	if (from == NULL || !text_valid(from, sizeof ev->from))
		BAD("From");
	if (to == NULL || !text_valid(to, sizeof ev->to))
		BAD("To");
	if (answered != NULL && !text_valid(answered, sizeof ev->answered_by))
		BAD("AnsweredBy");
	if (!get_int(f, "SequenceNumber", 0, 1000000, &ev->sequence_number))
		BAD("SequenceNumber");
	if (!get_int(f, "CallDuration", 0, 100000000, &ev->duration_seconds))
		BAD("CallDuration");
	if (!get_int(f, "SipResponseCode", 100, 699, &ev->sip_response_code))
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
