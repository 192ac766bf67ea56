#!/usr/bin/env python3
"""Reconciliation (common/reconcile.h, docs/OPERATIONS.md "Reconciliation"),
against the Twilio simulator, in private call workers with
VOICE_RECONCILE_AFTER_S=1 (the shared stack runs with reconciliation off):

- a call whose status callbacks were all dropped (simulator scenario
  callbacks-dropped) ends in its true final status, `completed`, through
  one reconciliation event (payload "source": "reconciliation"), fetched
  with Calls fetch; later passes store nothing more;
- a call Twilio keeps `queued` (test credentials' magic From) is fetched
  again and again but never gains an event: the status never moves without
  cause;
- a POST /call whose answer was lost (reply-lost: Twilio created the call
  and the answer was cut off; slow-quiet: past our timeout, 504
  twilio_timeout; both also without callbacks) is found in Twilio's
  call list and linked to its Idempotency-Key: a retry with the key then
  returns 201 with the call Twilio created, never a second dial, and the
  call is readable by the key that placed it;
- every request reconciliation sent matches Twilio's OpenAPI description
  (FetchCall, ListCall: path, query parameters and their types, Basic auth
  as the configured REST user), from the simulator's own request record;
- a 429 / 20429 from Twilio pauses every worker (the lease row holds the
  pause and a 30 s backoff): no request until it ends;
- voice_reconcile_total counts it.
"""

import json
import os
import re
import secrets
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402

# Simulator scenarios (sim/README.md)
TO_DROPPED = "+14155550180"      # callbacks-dropped
TO_LOST = "+14155550181"         # reply-lost
TO_LOST_QUIET = "+14155550182"   # reply-lost-quiet
TO_SLOW = "+14155550183"         # slow-quiet: the answer comes after our timeout, no callbacks
TO_QUEUED = "+14155550184"       # any number; From is the magic test-credential one
FROM_TEST_CREDENTIALS = "+15005550006"
WAIT = 120  # seconds for reconciliation to act (it may first work through older calls)

SID_RE = re.compile(r"CA[0-9a-fA-F]{32}")
DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
# Twilio's OpenAPI description (twilio_api_v2010.json): the GET operations
# on calls and their query parameters, with the schema of each.
FETCH_PATH = re.compile(r"/2010-04-01/Accounts/(AC[0-9a-fA-F]{32})/Calls/(CA[0-9a-fA-F]{32})\.json")
LIST_PATH = re.compile(r"/2010-04-01/Accounts/(AC[0-9a-fA-F]{32})/Calls\.json")
PHONE = re.compile(r"\+[1-9]\d{1,14}")
LIST_PARAMS = {
    "To": lambda v: PHONE.fullmatch(v),
    "From": lambda v: PHONE.fullmatch(v),
    "ParentCallSid": lambda v: SID_RE.fullmatch(v),
    "Status": lambda v: v in ("queued", "ringing", "in-progress", "canceled", "completed",
                              "failed", "busy", "no-answer"),
    "StartTime": lambda v: DATE_RE.fullmatch(v), "StartTime<": lambda v: DATE_RE.fullmatch(v),
    "StartTime>": lambda v: DATE_RE.fullmatch(v), "EndTime": lambda v: DATE_RE.fullmatch(v),
    "EndTime<": lambda v: DATE_RE.fullmatch(v), "EndTime>": lambda v: DATE_RE.fullmatch(v),
    "PageSize": lambda v: v.isdigit() and 1 <= int(v) <= 1000,
    "Page": lambda v: v.isdigit(),
    "PageToken": lambda v: bool(v),
}

STATE = {"secret": None, "key": None, "worker": None, "started": time.time(),
         "dialed": {}, "fetched": set()}


# ---------------------------------------------------------------- helpers --

def sim(method, path, timeout=15):
    return h.request(method, path, https=False, port=h.env()["VOICE_SIM_PORT"], timeout=timeout)


def sim_requests():
    r = sim("GET", "/_sim/requests")
    check(r.status == 200, f"GET /_sim/requests: {r!r}")
    recs = r.json()
    check(isinstance(recs, list), f"/_sim/requests is not a list: {recs!r}")
    return recs


