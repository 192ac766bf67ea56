-- The call workers remember the API keys they found, so a request with a
-- known key costs no database round trip (common/apikey.h). They must still
-- refuse a revoked key from the next request on: every change to api_keys
-- (a key created, revoked, its read_all changed, rows deleted) notifies the
-- channel voice_api_keys, on which each call worker LISTENs (db_keys_watch
-- in common/db.c) and forgets what it remembered. One notification per
-- statement, sent when the transaction commits. A worker that finds this
-- trigger missing or disabled remembers nothing.
CREATE OR REPLACE FUNCTION api_keys_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('voice_api_keys', TG_OP);
  RETURN NULL;
END
$$;

CREATE TRIGGER api_keys_notify
  AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON api_keys
  FOR EACH STATEMENT EXECUTE FUNCTION api_keys_notify();
