#!/usr/bin/env python3
"""Recordings, through nginx against the simulator:

- POST /call with record: true asks Twilio (the OAS's CreateCall) for
  RecordingStatusCallback at PUBLIC_BASE_URL/twilio/recording with its
  events; without record nothing of the kind is sent;
- the simulator's signed recording callbacks land: a recorded call ends
  with exactly one recording, completed, with its duration, channels,
  source, media URL and start time, listed by GET /calls/{sid} and returned
  by GET /recordings/{sid}; nothing recorded is absent; a recorded call hung
  up in progress keeps its recording;
- a redelivered callback (the duplicate scenario, and a replay of the
  signed request) stores nothing twice; a late in-progress after completed
  changes nothing;
- POST /twilio/recording refuses bad input with the documented errors;
  GET /recordings/{sid} too;
- while PostgreSQL is down a recording callback is spooled and replayed.
"""

import os
import secrets
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import oas  # noqa: E402
from harness import check, test  # noqa: E402

WAIT = 60
REC_EVENTS = ["in-progress", "completed", "absent"]
STATE = {}


def key():
    if "key" not in STATE:
        STATE["key"] = h.key_create(h.unique_name("recordings"))
    return STATE["key"]


def auth():
    return {"Authorization": f"Bearer {key()}"}


def sim(method, path):
    return h.request(method, path, https=False, port=h.env()["VOICE_SIM_PORT"], timeout=15)


def place(body):
    r = h.post("/call", body, headers=auth(), timeout=60)
    check(r.status == 201, f"POST /call {body}: {r!r}")
    return r.json()["sid"]


def get_call(sid):
    r = h.get(f"/calls/{sid}", headers=auth())
    check(r.status == 200, f"GET /calls/{sid}: {r!r}")
    return r.json()


def wait_recording(sid, status, timeout=WAIT):
    def ready():
        d = get_call(sid)
        return d if d["recordings"] and d["recordings"][0]["status"] == status else None
    return h.wait_until(ready, timeout, f"a {status} recording of {sid}")


def rows(sid):
    return h.psql("SELECT recording_sid, status, duration_seconds, updated_at FROM recordings"
                  " WHERE call_sid = :'sid' ORDER BY created_at", sid=sid)


def create_request(sid):
    r = sim("GET", f"/_sim/requests?call_sid={sid}")
    check(r.status == 200, f"/_sim/requests: {r!r}")
    recs = [x for x in r.json() if x["method"] == "POST" and x["path"].endswith("/Calls.json")]
    check(len(recs) == 1, f"one Calls create for {sid}, got {len(recs)}")
    return recs[0]


def recording_callbacks(sid):
    r = sim("GET", f"/_sim/callbacks?call_sid={sid}")
    check(r.status == 200, f"/_sim/callbacks: {r!r}")
    return [c for c in r.json() if c["kind"] == "recording-callback"]


def post_recording(params, token=None, signature=None, content_type=None):
    url = h.env()["PUBLIC_BASE_URL"] + "/twilio/recording"
    hdrs = {"Content-Type": content_type or "application/x-www-form-urlencoded"}
    sig = signature if signature is not None else h.twilio_signature(url, params)
    if sig:
        hdrs["X-Twilio-Signature"] = sig
    if token:
        hdrs["I-Twilio-Idempotency-Token"] = token
    return h.post("/twilio/recording", urllib.parse.urlencode(params), headers=hdrs)


def check_recording(rec, sid, status, what):
    e = h.env()
    check(isinstance(rec.get("sid"), str) and rec["sid"].startswith("RE") and len(rec["sid"]) == 34,
          f"{what}: sid {rec.get('sid')!r}")
    check(rec["call_sid"] == sid and rec["account_sid"] == e["TWILIO_ACCOUNT_SID"],
          f"{what}: call/account {rec}")
    check(rec["status"] == status, f"{what}: status {rec['status']}, want {status}")
    check(rec["media_url"] == f"https://api.twilio.com/2010-04-01/Accounts/"
          f"{e['TWILIO_ACCOUNT_SID']}/Recordings/{rec['sid']}", f"{what}: media_url {rec['media_url']}")
    check(rec["channels"] == 1 and rec["source"] == "OutboundAPI" and rec["track"] == "both",
          f"{what}: channels/source/track {rec}")
    check(rec["started_at"] and rec["created_at"] and rec["updated_at"], f"{what}: times {rec}")