def creates_for(to):
    """The Calls create requests the simulator received for to."""
    return [x for x in sim_requests()
            if x.get("method") == "POST" and ["To", to] in x.get("params", [])]


def sim_callbacks(sid):
    r = sim("GET", f"/_sim/callbacks?call_sid={sid}")
    check(r.status == 200, f"GET /_sim/callbacks: {r!r}")
    return r.json()


def post_call(to, frm=None, idem=None, timeout=60):
    body = {"to": to}
    if frm is not None:
        body["from"] = frm
    headers = {"CONTENT_TYPE": "application/json", "HTTP_AUTHORIZATION": f"Bearer {STATE['secret']}"}
    if idem is not None:
        headers["HTTP_IDEMPOTENCY_KEY"] = idem
    return h.fcgi(STATE["worker"], "POST", "/call", json.dumps(body).encode(), headers,
                  timeout=timeout)


def get_call(sid):
    """GET /calls/{sid} through nginx (the stack's call pool), as our key."""
    r = h.get(f"/calls/{sid}", headers={"Authorization": f"Bearer {STATE['secret']}"})
    check(r.status in (200, 404), f"GET /calls/{sid}: {r!r}")
    return r.json() if r.status == 200 else None


def reconciliation_events(doc):
    return [e for e in doc.get("events", [])
            if isinstance(e.get("payload"), dict) and e["payload"].get("source") == "reconciliation"]


def metrics():
    r = h.fcgi(STATE["worker"], "GET", "/metrics")
    check(r.status == 200, f"GET /metrics of the private worker: {r!r}")
    out = {}
    for line in r.body.decode().splitlines():
        m = re.fullmatch(r'voice_reconcile_total\{outcome="([a-z_]+)"\} (\d+)', line)
        if m:
            out[m.group(1)] = int(m.group(2))
    check(out, "GET /metrics has no voice_reconcile_total")
    return out


def lost_answer_linked(to, what, want_statuses):
    """POST /call with a key to a scenario whose answer is lost; then retries
    with the key until the answer is the call Twilio created. Returns the
    201 body."""
    key = f"reconcile-{what}-{secrets.token_hex(6)}"
    before = len(creates_for(to))
    r1 = post_call(to, idem=key)
    check(r1.status in want_statuses,
          f"{what}: first answer {r1.status}, want one of {want_statuses}: {r1!r}")
    check(SID_RE.search(r1.body.decode("utf-8", "replace")) is None,
          f"{what}: the first answer named a call sid: {r1!r}")
    recs = creates_for(to)
    check(len(recs) == before + 1, f"{what}: the simulator saw {len(recs) - before} creates")
    sid = recs[-1].get("call_sid")
    check(recs[-1].get("status") == 201 and SID_RE.fullmatch(sid or ""),
          f"{what}: the simulator did not create the call: {recs[-1]!r}")
    STATE["dialed"][what] = sid

    def retried():
        r = post_call(to, idem=key)
        if r.status == 201:
            return r
        check(r.status == r1.status and r.header("idempotent-replayed") == "true",
              f"{what}: a retry before reconciliation got {r!r}, want the replay of {r1.status}")
        return None
    r = h.wait_until(retried, WAIT, f"{what}: a retry answering 201", interval=1)
    doc = r.json()
    check(doc.get("sid") == sid, f"{what}: the retry returned {doc.get('sid')}, Twilio created {sid}")
    check(doc.get("to") == to and doc.get("direction") == "outbound-api",
          f"{what}: the retry's call is {doc!r}")
    check(r.header("idempotent-replayed") == "true", f"{what}: the 201 is not marked as a replay")
    check(len(creates_for(to)) == before + 1, f"{what}: a retry dialed again")
    stored = get_call(sid)
    check(stored is not None, f"{what}: GET /calls/{sid} is 404 for the key that placed it")
    return doc


# ------------------------------------------------------------------ tests --

