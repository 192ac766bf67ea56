#!/usr/bin/env python3
"""Integration tests for the Twilio simulator (sim/, twilio_sim) over real
HTTP through the stack's nginx (plain http on VOICE_SIM_PORT).

Callbacks and answer URLs go to a small receiver started here on a free
loopback port (plain http), which checks X-Twilio-Signature with the stack's
auth token. python3 standard library only.
"""

import base64
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.parse
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import oas  # noqa: E402
from harness import check, test  # noqa: E402

OAS = oas.OAS_PATH  # Twilio's OpenAPI description, the part vendored in twilio-oas/
CALLS_PATH = "/2010-04-01/Accounts/{AccountSid}/Calls.json"
TWIML_OK = b'<?xml version="1.0" encoding="UTF-8"?><Response><Say>Hello</Say></Response>'
FROM = "+14155550199"
SID_RE = re.compile(r"^CA[0-9a-f]{32}$")


# Simulator access -------------------------------------------------------------

def account():
    return h.env()["TWILIO_ACCOUNT_SID"]


def token():
    return h.env()["TWILIO_AUTH_TOKEN"]


def basic(user, password):
    raw = f"{user}:{password}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def sim(method, path, form=None, auth=True, timeout=15):
    """One request to the simulator. form: list of (key, value) pairs."""
    headers = {}
    body = None
    if auth is True:
        headers["Authorization"] = basic(account(), token())
    elif auth:
        headers["Authorization"] = auth
    if form is not None:
        body = urllib.parse.urlencode(form)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    return h.request(method, path, body=body, headers=headers, https=False,
                     port=h.env()["VOICE_SIM_PORT"], timeout=timeout)


def calls_path(acct=None):
    return f"/2010-04-01/Accounts/{acct or account()}/Calls.json"


def create(form, **kw):
    return sim("POST", calls_path(), form, **kw)


def check_twilio_error(resp, status, code, what):
    check(resp.status == status, f"{what}: expected HTTP {status}, got {resp!r}")
    doc = resp.json()
    check(isinstance(doc, dict) and set(doc) >= {"code", "message", "more_info", "status"},
          f"{what}: not Twilio's error shape: {doc!r}")
    check(doc["code"] == code, f"{what}: expected code {code}, got {doc['code']}")
    check(doc["status"] == status, f"{what}: status field {doc['status']}")
    check(doc["more_info"] == f"https://www.twilio.com/docs/errors/{code}",
          f"{what}: more_info {doc['more_info']!r}")
    check(isinstance(doc["message"], str) and doc["message"], f"{what}: empty message")


def expected_signature(url, params):
    return h.twilio_signature(url, params, token())


# Receiver for webhooks ----------------------------------------------------------

class Receiver:
    """Records every webhook; answers /voice with TwiML, /bad with non-TwiML,
    everything else with 204."""

    def __init__(self):
        self.hits = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n).decode("utf-8") if n else ""
                params = urllib.parse.parse_qsl(body, keep_blank_values=True) \
                    if self.command == "POST" else []
                url = f"http://127.0.0.1:{outer.port}{self.path}"
                hit = {
                    "method": self.command, "path": self.path, "url": url,
                    "params": params, "p": dict(params),
                    "query": dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query,
                                                         keep_blank_values=True)),
                    "signature": self.headers.get("X-Twilio-Signature"),
                    "token": self.headers.get("I-Twilio-Idempotency-Token"),
                    "t": time.monotonic(),
                }
                with outer.lock:
                    outer.hits.append(hit)
                if self.path.startswith("/voice"):
                    out, status = TWIML_OK, 200
                elif self.path.startswith("/bad"):
                    out, status = b"this is not twiml", 200
                else:
                    out, status = b"", 204
                self.send_response(status)
                if out:
                    self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_POST = _serve
            do_GET = _serve

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def for_call(self, sid, path_prefix=None):
        with self.lock:
            return [x for x in self.hits
                    if (x["p"].get("CallSid") or x["query"].get("CallSid")) == sid
                    and (path_prefix is None or x["path"].startswith(path_prefix))]

    def wait_status(self, sid, status, timeout=15, count=1):
        def ready():
            got = [x for x in self.for_call(sid, "/status")
                   if (x["p"].get("CallStatus") or x["query"].get("CallStatus")) == status]
            return got if len(got) >= count else None
        return h.wait_until(ready, timeout, f"{status} callback for {sid}")

    def close(self):
        self.server.shutdown()
        self.server.server_close()


