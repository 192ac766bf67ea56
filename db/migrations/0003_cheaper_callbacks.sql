-- Cheaper status callbacks: the same rules, enforced where PostgreSQL does
-- not parse and plan them again for every statement.
--
-- Why. A profile of PostgreSQL under the webhook load (one statement per
-- callback: event insert + calls upsert) showed most of its CPU outside the
-- actual work, in base_yyparse, pg_strtok and eval_const_expressions: for
-- every statement the executor reads each table CHECK constraint back from
-- its stored node text (stringToNode) and runs the planner's expression
-- simplification on it. The CHECKs calling the SQL function
-- call_status_rank() were worst: its body was parsed again (inlined) every
-- time; the plpgsql trigger calls_status_forward called it four times per
-- updated row (in plpgsql, slower still). The index calls_status_created on
-- the status column made every status change a non-HOT update. With 0001's
-- schema a callback cost ~2.8 M instructions of PostgreSQL, 6.2x the Node
-- peer's simpler statement; with this migration and the new statement
-- ~0.67 M, 1.46x (CPU time: ~2.7x and ~1.45x; bench/README.md).
--
-- What changes (nothing that the database guarantees is lost):
--   * The per-column rules of calls and call_events move from table CHECK
--     constraints to domains. A domain's constraints are parsed and planned
--     once per session (type cache), not once per statement; values are still
--     checked on every insert and update, with the same SQLSTATE (23514).
--   * calls_status_forward (BEFORE UPDATE, every row) computes the rank with
--     built-ins instead of call_status_rank(), and leaves updated_at to the
--     statements. Not a trigger WHEN clause: that is stored as node text and
--     re-read and re-planned for every statement, like a CHECK.
--   * calls_status_created is dropped: status changes become HOT updates (the
--     GET /calls status filter, a generic plan, already walks calls_created).
--   * call_events_call is dropped: call_events_delivery starts with call_sid
--     and serves GET /calls/{sid} (a call has a handful of events to sort).
--
-- The column type changes do not rewrite the tables: the domains are
-- created without constraints (text -> domain over text is binary
-- coercible, so the ALTERs only change the catalog and keep the plain
-- indexes), and the constraints are added afterwards with ALTER DOMAIN,
-- which only scans the rows to validate them. The two call_events indexes
-- that contain an expression or a predicate are rebuilt.

-- Old rules out first: their expressions mention the columns being retyped,
-- and so do these indexes.
ALTER TABLE calls
  DROP CONSTRAINT calls_call_sid_check,
  DROP CONSTRAINT calls_account_sid_check,
  DROP CONSTRAINT calls_direction_check,
  DROP CONSTRAINT calls_from_number_check,
  DROP CONSTRAINT calls_to_number_check,
  DROP CONSTRAINT calls_status_check,
  DROP CONSTRAINT calls_sequence_number_check,
  DROP CONSTRAINT calls_answered_by_check,
  DROP CONSTRAINT calls_duration_seconds_check,
  DROP CONSTRAINT calls_sip_response_code_check;
ALTER TABLE call_events
  DROP CONSTRAINT call_events_status_check,
  DROP CONSTRAINT call_events_sequence_number_check,
  DROP CONSTRAINT call_events_idempotency_token_check;
DROP INDEX calls_status_created;
DROP INDEX call_events_call;

CREATE DOMAIN twilio_call_sid AS text;
CREATE DOMAIN twilio_account_sid AS text;
CREATE DOMAIN call_direction AS text;
CREATE DOMAIN call_status AS text;
CREATE DOMAIN text64 AS text;
CREATE DOMAIN idempotency_token AS text;
CREATE DOMAIN twilio_sequence_number AS integer;
CREATE DOMAIN call_duration AS integer;
CREATE DOMAIN sip_response_code AS integer;

-- call_events.call_sid stays text, as before: its foreign key to calls is
-- its check.
ALTER TABLE calls
  ALTER call_sid TYPE twilio_call_sid,
  ALTER account_sid TYPE twilio_account_sid,
  ALTER direction TYPE call_direction,
  ALTER from_number TYPE text64,
  ALTER to_number TYPE text64,
  ALTER status TYPE call_status,
  ALTER sequence_number TYPE twilio_sequence_number,
  ALTER answered_by TYPE text64,
  ALTER duration_seconds TYPE call_duration,
  ALTER sip_response_code TYPE sip_response_code;
