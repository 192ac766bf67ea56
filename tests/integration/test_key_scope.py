#!/usr/bin/env python3
"""API keys read only their own calls unless created --read-all:

- a key's call is 404 to another key, by sid (GET /calls/{sid}, cancel,
  hang up, its recordings) exactly as a call that does not exist, and never
  in the other key's list (every page of a cursor walk, filtered or not);
- a read-all key (voicectl key create NAME --read-all) reads every call,
  inbound calls included; voicectl key scope narrows and widens a key;
- the migration makes the keys that existed before it read-all, and keys
  created after it are not (a scratch database, migrated in two steps);
- GET /calls for a key is filtered in the statement, through the index
  calls_owner_created (its plan has no sort and no filter on the owner).
"""

import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check, test  # noqa: E402

WAIT = 60
K = {}


def setup():
    for who in ("alice", "bob"):
        name = h.unique_name(who)
        K[who] = (name, h.key_create(name))
    name = h.unique_name("auditor")
    p = h.voicectl("key", "create", name, "--read-all")
    check(p.returncode == 0 and re.fullmatch(r"vk_[0-9a-f]{64}\n", p.stdout),
          f"key create --read-all: {p.returncode} {p.stdout!r} {p.stderr!r}")
    K["auditor"] = (name, p.stdout.strip())


def auth(who):
    return {"Authorization": f"Bearer {K[who][1]}"}


def place(who, to, **extra):
    body = {"to": to}
    body.update(extra)
    r = h.post("/call", body, headers=auth(who), timeout=60)
    check(r.status == 201, f"{who}: POST /call: {r!r}")
    return r.json()["sid"]


def get(who, path):
    return h.get(path, headers=auth(who), timeout=30)


def not_found(resp, what):
    err = h.check_json_error(resp, 404, what)
    check(err["code"] == "not_found", f"{what}: {err}")
    return err


def walk(who, query="", limit=2):
    """Every call who's list returns, following next_cursor (at most 1000
    pages of limit calls)."""
    seen, cursor = [], None
    for _ in range(1000):
        q = f"limit={limit}" + (f"&{query}" if query else "") + \
            (f"&cursor={urllib.parse.quote(cursor, safe='')}" if cursor else "")
        r = get(who, f"/calls?{q}")
        check(r.status == 200, f"{who}: GET /calls?{q}: {r!r}")
        doc = r.json()
        seen += [c["sid"] for c in doc["calls"]]
        cursor = doc["next_cursor"]
        if not cursor:
            return seen
    raise h.TestFailure("the cursor walk does not end")


def owned_by(who):
    return {r[0] for r in h.psql("SELECT call_sid FROM calls WHERE api_key_name = :'n'",
                                 n=K[who][0])}


def inbound_call():
    """An inbound call, recorded from a signed status callback."""
    e = h.env()
    sid = "CA" + secrets.token_hex(16)
    params = [("AccountSid", e["TWILIO_ACCOUNT_SID"]), ("CallSid", sid), ("CallStatus", "ringing"),
              ("Direction", "inbound"), ("From", "+14155550123"), ("To", "+14155550199"),
              ("SequenceNumber", "0")]
    url = e["PUBLIC_BASE_URL"] + "/twilio/webhook"
    r = h.post("/twilio/webhook", urllib.parse.urlencode(params),
               headers={"Content-Type": "application/x-www-form-urlencoded",
                        "X-Twilio-Signature": h.twilio_signature(url, params)})
    check(r.status == 204, f"inbound callback: {r!r}")
    return sid


