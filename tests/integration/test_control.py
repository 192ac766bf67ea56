#!/usr/bin/env python3
"""POST /calls/{sid}/cancel and POST /calls/{sid}/hangup, through nginx
against the simulator, at every stage of a call:

- queued (the simulator's test caller ID +15005550006: never dialed, and
  Twilio fires no callback for a call canceled while queued): cancel answers
  the final status at once, from Twilio's answer;
- ringing (the no-answer scenario): cancel and hang up both end it
  canceled, and the canceled status callback arrives as well;
- in progress (the long scenario): cancel is 409 call_in_progress and asks
  nothing of Twilio; hang up ends it completed, with its duration from the
  completed callback;
- ended (naturally, or by a previous request): both answer 200 with the
  final state and ask Twilio nothing, however often they are repeated;
- ended at Twilio before our callbacks said so (Twilio's 21220): the call is
  fetched and its final status answered;
- Twilio errors mapped as for POST /call (20404 404; 20003 502 through a
  private worker with a wrong token);
- bad input: unknown or malformed sid, another method, a body, no key;
- every request to Twilio is the OAS's UpdateCall with Status only, checked
  from the simulator's own record.
"""

import base64
import json
import os
import re
import secrets
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import oas  # noqa: E402
from harness import check, test  # noqa: E402

TO_NO_ANSWER = "+14155550102"
TO_LONG = "+14155550109"
TO_TALK0 = "+14155550110"
TEST_FROM = "+15005550006"  # Twilio's test caller ID: the call stays queued
WAIT = 60

STATE = {}


def key():
    if "key" not in STATE:
        STATE["name"] = h.unique_name("control")
        STATE["key"] = h.key_create(STATE["name"])
    return STATE["key"]


def auth(k=None):
    return {"Authorization": f"Bearer {k or key()}"}


def place(body):
    r = h.post("/call", body, headers=auth(), timeout=60)
    check(r.status == 201, f"POST /call {body}: {r!r}")
    return r.json()["sid"]


def control(sid, action, body=None, headers=None, k=None):
    hdrs = dict(auth(k))
    hdrs.update(headers or {})
    return h.post(f"/calls/{sid}/{action}", body, headers=hdrs, timeout=60)


def get_call(sid):
    r = h.get(f"/calls/{sid}", headers=auth(), timeout=30)
    check(r.status == 200, f"GET /calls/{sid}: {r!r}")
    return r.json()


def wait_status(sid, want, timeout=WAIT):
    return h.wait_until(lambda: (lambda d: d if d["status"] == want else None)(get_call(sid)),
                        timeout, f"call {sid} to be {want}")


def wait_callback(sid, status, timeout=WAIT):
    """The call once a status callback (not an answer of ours) for status
    has been stored."""
    def got():
        d = get_call(sid)
        return d if [e for e in d["events"] if e["status"] == status
                     and "SequenceNumber" in e["payload"]] else None
    return h.wait_until(got, timeout, f"a {status} callback for {sid}")


def check_events(d, before, final, source, what):
    """Events: before (callbacks), then final twice in either order: Twilio's
    answer to us (payload source, no sequence number) and the callback."""
    got = d["events"]
    check([e["status"] for e in got[:len(before)]] == before and len(got) == len(before) + 2
          and all(e["status"] == final for e in got[len(before):]),
          f"{what}: events {[e['status'] for e in got]}")
    ours = [e for e in got[len(before):] if e["payload"].get("source") == source]
    check(len(ours) == 1 and ours[0]["sequence_number"] is None
          and ours[0]["payload"]["CallStatus"] == final, f"{what}: Twilio's answer as an event {got}")


def sim(method, path, body=None, headers=None):
    return h.request(method, path, body=body, headers=headers, https=False,
                     port=h.env()["VOICE_SIM_PORT"], timeout=15)


def sim_clear():
    check(sim("DELETE", "/_sim/requests").status == 204, "DELETE /_sim/requests")


