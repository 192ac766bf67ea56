-- Reconciliation (common/reconcile.c, docs/OPERATIONS.md "Reconciliation"):
-- a background pass in the call pool asks Twilio about what the callbacks
-- and the REST answers did not tell us.
--
-- 1. calls.reconciled_at: when a call that is not final yet was last fetched
--    from Twilio. A call is fetched again only VOICE_RECONCILE_AFTER_S after
--    the later of its last change (updated_at) and its last fetch. Not
--    indexed, so writing it (and every callback's update) stays a HOT update
--    (0003); the pass finds candidates through calls_created (recent calls).
-- 2. idempotency_keys.dial_*: what a POST /call with an Idempotency-Key sent
--    to Twilio, written just before dialing. When the answer was lost (504
--    twilio_timeout, a 5xx or unreadable 2xx, or a worker that died with the
--    key pending) the pass looks the call up in Twilio's call list by To,
--    From and start time, and stores it as the key's answer (201 with the
--    call) so a retry returns the real sid. dial_lookups bounds the tries.
-- 3. reconcile_lease: one row. Whichever call worker (on any host) holds it
--    runs the pass; it also paces the passes (last_pass_at) and holds the
--    backoff after Twilio rate-limited us (paused_until, backoff_s), so the
--    budget of Twilio requests is one for the whole deployment.

ALTER TABLE calls ADD COLUMN reconciled_at timestamptz;

ALTER TABLE idempotency_keys
  ADD COLUMN dial_to text CHECK (length(dial_to) <= 64),
  ADD COLUMN dial_from text CHECK (length(dial_from) <= 64),
  ADD COLUMN dial_started_at timestamptz,
  ADD COLUMN dial_lookups smallint NOT NULL DEFAULT 0,
  ADD COLUMN dial_looked_at timestamptz;
-- The keys whose call is still unknown: few at any time (a key leaves this
-- index once its answer names a call), and purged with the key after 24 h.
CREATE INDEX idempotency_keys_unresolved ON idempotency_keys (dial_started_at)
  WHERE dial_started_at IS NOT NULL AND call_sid IS NULL;

CREATE TABLE reconcile_lease (
  name          text PRIMARY KEY CHECK (name = 'reconcile'),
  holder        text CHECK (length(holder) <= 64),
  lease_until   timestamptz NOT NULL DEFAULT '-infinity',
  last_pass_at  timestamptz NOT NULL DEFAULT '-infinity',
  paused_until  timestamptz NOT NULL DEFAULT '-infinity',
  backoff_s     integer NOT NULL DEFAULT 0 CHECK (backoff_s >= 0)
);
INSERT INTO reconcile_lease (name) VALUES ('reconcile');
ALTER TABLE reconcile_lease ENABLE ROW LEVEL SECURITY;