@test
def a_key_cannot_read_another_keys_call_by_sid():
    a = place("alice", "+14155550113", record=True)
    b = place("bob", "+14155550148", **{"from": "+15005550006"})
    K["a_call"], K["b_call"] = a, b
    check(get("alice", f"/calls/{a}").status == 200, "alice cannot read her own call")
    unknown = get("bob", "/calls/CA" + "0" * 32)
    for who, sid in (("bob", a), ("alice", b)):
        r = get(who, f"/calls/{sid}")
        not_found(r, f"{who} reads another key's call")
        check(r.json() == unknown.json(), f"{who}: another key's call answers differently from an "
              f"unknown one: {r.json()} vs {unknown.json()}")
        for action in ("cancel", "hangup"):
            not_found(h.post(f"/calls/{sid}/{action}", headers=auth(who)), f"{who} {action}s it")
    check(get("bob", f"/calls/{b}").json()["status"] == "queued", "bob's call was changed")
    # alice's recording is hers too
    rec = h.wait_until(lambda: (get("alice", f"/calls/{a}").json()["recordings"] or [None])[0],
                       WAIT, "alice's recording")
    check(get("alice", f"/recordings/{rec['sid']}").status == 200, "alice reads her recording")
    not_found(get("bob", f"/recordings/{rec['sid']}"), "bob reads alice's recording")
    check(get("auditor", f"/recordings/{rec['sid']}").status == 200, "a read-all key, recording")


@test
def a_key_lists_only_its_own_calls():
    for _ in range(3):
        place("alice", "+14155550149", **{"from": "+15005550006"})
    for who in ("alice", "bob"):
        seen = walk(who)
        check(len(seen) == len(set(seen)), f"{who}: the walk repeats calls")
        check(set(seen) == owned_by(who), f"{who}: listed {len(seen)} calls, owns "
              f"{len(owned_by(who))}; others: {sorted(set(seen) - owned_by(who))[:3]}")
        for q in ("status=queued", "direction=outbound-api", "direction=inbound"):
            check(set(walk(who, q)) <= owned_by(who), f"{who}: ?{q} lists another key's calls")
    check(K["b_call"] not in walk("alice") and K["a_call"] not in walk("bob"), "cross listing")


@test
def read_all_key_reads_every_call_inbound_included():
    sid = inbound_call()
    # every call of the run: test_runtime alone stores 5,000, so full pages
    everything = walk("auditor", limit=100)
    for s in (K["a_call"], K["b_call"], sid):
        check(s in everything, f"the read-all key's list misses {s}")
        check(get("auditor", f"/calls/{s}").status == 200, f"the read-all key cannot read {s}")
    check(sid in walk("auditor", "direction=inbound", limit=100), "inbound filter")
    check(sid not in walk("alice") and get("alice", f"/calls/{sid}").status == 404,
          "an own-calls key reads an inbound call")


@test
def voicectl_key_scope_narrows_and_widens():
    p = h.voicectl("key", "list")
    check(p.returncode == 0, f"key list: {p.stderr}")
    line = [x for x in p.stdout.splitlines() if K["auditor"][0] in x]
    check(line and "all calls" in line[0], f"key list does not say the auditor reads all: {line}")
    line = [x for x in p.stdout.splitlines() if K["alice"][0] in x]
    check(line and "own calls" in line[0], f"key list for alice: {line}")
    check(h.voicectl("key", "scope", K["alice"][0], "all").returncode == 0, "scope all")
    check(get("alice", f"/calls/{K['b_call']}").status == 200, "widened alice cannot read bob's")
    check(h.voicectl("key", "scope", K["alice"][0], "own").returncode == 0, "scope own")
    not_found(get("alice", f"/calls/{K['b_call']}"), "narrowed alice reads bob's call")
    check(h.voicectl("key", "scope", K["alice"][0], "some").returncode != 0, "scope some accepted")
    check(h.voicectl("key", "scope", "no-such-key-" + secrets.token_hex(4), "own").returncode != 0,
          "scope of an unknown key succeeded")
    check(h.voicectl("key", "create", h.unique_name("x"), "--everything").returncode != 0,
          "key create with an unknown option succeeded")


