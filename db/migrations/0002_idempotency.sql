-- Idempotency keys for POST /call (docs/API.md, "Idempotency"): the same
-- key from the same API key within 24 h returns the first response and never
-- dials again; the same key with a different body is refused. Held in the
-- database so it works across workers and hosts: the primary key makes
-- exactly one concurrent request the owner of a key.
CREATE TABLE idempotency_keys (
  api_key_name    text NOT NULL,
  idem_key        text NOT NULL CHECK (length(idem_key) BETWEEN 1 AND 255),
  request_hash    text NOT NULL CHECK (request_hash ~ '^[0-9a-f]{64}$'),
  state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done')),
  response_status integer CHECK (response_status BETWEEN 100 AND 599),
  response_body   text,
  call_sid        text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (api_key_name, idem_key),
  CHECK (state = 'pending' OR (response_status IS NOT NULL AND response_body IS NOT NULL))
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
ALTER TABLE idempotency_keys ENABLE ROW LEVEL SECURITY;
