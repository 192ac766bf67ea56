#!/usr/bin/env python3
"""Twilio webhooks through nginx -> webhook_fcgi -> PostgreSQL, against the
stack stack.py started: signed status callbacks stored exactly once, every
tampering refused before anything is stored, duplicates and out-of-order
deliveries, a burst of 1,120 callbacks from 24 threads (250 calls x 4
events, plus 120 redeliveries with the same, another or no token), and the
Voice URL (/twilio/voice).

Requests are signed here, independently of common/sig, as Twilio's SDKs
validate them (docs/TWILIO.md, "Signatures"): HMAC-SHA1 keyed with the Auth
Token over PUBLIC_BASE_URL + path?query followed by the decoded params sorted
by key (then value, de-duplicated), base64. Every CallSid is random, so reruns
against the same database do not collide.
"""

import base64
import concurrent.futures
import http.client
import json
import os
import random
import secrets
import sys
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402

FORM = "application/x-www-form-urlencoded"
DEFAULT_GREETING = "Hello. You have reached a Twilio Voice service. Goodbye."
OTHER_ACCOUNT = "AC" + "f" * 32

CONCURRENT_CALLS = 250
CONCURRENT_WORKERS = 24
CONCURRENT_DUPLICATES = 120          # extra deliveries of already-sent events
CONCURRENT_DEADLINE = 240            # seconds for the whole burst
REQUEST_TIMEOUT = 20                 # seconds per request


# Signing (independent of common/sig) ------------------------------------------

twilio_signature = h.twilio_signature


def new_sid():
    return "CA" + secrets.token_hex(16)


def new_token():
    return secrets.token_hex(16) + "-" + secrets.token_hex(8)


def callback_params(sid, status, seq=None, direction="outbound-api", account=None, **extra):
    """A status callback's parameters as Twilio sends them."""
    e = h.env()
    p = [
        ("AccountSid", account or e["TWILIO_ACCOUNT_SID"]),
        ("ApiVersion", "2010-04-01"),
        ("CallSid", sid),
        ("CallStatus", status),
        ("Called", "+14155550199"),
        ("Caller", "+14155550100"),
        ("Direction", direction),
        ("From", "+14155550100"),
        ("To", "+14155550199"),
        ("CallbackSource", "call-progress-events"),
        ("Timestamp", time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())),
    ]
    if seq is not None:
        p.append(("SequenceNumber", str(seq)))
    p.extend(extra.items())
    return p


def send(path, params, sign_url=None, sign_params=None, token=None, signature=None,
         idem=None, content_type=FORM, method="POST", conn=None):
    """Posts params form-encoded to path, signed over sign_url (default: the
    public URL of path) and sign_params (default: params). signature=False
    sends no header; a str sends that header verbatim."""
    e = h.env()
    headers = {}
    if content_type:
        headers["Content-Type"] = content_type
    if signature is None:
        url = sign_url if sign_url is not None else e["PUBLIC_BASE_URL"] + path
        signature = twilio_signature(url, params if sign_params is None else sign_params, token)
    if signature is not False:
        headers["X-Twilio-Signature"] = signature
    if idem is not None:
        headers["I-Twilio-Idempotency-Token"] = idem
    body = urllib.parse.urlencode(params) if params is not None else None
    if conn is not None:
        return conn.request(method, path, body, headers)
    return h.request(method, path, body=body, headers=headers, timeout=REQUEST_TIMEOUT)


# Database ---------------------------------------------------------------------

def call_row(sid):
    rows = h.psql("SELECT status, coalesce(sequence_number::text, ''), direction, account_sid,"
                  " from_number, to_number, coalesce(duration_seconds::text, '')"
                  " FROM calls WHERE call_sid = :'sid'", sid=sid)
    if not rows:
        return None
    keys = ("status", "sequence_number", "direction", "account_sid", "from", "to", "duration")
    return dict(zip(keys, rows[0]))


def event_rows(sid):
    rows = h.psql("SELECT status, coalesce(sequence_number::text, ''),"
                  " coalesce(idempotency_token, ''), payload::text"
                  " FROM call_events WHERE call_sid = :'sid' ORDER BY id", sid=sid)
    return [{"status": r[0], "sequence_number": r[1], "token": r[2], "payload": json.loads(r[3])}
            for r in rows]


