#!/usr/bin/env python3
"""Outbound calls end to end ("Outbound calls: POST /call, end to end, safe
against fraud and retries"), through nginx against the Twilio simulator:

- a valid call: 201 with the stored call and Location, exactly one Twilio
  request with exactly the documented parameters (Url or escaped inline
  Twiml, status callbacks for initiated ringing answered completed, Timeout /
  Record / MachineDetection when asked), one row in `calls`, and the
  simulator's status callbacks landing it at `completed`, events oldest first;
- national input normalised; invalid numbers 422; premium-rate (and, when the
  stack sets CALL_ALLOWED_COUNTRIES, other countries) 403 without dialing;
- every Twilio error path the simulator can produce (magic / scenario
  numbers; 20003 through a private call worker with a wrong token, since the
  stack's workers hold the right one);
- malformed requests (415, 400, 413, 401) without dialing;
- Idempotency-Key: 20 concurrent identical requests dial once and answer the
  same; a different body is 422; replays say so;
- PostgreSQL stopped: no dial, 503;
- GET /calls (order, limit, filters, cursor walk) and GET /calls/{sid};
- finally, no log file holds the auth token, our API key secrets or a full
  phone number we used.

Run by harness.run: every check runs even after a failure, one line per
check, then "N passed, N failed"; the exit status is 1 on any failure.
"""

import base64
import contextlib
import http.server
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402

SID_RE = re.compile(r"CA[0-9a-fA-F]{32}")
TS_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})")
EVENTS = ["initiated", "ringing", "answered", "completed"]
CALL_WAIT = 90        # seconds for a call to reach its terminal status (scale 0.05)
POST_TIMEOUT = 90     # seconds for one POST /call (client retries, slow machine)

# Numbers this file dials (555-01xx; 00..19 are simulator scenarios, 99 is
# the stack's default caller ID). Every one is checked against the logs.
TO_BASIC = "+14155550120"
TO_SAY = "+14155550121"
TO_OPTIONS = "+14155550122"
TO_NATIONAL = "+14155550123"
NATIONAL_INPUT = "(415) 555-0123"
TO_IDEM = "+14155550124"
TO_LIST = ["+14155550125", "+14155550126", "+14155550127", "+14155550128", "+14155550129"]
TO_PGDOWN = "+14155550130"
TO_AUTHFAIL = "+14155550131"
TO_MALFORMED = "+14155550132"
TO_RATE_LIMITED = "+14155550106"
TO_SERVER_ERROR = "+14155550107"
TO_SLOW = "+14155550108"
PREMIUM_GB = "+449012345678"
PREMIUM_GB_NATIONAL = "0901 234 5678"
TO_FR = "+33142685310"
TO_ALLOWED_DEFAULT = "+14155550133"
USED_NUMBERS = {TO_BASIC, TO_SAY, TO_OPTIONS, TO_NATIONAL, NATIONAL_INPUT, TO_IDEM, *TO_LIST,
                TO_PGDOWN, TO_AUTHFAIL, TO_MALFORMED, TO_RATE_LIMITED, TO_SERVER_ERROR, TO_SLOW,
                PREMIUM_GB, PREMIUM_GB_NATIONAL, TO_FR, TO_ALLOWED_DEFAULT, "+15005550001",
                "+15005550002", "+15005550003", "+15005550004", "+15005550005"}

STATE = {"secrets": [], "key_names": [], "extra_logs": [], "tmp_dirs": []}


# ---------------------------------------------------------------- helpers --

def secret():
    return STATE["secrets"][0]


def auth(key=None):
    return {"Authorization": f"Bearer {key or secret()}"}


def post_call(body, key=None, idem=None, headers=None, timeout=POST_TIMEOUT):
    hdrs = dict(auth(key))
    if idem is not None:
        hdrs["Idempotency-Key"] = idem
    hdrs.update(headers or {})
    return h.post("/call", body, headers=hdrs, timeout=timeout)


def api_get(path, key=None, timeout=30):
    return h.get(path, headers=auth(key), timeout=timeout)


def sim(method, path, timeout=15):
    return h.request(method, path, https=False, port=h.env()["VOICE_SIM_PORT"], timeout=timeout)


def sim_clear():
    r = sim("DELETE", "/_sim/requests")
    check(r.status == 204, f"DELETE /_sim/requests: {r!r}")


def sim_requests(to=None):
    r = sim("GET", "/_sim/requests")
    check(r.status == 200, f"GET /_sim/requests: {r!r}")
    check(r.header("x-sim-truncated") is None, "the simulator's request log was truncated")
    recs = r.json()
    check(isinstance(recs, list), f"/_sim/requests is not a list: {recs!r}")
    if to is not None:
        recs = [x for x in recs if ["To", to] in x.get("params", [])]
    return recs


def check_sim_saw_nothing(what):
    recs = sim_requests()
    check(recs == [], f"{what}: the simulator received {len(recs)} request(s): "
          f"{[dict(x.get('params', [])).get('To') for x in recs]}")


def calls_path():
    return f"/2010-04-01/Accounts/{h.env()['TWILIO_ACCOUNT_SID']}/Calls.json"


def public_base():
    return h.env()["PUBLIC_BASE_URL"].rstrip("/")


def default_from():
    return h.env()["TWILIO_FROM_NUMBER"]


