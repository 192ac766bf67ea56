-- Recordings, and API keys that read only the calls they placed.
--
-- 1. recordings: one row per Twilio recording, written from the recording
--    status callbacks (POST /twilio/recording) that POST /call asks for when
--    the call is recorded. A redelivered callback changes nothing; a
--    recording's status only moves forward (in-progress -> completed or
--    absent). Only the metadata is kept: the audio stays at Twilio, behind
--    media_url (docs/API.md, "Recordings").
-- 2. api_keys.read_all: a key reads only the calls placed with its name
--    unless read_all is true (then every call, inbound ones included). Keys
--    that exist when this migration runs keep what they could do before and
--    become read_all; keys created afterwards are not (voicectl key create
--    NAME --read-all asks for it). Narrow one with `voicectl key scope NAME
--    own`.
-- 3. calls_owner_created: GET /calls for such a key is one index probe, the
--    same keyset order as calls_created, per key name.
--
-- Per-column rules are domains, as since 0003 (checked on every write,
-- parsed once per session).

CREATE DOMAIN twilio_recording_sid AS text
  CHECK (length(VALUE) = 34 AND VALUE ~ '^RE[0-9a-fA-F]*$');
-- Twilio's RecordingStatus values (call_recording_enum_status, plus failed).
CREATE DOMAIN recording_status AS text
  CHECK (VALUE IN ('in-progress', 'paused', 'stopped', 'processing', 'completed', 'absent',
    'failed'));
CREATE DOMAIN recording_channels AS smallint CHECK (VALUE IN (1, 2));
CREATE DOMAIN text1024 AS text CHECK (length(VALUE) <= 1024);

-- No foreign key to calls: Twilio may report a recording of a call this
-- service has no row for yet (or never will, e.g. an inbound call whose
-- status callback is not configured). GET /recordings/{sid} joins calls to
-- decide who may read it.
CREATE TABLE recordings (
  recording_sid     twilio_recording_sid PRIMARY KEY,
  call_sid          twilio_call_sid NOT NULL,
  account_sid       twilio_account_sid NOT NULL,
  status            recording_status NOT NULL,
  duration_seconds  call_duration,
  channels          recording_channels,
  source            text64,
  track             text64,
  media_url         text1024,
  error_code        integer CHECK (error_code >= 0),
  started_at        timestamptz,
  -- every parameter of the callback that last changed the row
  payload           jsonb NOT NULL,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now()
);
-- A call's recordings, oldest first (GET /calls/{sid}).
CREATE INDEX recordings_call ON recordings (call_sid, created_at, recording_sid);
ALTER TABLE recordings ENABLE ROW LEVEL SECURITY;

-- Existing keys become read_all (the default true fills them without a
-- table rewrite); new keys default to their own calls.
ALTER TABLE api_keys ADD COLUMN read_all boolean NOT NULL DEFAULT true;
ALTER TABLE api_keys ALTER COLUMN read_all SET DEFAULT false;
COMMENT ON COLUMN api_keys.read_all IS
  'true: the key reads every call; false: only calls placed with its name (calls.api_key_name)';

-- GET /calls and GET /calls/{sid} for a key that is not read_all.
CREATE INDEX calls_owner_created ON calls (api_key_name, created_at DESC, call_sid DESC);
