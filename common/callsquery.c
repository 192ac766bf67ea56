#include "callsquery.h"

#include <string.h>

#include "buf.h"
#include "callback.h"
#include "cursor.h"
#include "form.h"
#include "num.h"

static bool direction_valid(const char *d)
{
	return strcmp(d, "inbound") == 0 || strcmp(d, "outbound-api") == 0 ||
	       strcmp(d, "outbound-dial") == 0;
}

static enum verr fail(struct callsquery_error *err, enum apierr code, const char *field,
                      const char *message)
{
	err->code = code;
	str_copy(err->field, sizeof err->field, field != NULL ? field : "");
	str_copy(err->message, sizeof err->message, message);
	return VERR_INVALID;
}

enum verr callsquery_parse(const char *query, struct callsquery *q, struct callsquery_error *err)
{
	struct form f = { 0 };
	char detail[FORM_MAX_ERROR];
	enum verr e = VERR_OK;
	size_t i;

	memset(q, 0, sizeof *q);
	q->filter.limit = CALLSQUERY_DEFAULT_LIMIT;
	if (form_parse(query, strlen(query), &f, detail, sizeof detail) != VERR_OK)
		return fail(err, APIERR_INVALID_QUERY, NULL, detail);
	for (i = 0; e == VERR_OK && i < f.n; i++) {
		const char *k = f.params[i].key, *v = f.params[i].value;
		long long n;

		if (form_count(&f, k) != 1)
			e = fail(err, APIERR_INVALID_QUERY, k, "a query parameter is repeated");
		else if (strcmp(k, "status") == 0)
			e = callback_status_valid(v) && str_copy(q->status, sizeof q->status, v)
			        ? VERR_OK : fail(err, APIERR_INVALID_VALUE, k, "status is not a call status");
		else if (strcmp(k, "direction") == 0)
			e = direction_valid(v) && str_copy(q->direction, sizeof q->direction, v)
			        ? VERR_OK
			        : fail(err, APIERR_INVALID_VALUE, k,
			               "direction must be inbound, outbound-api or outbound-dial");
		else if (strcmp(k, "limit") == 0 && num_parse(v, 1, CALLSQUERY_MAX_LIMIT, &n))
			q->filter.limit = (int)n;
		else if (strcmp(k, "limit") == 0)
			e = fail(err, APIERR_INVALID_VALUE, k, "limit must be an integer from 1 to 100");
		else if (strcmp(k, "cursor") == 0)
			e = cursor_decode(v, q->after_created, q->after_sid)
			        ? VERR_OK
			        : fail(err, APIERR_INVALID_VALUE, k,
			               "the cursor is not one this service issued");
		else
			e = fail(err, APIERR_UNKNOWN_FIELD, k, "unknown query parameter");
	}
	form_free(&f);
	q->filter.status = q->status[0] ? q->status : NULL;
	q->filter.direction = q->direction[0] ? q->direction : NULL;
	q->filter.after_created = q->after_created[0] ? q->after_created : NULL;
	q->filter.after_sid = q->after_sid[0] ? q->after_sid : NULL;
	return e;
}