def expect_error(resp, status, code, what, field=None, twilio_code=None):
    err = h.check_json_error(resp, status, what)
    check(err["code"] == code, f"{what}: error code {err['code']!r}, want {code!r} ({err!r})")
    if field is not None:
        check(err.get("field") == field, f"{what}: field {err.get('field')!r}, want {field!r}")
    if twilio_code is not None:
        check(err.get("twilio_code") == twilio_code,
              f"{what}: twilio_code {err.get('twilio_code')!r}, want {twilio_code}")
    return err


def check_call_json(doc, to, frm, what):
    check(isinstance(doc, dict), f"{what}: body is not an object: {doc!r}")
    check(isinstance(doc.get("sid"), str) and SID_RE.fullmatch(doc["sid"]),
          f"{what}: sid {doc.get('sid')!r} is not CA + 32 hex")
    check(isinstance(doc.get("status"), str) and doc["status"], f"{what}: status {doc.get('status')!r}")
    check(doc.get("direction") == "outbound-api", f"{what}: direction {doc.get('direction')!r}")
    check(doc.get("to") == to, f"{what}: to {doc.get('to')!r}, want {to!r}")
    check(doc.get("from") == frm, f"{what}: from {doc.get('from')!r}, want {frm!r}")
    check(isinstance(doc.get("created_at"), str) and TS_RE.fullmatch(doc["created_at"]),
          f"{what}: created_at {doc.get('created_at')!r} is not an RFC 3339 time")


def place(body, to, what, **kw):
    """POST /call that must succeed; returns the call JSON."""
    r = post_call(body, **kw)
    check(r.status == 201, f"{what}: expected 201, got {r!r}")
    ctype = r.header("content-type", "").lower().replace(" ", "")
    check(ctype == "application/json;charset=utf-8", f"{what}: Content-Type {ctype!r}")
    doc = r.json()
    check_call_json(doc, to, body.get("from", default_from()), what)
    check(r.header("location") in (f"/calls/{doc['sid']}", f"{public_base()}/calls/{doc['sid']}"),
          f"{what}: Location {r.header('location')!r}")
    return doc


def expected_params(to, frm, url=None, twiml=None, extra=()):
    p = [("To", to), ("From", frm)]
    p += [("Url", url)] if twiml is None else [("Twiml", twiml)]
    p += [("StatusCallback", public_base() + "/twilio/webhook"), ("StatusCallbackMethod", "POST")]
    p += [("StatusCallbackEvent", e) for e in EVENTS]
    p += list(extra)
    return sorted(p)


def one_request(to, sid, what):
    """The single REST request since sim_clear(): for to, creating sid."""
    recs = sim_requests()
    check(len(recs) == 1, f"{what}: the simulator saw {len(recs)} requests, want 1")
    check(["To", to] in recs[0].get("params", []), f"{what}: the request was not for {to}")
    rec = recs[0]
    check(rec.get("method") == "POST" and rec.get("path") == calls_path(),
          f"{what}: request {rec.get('method')} {rec.get('path')}")
    check(rec.get("status") == 201 and rec.get("call_sid") == sid,
          f"{what}: simulator answered {rec.get('status')} for {rec.get('call_sid')}, want 201 {sid}")
    return rec


def params_of(rec):
    return sorted(tuple(p) for p in rec.get("params", []))


def db_now():
    return h.psql("SELECT now()::text")[0][0]


def db_count_to(number, since):
    """calls rows to number created since (a db_now() value): the stack's
    database outlives runs, so older rows are not ours."""
    rows = h.psql("SELECT count(*) FROM calls WHERE to_number = :'n' AND created_at >= :'t'",
                  n=number, t=since)
    return int(rows[0][0])


def db_call_rows(sid):
    return h.psql("SELECT direction, from_number, to_number, status FROM calls WHERE call_sid = :'s'",
                  s=sid)


def wait_status(sid, status, timeout=CALL_WAIT):
    def poll():
        r = api_get(f"/calls/{sid}")
        if r.status == 200 and r.json().get("status") == status:
            return r.json()
        return None
    return h.wait_until(poll, timeout, f"call {sid} to reach {status}", interval=0.5)


def check_events_oldest_first(doc, what, want=("initiated", "ringing", "in-progress", "completed")):
    events = doc.get("events")
    check(isinstance(events, list), f"{what}: no events array: {doc!r}")
    statuses = [e.get("status") for e in events]
    check(statuses == list(want), f"{what}: events {statuses}, want {list(want)}")
    seqs = [e.get("sequence_number") for e in events]
    check(seqs == sorted(seqs) and len(set(seqs)) == len(seqs),
          f"{what}: sequence numbers {seqs} not ascending")
    received = [e.get("received_at") for e in events]
    check(all(isinstance(x, str) for x in received) and received == sorted(received),
          f"{what}: received_at {received} not oldest first")


# ------------------------------------------------------------------ checks --


def setup_api_keys():
    for i in range(2):
        name = h.unique_name(f"calltest{i}")
        STATE["secrets"].append(h.key_create(name))
        STATE["key_names"].append(name)
    r = h.get("/readyz")
    check(r.status == 200, f"/readyz before the tests: {r!r}")


