#!/usr/bin/env python3
"""End-to-end call lifecycles through the whole stack: POST /call → the
simulator → its signed status callbacks → webhook_fcgi → PostgreSQL, for the
simulator's out-of-order and duplicate-delivery scenarios; an inbound call
placed with `voicectl simulate inbound`; a status callback that arrives
while PostgreSQL is down, and a call Twilio accepts while it is down (201
all the same; the call record is spooled, then replayed with its API key's
name). python3 stdlib only.
"""

import os
import secrets
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check, test  # noqa: E402

_KEY = None


def key():
    global _KEY
    if _KEY is None:
        _KEY = h.key_create(h.unique_name("lifecycle"))
    return _KEY


def place(to):
    r = h.post("/call", {"to": to}, headers={"Authorization": f"Bearer {key()}"}, timeout=60)
    check(r.status == 201, f"POST /call to {to}: expected 201, got {r!r}")
    return r.json()["sid"]


def call_row(sid):
    rows = h.psql("SELECT status, coalesce(sequence_number::text, ''), from_number, to_number,"
                  " direction FROM calls WHERE call_sid = :'sid'", sid=sid)
    return rows[0] if rows else None


def events(sid):
    return h.psql("SELECT status, coalesce(sequence_number::text, '') FROM call_events"
                  " WHERE call_sid = :'sid' ORDER BY received_at, id", sid=sid)


def wait_final(sid, want_events):
    h.wait_until(lambda: len(events(sid)) >= want_events and call_row(sid)[0] == "completed",
                 90, f"call {sid} to complete with {want_events} events")


@test
def out_of_order_callbacks_end_completed():
    # +14155550104: callbacks delivered newest first (3, 2, 1, 0)
    sid = place("+14155550104")
    wait_final(sid, 4)
    status, seq, frm, to, direction = call_row(sid)
    check((status, seq) == ("completed", "3"),
          f"out of order: final row {status}/{seq}, want completed/3")
    check((frm, to, direction) == (h.env()["TWILIO_FROM_NUMBER"], "+14155550104", "outbound-api"),
          f"stored parties {frm} -> {to} ({direction}) are not what was placed")
    got = sorted(events(sid), key=lambda e: int(e[1]))
    check(got == [["initiated", "0"], ["ringing", "1"], ["in-progress", "2"], ["completed", "3"]],
          f"out of order: one event per delivery expected, got {got}")
    r = h.get(f"/calls/{sid}", headers={"Authorization": f"Bearer {key()}"})
    check(r.status == 200 and r.json()["status"] == "completed" and len(r.json()["events"]) == 4,
          f"GET /calls/{sid}: {r!r}")


@test
def duplicate_delivery_stored_once():
    # +14155550105: the terminal callback is delivered twice, same token
    sid = place("+14155550105")
    wait_final(sid, 4)
    # both deliveries of the duplicate have been attempted once the simulator
    # says so; only then is "one row" meaningful
    h.wait_until(lambda: sum(1 for line in h.log_lines("webhook")
                             if sid in line and "duplicate call event ignored" in line) >= 1,
                 60, f"the duplicate delivery for {sid} to reach the webhook")
    got = events(sid)
    check(len(got) == 4 and [e for e in got if e[0] == "completed"] == [["completed", "3"]],
          f"duplicate: expected one completed row among 4 events, got {got}")
    check(call_row(sid)[:2] == ["completed", "3"], f"duplicate: final row {call_row(sid)}")


@test
def inbound_call_via_voicectl():
    frm, to = "+14155550123", h.env()["TWILIO_FROM_NUMBER"]
    before = {r[0] for r in h.psql("SELECT call_sid FROM calls WHERE direction = 'inbound'")}
    p = h.voicectl("simulate", "inbound", "--from", frm, "--to", to, timeout=120)
    check(p.returncode == 0, f"voicectl simulate inbound failed ({p.returncode}): {p.stderr[-500:]}")
    check("<Response><Say>" in p.stdout, f"the answer was not the configured <Say>: {p.stdout!r}")
    new = h.wait_until(
        lambda: {r[0] for r in h.psql("SELECT call_sid FROM calls WHERE direction = 'inbound'")} - before,
        30, "the inbound call to be recorded")
    check(len(new) == 1, f"expected one new inbound call, got {new}")
    sid = new.pop()
    h.wait_until(lambda: call_row(sid)[0] == "completed", 60, f"inbound {sid} to complete")
    row = call_row(sid)
    check((row[2], row[3], row[4]) == (frm, to, "inbound"), f"inbound row {row}")
    check(["ringing", ""] in events(sid), f"the Voice URL request was not stored as an event: {events(sid)}")