def updates(sid=None):
    """The simulator's record of Calls update requests (for sid)."""
    r = sim("GET", "/_sim/requests" + (f"?call_sid={sid}" if sid else ""))
    check(r.status == 200, f"/_sim/requests: {r!r}")
    return [x for x in r.json() if x["method"] == "POST" and x["path"].endswith(".json")
            and "/Calls/" in x["path"]]


def check_update(rec, sid, status, what):
    """One Calls update request as Twilio's OAS describes it."""
    e = h.env()
    check(oas.check_request(rec, {e["TWILIO_ACCOUNT_SID"]}) == "UpdateCall",
          f"{what}: not UpdateCall: {rec['method']} {rec['path']}")
    check(rec["path"] == f"/2010-04-01/Accounts/{e['TWILIO_ACCOUNT_SID']}/Calls/{sid}.json",
          f"{what}: path {rec['path']}")
    check(rec["params"] == [["Status", status]], f"{what}: parameters {rec['params']}")
    check(rec["query"] == "", f"{what}: a query {rec['query']!r}")


def expect_error(resp, status, code, what, field=None, twilio_code=None):
    err = h.check_json_error(resp, status, what)
    check(err["code"] == code, f"{what}: code {err['code']!r}, want {code!r}")
    if field is not None:
        check(err.get("field") == field, f"{what}: field {err.get('field')!r}, want {field!r}")
    if twilio_code is not None:
        check(err.get("twilio_code") == twilio_code, f"{what}: twilio_code {err.get('twilio_code')}")
    return err


def answer_ok(resp, sid, status, what):
    check(resp.status == 200, f"{what}: {resp!r}")
    check(resp.header("content-type", "").replace(" ", "") == "application/json;charset=utf-8",
          f"{what}: content type {resp.header('content-type')!r}")
    doc = resp.json()
    check(doc.get("sid") == sid and doc.get("status") == status,
          f"{what}: answered {doc.get('sid')} {doc.get('status')}, want {sid} {status}")
    check("events" not in doc and "recordings" not in doc, f"{what}: answer is not a Call object")
    return doc


def repeat_without_twilio(sid, status, what):
    """Both actions, twice each, on an ended call: 200 with its final state,
    no request to Twilio."""
    sim_clear()
    for action in ("cancel", "hangup", "cancel", "hangup"):
        answer_ok(control(sid, action), sid, status, f"{what}: {action} again")
    check(updates(sid) == [], f"{what}: Twilio was asked again: {updates(sid)}")


@test
def cancel_queued_call_answers_canceled_at_once():
    sid = place({"to": "+14155550143", "from": TEST_FROM})
    check(get_call(sid)["status"] == "queued", "the test call is not queued")
    sim_clear()
    doc = answer_ok(control(sid, "cancel"), sid, "canceled", "cancel queued")
    check(doc["updated_at"] >= doc["created_at"], "updated_at")
    recs = updates(sid)
    check(len(recs) == 1, f"one Calls update, got {len(recs)}")
    check_update(recs[0], sid, "canceled", "cancel queued")
    check(recs[0]["status"] == 200, f"the simulator answered {recs[0]['status']}")
    # stored at once from Twilio's answer: Twilio sends no callback for it
    d = get_call(sid)
    check(d["status"] == "canceled" and len(d["events"]) == 1, f"stored: {d['status']} {d['events']}")
    ev = d["events"][0]
    check(ev["status"] == "canceled" and ev["sequence_number"] is None
          and ev["payload"].get("source") == "cancel" and ev["payload"].get("CallSid") == sid,
          f"the event of Twilio's answer: {ev}")
    repeat_without_twilio(sid, "canceled", "canceled queued call")


@test
def hangup_queued_call_ends_it():
    sid = place({"to": "+14155550144", "from": TEST_FROM})
    sim_clear()
    answer_ok(control(sid, "hangup"), sid, "canceled", "hang up queued")
    recs = updates(sid)
    check(len(recs) == 1, f"one Calls update, got {len(recs)}")
    check_update(recs[0], sid, "completed", "hang up queued")