@h.test
def valid_call_dials_once_and_completes():
    sim_clear()
    doc = place({"to": TO_BASIC}, TO_BASIC, "POST /call")
    sid = doc["sid"]
    rec = one_request(TO_BASIC, sid, "valid call")
    want = expected_params(TO_BASIC, default_from(), url=public_base() + "/twilio/voice")
    check(params_of(rec) == want, f"valid call: Twilio parameters\n  got  {params_of(rec)}\n  want {want}")
    events = [v for k, v in rec["params"] if k == "StatusCallbackEvent"]
    check(events == EVENTS, f"StatusCallbackEvent sent as {events}, want {EVENTS} (repeated keys)")
    check(rec.get("auth_user") in (h.env()["TWILIO_ACCOUNT_SID"], h.env().get("TWILIO_API_KEY_SID")),
          f"Basic auth user {rec.get('auth_user')!r}")
    rows = db_call_rows(sid)
    check(len(rows) == 1 and rows[0][:3] == ["outbound-api", default_from(), TO_BASIC],
          f"calls rows for {sid}: {rows!r}")
    done = wait_status(sid, "completed")
    check_call_json(done, TO_BASIC, default_from(), "GET /calls/{sid} after completion")
    check_events_oldest_first(done, "placed call")
    check(done.get("duration_seconds") == 5,
          f"duration_seconds {done.get('duration_seconds')!r}, want 5 (the simulator's CallDuration)")
    check(len(sim_requests(TO_BASIC)) == 1, "the simulator saw a second request for the call")


@h.test
def say_is_sent_as_escaped_twiml():
    sim_clear()
    say = "Tom & Jerry <b>say</b> \"hi\" it's 5 > 4"
    doc = place({"to": TO_SAY, "say": say}, TO_SAY, "POST /call with say")
    rec = one_request(TO_SAY, doc["sid"], "say call")
    params = dict(rec["params"])
    check("Url" not in params, f"say call also sent Url={params.get('Url')!r}")
    twiml = params.get("Twiml", "")
    got = sorted(p for p in params_of(rec) if p[0] != "Twiml")
    want = sorted(p for p in expected_params(TO_SAY, default_from(), twiml=twiml) if p[0] != "Twiml")
    check(got == want, f"say call parameters\n  got  {got}\n  want {want}")
    for raw in ("<b>", "</b>", "Tom & ", '"hi"', "it's", "5 > 4"):
        check(raw not in twiml, f"Twiml holds {raw!r} unescaped: {twiml!r}")
    for ent in ("&amp;", "&lt;b&gt;"):
        check(ent in twiml, f"Twiml lacks {ent!r}: {twiml!r}")
    try:
        root = ET.fromstring(twiml.encode("utf-8"))
    except ET.ParseError as e:
        raise h.TestFailure(f"Twiml is not XML ({e}): {twiml!r}")
    check(root.tag == "Response", f"Twiml root is <{root.tag}>")
    says = root.findall("Say")
    check(len(says) == 1 and says[0].text == say,
          f"<Say> text is {[s.text for s in says]!r}, want {say!r}")
    # the simulator checks inline TwiML like an answer: a bad one fails the call
    wait_status(doc["sid"], "completed")


@h.test
def options_are_forwarded():
    sim_clear()
    url = public_base() + "/twilio/voice?flow=custom"
    body = {"to": TO_OPTIONS, "url": url, "timeout": 30, "record": True, "machine_detection": True}
    doc = place(body, TO_OPTIONS, "POST /call with options")
    rec = one_request(TO_OPTIONS, doc["sid"], "options call")
    # a recorded call also asks for its recording's status callbacks
    want = expected_params(TO_OPTIONS, default_from(), url=url,
                           extra=[("Timeout", "30"), ("Record", "true"),
                                  ("RecordingStatusCallback", public_base() + "/twilio/recording"),
                                  ("RecordingStatusCallbackMethod", "POST"),
                                  ("RecordingStatusCallbackEvent", "in-progress"),
                                  ("RecordingStatusCallbackEvent", "completed"),
                                  ("RecordingStatusCallbackEvent", "absent"),
                                  ("MachineDetection", "Enable")])
    check(params_of(rec) == want, f"options: Twilio parameters\n  got  {params_of(rec)}\n  want {want}")
    # false options send nothing
    sim_clear()
    doc = place({"to": TO_OPTIONS, "record": False, "machine_detection": False}, TO_OPTIONS,
                "POST /call with false options")
    rec = one_request(TO_OPTIONS, doc["sid"], "false options call")
    want = expected_params(TO_OPTIONS, default_from(), url=public_base() + "/twilio/voice")
    check(params_of(rec) == want, f"false options\n  got  {params_of(rec)}\n  want {want}")


@h.test
def national_input_is_normalised():
    sim_clear()
    doc = place({"to": NATIONAL_INPUT, "country": "US"}, TO_NATIONAL, "national to with country")
    rec = one_request(TO_NATIONAL, doc["sid"], "national call")
    check(dict(rec["params"]).get("To") == TO_NATIONAL, f"Twilio To {dict(rec['params']).get('To')!r}")
    rows = db_call_rows(doc["sid"])
    check(rows and rows[0][2] == TO_NATIONAL, f"calls.to_number {rows!r}")
    sim_clear()
    r = post_call({"to": NATIONAL_INPUT})
    expect_error(r, 422, "invalid_phone_number", "national to without country", field="to")
    check_sim_saw_nothing("national to without country")


@h.test
def invalid_numbers_are_422():
    sim_clear()
    cases = [("letters", "+1415555O1OO"), ("words", "call +14155550100"),
             ("tel: URI", "tel:+14155550100"), ("too short", "+1415"),
             ("two digits", "12"), ("non-ASCII digits", "+\u0661\u0664\u0661\u0665\u0665\u0665"
                                    "\u0665\u0660\u0661\u0660\u0660"),
             ("empty", "")]
    for what, to in cases:
        r = post_call({"to": to})
        err = expect_error(r, 422, "invalid_phone_number", f"to = {what}", field="to")
        check(to == "" or to not in err["message"], f"to = {what}: the error echoes the number")
    r = post_call({"to": TO_MALFORMED, "from": "not a number"})
    expect_error(r, 422, "invalid_phone_number", "from = letters", field="from")
    check_sim_saw_nothing("invalid numbers")