RX = None


def rx():
    global RX
    if RX is None:
        RX = Receiver()
    return RX


def place(to, url_path="/voice", events=(), extra=(), status_path="/status"):
    form = [("To", to), ("From", FROM), ("Url", rx().url(url_path)),
            ("StatusCallback", rx().url(status_path))]
    form += [("StatusCallbackEvent", e) for e in events]
    form += list(extra)
    resp = create(form)
    check(resp.status == 201, f"create call to {to}: {resp!r}")
    return resp.json()["sid"]


def check_signed(hit, what):
    params = [] if hit["method"] == "GET" else hit["params"]
    check(hit["signature"] == expected_signature(hit["url"], params),
          f"{what}: X-Twilio-Signature does not verify for {hit['url']}")


# Tests ----------------------------------------------------------------------------

@test
def params_match_oas():
    with open(OAS, encoding="utf-8") as f:
        oas = json.load(f)
    body = oas["paths"][CALLS_PATH]["post"]["requestBody"]["content"]
    props = body["application/x-www-form-urlencoded"]["schema"]["properties"]
    resp = sim("GET", "/_sim/params", auth=None)
    check(resp.status == 200, f"/_sim/params: {resp!r}")
    mine = {p["name"]: p for p in resp.json()}
    check(set(mine) == set(props),
          f"parameter names differ from the OAS: only sim {sorted(set(mine) - set(props))}, "
          f"only OAS {sorted(set(props) - set(mine))}")
    for name, spec in props.items():
        p = mine[name]
        check(p["type"] == spec["type"], f"{name}: type {p['type']} vs OAS {spec['type']}")
        check(p.get("format") == spec.get("format"), f"{name}: format {p.get('format')} vs OAS")
        check(p.get("enum") == spec.get("enum"), f"{name}: enum {p.get('enum')} vs OAS")
        check(p.get("pattern") == spec.get("pattern"), f"{name}: pattern {p.get('pattern')} vs OAS")


@test
def auth_is_required():
    form = [("To", "+14155550100"), ("From", FROM), ("Twiml", "<Response/>")]
    check_twilio_error(create(form, auth=None), 401, 20003, "no credentials")
    check_twilio_error(create(form, auth=basic(account(), token() + "x")), 401, 20003,
                       "wrong token")
    check_twilio_error(create(form, auth="Bearer abc"), 401, 20003, "not basic")
    other = "AC" + "0" * 32 if account() != "AC" + "0" * 32 else "AC" + "1" * 32
    check_twilio_error(sim("POST", calls_path(other), form), 401, 20003, "another account")
    e = h.env()
    if e.get("TWILIO_API_KEY_SID") and e.get("TWILIO_API_KEY_SECRET"):
        r = create(form, auth=basic(e["TWILIO_API_KEY_SID"], e["TWILIO_API_KEY_SECRET"]))
        check(r.status == 201, f"API key auth: {r!r}")


