-- pgbench script: the durable write of ONE Twilio status callback, the
-- statement common/db.c prepares as event_record, in its form for migration
-- 0003: the rank inline with built-ins (no call_status_rank()), updated_at
-- set by the statement when the row changes, two CTE scans and no prev CTE.
-- bench/pgbench.sh runs it; see bench/README.md for why each part is so.
--
-- The SQL below is db.c's text with each bind parameter $n replaced by the
-- SQL expression that computes it from pgbench's integer variables ($1
-- call_sid, $2 status, $3 sequence_number, $4 idempotency token, $5 payload,
-- $6 account_sid, $7 direction, $8 from, $9 to, $10 answered_by, $11
-- duration, $12 sip_response_code), as the peer's pgbench-webhook.sql does:
-- pgbench cannot bind a string per transaction. In prepared mode every
-- ":name" becomes a bind parameter, even inside a literal, hence \u003a for
-- the colons of the payload's Timestamp.
--
-- Each client walks its own calls in waves of :wave calls (initiated for all
-- of them, then ringing, in-progress, completed), so a call is one INSERT and
-- three UPDATEs of its calls row and clients never contend for a row. With
-- -D wave=2000 (the peer harness's value) a 10 s run never leaves the first
-- wave: inserts only. Run with -D wave=N -D k=-1 (pgbench.sh does).
\set k :k + 1
\set step (:k / :wave) % 4
\set call :client_id * 100000000 + (:k / (4 * :wave)) * :wave + :k % :wave
\set rank :step + 1
WITH ev AS ( INSERT INTO call_events (call_sid, status, sequence_number, idempotency_token, payload)
  VALUES (('CA' || md5(:call::text)),
  ((ARRAY['initiated','ringing','in-progress','completed'])[:rank]), (:step)::integer,
  (md5(:call::text || '/' || :step::text)),
  ('{"AccountSid":"AC5ef8732a3c49700934481addd5ce1659","ApiVersion":"2010-04-01","CallSid":"CA' ||
  md5(:call::text) || '","CallStatus":"' ||
  (ARRAY['initiated','ringing','in-progress','completed'])[:rank] ||
  '","CallbackSource":"call-progress-events","Called":"+13121631305","CalledCity":"CHICAGO","CalledCountry":"US","CalledState":"IL","CalledZip":"60601","Caller":"+13056241632","CallerCity":"MIAMI","CallerCountry":"US","CallerState":"FL","CallerZip":"33101","Direction":"outbound-api","From":"+13056241632","FromCity":"MIAMI","FromCountry":"US","FromState":"FL","FromZip":"33101","SequenceNumber":"'
  || :step || '","Timestamp":"Sun, 01 Nov 2026 12\u003a00\u003a00 +0000","To":"+13121631305","ToCity":"CHICAGO","ToCountry":"US","ToState":"IL","ToZip":"60601"}')::jsonb)
  ON CONFLICT DO NOTHING RETURNING 1), up AS ( INSERT INTO calls AS c (call_sid, account_sid,
  direction, from_number, to_number, status, sequence_number, answered_by, duration_seconds,
  sip_response_code) SELECT ('CA' || md5(:call::text)), ('AC5ef8732a3c49700934481addd5ce1659'),
  ('outbound-api'), ('+13056241632'), ('+13121631305'),
  ((ARRAY['initiated','ringing','in-progress','completed'])[:rank]), (:step)::integer, (NULL::text),
  (CASE WHEN :step = 3 THEN 42 END)::integer, (CASE WHEN :step = 3 THEN 200 END)::integer FROM ev ON
  CONFLICT (call_sid) DO UPDATE SET status = CASE WHEN
  (coalesce(array_position('{queued,initiated,ringing,in-progress}'::text[], EXCLUDED.status), 5),
  coalesce(EXCLUDED.sequence_number, -1)) >
  (coalesce(array_position('{queued,initiated,ringing,in-progress}'::text[], c.status), 5),
  coalesce(c.sequence_number, -1)) THEN EXCLUDED.status ELSE c.status END, sequence_number = CASE
  WHEN (coalesce(array_position('{queued,initiated,ringing,in-progress}'::text[], EXCLUDED.status),
  4), coalesce(EXCLUDED.sequence_number, -1)) >
  (coalesce(array_position('{queued,initiated,ringing,in-progress}'::text[], c.status), 5),
  coalesce(c.sequence_number, -1)) THEN EXCLUDED.sequence_number ELSE c.sequence_number END,
  answered_by = coalesce(EXCLUDED.answered_by, c.answered_by), duration_seconds =
  coalesce(EXCLUDED.duration_seconds, c.duration_seconds), sip_response_code =
  coalesce(EXCLUDED.sip_response_code, c.sip_response_code), updated_at = CASE WHEN
  (coalesce(array_position('{queued,initiated,ringing,in-progress}'::text[], EXCLUDED.status), 5),
  coalesce(EXCLUDED.sequence_number, -1)) >
  (coalesce(array_position('{queued,initiated,ringing,in-progress}'::text[], c.status), 5),
  coalesce(c.sequence_number, -1)) OR (c.answered_by, c.duration_seconds, c.sip_response_code) IS
  DISTINCT FROM (coalesce(EXCLUDED.answered_by, c.answered_by), coalesce(EXCLUDED.duration_seconds,
  c.duration_seconds), coalesce(EXCLUDED.sip_response_code, c.sip_response_code)) THEN now() ELSE
  c.updated_at END RETURNING c.status) SELECT count(*)::integer, min(status), (SELECT status FROM
  calls WHERE call_sid = ('CA' || md5(:call::text))) FROM up;