@test
def callback_while_database_down_is_spooled_then_replayed():
    import urllib.parse
    e = h.env()
    sid = "CA" + secrets.token_hex(16)
    params = {"CallSid": sid, "AccountSid": e["TWILIO_ACCOUNT_SID"], "CallStatus": "completed",
              "Direction": "outbound-api", "From": "+14155550199", "To": "+14155550100",
              "SequenceNumber": "3", "CallDuration": "7"}
    url = e["PUBLIC_BASE_URL"] + "/twilio/webhook"
    sig = h.twilio_signature(url, list(params.items()))
    body = urllib.parse.urlencode(params)
    hdrs = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": sig,
            "I-Twilio-Idempotency-Token": "spool-" + sid}
    h.pg_stop()
    try:
        r = h.post("/twilio/webhook", body, headers=hdrs)
        check(r.status == 204, f"callback with PostgreSQL down: expected 204 (spooled), got {r!r}")
    finally:
        h.pg_start()
    h.wait_until(lambda: h.get("/readyz").status == 200, 60, "/readyz to recover")
    # no further traffic: idle workers replay the spool by themselves
    h.wait_until(lambda: call_row(sid) is not None, 60,
                 "the spooled callback to be replayed into PostgreSQL")
    check(call_row(sid)[:2] == ["completed", "3"], f"replayed row {call_row(sid)}")
    check(events(sid) == [["completed", "3"]], f"replayed events {events(sid)}")
    # the same delivery again (Twilio retry) changes nothing
    r = h.post("/twilio/webhook", body, headers=hdrs)
    check(r.status == 204 and len(events(sid)) == 1, f"retry after replay: {r!r} {events(sid)}")


@test
def call_accepted_while_database_down_is_spooled_then_replayed():
    # The slow scenario holds Twilio's 201 for SIM_SLOW_MS: enough time to
    # stop PostgreSQL after the key was checked (at once) and before the call
    # is recorded. A private worker waits longer than the slow answer.
    e = h.env()
    name = h.unique_name("spoolcall")
    secret = h.key_create(name)
    slow_ms = int(e.get("SIM_SLOW_MS") or 20000)
    result = {}
    with h.private_worker(None, "spoolcall", {"TWILIO_TIMEOUT_MS": str(slow_ms + 20000)}) \
            as (sock, log_path, _):
        t = threading.Thread(target=lambda: result.update(r=h.fcgi_post_call(
            sock, secret, b'{"to":"+14155550108"}', timeout=slow_ms / 1000 + 60)))
        t.start()
        stopped = False
        try:
            time.sleep(min(1.0, slow_ms / 4000))
            h.pg_stop()
            stopped = True
            t.join(timeout=slow_ms / 1000 + 90)
        finally:
            if stopped:
                h.pg_start()
        check("r" in result, "POST /call did not answer")
        r = result["r"]
        check(r.status == 201, f"call accepted while PostgreSQL was down: expected 201, got {r!r}")
        doc = r.json()
        sid = doc["sid"]
        check(doc["to"] == "+14155550108" and doc["status"] == "queued"
              and doc["created_at"].endswith("Z"), f"the 201 body is not a call object: {doc}")
        with open(log_path, encoding="utf-8") as f:
            check("call record spooled" in f.read(), "the private worker did not spool the call")
        # the private worker replays its spool by itself (idle tick) once
        # PostgreSQL answers; only the replay sets api_key_name (callbacks
        # from the simulator create the row too, without it)
        h.wait_until(lambda: h.psql("SELECT api_key_name FROM calls WHERE call_sid = :'sid'",
                                    sid=sid) == [[name]], 60,
                     "the spooled call record to be replayed with its API key")
    h.key_revoke(name)


if __name__ == "__main__":
    h.run()