@test
def cancel_ringing_call():
    sid = place({"to": TO_NO_ANSWER, "timeout": 600})
    wait_status(sid, "ringing")
    sim_clear()
    answer_ok(control(sid, "cancel"), sid, "canceled", "cancel ringing")
    recs = updates(sid)
    check(len(recs) == 1, f"one Calls update, got {len(recs)}")
    check_update(recs[0], sid, "canceled", "cancel ringing")
    # the status callback for it arrives too, and changes nothing backwards
    d = wait_callback(sid, "canceled")
    check(d["status"] == "canceled", f"status {d['status']}")
    check_events(d, ["initiated", "ringing"], "canceled", "cancel", "cancel ringing")
    check(d["sip_response_code"] == 487, f"sip_response_code {d['sip_response_code']}")
    repeat_without_twilio(sid, "canceled", "canceled ringing call")


@test
def hangup_ringing_call():
    sid = place({"to": TO_NO_ANSWER, "timeout": 600})
    wait_status(sid, "ringing")
    sim_clear()
    answer_ok(control(sid, "hangup"), sid, "canceled", "hang up ringing")
    check_update(updates(sid)[0], sid, "completed", "hang up ringing")
    d = wait_callback(sid, "canceled")
    check(d["status"] == "canceled", f"status {d['status']}")
    check_events(d, ["initiated", "ringing"], "canceled", "hangup", "hang up ringing")


@test
def in_progress_call_cannot_be_canceled_but_hung_up():
    sid = place({"to": TO_LONG})
    wait_status(sid, "in-progress")
    sim_clear()
    expect_error(control(sid, "cancel"), 409, "call_in_progress", "cancel in progress")
    check(updates(sid) == [], "cancel of an answered call asked Twilio")
    expect_error(control(sid, "cancel"), 409, "call_in_progress", "cancel in progress twice")
    time.sleep(0.2)
    doc = answer_ok(control(sid, "hangup"), sid, "completed", "hang up in progress")
    recs = updates(sid)
    check(len(recs) == 1, f"one Calls update, got {len(recs)}")
    check_update(recs[0], sid, "completed", "hang up in progress")
    check(doc["duration_seconds"] is None or doc["duration_seconds"] >= 0, "duration")
    d = wait_callback(sid, "completed")
    check_events(d, ["initiated", "ringing", "in-progress"], "completed", "hangup", "hang up")
    check(d["status"] == "completed" and d["duration_seconds"] is not None
          and d["sip_response_code"] == 200, f"after the callback: {d}")
    repeat_without_twilio(sid, "completed", "hung-up call")


@test
def finished_call_answers_its_final_state():
    sid = place({"to": TO_TALK0})
    wait_status(sid, "completed")
    repeat_without_twilio(sid, "completed", "completed call")
    sid = place({"to": "+14155550101"})  # busy
    wait_status(sid, "busy")
    repeat_without_twilio(sid, "busy", "busy call")


def _sim_call(to):
    """A call created at the simulator directly, without status callbacks
    (so this service hears nothing of it); returns its sid."""
    e = h.env()
    auth_hdr = "Basic " + base64.b64encode(
        f"{e['TWILIO_ACCOUNT_SID']}:{e['TWILIO_AUTH_TOKEN']}".encode()).decode()
    form = "To=%2B1" + to[2:] + "&From=%2B14155550199&Twiml=%3CResponse%2F%3E"
    r = sim("POST", f"/2010-04-01/Accounts/{e['TWILIO_ACCOUNT_SID']}/Calls.json", form,
            {"Authorization": auth_hdr, "Content-Type": "application/x-www-form-urlencoded"})
    check(r.status == 201, f"create at the simulator: {r!r}")
    return r.json()["sid"]


def _adopt(sid, status, owner):
    """Stores sid as one of owner's calls in status (as if its callbacks had
    not arrived yet)."""
    e = h.env()
    h.psql("INSERT INTO calls (call_sid, account_sid, direction, from_number, to_number, status,"
           " api_key_name) VALUES (:'sid', :'acct', 'outbound-api', '+14155550199',"
           " '+14155550145', :'status', :'owner')",
           sid=sid, acct=e["TWILIO_ACCOUNT_SID"], status=status, owner=owner)