@test
def validation_errors_like_twilio():
    base = [("To", "+14155550100"), ("From", FROM), ("Url", rx().url("/voice"))]

    def without(*keys):
        return [(k, v) for k, v in base if k not in keys]

    cases = [
        (without("To"), 21201, "missing To"),
        (without("From"), 21213, "missing From"),
        (without("Url"), 21205, "no Url/Twiml/ApplicationSid"),
        ([("To", "+1415555"), ("From", FROM), ("Url", rx().url("/v"))], 21211, "short To"),
        ([("To", "hello"), ("From", FROM), ("Url", rx().url("/v"))], 21211, "text To"),
        ([("To", "+14155550100"), ("From", "123"), ("Url", rx().url("/v"))], 21212, "bad From"),
        (base + [("Timeout", "0")], 21208, "Timeout 0"),
        (base + [("Timeout", "601")], 21208, "Timeout 601"),
        (base + [("Timeout", "ten")], 21208, "Timeout text"),
        (base + [("Method", "PUT")], 21209, "Method PUT"),
        (base + [("StatusCallbackEvent", "hungup")], 21200, "bad event"),
        (base + [("Foo", "1")], 20001, "unknown parameter"),
        (without("Url") + [("Url", "ftp://x/")], 21205, "ftp Url"),
        (base + [("SendDigits", "12x")], 21206, "bad SendDigits"),
        (base + [("To", "+14155550101")], 21200, "To repeated"),
        ([("To", "+14155550100"), ("From", "+15005550001"), ("Url", rx().url("/v"))], 21212,
         "magic From 0001"),
        ([("To", "+14155550100"), ("From", "+15005550009"), ("Url", rx().url("/v"))], 21210,
         "magic From 0009"),
        ([("To", "+15005550001"), ("From", FROM), ("Url", rx().url("/v"))], 21217, "magic To 0001"),
        ([("To", "+15005550002"), ("From", FROM), ("Url", rx().url("/v"))], 21214, "magic To 0002"),
        ([("To", "+15005550003"), ("From", FROM), ("Url", rx().url("/v"))], 21215, "magic To 0003"),
        ([("To", "+15005550004"), ("From", FROM), ("Url", rx().url("/v"))], 21216, "magic To 0004"),
    ]
    for form, code, what in cases:
        check_twilio_error(create(form), 400, code, what)
    ok = create([("To", "+14155550100"), ("From", "+15005550006"), ("Twiml", "<Response/>")])
    check(ok.status == 201, f"magic From +15005550006 must succeed: {ok!r}")
    ok = create(base + [("StatusCallbackEvent", "initiated"), ("StatusCallbackEvent", "answered"),
                        ("Timeout", "600"), ("Record", "true")])
    check(ok.status == 201, f"repeated StatusCallbackEvent must be accepted: {ok!r}")


@test
def create_returns_call_resource():
    with open(OAS, encoding="utf-8") as f:
        oas = json.load(f)
    schema = oas["components"]["schemas"]["api.v2010.account.call"]["properties"]
    resp = create([("To", "+14155550100"), ("From", FROM), ("Twiml", "<Response/>")])
    check(resp.status == 201, f"create: {resp!r}")
    call = resp.json()
    check(set(call) == set(schema), f"fields differ from the OAS schema: "
          f"extra {sorted(set(call) - set(schema))}, missing {sorted(set(schema) - set(call))}")
    check(SID_RE.match(call["sid"]), f"sid {call['sid']!r}")
    check(call["status"] == "queued", f"status {call['status']}")
    check(call["direction"] == "outbound-api", f"direction {call['direction']}")
    check(call["account_sid"] == account(), "account_sid")
    check(call["to"] == "+14155550100" and call["from"] == FROM, "to/from")
    check(call["to_formatted"] == "(415) 555-0100", f"to_formatted {call['to_formatted']!r}")
    check(call["api_version"] == "2010-04-01", "api_version")
    for k in ("date_created", "date_updated"):
        check(re.fullmatch(r"[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000",
                           call[k]) and parsedate_to_datetime(call[k]), f"{k} {call[k]!r}")
    uri = f"/2010-04-01/Accounts/{account()}/Calls/{call['sid']}.json"
    check(call["uri"] == uri, f"uri {call['uri']!r}")
    check(set(call["subresource_uris"]) >= {"notifications", "recordings", "events"},
          f"subresource_uris {call['subresource_uris']!r}")
    got = sim("GET", uri)
    check(got.status == 200 and got.json()["sid"] == call["sid"], f"GET call: {got!r}")
    missing = f"/2010-04-01/Accounts/{account()}/Calls/CA{'0' * 32}.json"
    check_twilio_error(sim("GET", missing), 404, 20404, "unknown call")
    check_twilio_error(sim("GET", missing, auth=None), 401, 20003, "GET without auth")


