#ifndef VOICE_RECORDING_H
#define VOICE_RECORDING_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"
#include "form.h"

/*
 * A Twilio recording status callback (the RecordingStatusCallback that
 * POST /call asks for with record: true) validated into typed fields.
 * Parameters (Twilio docs, "RecordingStatusCallback" of the Call resource):
 * AccountSid, CallSid, RecordingSid, RecordingUrl, RecordingStatus,
 * RecordingDuration (seconds), RecordingChannels (1 or 2),
 * RecordingStartTime (RFC 2822), RecordingSource (OutboundAPI, DialVerb, …),
 * RecordingTrack, ErrorCode. Twilio adds parameters without notice: those
 * are kept in the payload, never refused.
 */
#define RECORDING_MAX_SID 35
#define RECORDING_MAX_STATUS 16
#define RECORDING_MAX_TEXT 65   /* RecordingSource, RecordingTrack */
#define RECORDING_MAX_URL 1025  /* RecordingUrl */
#define RECORDING_MAX_TIME 32   /* RFC 3339 UTC, "2026-05-01T09:30:12Z" */

struct recording_event {
	char recording_sid[RECORDING_MAX_SID]; /* "RE" + 32 hex */
	char call_sid[RECORDING_MAX_SID];
	char account_sid[RECORDING_MAX_SID];
	char status[RECORDING_MAX_STATUS];
	long long duration_seconds;            /* -1 when absent (or Twilio's -1) */
	int channels;                          /* 1 or 2; 0 when absent */
	char source[RECORDING_MAX_TEXT];       /* "" when absent */
	char track[RECORDING_MAX_TEXT];        /* "" when absent */
	char media_url[RECORDING_MAX_URL];     /* https URL; "" when absent */
	long long error_code;                  /* -1 when absent */
	char started_at[RECORDING_MAX_TIME];   /* "" when absent or not RFC 2822 */
	char *payload;                         /* every parameter as JSON; owned */
};

/*
 * Validates the callback parameters f into ev. account_sid is ours: a
 * callback for another account is VERR_FORBIDDEN (field "AccountSid").
 * Required: AccountSid, CallSid ("CA" + 32 hex), RecordingSid ("RE" + 32
 * hex), RecordingStatus (recording_status_valid). Optional, but refused
 * when malformed: RecordingDuration (integer -1..100000000), RecordingChannels
 * (1 or 2), ErrorCode (integer 0..999999), RecordingUrl (https, printable
 * ASCII, under RECORDING_MAX_URL), RecordingSource and RecordingTrack
 * (printable, under RECORDING_MAX_TEXT). RecordingStartTime is converted to
 * RFC 3339 when it reads as RFC 2822 and otherwise only kept in the payload
 * (a date format is no reason to lose a recording). Each of these
 * parameters at most once. VERR_INVALID with the parameter's name in field;
 * VERR_NOMEM. On success the caller frees with recording_event_free (safe on
 * a zeroed or failed event).
 */
enum verr recording_parse(const struct form *f, const char *account_sid,
                          struct recording_event *ev, char *field, size_t fieldsz);
void recording_event_free(struct recording_event *ev);

/* True for the RecordingStatus values Twilio sends: in-progress, paused,
 * stopped, processing, completed, absent, failed. */
bool recording_status_valid(const char *s);
/* True for the final ones: completed, absent, failed. */
bool recording_status_final(const char *s);

#endif