def check_nothing_stored(sid, what):
    n = h.psql("SELECT (SELECT count(*) FROM calls WHERE call_sid = :'sid')"
               " + (SELECT count(*) FROM call_events WHERE call_sid = :'sid'"
               "    OR payload->>'CallSid' = :'sid')", sid=sid)
    check(n == [["0"]], f"{what}: rows were stored for {sid}")


def check_refused(resp, status, code, what):
    err = h.check_json_error(resp, status, what)
    if code is not None:
        check(err["code"] == code, f"{what}: error code {err['code']!r}, want {code!r}")
    return err


# A keep-alive HTTPS connection per thread (for the concurrent burst) ------------

class Conn:
    def __init__(self):
        self.c = None

    def _open(self):
        e = h.env()
        self.c = http.client.HTTPSConnection("127.0.0.1", int(e["VOICE_HTTPS_PORT"]),
                                             timeout=REQUEST_TIMEOUT, context=h.tls_context())

    def request(self, method, path, body, headers):
        """Returns (status, body). A reused connection that nginx closed
        before our request reached it is reopened once; that resend is a
        duplicate delivery, which the service must absorb anyway."""
        for attempt in (0, 1):
            fresh = self.c is None
            if fresh:
                self._open()
            try:
                self.c.request(method, path, body=body, headers=headers)
                r = self.c.getresponse()
                return r.status, r.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                if fresh or attempt == 1:
                    raise
        raise AssertionError("unreachable")

    def close(self):
        if self.c is not None:
            self.c.close()
            self.c = None


# Runner: one line per check, every check runs ----------------------------------

test = h.test


# Accepted and stored ----------------------------------------------------------

@test
def signed_callback_is_stored():
    e = h.env()
    sid, tok = new_sid(), new_token()
    params = callback_params(sid, "ringing", 1, CallerName="Jos\u00e9 \"Q\" <x> & y",
                             Tag="a")
    params.append(("Tag", "b"))
    r = send("/twilio/webhook", params, idem=tok)
    check(r.status == 204, f"signed callback: expected 204, got {r!r}")
    check(r.body == b"", f"204 with a body: {r.body!r}")
    row = call_row(sid)
    check(row is not None, "no calls row for a stored callback")
    want = {"status": "ringing", "sequence_number": "1", "direction": "outbound-api",
            "account_sid": e["TWILIO_ACCOUNT_SID"], "from": "+14155550100",
            "to": "+14155550199"}
    for k, v in want.items():
        check(row[k] == v, f"calls.{k} is {row[k]!r}, want {v!r}")
    ev = event_rows(sid)
    check(len(ev) == 1, f"expected 1 call_events row, got {len(ev)}")
    check(ev[0]["status"] == "ringing" and ev[0]["sequence_number"] == "1",
          f"event row {ev[0]!r}")
    check(ev[0]["token"] == tok, f"idempotency token stored as {ev[0]['token']!r}")
    payload = ev[0]["payload"]
    for k, v in params:
        if k != "Tag":
            check(payload.get(k) == v, f"payload[{k!r}] is {payload.get(k)!r}, want {v!r}")
    check(payload.get("Tag") == ["a", "b"], f"repeated key in payload: {payload.get('Tag')!r}")


@test
def final_status_without_sequence_number_ends_an_answered_call():
    # in-progress ranks below every final status, whatever the sequence
    # numbers (cancel/hang up and reconciliation store finals without one)
    sid = new_sid()
    for status, seq in (("in-progress", 3), ("completed", None), ("in-progress", 9)):
        r = send("/twilio/webhook", callback_params(sid, status, seq))
        check(r.status == 204, f"{status}: expected 204, got {r!r}")
    row = call_row(sid)
    check(row is not None and row["status"] == "completed",
          f"in-progress then completed (no SequenceNumber) left the call {row and row['status']!r}")


@test
def signed_with_query_string_is_stored():
    # The query is hashed byte for byte as part of the URL (docs/TWILIO.md,
    # "The URL that is signed").
    sid = new_sid()
    path = "/twilio/webhook?b=2&a=It%27s+x"
    r = send(path, callback_params(sid, "initiated", 0))
    check(r.status == 204, f"signed callback with a query: expected 204, got {r!r}")
    check(call_row(sid) is not None and len(event_rows(sid)) == 1, "not stored")