@h.test
def dropped_callbacks_reach_their_final_status():
    r = post_call(TO_DROPPED)
    check(r.status == 201, f"POST /call: {r!r}")
    sid = r.json()["sid"]
    STATE["fetched"].add(sid)
    doc = h.wait_until(lambda: (lambda d: d if d and d["status"] == "completed" else None)(get_call(sid)),
                       WAIT, "the call to reach completed through reconciliation", interval=1)
    sent = [c for c in sim_callbacks(sid) if c.get("kind") == "status-callback"]
    check(sent == [], f"the simulator sent {len(sent)} status callbacks; the scenario drops them")
    events = doc["events"]
    check(len(events) == 1 and reconciliation_events(doc) == events,
          f"want exactly one event, from reconciliation: {events!r}")
    p = events[0]["payload"]
    check(events[0]["status"] == "completed" and p.get("CallSid") == sid
          and p.get("CallStatus") == "completed" and p.get("To") == TO_DROPPED,
          f"the reconciliation event: {events[0]!r}")
    check(events[0].get("sequence_number") is None, "a fetched status has no SequenceNumber")
    check(doc.get("duration_seconds") == 5, f"duration {doc.get('duration_seconds')!r}, want 5")
    fetches = [x for x in sim_requests() if x.get("method") == "GET" and x.get("call_sid") == sid]
    check(fetches and all(FETCH_PATH.fullmatch(x["path"]) for x in fetches),
          f"no Calls fetch for {sid} in the simulator's record: {fetches!r}")
    # later passes: nothing more is stored, the status stays
    time.sleep(4)
    again = get_call(sid)
    check(again["status"] == "completed" and len(again["events"]) == 1,
          f"after more passes: {again['status']}, {len(again['events'])} events")


@h.test
def a_call_twilio_keeps_queued_gains_no_event():
    r = post_call(TO_QUEUED, frm=FROM_TEST_CREDENTIALS)
    check(r.status == 201, f"POST /call with the test-credential From: {r!r}")
    sid = r.json()["sid"]
    STATE["fetched"].add(sid)

    def fetches():
        return [x for x in sim_requests() if x.get("method") == "GET" and x.get("call_sid") == sid]
    h.wait_until(fetches, WAIT, "a fetch of a call Twilio keeps queued", interval=1)
    # as if VOICE_RECONCILE_AFTER_S had passed again: it is looked at once more
    h.psql("UPDATE calls SET reconciled_at = now() - interval '1 hour' WHERE call_sid = :'sid'",
           sid=sid)
    h.wait_until(lambda: len(fetches()) >= 2, WAIT, "a second fetch", interval=1)
    doc = get_call(sid)
    check(doc["status"] == "queued" and doc["events"] == [],
          f"a call Twilio says is queued became {doc['status']} with {len(doc['events'])} events")
    rows = h.psql("SELECT reconciled_at IS NOT NULL FROM calls WHERE call_sid = :'sid'", sid=sid)
    check(rows == [["t"]], f"calls.reconciled_at not set: {rows!r}")


@h.test
def reply_lost_is_linked_to_its_key():
    doc = lost_answer_linked(TO_LOST, "reply-lost", (502, 503, 504))
    # its callbacks arrived too: the call reached completed by them
    final = h.wait_until(lambda: (lambda d: d if d and d["status"] == "completed" else None)(
        get_call(doc["sid"])), WAIT, "the linked call's callbacks", interval=1)
    check(any(e["payload"].get("source") != "reconciliation" for e in final["events"]),
          "the callbacks of a reply-lost call were not stored")


@h.test
def reply_lost_without_callbacks_is_recorded_and_linked():
    doc = lost_answer_linked(TO_LOST_QUIET, "reply-lost-quiet", (502, 503, 504))
    final = h.wait_until(lambda: (lambda d: d if d and d["status"] == "completed" else None)(
        get_call(doc["sid"])), WAIT, "the linked call's final status", interval=1)
    check(reconciliation_events(final) and reconciliation_events(final) == final["events"],
          f"a call Twilio never called back about has only reconciliation events: {final['events']!r}")
    rows = h.psql("SELECT api_key_name FROM calls WHERE call_sid = :'sid'", sid=doc["sid"])
    check(rows == [[STATE["key"]]], f"calls.api_key_name {rows!r}, want {STATE['key']!r}")