@h.test
def premium_and_disallowed_destinations_are_403():
    since = db_now()
    sim_clear()
    for what, body in (("premium-rate +44 9xx", {"to": PREMIUM_GB}),
                       ("premium-rate national GB 09xx", {"to": PREMIUM_GB_NATIONAL, "country": "GB"})):
        r = post_call(body)
        expect_error(r, 403, "destination_not_allowed", what, field="to")
    allowed = [c.strip().upper() for c in h.env().get("CALL_ALLOWED_COUNTRIES", "").split(",")
               if c.strip()]
    if allowed:
        outside = next(n for n, c in (("+33142685300", "FR"), ("+4930123456", "DE"),
                                       ("+81312345678", "JP")) if c not in allowed)
        USED_NUMBERS.add(outside)
        r = post_call({"to": outside})
        expect_error(r, 403, "destination_not_allowed", "a country outside CALL_ALLOWED_COUNTRIES",
                     field="to")
    else:
        print("     (CALL_ALLOWED_COUNTRIES is not set by this stack: "
              "only the number-type refusal is tested)", flush=True)
    check_sim_saw_nothing("refused destinations")
    check(db_count_to(PREMIUM_GB, since) == 0, "a calls row was stored for the premium number")


@h.test
def allowed_countries_default_to_the_caller_id_s():
    # Unset CALL_ALLOWED_COUNTRIES: only the caller ID's country (the stack's
    # TWILIO_FROM_NUMBER is +1415…: US); "*" must be said to allow every one.
    check(h.env()["TWILIO_FROM_NUMBER"].startswith("+1415"),
          f"the stack's caller ID {h.env()['TWILIO_FROM_NUMBER']} is not a US number")
    since = db_now()
    sim_clear()
    with private_worker({"CALL_ALLOWED_COUNTRIES": None}, "countries-default") as sock_path:
        r = fcgi_post_call(sock_path, TO_FR)
        expect_error(r, 403, "destination_not_allowed", "default countries: FR", field="to")
        check(r.json()["error"]["message"] == "calls to FR are not allowed",
              f"default countries: FR refused with {r.json()['error']['message']!r}")
        check(not sim_requests(TO_FR), "default countries: FR was dialed")
        r = fcgi_post_call(sock_path, TO_ALLOWED_DEFAULT)
        check(r.status == 201, f"default countries: a US number: {r.status} {r.body[:200]!r}")
    with private_worker({"CALL_ALLOWED_COUNTRIES": "*"}, "countries-all") as sock_path:
        r = fcgi_post_call(sock_path, TO_FR)
        check(r.status == 201, f"CALL_ALLOWED_COUNTRIES=*: FR: {r.status} {r.body[:200]!r}")
    check(len(sim_requests(TO_FR)) == 1, "CALL_ALLOWED_COUNTRIES=*: FR not dialed once")
    check(db_count_to(TO_FR, since) == 1, "CALL_ALLOWED_COUNTRIES=*: the FR call is not recorded")
    # neither a list nor a caller ID to take a country from: no start at all
    e = h.env()
    base = {k: v for k, v in e.items()
            if k.startswith(("TWILIO_", "DATABASE_URL", "PUBLIC_BASE_URL", "LOG_LEVEL"))}
    base.pop("TWILIO_FROM_NUMBER", None)
    base.update({"PATH": "/usr/bin:/bin", "VOICE_ENV_FILE": "/nonexistent",
                 "ASAN_OPTIONS": "detect_leaks=0"})
    p = subprocess.Popen([e["VOICE_CALL_BIN"]], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=base, text=True)
    try:
        _, err = p.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        p.kill()  # the process we started, by its PID
        p.communicate()
        raise h.TestFailure("call_fcgi without countries or caller ID did not exit within 20s")
    check(p.returncode == 2 and "CALL_ALLOWED_COUNTRIES" in err,
          f"call_fcgi without countries or caller ID: exit {p.returncode}, stderr {err!r}")


def twilio_error_case(to, status, code, field, twilio_code, frm=None, timeout=POST_TIMEOUT):
    sim_clear()
    body = {"to": to} if frm is None else {"to": to, "from": frm}
    r = post_call(body, timeout=timeout)
    what = f"to {to}" + (f" from {frm}" if frm else "")
    err = expect_error(r, status, code, what, field=field, twilio_code=twilio_code)
    return r, err


@h.test
def twilio_number_errors():
    # (To, From, our status, our code, field, Twilio code)
    cases = [("+15005550001", None, 422, "invalid_phone_number", "to", 21217),
             ("+15005550002", None, 422, "invalid_phone_number", "to", 21214),
             ("+15005550003", None, 403, "destination_not_allowed", "to", 21215),
             ("+15005550004", None, 403, "destination_not_allowed", "to", 21216),
             (TO_MALFORMED, "+15005550001", 422, "invalid_phone_number", "from", 21212),
             (TO_MALFORMED, "+15005550005", 422, "caller_id_not_verified", "from", 21210)]
    since = db_now()
    for to, frm, status, code, field, tcode in cases:
        twilio_error_case(to, status, code, field, tcode, frm=frm)
        recs = sim_requests(to)
        check(len(recs) == 1 and recs[0].get("twilio_code") == tcode,
              f"Twilio {tcode}: the simulator saw {[(x.get('status'), x.get('twilio_code')) for x in recs]}")
        if frm is None:
            check(db_count_to(to, since) == 0, f"Twilio {tcode}: a call row was stored")