@test
def signed_without_port_is_accepted():
    # SDK port quirk: the URL with its port removed validates too.
    e = h.env()
    u = urllib.parse.urlsplit(e["PUBLIC_BASE_URL"])
    if u.port is None:
        print("     (PUBLIC_BASE_URL has no port; nothing to strip)")
        return
    sid = new_sid()
    url = f"{u.scheme}://{u.hostname}/twilio/webhook"
    r = send("/twilio/webhook", callback_params(sid, "initiated", 0), sign_url=url)
    check(r.status == 204, f"signature over the URL without port: expected 204, got {r!r}")
    check(len(event_rows(sid)) == 1, "not stored")


@test
def malformed_body_signature_first():
    # A body that is not valid form encoding: the signature is still checked
    # first (over the URL alone, as for a body without parameters), so a
    # forger learns nothing but 403; a correctly signed one is 400.
    e = h.env()
    url = e["PUBLIC_BASE_URL"] + "/twilio/webhook"
    body = "CallSid=%zz&CallStatus=completed"
    hdrs = {"Content-Type": FORM}
    r = h.post("/twilio/webhook", body, headers=dict(hdrs, **{"X-Twilio-Signature": "AAAA"}),
               timeout=REQUEST_TIMEOUT)
    h.check_json_error(r, 403, "malformed body, forged signature")
    sig = twilio_signature(url, [])
    r = h.post("/twilio/webhook", body, headers=dict(hdrs, **{"X-Twilio-Signature": sig}),
               timeout=REQUEST_TIMEOUT)
    h.check_json_error(r, 400, "malformed body, signature over the URL")
    check(r.json()["error"]["code"] == "malformed_body", f"malformed body: {r!r}")


def voice_answer(mode_env, label):
    """An inbound Voice URL request, signed, to a private webhook worker
    configured with mode_env; returns the TwiML root element."""
    e = h.env()
    params = callback_params(new_sid(), "ringing", direction="inbound")
    body = urllib.parse.urlencode(params).encode()
    sig = twilio_signature(e["PUBLIC_BASE_URL"] + "/twilio/voice", params)
    with h.private_worker(None, label, mode_env,
                          pool="webhook") as (sock, _, _):
        r = h.fcgi(sock, "POST", "/twilio/voice", body,
                   {"CONTENT_TYPE": FORM, "HTTP_X_TWILIO_SIGNATURE": sig})
    check(r.status == 200 and (r.header("content-type") or "").startswith("text/xml"),
          f"{label}: Voice URL answered {r!r}")
    return ET.fromstring(r.body)


@test
def inbound_modes_answer_the_configured_twiml():
    root = voice_answer({"VOICE_INBOUND_MODE": "reject"}, "reject")
    check(root.tag == "Response" and [c.tag for c in root] == ["Reject"],
          f"reject mode: {ET.tostring(root)!r}")
    root = voice_answer({"VOICE_INBOUND_MODE": "dial", "VOICE_FORWARD_TO": "+14155550177"}, "dial")
    check([c.tag for c in root] == ["Dial"] and root[0][0].tag == "Number"
          and root[0][0].text == "+14155550177", f"dial mode: {ET.tostring(root)!r}")
    root = voice_answer({"VOICE_INBOUND_MODE": "say", "VOICE_GREETING": "Hi & <welcome>"}, "say")
    check([c.tag for c in root] == ["Say"] and root[0].text == "Hi & <welcome>",
          f"say mode with a greeting to escape: {ET.tostring(root)!r}")


@test
def success_is_logged_without_error():
    # The access line of a stored callback must not carry an error code.
    sid = new_sid()
    r = send("/twilio/webhook", callback_params(sid, "ringing", 1), idem=new_token())
    check(r.status == 204, f"expected 204, got {r!r}")

    def line():
        for raw in h.log_lines("webhook"):
            try:
                doc = json.loads(raw)
            except ValueError:
                continue
            if doc.get("msg") == "request" and doc.get("call_sid") == sid:
                return doc
        return None

    doc = h.wait_until(line, 10, f"the webhook access log line for {sid}")
    check(doc.get("status") == 204, f"logged status {doc.get('status')!r}")
    check("error" not in doc, f"a 204 is logged with error {doc.get('error')!r}: {doc!r}")


