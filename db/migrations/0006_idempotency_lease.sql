-- A pending Idempotency-Key belongs to the request that claimed it for a
-- short lease: that request's whole time budget (POST /call answers within
-- nginx's 30 s). A key still pending after its lease was abandoned by a
-- worker that died mid-request: a retry then gets an answer at once
-- (outcome_unknown, with the call if reconciliation found it) instead of
-- waiting and being refused until the key's 24 hours are over. Keys pending
-- when this migration runs have no lease: they count as abandoned.
ALTER TABLE idempotency_keys ADD COLUMN lease_until timestamptz;