@test
def callbacks_signed_in_order_with_answer_fetch():
    status_path = "/status?b=2&a=It%27s"  # query hashed byte for byte
    sid = place("+14155550100", events=("initiated", "ringing", "answered", "completed"),
                status_path=status_path)
    rx().wait_status(sid, "completed")
    hits = rx().for_call(sid)
    status_hits = [x for x in hits if x["path"].startswith("/status")]
    voice = [x for x in hits if x["path"].startswith("/voice")]
    got = [(x["p"]["CallStatus"], x["p"]["SequenceNumber"]) for x in status_hits]
    check(got == [("initiated", "0"), ("ringing", "1"), ("in-progress", "2"), ("completed", "3")],
          f"callbacks {got}")
    check(len(voice) == 1 and voice[0]["p"]["CallStatus"] == "in-progress",
          f"answer URL fetch {voice!r}")
    check(voice[0]["t"] <= status_hits[2]["t"], "answer URL fetched after the in-progress callback")
    for x in hits:
        check_signed(x, f"{x['path']} {x['p'].get('CallStatus')}")
        check(x["path"] == status_path or not x["path"].startswith("/status"),
              f"callback URL changed: {x['path']}")
    tokens = [x["token"] for x in status_hits]
    check(all(tokens) and len(set(tokens)) == 4, f"idempotency tokens {tokens}")
    for x in status_hits:
        p = x["p"]
        for k in ("CallSid", "AccountSid", "From", "To", "Direction", "ApiVersion", "Timestamp",
                  "CallbackSource", "Caller", "Called"):
            check(k in p, f"{p['CallStatus']} callback lacks {k}")
        check(p["Direction"] == "outbound-api" and p["CallbackSource"] == "call-progress-events",
              "Direction/CallbackSource")
        check(("CallDuration" in p) == (p["CallStatus"] == "completed"),
              f"CallDuration on {p['CallStatus']}")
    check(status_hits[-1]["p"]["CallDuration"] == "5", "CallDuration of the default scenario")
    call = sim("GET", f"/2010-04-01/Accounts/{account()}/Calls/{sid}.json").json()
    check(call["status"] == "completed" and call["duration"] == "5" and call["end_time"],
          f"call after completion {call!r}")


@test
def only_completed_by_default():
    sid = place("+14155550112")
    rx().wait_status(sid, "completed")
    time.sleep(0.5)
    hits = rx().for_call(sid, "/status")
    check(len(hits) == 1 and hits[0]["p"]["SequenceNumber"] == "0",
          f"expected only completed: {[x['p']['CallStatus'] for x in hits]}")
    check(hits[0]["p"]["CallDuration"] == "2", "talk-2 scenario lasts 2 s")


@test
def outcome_scenarios():
    for to, status, extra in (("+14155550101", "busy", ()), ("+14155550102", "no-answer",
                              (("Timeout", "5"),)), ("+14155550103", "failed", ())):
        sid = place(to, events=("ringing", "answered", "completed"), extra=extra)
        hit = rx().wait_status(sid, status)[0]
        check(hit["p"]["CallDuration"] == "0", f"{status}: CallDuration")
        seen = [x["p"]["CallStatus"] for x in rx().for_call(sid, "/status")]
        check("in-progress" not in seen, f"{status}: was answered: {seen}")
        call = sim("GET", f"/2010-04-01/Accounts/{account()}/Calls/{sid}.json").json()
        check(call["status"] == status, f"resource status {call['status']} for {status}")


@test
def non_twiml_answer_fails_the_call():
    sid = place("+14155550100", url_path="/bad", events=("answered", "completed"))
    rx().wait_status(sid, "failed")
    seen = [x["p"]["CallStatus"] for x in rx().for_call(sid, "/status")]
    check(seen == ["failed"], f"callbacks {seen}")


@test
def out_of_order_delivery():
    sid = place("+14155550104", events=("initiated", "ringing", "answered", "completed"))
    h.wait_until(lambda: len(rx().for_call(sid, "/status")) >= 4, 15, "4 callbacks")
    seqs = [int(x["p"]["SequenceNumber"]) for x in rx().for_call(sid, "/status")]
    check(seqs == [3, 2, 1, 0], f"sequence numbers in arrival order {seqs}")


@test
def duplicate_delivery_same_token():
    sid = place("+14155550105", events=("answered", "completed"))
    dup = rx().wait_status(sid, "completed", count=2)
    check(dup[0]["token"] and dup[0]["token"] == dup[1]["token"], "tokens differ")
    check(dup[0]["params"] == dup[1]["params"], "payloads differ")


@test
def get_status_callback_method():
    sid = place("+14155550110", extra=(("StatusCallbackMethod", "GET"),))
    hit = h.wait_until(lambda: [x for x in rx().hits if x["query"].get("CallSid") == sid],
                       15, "GET callback")[0]
    check(hit["method"] == "GET" and hit["query"]["CallStatus"] == "completed", f"{hit!r}")
    check_signed(hit, "GET callback")