@test
def form_content_type_with_charset_is_accepted():
    sid = new_sid()
    r = send("/twilio/webhook", callback_params(sid, "initiated", 0),
             content_type="application/x-www-form-urlencoded; charset=UTF-8")
    check(r.status == 204, f"form with charset: expected 204, got {r!r}")
    check(len(event_rows(sid)) == 1, "not stored")


@test
def database_down_is_never_acknowledged_and_lost():
    # With PostgreSQL down a callback is either refused with 503 + Retry-After
    # (nothing acknowledged; Twilio's retry stores it later) or acknowledged
    # 2xx because it was kept durably: then it must reach the database once
    # PostgreSQL is back, without any resend. Either way: exactly one row.
    if not h.embedded_pg():
        print("     (external database; skipped)")
        return
    sid, tok = new_sid(), new_token()
    params = callback_params(sid, "completed", 3, CallDuration="5")
    h.pg_stop()
    try:
        r = send("/twilio/webhook", params, idem=tok)
        acked = 200 <= r.status < 300
        if not acked:
            check_refused(r, 503, None, "callback with the database down")
            check(r.header("retry-after"), "503 without Retry-After")
    finally:
        h.pg_start()
    print(f"     database down: answered {r.status}", flush=True)

    def stored():
        if acked:   # other traffic only, never this delivery again
            send("/twilio/webhook", callback_params(new_sid(), "initiated", 0))
        else:       # Twilio's retry
            send("/twilio/webhook", params, idem=tok)
        return len(event_rows(sid)) == 1

    h.wait_until(stored, 30, "the callback to reach the database after restart", interval=0.5)
    r = send("/twilio/webhook", params, idem=tok)
    check(200 <= r.status < 300, f"redelivery after restart: {r!r}")
    check(len(event_rows(sid)) == 1, "stored more than once")
    row = call_row(sid)
    check(row["status"] == "completed" and row["duration"] == "5", f"call row {row!r}")

# Tampering: refused with the right status, nothing stored ------------------------