@h.test
def twilio_rate_limited_is_503_after_bounded_retries():
    r, _ = twilio_error_case(TO_RATE_LIMITED, 503, "twilio_unavailable", None, 20429)
    ra = r.header("retry-after", "")
    check(ra.isdigit() and int(ra) >= 1, f"20429: Retry-After is {ra!r}")
    recs = sim_requests(TO_RATE_LIMITED)
    check(2 <= len(recs) <= 3, f"20429: the simulator saw {len(recs)} attempts, want 2..3 "
          "(TWILIO_MAX_ATTEMPTS = 3, only unprocessed requests retried)")
    check(all(x.get("status") == 429 and x.get("twilio_code") == 20429 for x in recs),
          f"20429 attempts: {[(x.get('status'), x.get('twilio_code')) for x in recs]}")


@h.test
def twilio_server_error_is_503_not_retried():
    twilio_error_case(TO_SERVER_ERROR, 503, "twilio_unavailable", None, 20500)
    recs = sim_requests(TO_SERVER_ERROR)
    check(len(recs) == 1, f"500: the simulator saw {len(recs)} requests; a 5xx may have created "
          "the call, so it must not be retried")


# ---- 20003 through a private call worker holding a wrong auth token ----

@contextlib.contextmanager
def private_worker(overrides, label):
    """A private call worker (harness.private_worker) whose log is
    scanned with the stack's at the end; yields its socket path."""
    tmp = tempfile.mkdtemp(prefix="calltest-")
    STATE["tmp_dirs"].append(tmp)
    with h.private_worker(tmp, label, overrides) as (sock_path, log_path, _):
        STATE["extra_logs"].append(log_path)
        yield sock_path


def fcgi_post_call(sock_path, to):
    return h.fcgi_post_call(sock_path, secret(), ('{"to":"%s"}' % to).encode())


@h.test
def twilio_bad_credentials_is_502():
    # The simulator answers 20003 for wrong Basic credentials; the stack's
    # workers hold the right ones, so a private worker gets a wrong token.
    wrong = secrets.token_hex(16)
    STATE["secrets"].append(wrong)
    since = db_now()
    sim_clear()
    with private_worker({"TWILIO_AUTH_TOKEN": wrong, "TWILIO_API_KEY_SID": None,
                         "TWILIO_API_KEY_SECRET": None}, "badtoken") as sock_path:
        resp = fcgi_post_call(sock_path, TO_AUTHFAIL)
    expect_error(resp, 502, "twilio_auth_failed", "POST /call with a wrong Twilio token",
                 twilio_code=20003)
    recs = sim_requests(TO_AUTHFAIL)
    check(len(recs) == 1 and recs[0].get("status") == 401 and recs[0].get("twilio_code") == 20003,
          f"20003: the simulator saw {[(x.get('status'), x.get('twilio_code')) for x in recs]}, "
          "want one 401/20003 (not retried)")
    check(db_count_to(TO_AUTHFAIL, since) == 0, "20003: a call row was stored")


class _Fake21211(http.server.BaseHTTPRequestHandler):
    hits = []

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        _Fake21211.hits.append((self.path, self.rfile.read(n)))
        body = json.dumps({"code": 21211, "status": 400,
                           "message": "The 'To' number is not a valid phone number.",
                           "more_info": "https://www.twilio.com/docs/errors/21211"}).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@h.test
def twilio_invalid_to_21211_is_422():
    # The simulator validates To with the same phone_parse as the service, so
    # no number passes ours and fails its 21211 check: a private worker talks
    # to a one-answer fake Twilio on loopback instead.
    _Fake21211.hits = []
    srv = http.server.HTTPServer(("127.0.0.1", 0), _Fake21211)
    srv.timeout = 1
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    t.start()
    try:
        base = f"http://127.0.0.1:{srv.server_address[1]}"
        with private_worker({"TWILIO_API_BASE_URL": base}, "fake21211") as sock_path:
            resp = fcgi_post_call(sock_path, TO_MALFORMED)
    finally:
        srv.shutdown()
        srv.server_close()
    expect_error(resp, 422, "invalid_phone_number", "Twilio 21211", field="to", twilio_code=21211)
    check(len(_Fake21211.hits) == 1, f"21211: the fake Twilio saw {len(_Fake21211.hits)} requests")


@h.test
def twilio_unreachable_message_is_generic():
    # A port bound but not listening refuses connections: libcurl's text
    # ("Failed to connect to 127.0.0.1 port N ...") goes to the log only.
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    try:
        with private_worker({"TWILIO_API_BASE_URL": f"http://127.0.0.1:{port}"},
                            "unreachable") as sock_path:
            resp = fcgi_post_call(sock_path, TO_MALFORMED)
            log_path = STATE["extra_logs"][-1]
    finally:
        s.close()
    err = expect_error(resp, 503, "twilio_unavailable", "Twilio unreachable")
    check(err["message"] == "twilio could not be reached; no call was placed",
          f"Twilio unreachable: message {err['message']!r}")
    for leak in ("127.0.0.1", str(port), "onnect"):
        check(leak not in resp.body.decode("utf-8", "replace"),
              f"Twilio unreachable: the answer shows libcurl's detail ({leak!r}): {resp.body[:300]!r}")
    with open(log_path, encoding="utf-8", errors="replace") as f:
        check(f"port {port}" in f.read(), "Twilio unreachable: the log lacks libcurl's detail")