@test
def own_list_is_served_by_the_owner_index():
    # The statement's shape (common/db.c, calls_list_own) as a generic plan,
    # with every way around the index made costly (on a small table the
    # planner would rather sort a bitmap scan's few rows): the owner index
    # must be able to give the order (no Sort) and take the owner as an
    # index condition. calls_created gives the same order with the owner as
    # a filter, and which of the two the planner prefers depends on how many
    # key names the other suites left in the table (test_runtime's thousands
    # of calls under one name tip it), so it is dropped for the EXPLAIN, in
    # a transaction that is rolled back (lock_timeout bounds the wait for
    # the table's lock behind the suites that write it).
    plan = h.psql("""
BEGIN;
SET LOCAL lock_timeout = '10s';
DROP INDEX calls_created;
SET plan_cache_mode = force_generic_plan;
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SET enable_sort = off;
PREPARE own(text, text, timestamptz, text, integer, text) AS
  SELECT c.call_sid FROM calls c
  WHERE c.api_key_name = $6
    AND ($1::text IS NULL OR c.status = $1) AND ($2::text IS NULL OR c.direction = $2)
    AND (c.created_at, c.call_sid) < (coalesce($3::timestamptz, 'infinity'), coalesce($4::text, ''))
  ORDER BY c.created_at DESC, c.call_sid DESC LIMIT $5::integer;
EXPLAIN EXECUTE own(NULL, NULL, NULL, NULL, 21, 'alice');
ROLLBACK;
""")
    text = "\n".join(r[0] for r in plan)
    check("calls_owner_created" in text, f"the plan does not use calls_owner_created:\n{text}")
    check("Sort" not in text, f"the plan sorts:\n{text}")
    check(re.search(r"Index Cond: .*api_key_name = \$6", text), f"owner not an index condition:\n{text}")


@test
def migration_makes_existing_keys_read_all():
    if not h.embedded_pg():
        print("note: not the embedded cluster; migration check skipped", flush=True)
        return
    e = h.env()
    db = "scope_" + secrets.token_hex(4)
    psql_admin = h._as_pg(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", e["VOICE_PG_SOCKET_DIR"],
                           "-p", e["VOICE_PG_PORT"], "-d", "postgres"])
    p = subprocess.run(psql_admin + ["-c", f"CREATE DATABASE {db} OWNER voice"], capture_output=True,
                       text=True, timeout=60)
    check(p.returncode == 0, f"create database: {p.stderr}")
    url = re.sub(r"/[^/?]+(\?|$)", f"/{db}\\1", e["DATABASE_URL"], count=1) \
        if e["DATABASE_URL"].count("/") >= 3 else None
    check(url is not None, "cannot derive a scratch DATABASE_URL")
    early = tempfile.mkdtemp(prefix="mig-")
    try:
        src = os.path.join(h.SOURCE_DIR, "db", "migrations")
        for f in sorted(os.listdir(src)):
            if f < "0004":
                shutil.copy(os.path.join(src, f), early)

        def migrate(d):
            env = dict(os.environ, DATABASE_URL=url, VOICE_MIGRATIONS_DIR=d, VOICE_RUN_DIR=h.ITEST_DIR)
            return subprocess.run([h.VOICECTL, "migrate"], capture_output=True, text=True, env=env,
                                  timeout=120)

        def sql(q):
            env = dict(os.environ, DATABASE_URL=url)
            env.pop("PGPASSWORD", None)
            parts = urllib.parse.urlsplit(url)
            user, pw = parts.netloc.rsplit("@", 1)[0].split(":", 1)
            env["PGPASSWORD"] = urllib.parse.unquote(pw)
            plain = urllib.parse.urlunsplit(parts._replace(netloc=user + "@" + parts.netloc.rsplit("@", 1)[1]))
            p = subprocess.run(["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-d", plain,
                                "-c", q], capture_output=True, text=True, env=env, timeout=60)
            check(p.returncode == 0, f"psql: {p.stderr}")
            return p.stdout.strip()

        check(migrate(early).returncode == 0, "migrating to 0003")
        sql("INSERT INTO api_keys (name, key_hash) VALUES ('before', repeat('a', 64))")
        p = migrate(src)
        check(p.returncode == 0 and "applied 0004_recordings_key_scope" in p.stdout,
              f"migrating the rest: {p.stdout} {p.stderr}")
        sql("INSERT INTO api_keys (name, key_hash) VALUES ('after', repeat('b', 64))")
        check(sql("SELECT name || '=' || read_all FROM api_keys ORDER BY id") == "before=true\nafter=false",
              "existing keys must become read-all, new ones not")
        check(sql("SELECT relrowsecurity FROM pg_class WHERE relname = 'recordings'") == "t",
              "recordings has no row-level security")
    finally:
        shutil.rmtree(early, ignore_errors=True)
        subprocess.run(psql_admin + ["-c", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)"],
                       capture_output=True, text=True, timeout=60)


if __name__ == "__main__":
    h.run(setup=setup)