def tamper_cases():
    """(name, expected status, expected error code, send kwargs, sid)."""
    e = h.env()
    base = e["PUBLIC_BASE_URL"]
    u = urllib.parse.urlsplit(base)
    cases = []

    def case(name, status, code, mk):
        sid = new_sid()
        cases.append((name, status, code, mk(sid), sid))

    def p(sid, **kw):
        return callback_params(sid, "completed", 3, CallDuration="17", **kw)

    case("missing signature header", 400, "missing_signature",
         lambda s: dict(params=p(s), signature=False))
    case("empty signature header", 400, "missing_signature",
         lambda s: dict(params=p(s), signature=""))
    case("garbage signature", 403, "invalid_signature",
         lambda s: dict(params=p(s), signature="not-a-signature"))
    case("random 20-byte signature", 403, "invalid_signature",
         lambda s: dict(params=p(s), signature=base64.b64encode(os.urandom(20)).decode()))
    case("signature with flipped case", 403, "invalid_signature",
         lambda s: dict(params=p(s), signature=twilio_signature(base + "/twilio/webhook",
                                                                 p(s)).swapcase()))
    case("signed with another auth token", 403, "invalid_signature",
         lambda s: dict(params=p(s), token=secrets.token_hex(16)))
    case("signed over another path", 403, "invalid_signature",
         lambda s: dict(params=p(s), sign_url=base + "/twilio/voice"))
    case("signed over another host", 403, "invalid_signature",
         lambda s: dict(params=p(s), sign_url=f"https://evil.example.com:{u.port or 443}"
                                              "/twilio/webhook"))
    case("signed over http", 403, "invalid_signature",
         lambda s: dict(params=p(s), sign_url=base.replace("https://", "http://", 1)
                                              + "/twilio/webhook"))
    case("signed with a query, sent without", 403, "invalid_signature",
         lambda s: dict(params=p(s), sign_url=base + "/twilio/webhook?x=1"))
    case("signed without a query, sent with one", 403, "invalid_signature",
         lambda s: dict(params=p(s), path="/twilio/webhook?x=1",
                        sign_url=base + "/twilio/webhook"))
    case("query changed after signing", 403, "invalid_signature",
         lambda s: dict(params=p(s), path="/twilio/webhook?x=2",
                        sign_url=base + "/twilio/webhook?x=1"))
    case("query re-encoded after signing", 403, "invalid_signature",
         lambda s: dict(params=p(s), path="/twilio/webhook?x=a%20b",
                        sign_url=base + "/twilio/webhook?x=a+b"))
    case("CallStatus changed after signing", 403, "invalid_signature",
         lambda s: dict(params=p(s), sign_params=callback_params(s, "busy", 3,
                                                                 CallDuration="17")))
    case("SequenceNumber changed after signing", 403, "invalid_signature",
         lambda s: dict(params=p(s), sign_params=callback_params(s, "completed", 2,
                                                                 CallDuration="17")))
    case("CallSid changed after signing", 403, "invalid_signature",
         lambda s: dict(params=p(s), sign_params=p(new_sid())))
    case("extra param added after signing", 403, "invalid_signature",
         lambda s: dict(params=p(s) + [("AnsweredBy", "human")], sign_params=p(s)))
    case("repeated param added after signing", 403, "invalid_signature",
         lambda s: dict(params=p(s) + [("Tag", "2")], sign_params=p(s) + [("Tag", "1")]))
    case("param removed after signing", 403, "invalid_signature",
         lambda s: dict(params=[kv for kv in p(s) if kv[0] != "CallDuration"],
                        sign_params=p(s)))
    case("another account's AccountSid", 403, "wrong_account",
         lambda s: dict(params=callback_params(s, "completed", 3, account=OTHER_ACCOUNT)))
    case("malformed CallSid", 400, "invalid_parameter",
         lambda s: dict(params=callback_params(s[:-1], "completed", 3)))
    case("CallSid with a non-hex digit", 400, "invalid_parameter",
         lambda s: dict(params=callback_params(s[:-1] + "g", "completed", 3)))
    case("unknown CallStatus", 400, "invalid_parameter",
         lambda s: dict(params=callback_params(s, "answered", 3)))
    case("CallStatus in capitals", 400, "invalid_parameter",
         lambda s: dict(params=callback_params(s, "COMPLETED", 3)))
    case("negative SequenceNumber", 400, "invalid_parameter",
         lambda s: dict(params=callback_params(s, "completed", -1)))
    case("non-numeric SequenceNumber", 400, "invalid_parameter",
         lambda s: dict(params=callback_params(s, "completed", "3x")))
    case("huge SequenceNumber", 400, "invalid_parameter",
         lambda s: dict(params=callback_params(s, "completed", 10 ** 20)))
    case("malformed AccountSid", 400, "invalid_parameter",
         lambda s: dict(params=callback_params(s, "completed", 3, account="AC123")))
    case("idempotency token over 256 bytes", 400, "invalid_parameter",
         lambda s: dict(params=p(s), idem="t" * 257))
    return cases


@test
def tampered_callbacks_are_refused():
    failures = []
    for name, status, code, kw, sid in tamper_cases():
        path = kw.pop("path", "/twilio/webhook")
        try:
            r = send(path, **kw)
            check_refused(r, status, code, name)
            check_nothing_stored(sid, name)
            if status == 400 and "CallSid" in name:
                bad = dict(kw["params"])["CallSid"]
                check_nothing_stored(bad, name)
            print(f"     refused: {name} -> {r.status}", flush=True)
        except h.TestFailure as e:
            failures.append(str(e))
            print(f"     WRONG:   {e}", flush=True)
    check(not failures, f"{len(failures)} tampered request(s) not refused as expected")


@test
def unusable_idempotency_token_is_a_client_error():
    # The token header is not signed; a value PostgreSQL cannot store as text
    # (not UTF-8) or that no Twilio token looks like (control characters) must
    # be refused as the caller's fault: never "database unavailable, retry",
    # never acknowledged 2xx and then dropped.
    failures = []
    for name, tok in (("non-utf-8 token", "tok\xff\xfe"), ("control character token", "tok\x01x")):
        sid = new_sid()
        r = send("/twilio/webhook", callback_params(sid, "ringing", 1), idem=tok)
        if r.status != 400:
            failures.append(f"{name}: expected 400, got {r!r}")
            print(f"     WRONG:   {name}: {r.status}", flush=True)
            continue
        try:
            check_nothing_stored(sid, name)
        except h.TestFailure as e:
            failures.append(str(e))
    check(not failures, "; ".join(failures))