@h.test
def malformed_requests_are_refused():
    sim_clear()
    ok = {"to": TO_MALFORMED}
    r = post_call('{"to":"%s"}' % TO_MALFORMED, headers={"Content-Type": "text/plain"})
    expect_error(r, 415, "unsupported_media_type", "text/plain body")
    r = post_call("to=%2B14155550132", headers={"Content-Type": "application/x-www-form-urlencoded"})
    expect_error(r, 415, "unsupported_media_type", "form body")
    for what, raw in (("truncated JSON", '{"to":"%s"' % TO_MALFORMED),
                      ("single quotes", "{'to':'%s'}" % TO_MALFORMED),
                      ("trailing comma", '{"to":"%s",}' % TO_MALFORMED),
                      ("an array", '["%s"]' % TO_MALFORMED),
                      ("duplicate member", '{"to":"%s","to":"%s"}' % (TO_MALFORMED, TO_MALFORMED))):
        r = post_call(raw, headers={"Content-Type": "application/json"})
        expect_error(r, 400, "invalid_json", what)
    r = post_call({**ok, "colour": "red"})
    err = expect_error(r, 400, "unknown_field", "unknown field", field="colour")
    check("colour" in err["message"], f"unknown field: message {err['message']!r} does not name it")
    r = post_call({})
    expect_error(r, 400, "missing_field", "no to", field="to")
    for field, value in (("to", 14155550132), ("to", None), ("record", "yes"),
                         ("machine_detection", 1), ("timeout", "30"), ("timeout", 30.5),
                         ("say", ["hi"]), ("country", 1)):
        body = {**ok, field: value} if field != "to" else {"to": value}
        r = post_call(body)
        expect_error(r, 400, "invalid_type", f"{field} = {value!r}", field=field)
    for t in (4, 601, -1, 0):
        r = post_call({**ok, "timeout": t})
        expect_error(r, 400, "invalid_value", f"timeout {t}", field="timeout")
    r = post_call({**ok, "say": "x" * (17 * 1024)})
    err = h.check_json_error(r, 413, "body over 16 KiB")
    check(err["code"] in ("payload_too_large", "too_large"), f"413 code {err['code']!r}")
    r = post_call({**ok, "say": "x" * (16 * 1024 - 40)})  # under the limit, but say too long
    expect_error(r, 400, "invalid_value", "say over 1000 characters", field="say")
    for what, hdrs in (("no key", {"Authorization": ""}),
                       ("an unknown key", {"Authorization": "Bearer vk_" + "0" * 64}),
                       ("a Basic header", {"Authorization": "Basic Zm9vOmJhcg=="})):
        hd = {"Content-Type": "application/json"}
        if hdrs["Authorization"]:
            hd.update(hdrs)
        r = h.post("/call", '{"to":"%s"}' % TO_MALFORMED, headers=hd, timeout=30)
        expect_error(r, 401, "unauthorized", f"POST /call with {what}")
        check((r.header("www-authenticate") or "").startswith("Bearer"),
              f"POST /call with {what}: WWW-Authenticate {r.header('www-authenticate')!r}")
    check_sim_saw_nothing("malformed requests")


@h.test
def idempotency_key_dials_once():
    since = db_now()
    sim_clear()
    key = "calltest-" + secrets.token_hex(8)
    body = {"to": TO_IDEM}
    results = [None] * 20
    barrier = threading.Barrier(20, timeout=60)

    def worker(i):
        try:
            barrier.wait()
            results[i] = post_call(body, idem=key, timeout=120)
        except Exception as e:  # reported below
            results[i] = e

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(20)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 180
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    check(not any(t.is_alive() for t in threads), "idempotency: a request did not finish in 180 s")
    bad = [r for r in results if not isinstance(r, h.Response) or r.status != 201]
    check(not bad, f"idempotency: {len(bad)} of 20 answers were not 201: {bad[:3]!r}")
    bodies = {r.body for r in results}
    check(len(bodies) == 1, f"idempotency: {len(bodies)} different bodies among 20 answers")
    doc = results[0].json()
    check_call_json(doc, TO_IDEM, default_from(), "idempotent answer")
    replayed = [r for r in results if (r.header("idempotent-replayed") or "").lower() == "true"]
    check(len(replayed) == 19, f"idempotency: {len(replayed)} answers say Idempotent-Replayed: "
          "true, want 19 (all but the one that dialed)")
    recs = sim_requests(TO_IDEM)
    check(len(recs) == 1, f"idempotency: the simulator saw {len(recs)} requests, want 1")
    n = db_count_to(TO_IDEM, since)
    check(n == 1, f"idempotency: {n} calls rows for {TO_IDEM}, want 1")
    check(len(db_call_rows(doc["sid"])) == 1, f"idempotency: no calls row for {doc['sid']}")
    # a later retry: same answer, marked as a replay
    again = post_call(body, idem=key)
    check(again.status == 201 and again.body == results[0].body,
          f"idempotency: a later retry answered {again!r}")
    check((again.header("idempotent-replayed") or "").lower() == "true",
          f"idempotency: replay header {again.header('idempotent-replayed')!r}")
    # a different body with the same key
    r = post_call({"to": TO_IDEM, "timeout": 30}, idem=key)
    expect_error(r, 422, "idempotency_key_reused", "same key, different body")
    # the key belongs to the API key: another API key is another request
    other = post_call(body, idem=key, key=STATE["secrets"][1])
    check(other.status == 201 and other.json()["sid"] != doc["sid"],
          f"idempotency: the same key from another API key answered {other!r}")
    check(len(sim_requests(TO_IDEM)) == 2, "idempotency: want exactly one more request for the "
          "other API key")