@h.test
def twilio_timeout_is_linked_to_its_key():
    # the stack's TWILIO_TIMEOUT_MS (3000) is shorter than SIM_SLOW_MS (6000);
    # slow-quiet is slow on a number no other test dials, so its lookup is
    # not ambiguous with their timed-out calls
    doc = lost_answer_linked(TO_SLOW, "slow", (504,))
    final = h.wait_until(lambda: (lambda d: d if d and d["status"] == "completed" else None)(
        get_call(doc["sid"])), WAIT, "the linked call's final status", interval=1)
    check(reconciliation_events(final) == final["events"],
          f"a call without callbacks has only reconciliation events: {final['events']!r}")


@h.test
def reconciliation_requests_match_the_openapi():
    account = h.env()["TWILIO_ACCOUNT_SID"]
    user = h.env().get("TWILIO_API_KEY_SID") or account
    recs = [x for x in sim_requests() if x.get("method") == "GET"
            and x.get("path", "").startswith("/2010-04-01/")]
    fetches = [x for x in recs if FETCH_PATH.fullmatch(x["path"])]
    lists = [x for x in recs if LIST_PATH.fullmatch(x["path"])]
    check(fetches and lists, f"reconciliation sent {len(fetches)} fetches, {len(lists)} lists")
    check(len(fetches) + len(lists) == len(recs),
          f"GETs outside FetchCall and ListCall: {[x['path'] for x in recs]}")
    for x in recs:
        m = FETCH_PATH.fullmatch(x["path"]) or LIST_PATH.fullmatch(x["path"])
        check(m.group(1) == account, f"{x['path']}: not our account")
        check(x.get("auth_user") == user, f"{x['path']}: Basic auth as {x.get('auth_user')!r}, "
              f"want {user!r}")
        check(x.get("params") == [], f"{x['path']}: a GET with a body: {x.get('params')!r}")
        check(x.get("status") in (200, 404), f"{x['path']}: the simulator answered {x.get('status')}")
    for x in fetches:
        check(x.get("query") == "", f"Calls fetch with a query: {x.get('query')!r}")
    for sid in STATE["fetched"]:
        check(any(x.get("call_sid") == sid for x in fetches), f"no fetch of {sid}")
    ours = set(STATE["dialed"])
    looked_up = set()
    for x in lists:
        q = urllib.parse.parse_qsl(x.get("query", ""), keep_blank_values=True, strict_parsing=True)
        keys = [k for k, _ in q]
        check(len(keys) == len(set(keys)), f"ListCall with a repeated parameter: {x['query']!r}")
        for k, v in q:
            check(k in LIST_PARAMS, f"ListCall parameter {k!r} is not in the OpenAPI: {x['query']!r}")
            check(LIST_PARAMS[k](v), f"ListCall parameter {k}={v!r} does not fit its schema")
        d = dict(q)
        if "PageToken" not in d:  # a first page: filtered by To, From and the dial's date
            check({"To", "From", "StartTime>", "PageSize"} <= set(d),
                  f"ListCall without its filters: {x['query']!r}")
            for what, to in (("reply-lost", TO_LOST), ("reply-lost-quiet", TO_LOST_QUIET),
                             ("slow", TO_SLOW)):
                if d["To"] == to and d["From"] == h.env()["TWILIO_FROM_NUMBER"]:
                    looked_up.add(what)
    check(looked_up == ours, f"lost answers looked up: {sorted(looked_up)}, want {sorted(ours)}")