@test
def wrong_method_and_content_type():
    for path in ("/twilio/webhook", "/twilio/voice"):
        r = h.get(path)
        check_refused(r, 405, None, f"GET {path}")
    sid = new_sid()
    params = callback_params(sid, "ringing", 1)
    r = send("/twilio/webhook", params, content_type="text/plain")
    check(r.status in (403, 415), f"text/plain body: expected 403/415, got {r!r}")
    check_nothing_stored(sid, "text/plain body")


# Duplicates ---------------------------------------------------------------------

@test
def same_delivery_twice_is_stored_once():
    sid, tok = new_sid(), new_token()
    params = callback_params(sid, "ringing", 1)
    for i in (1, 2):
        r = send("/twilio/webhook", params, idem=tok)
        check(200 <= r.status < 300, f"delivery #{i}: expected 2xx, got {r!r}")
    ev = event_rows(sid)
    check(len(ev) == 1, f"same token twice: expected 1 event row, got {len(ev)}")
    check(call_row(sid)["status"] == "ringing", "call status changed")


@test
def same_event_without_or_with_other_token_is_stored_once():
    sid = new_sid()
    params = callback_params(sid, "in-progress", 2)
    for i, tok in enumerate((None, new_token(), new_token(), None)):
        r = send("/twilio/webhook", params, idem=tok)
        check(200 <= r.status < 300, f"delivery #{i + 1}: expected 2xx, got {r!r}")
    ev = event_rows(sid)
    check(len(ev) == 1, f"same CallSid+CallStatus+SequenceNumber: expected 1 row, got {len(ev)}")
    check(ev[0]["token"] == "", f"first delivery had no token, row has {ev[0]['token']!r}")


@test
def duplicate_changes_nothing():
    # completed(3) stored, then a late duplicate of ringing(1): no new row, no change.
    sid = new_sid()
    ring = callback_params(sid, "ringing", 1)
    tok = new_token()
    check(send("/twilio/webhook", ring, idem=tok).status == 204, "ringing not accepted")
    check(send("/twilio/webhook", callback_params(sid, "completed", 3, CallDuration="9"),
               idem=new_token()).status == 204, "completed not accepted")
    check(send("/twilio/webhook", ring, idem=tok).status == 204, "duplicate not accepted")
    row = call_row(sid)
    check(row["status"] == "completed" and row["sequence_number"] == "3"
          and row["duration"] == "9", f"call after a late duplicate: {row!r}")
    check(len(event_rows(sid)) == 2, "duplicate stored")


# Out of order ---------------------------------------------------------------------

@test
def out_of_order_never_moves_backwards():
    sid = new_sid()
    for status, seq, extra in (("completed", 3, {"CallDuration": "42"}), ("ringing", 1, {}),
                               ("in-progress", 2, {})):
        r = send("/twilio/webhook", callback_params(sid, status, seq, **extra),
                 idem=new_token())
        check(r.status == 204, f"{status}({seq}): expected 204, got {r!r}")
        row = call_row(sid)
        check(row["status"] == "completed" and row["sequence_number"] == "3",
              f"after {status}({seq}) the call is {row['status']}({row['sequence_number']})")
    check(call_row(sid)["duration"] == "42", "CallDuration of the final event lost")
    ev = event_rows(sid)
    check(len(ev) == 3, f"expected 3 event rows, got {len(ev)}")
    check([(x["status"], x["sequence_number"]) for x in ev]
          == [("completed", "3"), ("ringing", "1"), ("in-progress", "2")],
          f"event rows {[(x['status'], x['sequence_number']) for x in ev]}")


# Concurrency ------------------------------------------------------------------------