ALTER TABLE call_events
  ALTER status TYPE call_status,
  ALTER sequence_number TYPE twilio_sequence_number,
  ALTER idempotency_token TYPE idempotency_token;

-- The rules of 0001, one per domain. The SID rules test the length and then
-- the characters: the same strings as '^CA[0-9a-fA-F]{32}$', but the
-- regular expression engine evaluates {32} as 32 states, rebuilt for each
-- match (~2 us per value against ~0.3 us).
ALTER DOMAIN twilio_call_sid ADD CONSTRAINT twilio_call_sid_check
  CHECK (length(VALUE) = 34 AND VALUE ~ '^CA[0-9a-fA-F]*$');
ALTER DOMAIN twilio_account_sid ADD CONSTRAINT twilio_account_sid_check
  CHECK (length(VALUE) = 34 AND VALUE ~ '^AC[0-9a-fA-F]*$');
ALTER DOMAIN call_direction ADD CONSTRAINT call_direction_check
  CHECK (VALUE IN ('inbound', 'outbound-api', 'outbound-dial', 'trunking-originating',
    'trunking-terminating'));
-- Rank (see call_status_rank): queued 0 < initiated 1 < ringing 2 <
-- in-progress 3 < the five terminal statuses 4.
ALTER DOMAIN call_status ADD CONSTRAINT call_status_check
  CHECK (VALUE IN ('queued', 'initiated', 'ringing', 'in-progress',
    'completed', 'busy', 'failed', 'no-answer', 'canceled'));
ALTER DOMAIN text64 ADD CONSTRAINT text64_check CHECK (length(VALUE) <= 64);
ALTER DOMAIN idempotency_token ADD CONSTRAINT idempotency_token_check
  CHECK (length(VALUE) <= 256);
ALTER DOMAIN twilio_sequence_number ADD CONSTRAINT twilio_sequence_number_check
  CHECK (VALUE >= 0);
ALTER DOMAIN call_duration ADD CONSTRAINT call_duration_check CHECK (VALUE >= 0);
ALTER DOMAIN sip_response_code ADD CONSTRAINT sip_response_code_check
  CHECK (VALUE BETWEEN 100 AND 699);

-- Safety net under the webhook upsert: no writer may move a status
-- backwards; within one rank (the terminal states) the higher SequenceNumber
-- wins. Same rule and same trigger as 0001, written without
-- call_status_rank(): in plpgsql that call cost more than everything else the
-- trigger does. As one row comparison: the status changes and (rank,
-- SequenceNumber) decreases; the rank is the position among the four
-- non-terminal statuses, 4 for a terminal one (the domain admits no other
-- value). The function is compiled once per session; a trigger WHEN clause
-- would instead be re-read and re-planned for every statement, like a CHECK
-- (measured: ~4x the cost of running this function for every row).
-- updated_at is no longer set here: every statement that changes what the
-- API shows of a calls row sets updated_at = now() itself (common/db.c), and
-- a write that changes nothing of it leaves updated_at alone.
CREATE OR REPLACE FUNCTION calls_status_forward() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.status <> OLD.status
     AND (coalesce(array_position('{queued,initiated,ringing,in-progress}'::text[], NEW.status), 4),
          coalesce(NEW.sequence_number, -1))
       < (coalesce(array_position('{queued,initiated,ringing,in-progress}'::text[], OLD.status), 4),
          coalesce(OLD.sequence_number, -1)) THEN
    RAISE EXCEPTION 'call % status may not move from % to %',
      OLD.call_sid, OLD.status, NEW.status USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END
$$;

-- call_status_rank() stays: the event_record statement of the service
-- version before this migration uses it (it runs until the new one is
-- deployed); nothing of this schema calls it any more.
COMMENT ON FUNCTION call_status_rank(text) IS
  'Rank of a call status (reference; no constraint or trigger uses it since 0003)';