@test
def record_true_asks_for_recording_callbacks():
    e = h.env()
    sid = place({"to": "+14155550113", "record": True})
    rec = create_request(sid)
    check(oas.check_request(rec, {e["TWILIO_ACCOUNT_SID"]}) == "CreateCall", "not CreateCall")
    params = rec["params"]
    check(["Record", "true"] in params, f"Record: {params}")
    check(["RecordingStatusCallback", e["PUBLIC_BASE_URL"] + "/twilio/recording"] in params,
          f"RecordingStatusCallback: {params}")
    check(["RecordingStatusCallbackMethod", "POST"] in params, f"method: {params}")
    check([v for k, v in params if k == "RecordingStatusCallbackEvent"] == REC_EVENTS,
          f"events: {params}")
    STATE["recorded"] = sid
    sid = place({"to": "+14155550113"})
    params = create_request(sid)["params"]
    check(not [k for k, _ in params if k.startswith("Record")], f"an unrecorded call asked: {params}")
    STATE["unrecorded"] = sid


@test
def recorded_call_ends_with_its_recording():
    sid = STATE.get("recorded") or place({"to": "+14155550113", "record": True})
    d = wait_recording(sid, "completed")
    h.wait_until(lambda: get_call(sid)["status"] == "completed", WAIT, "the call to complete")
    d = get_call(sid)
    check(len(d["recordings"]) == 1, f"recordings {d['recordings']}")
    rec = d["recordings"][0]
    check_recording(rec, sid, "completed", "GET /calls/{sid}")
    check(rec["duration_seconds"] == 3 and rec["error_code"] == 0, f"duration/error {rec}")
    r = h.get(f"/recordings/{rec['sid']}", headers=auth())
    check(r.status == 200 and r.json() == rec, f"GET /recordings/{{sid}}: {r!r}")
    cbs = recording_callbacks(sid)
    check([(c["event"], c["http_status"]) for c in cbs] == [("in-progress", 204), ("completed", 204)],
          f"recording callbacks {[(c['event'], c['http_status']) for c in cbs]}")
    check(all(c["url"] == h.env()["PUBLIC_BASE_URL"] + "/twilio/recording" and c["signature"]
              and c["method"] == "POST" for c in cbs), "callback URL, method or signature")
    check(len(rows(sid)) == 1, f"rows {rows(sid)}")
    unrec = STATE.get("unrecorded")
    if unrec:
        h.wait_until(lambda: get_call(unrec)["status"] == "completed", WAIT, "the unrecorded call")
        check(get_call(unrec)["recordings"] == [], "an unrecorded call has recordings")


@test
def redelivered_callbacks_are_stored_once():
    sid = place({"to": "+14155550105", "record": True})  # duplicate scenario
    wait_recording(sid, "completed")
    h.wait_until(lambda: len([c for c in recording_callbacks(sid) if c["event"] == "completed"]) == 2,
                 WAIT, "the duplicate recording callback")
    cbs = recording_callbacks(sid)
    done = [c for c in cbs if c["event"] == "completed"]
    check(done[0]["idempotency_token"] == done[1]["idempotency_token"], "redelivery token differs")
    check(all(c["http_status"] == 204 for c in cbs), f"statuses {[c['http_status'] for c in cbs]}")
    before = rows(sid)
    check(len(before) == 1 and before[0][1] == "completed", f"rows {before}")
    # the same signed delivery once more, then the stale in-progress one
    for c in (done[0], [c for c in cbs if c["event"] == "in-progress"][0]):
        r = post_recording([tuple(p) for p in c["params"]], token=c["idempotency_token"],
                           signature=c["signature"])
        check(r.status == 204, f"replayed {c['event']}: {r!r}")
    check(rows(sid) == before, f"a redelivery changed the row: {before} -> {rows(sid)}")
    check(len(get_call(sid)["recordings"]) == 1, "a redelivery added a recording")


@test
def nothing_recorded_is_absent():
    sid = place({"to": "+14155550110", "record": True})  # talk-0
    d = wait_recording(sid, "absent")
    check(d["recordings"][0]["duration_seconds"] == 0, f"{d['recordings']}")


@test
def hung_up_recorded_call_keeps_its_recording():
    sid = place({"to": "+14155550109", "record": True})  # long
    h.wait_until(lambda: get_call(sid)["status"] == "in-progress", WAIT, "the call to be answered")
    time.sleep(0.3)
    r = h.post(f"/calls/{sid}/hangup", headers=auth())
    check(r.status == 200 and r.json()["status"] == "completed", f"hang up: {r!r}")
    d = wait_recording(sid, "completed")
    check_recording(d["recordings"][0], sid, "completed", "hung-up call")


