-- Initial schema: calls, their webhook events, and hashed API keys.
-- Runs unchanged on PostgreSQL 15+ and Supabase. Every table has row-level
-- security enabled with no policies, so only the owning role (the service)
-- can read or write it; Supabase's anon/authenticated roles see nothing.

-- Rank of a call status in Twilio's lifecycle. A call's status may only move
-- to an equal or higher rank; the five terminal states share the top rank.
CREATE FUNCTION call_status_rank(s text) RETURNS smallint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT CASE s
    WHEN 'queued' THEN 0
    WHEN 'initiated' THEN 1
    WHEN 'ringing' THEN 2
    WHEN 'in-progress' THEN 3
    WHEN 'completed' THEN 4
    WHEN 'busy' THEN 4
    WHEN 'failed' THEN 4
    WHEN 'no-answer' THEN 4
    WHEN 'canceled' THEN 4
  END::smallint
$$;

CREATE TABLE api_keys (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name        text NOT NULL CHECK (name ~ '^[A-Za-z0-9_.-]{1,64}$'),
  key_hash    text NOT NULL UNIQUE CHECK (key_hash ~ '^[0-9a-f]{64}$'),
  created_at  timestamptz NOT NULL DEFAULT now(),
  revoked_at  timestamptz
);
-- One active key per name; revoked keys stay for the audit trail.
CREATE UNIQUE INDEX api_keys_active_name ON api_keys (name) WHERE revoked_at IS NULL;

CREATE TABLE calls (
  call_sid          text PRIMARY KEY CHECK (call_sid ~ '^CA[0-9a-fA-F]{32}$'),
  account_sid       text NOT NULL CHECK (account_sid ~ '^AC[0-9a-fA-F]{32}$'),
  direction         text NOT NULL CHECK (direction IN ('inbound', 'outbound-api',
                      'outbound-dial', 'trunking-originating', 'trunking-terminating')),
  from_number       text NOT NULL CHECK (length(from_number) <= 64),
  to_number         text NOT NULL CHECK (length(to_number) <= 64),
  status            text NOT NULL CHECK (call_status_rank(status) IS NOT NULL),
  sequence_number   integer CHECK (sequence_number >= 0),
  answered_by       text CHECK (length(answered_by) <= 64),
  duration_seconds  integer CHECK (duration_seconds >= 0),
  sip_response_code integer CHECK (sip_response_code BETWEEN 100 AND 699),
  api_key_name      text,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now()
);
-- Keyset pagination, newest first: (created_at, call_sid).
CREATE INDEX calls_created ON calls (created_at DESC, call_sid DESC);
CREATE INDEX calls_status_created ON calls (status, created_at DESC, call_sid DESC);

-- Safety net under the webhook upsert: no writer may move a status backwards.
-- Within one rank (the terminal states) the higher SequenceNumber wins.
CREATE FUNCTION calls_status_forward() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF call_status_rank(NEW.status) < call_status_rank(OLD.status)
     OR (call_status_rank(NEW.status) = call_status_rank(OLD.status)
         AND NEW.status <> OLD.status
         AND coalesce(NEW.sequence_number, -1) < coalesce(OLD.sequence_number, -1)) THEN
    RAISE EXCEPTION 'call % status may not move from % to %',
      OLD.call_sid, OLD.status, NEW.status USING ERRCODE = 'check_violation';
  END IF;
  NEW.updated_at := now();
  RETURN NEW;
END
$$;
CREATE TRIGGER calls_status_forward BEFORE UPDATE ON calls
  FOR EACH ROW EXECUTE FUNCTION calls_status_forward();

CREATE TABLE call_events (
  id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  call_sid          text NOT NULL REFERENCES calls (call_sid),
  status            text NOT NULL CHECK (call_status_rank(status) IS NOT NULL),
  sequence_number   integer CHECK (sequence_number >= 0),
  idempotency_token text CHECK (length(idempotency_token) <= 256),
  payload           jsonb NOT NULL,
  received_at       timestamptz NOT NULL DEFAULT now()
);
-- A retried delivery is stored once: by Twilio's idempotency token, and by
-- (call, status, sequence number) for deliveries without one.
CREATE UNIQUE INDEX call_events_token ON call_events (idempotency_token)
  WHERE idempotency_token IS NOT NULL;
CREATE UNIQUE INDEX call_events_delivery ON call_events
  (call_sid, status, coalesce(sequence_number, -1));
CREATE INDEX call_events_call ON call_events (call_sid, received_at, id);

ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE calls ENABLE ROW LEVEL SECURITY;
ALTER TABLE call_events ENABLE ROW LEVEL SECURITY;