@test
def rest_faults():
    r = create([("To", "+14155550106"), ("From", FROM), ("Twiml", "<Response/>")])
    check_twilio_error(r, 429, 20429, "rate-limited scenario")
    r = create([("To", "+14155550107"), ("From", FROM), ("Twiml", "<Response/>")])
    check_twilio_error(r, 500, 20500, "server-error scenario")


@test
def introspection():
    check(sim("DELETE", "/_sim/requests", auth=None).status == 204, "DELETE /_sim/requests")
    form = [("To", "+14155550100"), ("From", FROM), ("Twiml", "<Response/>"),
            ("StatusCallback", rx().url("/status")), ("StatusCallbackEvent", "ringing"),
            ("StatusCallbackEvent", "completed")]
    r = create(form)
    check(r.status == 201, f"create: {r!r}")
    sid = r.json()["sid"]
    log = sim("GET", "/_sim/requests", auth=None)
    check(log.status == 200, f"/_sim/requests: {log!r}")
    check(token().encode() not in log.body, "the auth token appears in /_sim/requests")
    recs = log.json()
    check(len(recs) == 1, f"expected one request after DELETE, got {len(recs)}")
    rec = recs[0]
    check(rec["method"] == "POST" and rec["path"] == calls_path(), f"record {rec!r}")
    check([tuple(p) for p in rec["params"]] == form, f"params {rec['params']}")
    check(rec["auth_user"] == account() and rec["status"] == 201 and rec["call_sid"] == sid,
          f"record {rec!r}")
    rx().wait_status(sid, "completed")
    cbs = sim("GET", f"/_sim/callbacks?call_sid={sid}", auth=None).json()
    kinds = [(c["kind"], c["event"], c["http_status"]) for c in cbs]
    check(kinds == [("status-callback", "ringing", 204), ("status-callback", "completed", 204)],
          f"callbacks {kinds}")
    check(all(c["url"] == rx().url("/status") and c["params"] for c in cbs), "callback urls")


@test
def inbound_cli():
    e = h.env()
    binary = e.get("VOICE_SIM_BIN") or os.path.join(os.environ.get("VOICE_BUILD_DIR", ""), "sim",
                                                    "twilio_sim")
    penv = dict(os.environ)
    for k in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "SIM_STATE_DIR", "SIM_CA_FILE",
              "TWILIO_API_KEY_SID", "TWILIO_API_KEY_SECRET"):
        if e.get(k):
            penv[k] = e[k]
    penv["SIM_TIME_SCALE"] = "0.05"
    args = [binary, "inbound", "--from", "+14155550123", "--to", "+14155550199",
            "--url", rx().url("/voice?inbound=1"), "--status-callback", rx().url("/status")]
    p = subprocess.run(args, env=penv, capture_output=True, timeout=60)
    check(p.returncode == 0, f"inbound exit {p.returncode}: {p.stderr[-400:]!r}")
    check(TWIML_OK in p.stdout, f"inbound did not print the TwiML: {p.stdout!r}")
    voice = [x for x in rx().hits if x["path"] == "/voice?inbound=1"][-1]
    check(voice["p"]["Direction"] == "inbound" and voice["p"]["CallStatus"] == "ringing",
          f"voice request {voice['p']!r}")
    check_signed(voice, "inbound voice request")
    sid = voice["p"]["CallSid"]
    seen = [x["p"]["CallStatus"] for x in rx().for_call(sid, "/status")]
    check(seen == ["ringing", "in-progress", "completed"], f"inbound callbacks {seen}")
    bad = subprocess.run(args[:-4] + ["--url", rx().url("/bad")], env=penv, capture_output=True,
                         timeout=60)
    check(bad.returncode != 0, "a non-TwiML answer must exit non-zero")


@test
def slow_response_outlasts_client_timeout():
    # Last: the slow answer keeps one simulator worker busy for SIM_SLOW_MS.
    t0 = time.monotonic()
    try:
        r = create([("To", "+14155550108"), ("From", FROM), ("Twiml", "<Response/>")], timeout=3)
        raise h.TestFailure(f"slow scenario answered within 3 s: {r!r}")
    except (TimeoutError, OSError):
        pass
    check(time.monotonic() - t0 >= 2.9, "client gave up too early")
    h.wait_until(lambda: sim("GET", "/_sim/healthz", auth=None, timeout=5).status == 200, 90,
                 "simulator free again")


if __name__ == "__main__":
    try:
        h.run()
    finally:
        if RX is not None:
            RX.close()