def _valid_params(rsid=None):
    e = h.env()
    rsid = rsid or "RE" + secrets.token_hex(16)
    return [("AccountSid", e["TWILIO_ACCOUNT_SID"]), ("CallSid", "CA" + secrets.token_hex(16)),
            ("RecordingSid", rsid), ("RecordingStatus", "completed"),
            ("RecordingUrl", f"https://api.twilio.com/2010-04-01/Accounts/{e['TWILIO_ACCOUNT_SID']}"
                             f"/Recordings/{rsid}"),
            ("RecordingDuration", "4"), ("RecordingChannels", "1"),
            ("RecordingStartTime", "Mon, 30 Nov 2026 09:30:12 +0000"),
            ("RecordingSource", "OutboundAPI"), ("ErrorCode", "0")]


def _expect(resp, status, code, what, field=None):
    err = h.check_json_error(resp, status, what)
    check(err["code"] == code, f"{what}: {err}")
    if field is not None:
        check(err.get("field") == field, f"{what}: field {err.get('field')!r}, want {field}")


@test
def recording_callback_refuses_bad_input():
    good = _valid_params()
    r = post_recording(good, signature="")
    _expect(r, 400, "missing_signature", "no signature")
    _expect(post_recording(good, signature="bm90IGEgc2lnbmF0dXJl"), 403, "invalid_signature",
            "bad signature")

    def without(k):
        return [(a, b) for a, b in good if a != k]

    def with_(k, v):
        return without(k) + [(k, v)]

    for params, field, what in ((without("RecordingSid"), "RecordingSid", "no RecordingSid"),
                                (with_("RecordingSid", "CA" + "0" * 32), "RecordingSid", "not RE"),
                                (without("CallSid"), "CallSid", "no CallSid"),
                                (with_("RecordingStatus", "done"), "RecordingStatus", "bad status"),
                                (with_("RecordingDuration", "four"), "RecordingDuration", "bad duration"),
                                (with_("RecordingChannels", "3"), "RecordingChannels", "3 channels"),
                                (with_("RecordingUrl", "http://x/r"), "RecordingUrl", "http url"),
                                (good + [("RecordingStatus", "completed")], "RecordingStatus",
                                 "repeated")):
        _expect(post_recording(params), 400, "invalid_parameter", what, field=field)
    _expect(post_recording(with_("AccountSid", "AC" + "0" * 32)), 403, "wrong_account",
            "another account")
    url = h.env()["PUBLIC_BASE_URL"] + "/twilio/recording"
    # signed (the URL alone, no form parameters) but not a form
    r = h.post("/twilio/recording", b"RecordingSid=x", headers={
        "Content-Type": "text/plain", "X-Twilio-Signature": h.twilio_signature(url, [])})
    _expect(r, 415, "unsupported_media_type", "a body that is not a form")
    r = h.get("/twilio/recording")
    _expect(r, 405, "method_not_allowed", "GET /twilio/recording")
    # nothing of the refused ones was stored
    check(h.psql("SELECT count(*) FROM recordings WHERE recording_sid = :'s'",
                 s=dict(good)["RecordingSid"]) == [["0"]], "a refused callback was stored")
    # a good one for a call this service has no row of: stored, 204
    r = post_recording(good, token="tok-" + secrets.token_hex(8))
    check(r.status == 204, f"valid callback: {r!r}")
    check(h.psql("SELECT status, duration_seconds, started_at = '2026-11-30 09:30:12+00'"
                 " FROM recordings WHERE recording_sid = :'s'", s=dict(good)["RecordingSid"])
          == [["completed", "4", "t"]], "the valid callback was not stored as sent")


@test
def get_recording_refuses_bad_input():
    for sid in ("RE" + "0" * 32, "RE123", "CA" + "0" * 32, "nonsense"):
        _expect(h.get(f"/recordings/{sid}", headers=auth()), 404, "not_found", f"GET /recordings/{sid}")
    _expect(h.get("/recordings/RE" + "0" * 32 + "/media", headers=auth()), 404, "not_found",
            "a path below a recording")
    _expect(h.get("/recordings/RE" + "0" * 32), 401, "unauthorized", "without a key")
    r = h.post("/recordings/RE" + "0" * 32, b"", headers=auth())
    _expect(r, 405, "method_not_allowed", "POST /recordings/{sid}")


@test
def recording_while_database_down_is_spooled_then_replayed():
    params = _valid_params()
    rsid = dict(params)["RecordingSid"]
    h.pg_stop()
    try:
        r = post_recording(params, token="spool-" + rsid)
        check(r.status == 204, f"recording callback with PostgreSQL down: {r!r}")
    finally:
        h.pg_start()
    h.wait_until(lambda: h.get("/readyz").status == 200, 60, "/readyz to recover")
    h.wait_until(lambda: h.psql("SELECT status FROM recordings WHERE recording_sid = :'s'", s=rsid)
                 == [["completed"]], 60, "the spooled recording to be replayed")


if __name__ == "__main__":
    h.run()