@test
def call_ended_at_twilio_is_fetched_and_answered():
    key()
    sid = _sim_call("+14155550110")  # talk-0: over at once
    h.wait_until(lambda: sim("GET", f"/_sim/calls/{sid}").json()["call"]["status"] == "completed",
                 WAIT, "the simulated call to complete")
    _adopt(sid, "ringing", STATE["name"])
    sim_clear()
    answer_ok(control(sid, "cancel"), sid, "completed", "cancel of a call Twilio ended")
    reqs = [(x["method"], x["status"], x["twilio_code"]) for x in
            sim("GET", f"/_sim/requests?call_sid={sid}").json()]
    check(reqs == [("POST", 400, 21220), ("GET", 200, None)],
          f"want a refused update (21220) then a fetch: {reqs}")
    check(get_call(sid)["status"] == "completed", "the final status was not stored")


@test
def twilio_errors_are_mapped():
    key()
    sid = "CA" + secrets.token_hex(16)
    _adopt(sid, "ringing", STATE["name"])
    r = control(sid, "hangup")
    expect_error(r, 404, "not_found", "a call Twilio does not know", twilio_code=20404)
    # a wrong Twilio token: 502 twilio_auth_failed, as for POST /call
    sid = place({"to": "+14155550146", "from": TEST_FROM})
    wrong = secrets.token_hex(16)
    with h.private_worker(None, "ctlbadtoken", {"TWILIO_AUTH_TOKEN": wrong,
                                                "TWILIO_API_KEY_SID": None,
                                                "TWILIO_API_KEY_SECRET": None}) as (sock, _, _p):
        r = h.fcgi(sock, "POST", f"/calls/{sid}/cancel", b"",
                   {"HTTP_AUTHORIZATION": f"Bearer {key()}"})
    expect_error(r, 502, "twilio_auth_failed", "cancel with a wrong Twilio token",
                 twilio_code=20003)
    check(get_call(sid)["status"] == "queued", "a refused cancel changed the call")


@test
def bad_input_is_refused():
    sid = place({"to": "+14155550147", "from": TEST_FROM})
    for bad in ("CA" + "0" * 32, "CA123", "nonsense", "RE" + "0" * 32):
        for action in ("cancel", "hangup"):
            expect_error(control(bad, action), 404, "not_found", f"{action} {bad}")
    expect_error(control(sid, "stop"), 404, "not_found", "an unknown action")
    r = h.get(f"/calls/{sid}/cancel", headers=auth())
    expect_error(r, 405, "method_not_allowed", "GET cancel")
    check(r.header("allow") == "POST", f"Allow {r.header('allow')!r}")
    expect_error(h.post(f"/calls/{sid}/hangup", b""), 401, "unauthorized", "hang up without a key")
    expect_error(control(sid, "cancel", {"reason": "changed my mind"}), 400, "unknown_field",
                 "a body with a field", field="reason")
    expect_error(control(sid, "cancel", b"not json", {"Content-Type": "application/json"}), 400,
                 "invalid_json", "a body that is not JSON")
    expect_error(control(sid, "cancel", b"[]", {"Content-Type": "application/json"}), 400,
                 "invalid_json", "a JSON array")
    check(get_call(sid)["status"] == "queued", "a refused request changed the call")
    # an empty JSON object is no body at all
    answer_ok(control(sid, "cancel", b" {} ", {"Content-Type": "application/json"}), sid,
              "canceled", "cancel with {}")


@test
def logs_hold_no_full_numbers():
    for pool in ("call", "webhook"):
        text = "\n".join(h.log_lines(pool))
        for n in ("+14155550143", "+14155550144", "+14155550146", "+14155550147"):
            check(n not in text, f"{pool}.log holds the full number {n}")


if __name__ == "__main__":
    h.run()