@test
def concurrent_callbacks_end_in_true_final_status():
    e = h.env()
    rng = random.Random(secrets.randbits(64))
    finals = ("completed", "busy", "no-answer", "failed")
    truth = {}
    deliveries = []   # (params, token)
    for _ in range(CONCURRENT_CALLS):
        sid, final = new_sid(), rng.choice(finals)
        truth[sid] = final
        for seq, status in enumerate(("initiated", "ringing", "in-progress", final)):
            extra = {"CallDuration": str(rng.randint(0, 600))} if seq == 3 else {}
            deliveries.append((callback_params(sid, status, seq, **extra), new_token()))
    distinct = len(deliveries)
    extra = []
    for _ in range(CONCURRENT_DUPLICATES // 2):          # Twilio retries: same token
        extra.append(rng.choice(deliveries))
    for _ in range(CONCURRENT_DUPLICATES - CONCURRENT_DUPLICATES // 2):  # no/other token
        params, _ = rng.choice(deliveries)
        extra.append((params, rng.choice((None, new_token()))))
    # Calls in random order, each call's deliveries (duplicates included) in
    # random order and next to each other, so concurrent workers race on the
    # same calls row as often as possible.
    per_call = {}
    for params, tok in deliveries + extra:
        per_call.setdefault(dict(params)["CallSid"], []).append((params, tok))
    order = list(per_call)
    rng.shuffle(order)
    sends = []
    for sid in order:
        rng.shuffle(per_call[sid])
        sends.extend(per_call[sid])
    # sign up front so the burst measures the service, not this script
    url = e["PUBLIC_BASE_URL"] + "/twilio/webhook"
    prepared = [(urllib.parse.urlencode(p), twilio_signature(url, p), t) for p, t in sends]

    local = threading.local()
    conns, conns_lock = [], threading.Lock()

    def deliver(item):
        body, sig, tok = item
        c = getattr(local, "conn", None)
        if c is None:
            c = local.conn = Conn()
            with conns_lock:
                conns.append(c)
        headers = {"Content-Type": FORM, "X-Twilio-Signature": sig}
        if tok is not None:
            headers["I-Twilio-Idempotency-Token"] = tok
        try:
            return c.request("POST", "/twilio/webhook", body, headers)
        except (OSError, http.client.HTTPException) as ex:
            c.close()
            return (None, repr(ex).encode())

    statuses = {}
    errors = []
    t0 = time.monotonic()
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=CONCURRENT_WORKERS)
    try:
        futures = [pool.submit(deliver, item) for item in prepared]
        done, not_done = concurrent.futures.wait(futures, timeout=CONCURRENT_DEADLINE)
        for f in not_done:
            f.cancel()
        check(not not_done, f"{len(not_done)} of {len(futures)} callbacks not answered within "
                            f"{CONCURRENT_DEADLINE}s")
        for f in futures:
            status, body = f.result()
            statuses[status] = statuses.get(status, 0) + 1
            if status is None or status != 204:
                errors.append((status, body[:160]))
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        for c in conns:
            c.close()
    wall = time.monotonic() - t0
    print(f"     {len(prepared)} callbacks ({distinct} distinct, {len(prepared) - distinct} "
          f"duplicates) for {CONCURRENT_CALLS} calls with {CONCURRENT_WORKERS} workers: "
          f"{wall:.2f}s wall, {len(prepared) / wall:.0f} callbacks/s; statuses {statuses}",
          flush=True)
    five = [x for x in errors if x[0] is not None and x[0] >= 500]
    check(not five, f"{len(five)} 5xx answers, e.g. {five[:3]}")
    check(not errors, f"{len(errors)} callbacks not answered 204, e.g. {errors[:3]}")

    sids = ",".join(truth)
    rows = h.psql("SELECT call_sid, status, coalesce(sequence_number::text, '') FROM calls"
                  " WHERE call_sid = ANY(string_to_array(:'sids', ','))", sids=sids)
    got = {r[0]: (r[1], r[2]) for r in rows}
    check(len(got) == CONCURRENT_CALLS, f"{len(got)} calls rows, want {CONCURRENT_CALLS}")
    wrong = [(s, got[s], truth[s]) for s in truth if got[s] != (truth[s], "3")]
    check(not wrong, f"{len(wrong)} calls not in their true final status, e.g. {wrong[:3]}")
    counts = h.psql("SELECT count(*), count(DISTINCT (call_sid, status, sequence_number))"
                    " FROM call_events WHERE call_sid = ANY(string_to_array(:'sids', ','))",
                    sids=sids)
    n, n_distinct = (int(x) for x in counts[0])
    check(n == distinct and n_distinct == distinct,
          f"call_events holds {n} rows ({n_distinct} distinct), want {distinct}")
    # each row carries the token of one of the deliveries of its event
    # (whichever arrived first), or none if a tokenless duplicate won
    sent = {}
    for params, tok in sends:
        d = dict(params)
        sent.setdefault((d["CallSid"], d["CallStatus"], d["SequenceNumber"]), set()).add(tok or "")
    rows = h.psql("SELECT call_sid, status, sequence_number::text, coalesce(idempotency_token, '')"
                  " FROM call_events WHERE call_sid = ANY(string_to_array(:'sids', ','))",
                  sids=sids)
    stray = [r for r in rows if r[3] not in sent.get((r[0], r[1], r[2]), set())]
    check(not stray, f"{len(stray)} event rows with a token never sent for them: {stray[:3]}")


# /twilio/voice ------------------------------------------------------------------------

def check_twiml_say(r, what):
    greeting = h.env().get("VOICE_GREETING", DEFAULT_GREETING)
    check(r.status == 200, f"{what}: expected 200, got {r!r}")
    ctype = r.header("content-type", "")
    check(ctype.split(";")[0].strip().lower() == "text/xml", f"{what}: Content-Type {ctype!r}")
    try:
        root = ET.fromstring(r.body)
    except ET.ParseError as ex:
        raise h.TestFailure(f"{what}: TwiML is not XML ({ex}): {r.body[:200]!r}")
    check(root.tag == "Response", f"{what}: root is <{root.tag}>, want <Response>")
    says = root.findall("Say")
    check(len(says) == 1 and says[0].text == greeting,
          f"{what}: want one <Say>{greeting}</Say>, got {r.body[:300]!r}")


@test
def inbound_call_is_recorded_and_answered():
    e = h.env()
    sid = new_sid()
    params = callback_params(sid, "ringing", direction="inbound", CalledCity="SAN FRANCISCO",
                             FromCity="OAKLAND")
    tok = new_token()
    r = send("/twilio/voice", params, idem=tok)
    check_twiml_say(r, "inbound Voice URL request")
    row = call_row(sid)
    check(row is not None, "inbound call not recorded")
    check(row["direction"] == "inbound" and row["status"] == "ringing"
          and row["account_sid"] == e["TWILIO_ACCOUNT_SID"], f"inbound call row {row!r}")
    check(len(event_rows(sid)) == 1, "inbound request not stored as one event")
    # Twilio retrying the same request gets the same answer; nothing new stored
    check_twiml_say(send("/twilio/voice", params, idem=tok), "retried Voice URL request")
    check(len(event_rows(sid)) == 1, "a retried Voice URL request was stored twice")
    # its later status callbacks move it forward
    r = send("/twilio/webhook", callback_params(sid, "completed", 3, direction="inbound"),
             idem=new_token())
    check(r.status == 204, f"completed for the inbound call: {r!r}")
    check(call_row(sid)["status"] == "completed", "inbound call did not complete")


@test
def outbound_answer_url_gets_the_greeting():
    sid = new_sid()
    r = send("/twilio/voice", callback_params(sid, "in-progress", direction="outbound-api"))
    check_twiml_say(r, "outbound answer-URL request")


@test
def voice_refuses_unsigned_and_forged():
    cases = (
        ("missing signature", 400, "missing_signature", dict(signature=False)),
        ("wrong signature", 403, "invalid_signature",
         dict(signature=base64.b64encode(os.urandom(20)).decode())),
        ("signed for /twilio/webhook", 403, "invalid_signature",
         dict(sign_url=h.env()["PUBLIC_BASE_URL"] + "/twilio/webhook")),
        ("extra param after signing", 403, "invalid_signature", "extra"),
        ("another account", 403, "wrong_account", "other"),
    )
    for name, status, code, kw in cases:
        sid = new_sid()
        params = callback_params(sid, "ringing", direction="inbound")
        if kw == "extra":
            kw = dict(sign_params=params)
            params = params + [("Digits", "1")]
        elif kw == "other":
            kw = {}
            params = callback_params(sid, "ringing", direction="inbound",
                                     account=OTHER_ACCOUNT)
        r = send("/twilio/voice", params, **kw)
        check_refused(r, status, code, f"/twilio/voice {name}")
        check(b"<Response" not in r.body, f"/twilio/voice {name}: answered TwiML")
        check_nothing_stored(sid, f"/twilio/voice {name}")


if __name__ == "__main__":
    h.run()