@h.test
def database_down_does_not_dial():
    if not h.embedded_pg():
        print("     (skipped: not an embedded PostgreSQL)", flush=True)
        return
    h.wait_until(lambda: h.get("/readyz").status == 200, 30, "/readyz 200 before stopping PostgreSQL")
    sim_clear()
    h.pg_stop()
    try:
        h.wait_until(lambda: h.get("/readyz").status == 503, 30, "/readyz 503 with PostgreSQL stopped")
        for idem in (None, "calltest-pgdown-" + secrets.token_hex(4)):
            r = post_call({"to": TO_PGDOWN}, idem=idem, timeout=60)
            h.check_json_error(r, 503, f"POST /call with PostgreSQL stopped (key {idem})")
            check(r.header("retry-after"), "503 with PostgreSQL stopped has no Retry-After")
        check_sim_saw_nothing("PostgreSQL stopped")
    finally:
        if not h.pg_running():
            h.pg_start()
        h.wait_until(lambda: h.get("/readyz").status == 200, 90,
                     "/readyz 200 after PostgreSQL restart", interval=0.5)
    # and the service dials again afterwards (the worker reconnects)
    sim_clear()
    r = h.wait_until(lambda: (lambda x: x if x.status == 201 else None)(post_call({"to": TO_PGDOWN})),
                     60, "POST /call 201 after PostgreSQL restart", interval=1)
    check(len(sim_requests(TO_PGDOWN)) == 1, "after restart: want one request")
    wait_status(r.json()["sid"], "completed")


@h.test
def list_and_get_calls():
    created = []
    for to in TO_LIST:
        created.append(place({"to": to}, to, f"POST /call {to}")["sid"])
    for sid in created:
        wait_status(sid, "completed")
    # newest first, limit
    r = api_get("/calls?limit=3")
    check(r.status == 200, f"GET /calls?limit=3: {r!r}")
    page = r.json()
    check(len(page.get("calls", [])) == 3 and page.get("next_cursor"),
          f"limit=3: {len(page.get('calls', []))} calls, next_cursor {page.get('next_cursor')!r}")
    top = [c["sid"] for c in page["calls"]]
    check(top == created[::-1][:3], f"newest first: got {top}, want {created[::-1][:3]}")
    # default limit
    r = api_get("/calls")
    check(r.status == 200 and 1 <= len(r.json()["calls"]) <= 100, f"GET /calls: {r!r}")
    # walk every page
    # the key reads only the calls placed with its name (docs/API.md,
    # Authentication): the walk covers exactly those
    mine = "SELECT call_sid FROM calls WHERE api_key_name = :'n'"
    total = len(h.psql(mine, n=STATE["key_names"][0]))
    seen, keys, cursor, pages = [], [], None, 0
    while pages < total + 2:
        path = "/calls?limit=2" + (f"&cursor={urllib.parse.quote(cursor, safe='')}" if cursor else "")
        r = api_get(path)
        check(r.status == 200, f"GET {path}: {r!r}")
        doc = r.json()
        pages += 1
        check(len(doc["calls"]) <= 2, f"page of {len(doc['calls'])} with limit=2")
        for c in doc["calls"]:
            seen.append(c["sid"])
            keys.append((c["created_at"], c["sid"]))
        cursor = doc.get("next_cursor")
        if not cursor:
            break
    check(not cursor, f"cursor walk did not end within {pages} pages")
    check(len(seen) == len(set(seen)), "cursor walk returned duplicates")
    in_db = {row[0] for row in h.psql(mine, n=STATE["key_names"][0])}
    check(set(seen) == in_db, f"cursor walk: {len(in_db - set(seen))} calls missing, "
          f"{len(set(seen) - in_db)} unknown")
    check(keys == sorted(keys, reverse=True), "cursor walk is not newest first")
    pos = [seen.index(s) for s in created]
    check(pos == sorted(pos, reverse=True), "the calls created here are not newest first")
    # filters
    for q, field, value in (("status=completed", "status", "completed"),
                            ("direction=outbound-api", "direction", "outbound-api"),
                            ("direction=inbound", "direction", "inbound"),
                            ("status=completed&direction=outbound-api&limit=100", "status",
                             "completed")):
        r = api_get(f"/calls?{q}" if "limit" in q else f"/calls?{q}&limit=100")
        check(r.status == 200, f"GET /calls?{q}: {r!r}")
        calls = r.json()["calls"]
        check(all(c[field] == value for c in calls), f"?{q} returned another {field}")
        if value in ("completed", "outbound-api"):
            check(created[-1] in [c["sid"] for c in calls], f"?{q} misses {created[-1]}")
    r = api_get("/calls?status=busy&limit=100")
    check(r.status == 200 and all(c["sid"] not in created for c in r.json()["calls"]),
          "status=busy returned a completed call")
    # bad parameters
    # a cursor of our shape whose date does not exist (month 13): the
    # client's error, not a database outage (503)
    month13 = base64.urlsafe_b64encode(
        b"2026-13-01T00:00:00.000000Z|CA" + b"0" * 32).decode().rstrip("=")
    for q in ("limit=0", "limit=101", "limit=abc", "limit=", "cursor=garbage", "cursor=",
              f"cursor={month13}", "status=bogus", "direction=sideways", "colour=red",
              "limit=2&limit=3"):
        expect_error(api_get(f"/calls?{q}"), 400, expect_list_code(q), f"GET /calls?{q}")
    # one call
    expect_error(api_get("/calls/CA" + "0" * 32), 404, "not_found", "GET /calls/{unknown sid}")
    expect_error(api_get("/calls/nonsense"), 404, "not_found", "GET /calls/nonsense")
    r = api_get(f"/calls/{created[0]}")
    check(r.status == 200, f"GET /calls/{created[0]}: {r!r}")
    check_events_oldest_first(r.json(), "GET /calls/{sid}")
    r = h.get(f"/calls/{created[0]}", timeout=30)
    expect_error(r, 401, "unauthorized", "GET /calls/{sid} without a key")
    expect_error(h.get("/calls", timeout=30), 401, "unauthorized", "GET /calls without a key")