@h.test
def rate_limited_lookups_pause_every_worker():
    # a lost answer to the rate-limited scenario's number: the simulator
    # answers its lookup 429 / 20429 (Retry-After: 2)
    key = f"reconcile-429-{secrets.token_hex(6)}"
    to = "+14155550106"

    def lists():
        return [x for x in sim_requests() if x.get("method") == "GET"
                and LIST_PATH.fullmatch(x.get("path", "")) and f"To=%2B{to[1:]}" in x.get("query", "")]
    h.psql("INSERT INTO idempotency_keys (api_key_name, idem_key, request_hash, state,"
           " response_status, response_body, dial_to, dial_from, dial_started_at)"
           " VALUES (:'name', :'key', repeat('0', 64), 'done', 504, '{}', :'to', :'frm',"
           " now() - interval '5 seconds')",
           name=STATE["key"], key=key, to=to, frm=h.env()["TWILIO_FROM_NUMBER"])
    try:
        first = h.wait_until(lists, WAIT, "the lookup of the rate-limited number", interval=1)
        check(first[0].get("status") == 429, f"the simulator answered {first[0].get('status')}")

        def paused():
            rows = h.psql("SELECT paused_until > now() + interval '20 seconds', backoff_s,"
                          " (SELECT dial_lookups FROM idempotency_keys WHERE idem_key = :'key')"
                          " FROM reconcile_lease", key=key)
            return rows if rows[0][0] == "t" else None
        rows = h.wait_until(paused, 10, "the pass to end paused")
        check(rows == [["t", "30", "0"]],
              f"after a 429 every worker pauses at least 30 s (backoff 30) and the key keeps its"
              f" lookups: {rows!r}")
        time.sleep(4)  # passes would start every second otherwise
        check(len(lists()) == 1, f"{len(lists())} lookups during the pause, want none after the 429")
        check(metrics().get("rate_limited", 0) >= 1, "voice_reconcile_total rate_limited")
    finally:
        h.psql("DELETE FROM idempotency_keys WHERE api_key_name = :'name' AND idem_key = :'key'",
               name=STATE["key"], key=key)
        h.psql("UPDATE reconcile_lease SET paused_until = '-infinity', backoff_s = 0")


@h.test
def metrics_count_reconciliation():
    m = metrics()
    check(m.get("advanced", 0) >= 1, f"voice_reconcile_total advanced: {m!r}")
    check(m.get("linked", 0) >= len(STATE["dialed"]), f"voice_reconcile_total linked: {m!r}")
    check(m.get("unchanged", 0) >= 1, f"voice_reconcile_total unchanged: {m!r}")
    check(set(m) == {"advanced", "unchanged", "linked", "not_found", "ambiguous", "error",
                     "rate_limited"}, f"voice_reconcile_total outcomes: {sorted(m)}")


@h.test
def logs_mask_numbers():
    with open(STATE["log"], encoding="utf-8", errors="replace") as f:
        text = f.read()
    check("reconciliation" in text, "the private worker logged nothing about reconciliation")
    for n in (TO_DROPPED, TO_LOST, TO_LOST_QUIET, TO_SLOW, TO_QUEUED):
        check(n not in text, f"the private worker's log holds the full number {n}")
    for line in text.splitlines():
        check(line.startswith("{"), f"a log line that is not JSON: {line[:120]!r}")


def main():
    def setup():
        e = h.env()
        check(e.get("VOICE_RECONCILE_AFTER_S") == "0",
              "the shared stack must run with VOICE_RECONCILE_AFTER_S=0 (stack.py)")
        # what other tests left not final, or unanswered, is not ours to
        # wait behind: out of reconciliation's way for the hour
        h.psql("UPDATE calls SET reconciled_at = now() + interval '1 hour'"
               " WHERE status IN ('queued', 'initiated', 'ringing', 'in-progress')")
        h.psql("UPDATE idempotency_keys SET dial_lookups = 5"
               " WHERE dial_started_at IS NOT NULL AND call_sid IS NULL")
        # the record starts here: the OpenAPI check reads every GET in it
        r = sim("DELETE", "/_sim/requests")
        check(r.status == 204, f"DELETE /_sim/requests: {r!r}")
        STATE["key"] = h.unique_name("reconcile")
        STATE["secret"] = h.key_create(STATE["key"])
        STATE["ctx"] = h.private_worker(None, "reconcile", {
            "VOICE_RECONCILE_AFTER_S": "1",
            "VOICE_CALL_WORKERS": "2",  # two workers, one lease: one pass at a time
            "VOICE_CALL_DB_CONNECTIONS": "4",
        })
        STATE["worker"], STATE["log"], _ = STATE["ctx"].__enter__()

    def teardown():
        ctx = STATE.get("ctx")
        if ctx is not None:
            ctx.__exit__(None, None, None)
            STATE["ctx"] = None
        if STATE.get("key"):
            try:
                h.key_revoke(STATE["key"])
            except h.TestFailure as ex:
                print(f"teardown: {ex}", flush=True)

    h.run(setup=setup, teardown=teardown)


if __name__ == "__main__":
    main()
