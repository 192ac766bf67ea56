#include "recording.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "callback.h"
#include "num.h"
#include "sid.h"

static const char *const statuses[] = { "in-progress", "paused", "stopped", "processing",
	"completed", "absent", "failed" };
static const char *const finals[] = { "completed", "absent", "failed" };

bool recording_status_valid(const char *s)
{
	return callback_one_of(s, statuses, sizeof statuses / sizeof statuses[0]);
}

bool recording_status_final(const char *s)
{
	return callback_one_of(s, finals, sizeof finals / sizeof finals[0]);
}

/* Printable ASCII without spaces, under max bytes. */
static bool token_ok(const char *s, size_t max)
{
	size_t n = strlen(s), i;

	if (n == 0 || n >= max)
		return false;
	for (i = 0; i < n; i++)
		if (s[i] < 0x21 || s[i] > 0x7e)
			return false;
	return true;
}

/* Reads lo..hi digits at *p into *v and advances; false otherwise. */
static bool digits(const char **p, int lo, int hi, int *v)
{
	int n = 0;

	*v = 0;
	while (n < hi && (*p)[n] >= '0' && (*p)[n] <= '9') {
		*v = *v * 10 + ((*p)[n] - '0');
		n++;
	}
	*p += n;
	return n >= lo;
}

/* Consumes the literal lit at *p. */
static bool skip(const char **p, const char *lit)
{
	size_t n = strlen(lit);

	if (strncmp(*p, lit, n) != 0)
		return false;
	*p += n;
	return true;
}

/*
 * RFC 2822 as Twilio writes it ("Tue, 31 Aug 2010 20:36:28 +0000") into
 * RFC 3339 UTC. false when s does not read exactly that way. Month names
 * are matched here, not through the locale.
 */
static bool rfc2822_to_3339(const char *s, char out[RECORDING_MAX_TIME])
{
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
		"Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	const char *p = s;
	int day, year, hh, mm, ss, zone, m;
	bool east;
	struct tm tm;
	time_t t;

	/* the day name is redundant: three letters and ", " */
	for (m = 0; m < 3; m++)
		if (!((p[m] >= 'A' && p[m] <= 'Z') || (p[m] >= 'a' && p[m] <= 'z')))
			return false;
	p += 3;
	if (!skip(&p, ", ") || !digits(&p, 1, 2, &day) || !skip(&p, " "))
		return false;
	for (m = 0; m < 12; m++)
		if (strncmp(p, months[m], 3) == 0)
			break;
	if (m == 12)
		return false;
	p += 3;
	if (!skip(&p, " ") || !digits(&p, 4, 4, &year) || !skip(&p, " ") ||
	    !digits(&p, 2, 2, &hh) || !skip(&p, ":") || !digits(&p, 2, 2, &mm) || !skip(&p, ":") ||
	    !digits(&p, 2, 2, &ss) || !skip(&p, " ") || (*p != '+' && *p != '-'))
		return false;
	east = *p++ == '+';
	if (!digits(&p, 4, 4, &zone) || *p != '\0')
		return false;
	if (day < 1 || day > 31 || year < 1970 || hh > 23 || mm > 59 || ss > 60 ||
	    zone % 100 > 59 || zone > 1400)
		return false;
	memset(&tm, 0, sizeof tm);
	tm.tm_year = year - 1900;
	tm.tm_mon = m;
	tm.tm_mday = day;
	tm.tm_hour = hh;
	tm.tm_min = mm;
	tm.tm_sec = ss;
	t = timegm(&tm);
	if (t == (time_t)-1)
		return false;
	t -= (time_t)((east ? 1 : -1) * ((zone / 100) * 3600 + (zone % 100) * 60));
	/* within four-digit years once the offset is applied */
	return gmtime_r(&t, &tm) != NULL && tm.tm_year + 1900 >= 1000 && tm.tm_year + 1900 <= 9999 &&
	       strftime(out, RECORDING_MAX_TIME, "%Y-%m-%dT%H:%M:%SZ", &tm) != 0;
}

enum verr recording_parse(const struct form *f, const char *account_sid,
                          struct recording_event *ev, char *field, size_t fieldsz)
{
	static const char *const typed[] = { "AccountSid", "CallSid", "RecordingSid",
		"RecordingStatus", "RecordingUrl", "RecordingDuration", "RecordingChannels",
		"RecordingStartTime", "RecordingSource", "RecordingTrack", "ErrorCode" };
	const char *acct = form_get(f, "AccountSid"), *call = form_get(f, "CallSid"),
		   *sid = form_get(f, "RecordingSid"), *status = form_get(f, "RecordingStatus"),
		   *url = form_get(f, "RecordingUrl"), *source = form_get(f, "RecordingSource"),
		   *track = form_get(f, "RecordingTrack"), *start = form_get(f, "RecordingStartTime");
	long long channels;
	enum verr e;

#define BAD(name)                                   \
	do {                                            \
		str_copy(field, fieldsz, (name));           \
		return VERR_INVALID;                        \
	} while (0)

	memset(ev, 0, sizeof *ev);
	ev->duration_seconds = ev->error_code = -1;
	if (!callback_once(f, typed, sizeof typed / sizeof typed[0], field, fieldsz))
		return VERR_INVALID;
	if ((e = callback_account_check(acct, account_sid, field, fieldsz)) != VERR_OK)
		return e;
	if (call == NULL || !sid_valid(call, "CA"))
		BAD("CallSid");
	if (sid == NULL || !sid_valid(sid, "RE"))
		BAD("RecordingSid");
	if (status == NULL || !recording_status_valid(status))
		BAD("RecordingStatus");
	if (url != NULL && url[0] != '\0' &&
	    (strncmp(url, "https://", 8) != 0 || !token_ok(url, sizeof ev->media_url)))
		BAD("RecordingUrl");
	if (!callback_opt_int(f, "RecordingDuration", -1, 100000000, -1, &ev->duration_seconds))
		BAD("RecordingDuration");
	if (!callback_opt_int(f, "RecordingChannels", 1, 2, 0, &channels))
		BAD("RecordingChannels");
	if (!callback_opt_int(f, "ErrorCode", 0, 999999, -1, &ev->error_code))
		BAD("ErrorCode");
	if (source != NULL && !callback_text_valid(source, sizeof ev->source))
		BAD("RecordingSource");
	if (track != NULL && !callback_text_valid(track, sizeof ev->track))
		BAD("RecordingTrack");
#undef BAD
	ev->channels = (int)channels;
	str_copy(ev->recording_sid, sizeof ev->recording_sid, sid);
	str_copy(ev->call_sid, sizeof ev->call_sid, call);
	str_copy(ev->account_sid, sizeof ev->account_sid, acct);
	str_copy(ev->status, sizeof ev->status, status);
	str_copy(ev->media_url, sizeof ev->media_url, url != NULL ? url : "");
	str_copy(ev->source, sizeof ev->source, source != NULL ? source : "");
	str_copy(ev->track, sizeof ev->track, track != NULL ? track : "");
	if (start == NULL || !rfc2822_to_3339(start, ev->started_at))
		ev->started_at[0] = '\0';
	ev->payload = callback_payload_json(f);
	return ev->payload != NULL ? VERR_OK : VERR_NOMEM;
}

void recording_event_free(struct recording_event *ev)
{
	if (ev == NULL)
		return;
	free(ev->payload);
	ev->payload = NULL;
}