def expect_list_code(q):
    if q.startswith("colour"):
        return "unknown_field"
    if q == "limit=2&limit=3":
        return "invalid_query"
    return "invalid_value"


@h.test
def twilio_timeout_is_504():
    # TWILIO_TIMEOUT_MS (stack.py sets 3000) is shorter than the slow
    # scenario's SIM_SLOW_MS (stack.py sets 6000).
    e = h.env()
    print(f"     (TWILIO_TIMEOUT_MS={e.get('TWILIO_TIMEOUT_MS') or 'unset: 15000'}, "
          f"SIM_SLOW_MS={e.get('SIM_SLOW_MS') or 'unset: 20000'})", flush=True)
    twilio_error_case(TO_SLOW, 504, "twilio_timeout", None, None, timeout=120)
    # the simulator logs the request once its held answer is written
    recs = h.wait_until(lambda: sim_requests(TO_SLOW), 60, "the slow request in /_sim/requests",
                        interval=1)
    check(len(recs) == 1, f"timeout: the simulator saw {len(recs)} requests; a timed-out request "
          "may have created the call and must not be retried")
    # a retry with the same Idempotency-Key after a timeout must not dial again
    sim_clear()
    key = "calltest-slow-" + secrets.token_hex(4)
    r1 = post_call({"to": TO_SLOW}, idem=key, timeout=120)
    expect_error(r1, 504, "twilio_timeout", "slow with Idempotency-Key")
    r2 = post_call({"to": TO_SLOW}, idem=key, timeout=120)
    check(r2.status == 504 and r2.body == r1.body,
          f"retry after a timeout with the same key: {r2!r} (want the stored 504, no new dial)")
    check((r2.header("idempotent-replayed") or "").lower() == "true", "retry not marked replayed")
    recs = h.wait_until(lambda: sim_requests(TO_SLOW), 60, "the slow request logged", interval=1)
    time.sleep(1)
    check(len(sim_requests(TO_SLOW)) == 1, "a retry after a timeout dialed again")


@h.test
def logs_hold_no_secrets_or_numbers():
    e = h.env()
    time.sleep(2)  # let the last callbacks be logged
    files = []
    for d in (e["VOICE_LOG_DIR"], os.path.join(e["VOICE_NGINX_DIR"], "logs")):
        for root, _, names in os.walk(d):
            files += [os.path.join(root, n) for n in names]
    files += STATE["extra_logs"]
    check(files, "no log files found")
    print(f"     (scanned {len(files)} log files)", flush=True)
    needles = {"the Twilio auth token": [e["TWILIO_AUTH_TOKEN"]]}
    if e.get("TWILIO_API_KEY_SECRET"):
        needles["the Twilio API key secret"] = [e["TWILIO_API_KEY_SECRET"]]
    for i, s in enumerate(STATE["secrets"]):
        needles[f"secret #{i}"] = [s, s[3:] if s.startswith("vk_") else s]
    for n in sorted(USED_NUMBERS | {default_from()}):
        digits = re.sub(r"\D", "", n)
        forms = {n, urllib.parse.quote(n, safe="")}
        if n.startswith("+"):
            forms.add(digits)
        needles[f"phone number {n}"] = sorted(forms)
    found = []
    for path in files:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
        except OSError:
            continue
        for what, forms in needles.items():
            for form in forms:
                if form and form in text:
                    line = next(x for x in text.splitlines() if form in x)
                    found.append(f"{what} ({form!r}) in {path}: {line[:200]}")
                    break
    check(not found, "log files leak:\n  " + "\n  ".join(found[:15]) +
          (f"\n  … and {len(found) - 15} more" if len(found) > 15 else ""))
    masked = [x for x in h.log_lines("call") if "\u2022\u2022\u2022" in x]
    check(masked, "the call log has no masked number (+1•••0100) at all")
    # the mask keeps the country code and the last digits, not the area code
    for to in (TO_BASIC, TO_SAY):
        check(not any(to[:5] + "\u2022" in x for x in masked),
              f"a mask keeps {to}'s area code ({to[:5]}•••)")


def teardown():
    for d in STATE["tmp_dirs"]:
        shutil.rmtree(d, ignore_errors=True)
    for name in STATE["key_names"]:
        try:
            h.key_revoke(name)
        except Exception as e:  # reported, not fatal
            print(f"     (could not revoke {name}: {e})", flush=True)


if __name__ == "__main__":
    h.run(setup=setup_api_keys, teardown=teardown)
