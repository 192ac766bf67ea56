#!/usr/bin/env python3
"""Observability, against the stack stack.py started (docs/OPERATIONS.md,
"Logs" and "Metrics"):

- /metrics counts exactly what was done: scrape, then k GET /healthz, m
  webhooks with a wrong X-Twilio-Signature, one without, one POST /call
  without a key (401) and one POST /call that the simulator plays to
  `completed`, scrape again. Every voice_http_requests_total series moves by
  exactly what those requests (and the first scrape itself) explain, the
  duration histogram's _count moves with it, and
  voice_webhook_signature_failures_total, voice_twilio_requests_total
  {outcome="created"} and voice_calls_final_total{status="completed"} move by
  exactly one call's worth. The simulator's callbacks for earlier tests' calls
  could still arrive, so both scrapes wait until no simulated call is running
  (its per-call processes, SIM_STATE_DIR/pids) — a bounded wait;
- /metrics is loopback-only in nginx's sense: from 127.0.0.2 (another
  loopback address, bound before connecting) it is 403 with the JSON error
  shape; from 127.0.0.1 it is 200 Prometheus text;
- one call's story can be followed in the logs: by the X-Request-Id of
  POST /call, its access line, `twilio request` and `call placed`; by its
  call SID, one webhook access line per status callback the simulator
  delivered, each joined by request id to its `call event stored` line; all
  JSON with time, level, request_id (and route, status, latency_ms on access
  lines); numbers masked; nginx's access log has the same request id;
- an access line names the error answered and no other: `error` (and
  `twilio_code`) on a 401, on a 422 that Twilio refused with 21217 and on a
  403 webhook, neither on a 201 or on a callback's 204 (which replaces a
  provisional internal_error);
- LOG_LEVEL is honoured: a private call_fcgi (-s SOCKET, FastCGI straight to
  it) with LOG_LEVEL=warn writes no info line for GET /healthz but still its
  warn line for a refused key; with LOG_LEVEL=info the same requests log
  their info lines (so the check can see what it looks for);
- messages PostgreSQL sends outside a result (a FATAL on shutdown, WARNINGs,
  NOTICEs) still reach the log as JSON lines: a private worker connecting
  with client_min_messages=debug5 (which makes the server send such messages
  with every statement) writes nothing but JSON objects on stderr.

Run by harness.run: every check runs even after a failure, one line per
check, then "N passed, N failed"; the exit status is 1 on any failure. It
never asserts on timing.
"""

import glob
import http.client
import json
import os
import re
import secrets
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402

# Numbers this file dials (555-01xx outside the simulator's scenarios: plain
# answered calls). Each is checked to appear in the logs only masked.
TO_METRICS = "+14155550140"
TO_STORY = "+14155550141"
K_HEALTHZ = 3          # GET /healthz in the metrics check
M_MISMATCH = 2         # webhooks with a wrong signature
CALL_WAIT = 90         # seconds for a simulated call to finish (scale 0.05)
QUIET_WAIT = 120       # seconds for earlier tests' simulated calls to finish
REQUEST_ID = re.compile(r"[0-9a-f]{32}")
SID_RE = re.compile(r"CA[0-9a-f]{32}")
TIME_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")

STATE = {"secret": None, "key_name": None, "tmp_dirs": []}


# ---------------------------------------------------------------- helpers --

def auth():
    return {"Authorization": f"Bearer {STATE['secret']}"}


def sim_get(path):
    r = h.request("GET", path, https=False, port=h.env()["VOICE_SIM_PORT"], timeout=15)
    check(r.status == 200, f"GET {path} (simulator): {r!r}")
    check(r.header("x-sim-truncated") is None, f"the simulator's {path} was truncated")
    return r.json()


def sim_calls_running():
    """PIDs of the simulator's per-call processes still alive."""
    pids = []
    for f in glob.glob(os.path.join(h.env()["SIM_STATE_DIR"], "pids", "*.pid")):
        try:
            with open(f, encoding="utf-8") as fh:
                pids += [int(x) for x in fh.read().split() if x.isdigit()]
        except OSError:
            pass
    return [p for p in pids if h.pid_alive(p)]


def wait_quiet(what):
    """Waits (bounded) until no simulated call is in progress, so no callback
    of any call can reach the workers meanwhile."""
    h.wait_until(lambda: not sim_calls_running(), QUIET_WAIT,
                 f"the simulator's calls to finish ({what})", interval=0.3)


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+-?\d+)?$')
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)')


def parse_prometheus(text):
    """Text format 0.0.4 -> ({(name, ((label, value), ...)): float}, {name: type})."""
    samples, types = {}, {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 4 and parts[1] == "TYPE":
                types[parts[2]] = parts[3].strip()
            continue
        m = _SAMPLE.match(line)
        check(m, f"/metrics line {n} is not a sample: {line!r}")
        labels, raw = [], m.group(3) or ""
        pos = 0
        while pos < len(raw):
            lm = _LABEL.match(raw, pos)
            check(lm and lm.end() > pos, f"/metrics line {n}: bad labels {raw!r}")
            labels.append((lm.group(1), lm.group(2)))
            pos = lm.end()
        try:
            value = float(m.group(4))
        except ValueError:
            raise h.TestFailure(f"/metrics line {n}: value {m.group(4)!r} is not a number")
        key = (m.group(1), tuple(sorted(labels)))
        check(key not in samples, f"/metrics line {n}: duplicate series {line!r}")
        samples[key] = value
    return samples, types


def scrape():
    r = h.get("/metrics")
    check(r.status == 200, f"GET /metrics: {r!r}")
    samples, _ = parse_prometheus(r.body.decode("utf-8"))
    return samples


def family(samples, name):
    """{labels dict as sorted tuple: value} of one family."""
    return {labels: v for (n, labels), v in samples.items() if n == name}


def lab(**kw):
    return tuple(sorted(kw.items()))


def deltas(before, after, name):
    b, a = family(before, name), family(after, name)
    out = {}
    for labels in set(a) | set(b):
        d = a.get(labels, 0.0) - b.get(labels, 0.0)
        if d:
            out[labels] = d
    return out


def fmt(d):
    return "{" + ", ".join(f"{dict(k)}: {v:g}" for k, v in sorted(d.items())) + "}"


def bad_webhook(signature):
    body = f"CallSid=CA{secrets.token_hex(16)}&CallStatus=ringing&AccountSid={h.env()['TWILIO_ACCOUNT_SID']}"
    hdrs = {"Content-Type": "application/x-www-form-urlencoded"}
    if signature is not None:
        hdrs["X-Twilio-Signature"] = signature
    return h.post("/twilio/webhook", body, headers=hdrs)


def place_call(to):
    r = h.post("/call", {"to": to}, headers=auth(), timeout=90)
    check(r.status == 201, f"POST /call to {to}: {r!r}")
    sid = r.json().get("sid", "")
    check(SID_RE.fullmatch(sid or ""), f"POST /call: sid {sid!r}")
    return r, sid


def db_status(sid):
    rows = h.psql("SELECT status FROM calls WHERE call_sid = :'s'", s=sid)
    return rows[0][0] if rows else None


def wait_completed(sid):
    """Waits (bounded) until the call is completed in the database and its
    simulated call process has finished delivering callbacks. Reads the
    database and the simulator directly: no request to our workers."""
    h.wait_until(lambda: db_status(sid) == "completed", CALL_WAIT, f"{sid} to be completed")
    wait_quiet(f"after {sid}")


def sim_deliveries(sid):
    """The simulator's webhook attempts for sid: [(kind, path, http_status)]."""
    recs = sim_get(f"/_sim/callbacks?call_sid={sid}")
    check(isinstance(recs, list), f"/_sim/callbacks is not a list: {recs!r}")
    out = []
    for x in recs:
        url = x.get("url", "")
        path = "/" + url.split("://", 1)[-1].split("/", 1)[-1].split("?", 1)[0]
        out.append((x.get("kind"), path, x.get("http_status"), x.get("event")))
    return out


def json_lines(lines, what, strict=True):
    """[(line, object)] of a JSON-lines log. strict: a line that is not a
    JSON object fails; else it is skipped (another check covers it)."""
    out = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            check(not strict, f"{what} line {i} is not a JSON object: {line[:200]!r}")
            continue
        out.append((line, doc))
    return out


def check_line_basics(doc, what):
    check(TIME_RE.fullmatch(str(doc.get("time", ""))),
          f"{what}: time {doc.get('time')!r} is not RFC 3339 UTC with milliseconds")
    check(doc.get("level") in ("debug", "info", "warn", "error"), f"{what}: level {doc.get('level')!r}")
    check(REQUEST_ID.fullmatch(str(doc.get("request_id", ""))),
          f"{what}: request_id {doc.get('request_id')!r}")


def check_access_line(doc, what, route, status, method="POST", error=None, twilio_code=None):
    """An access line: route, method, status, and the error code and Twilio
    code answered (absent from the line when None, as for any success)."""
    check_line_basics(doc, what)
    check(doc.get("msg") == "request", f"{what}: msg {doc.get('msg')!r}")
    check(doc.get("route") == route, f"{what}: route {doc.get('route')!r}, want {route}")
    check(doc.get("method") == method, f"{what}: method {doc.get('method')!r}")
    check(doc.get("status") == status, f"{what}: status {doc.get('status')!r}, want {status}")
    check(doc.get("level") == ("error" if status >= 500 else "info"), f"{what}: level {doc.get('level')!r}")
    lat = doc.get("latency_ms")
    check(isinstance(lat, int) and not isinstance(lat, bool) and lat >= 0,
          f"{what}: latency_ms {lat!r} is not a non-negative integer")
    check(doc.get("error") == error, f"{what}: error {doc.get('error')!r}, want {error!r}")
    check(doc.get("twilio_code") == twilio_code,
          f"{what}: twilio_code {doc.get('twilio_code')!r}, want {twilio_code!r}")


def masked(number):
    # a NANP number: the country code (+1) and the last four digits
    assert number.startswith("+1") and len(number) == 12, number
    return "+1\u2022\u2022\u2022" + number[-4:]


def raw_forms(number):
    digits = re.sub(r"\D", "", number)
    return {number, digits, "%2B" + digits}


# ------------------------------------------------------------------ checks --


def setup_api_key():
    name = h.unique_name("obstest")
    STATE["secret"] = h.key_create(name)
    STATE["key_name"] = name
    r = h.get("/readyz")
    check(r.status == 200, f"/readyz before the tests: {r!r}")


@h.test
def metrics_count_exactly_what_was_done():
    wait_quiet("before the first scrape")
    before = scrape()

    for i in range(K_HEALTHZ):
        r = h.get("/healthz")
        check(r.status == 200, f"GET /healthz #{i}: {r!r}")
    for i in range(M_MISMATCH):
        h.check_json_error(bad_webhook("AAAAAAAAAAAAAAAAAAAAAAAAAAA="), 403, f"bad signature #{i}")
    h.check_json_error(bad_webhook(None), 400, "webhook without a signature")
    r = h.post("/call", {"to": TO_METRICS})
    h.check_json_error(r, 401, "POST /call without a key")
    _, sid = place_call(TO_METRICS)
    wait_completed(sid)

    after = scrape()
    # What the simulator delivered for this call (status callbacks and the
    # answer URL), as it recorded them.
    deliveries = sim_deliveries(sid)
    callbacks = [d for d in deliveries if d[0] == "status-callback"]
    check([d[3] for d in callbacks] == ["initiated", "ringing", "answered", "completed"]
          and all(d[2] == 204 for d in callbacks),
          f"the simulator's status callbacks for {sid}: {callbacks!r}")

    want = {}

    def add(pool, route, status, n=1):
        k = lab(pool=pool, route=route, status=str(status))
        want[k] = want.get(k, 0) + n

    add("call", "/healthz", 200, K_HEALTHZ)
    add("call", "/metrics", 200)            # the first scrape (counted after it answered)
    add("webhook", "/twilio/webhook", 403, M_MISMATCH)
    add("webhook", "/twilio/webhook", 400)
    add("call", "/call", 401)
    add("call", "/call", 201)
    for kind, path, status, _ in deliveries:
        check(path in ("/twilio/webhook", "/twilio/voice") and isinstance(status, int) and status > 0,
              f"unexpected delivery for {sid}: {(kind, path, status)}")
        add("webhook", path, status)
    got = deltas(before, after, "voice_http_requests_total")
    check(got == want, f"voice_http_requests_total moved by {fmt(got)}, want exactly {fmt(want)}")
    print(f"     voice_http_requests_total deltas: {fmt(got)}", flush=True)

    hist = deltas(before, after, "voice_http_request_duration_seconds_count")
    want_hist = {}
    for k, v in want.items():
        d = dict(k)
        hk = lab(pool=d["pool"], route=d["route"])
        want_hist[hk] = want_hist.get(hk, 0) + v
    check(hist == want_hist, f"voice_http_request_duration_seconds_count moved by {fmt(hist)}, "
          f"want {fmt(want_hist)}")
    inf = deltas(before, after, "voice_http_request_duration_seconds_bucket")
    inf = {lab(pool=dict(k)["pool"], route=dict(k)["route"]): v for k, v in inf.items()
           if dict(k).get("le") == "+Inf"}
    check(inf == want_hist, f"the le=\"+Inf\" buckets moved by {fmt(inf)}, want {fmt(want_hist)}")

    sig = deltas(before, after, "voice_webhook_signature_failures_total")
    want_sig = {lab(reason="mismatch"): M_MISMATCH, lab(reason="missing"): 1}
    check(sig == want_sig, f"voice_webhook_signature_failures_total moved by {fmt(sig)}, "
          f"want {fmt(want_sig)}")

    tw = deltas(before, after, "voice_twilio_requests_total")
    created = {k: v for k, v in tw.items() if dict(k).get("outcome") == "created"}
    check(sum(created.values()) == 1, f"voice_twilio_requests_total{{outcome=\"created\"}} moved by "
          f"{fmt(created)}, want 1 in all")
    check(tw == {lab(outcome="created", code="none"): 1},
          f"voice_twilio_requests_total moved by {fmt(tw)}, want only "
          "{outcome=\"created\",code=\"none\"} by 1")

    final = deltas(before, after, "voice_calls_final_total")
    check(final == {lab(status="completed"): 1},
          f"voice_calls_final_total moved by {fmt(final)}, want {{status=\"completed\"}} by 1")

    for name in ("voice_worker_starts_total", "voice_db_errors_total", "voice_spool_records_total"):
        d = deltas(before, after, name)
        check(not d, f"{name} moved by {fmt(d)}: nothing here should have moved it")


def metrics_from(source):
    """GET /metrics to nginx on 127.0.0.1 from the local address source."""
    conn = http.client.HTTPSConnection("127.0.0.1", int(h.env()["VOICE_HTTPS_PORT"]), timeout=15,
                                       context=h.tls_context(), source_address=(source, 0))
    try:
        conn.request("GET", "/metrics")
        r = conn.getresponse()
        data = r.read()
        # The address the connection really came from (bound before connect).
        local = conn.sock.getsockname()[0] if conn.sock else None
        return h.Response(r.status, {k.lower(): v for k, v in r.getheaders()}, data), local
    finally:
        conn.close()


def nginx_access(request_id):
    path = os.path.join(h.env()["VOICE_NGINX_DIR"], "logs", "voice.access.log")
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if request_id in line:
                    return json.loads(line)
    except FileNotFoundError:
        pass
    return None


@h.test
def metrics_only_from_allowed_addresses():
    r, local = metrics_from("127.0.0.2")
    check(local == "127.0.0.2", f"the connection came from {local!r}, not 127.0.0.2")
    err = h.check_json_error(r, 403, "GET /metrics from 127.0.0.2")
    check(err["code"] == "forbidden", f"GET /metrics from 127.0.0.2: code {err['code']!r}")
    check(b"voice_" not in r.body, "GET /metrics from 127.0.0.2 leaked metrics")
    rid = r.header("x-request-id")
    line = h.wait_until(lambda: nginx_access(rid), 10, "nginx's access line of the refused scrape")
    check(line.get("remote_addr") == "127.0.0.2" and line.get("status") == 403,
          f"nginx logged the refused scrape as {line!r}")
    check(line.get("upstream_status") in ("", "-"),
          f"the refused scrape reached a worker: {line!r}")

    r, local = metrics_from("127.0.0.1")
    check(local == "127.0.0.1", f"the connection came from {local!r}, not 127.0.0.1")
    check(r.status == 200, f"GET /metrics from 127.0.0.1: {r!r}")
    ctype = (r.header("content-type") or "").replace(" ", "").lower()
    check(ctype == "text/plain;version=0.0.4;charset=utf-8",
          f"GET /metrics Content-Type is {r.header('content-type')!r}")
    samples, types = parse_prometheus(r.body.decode("utf-8"))
    for name, typ in (("voice_http_requests_total", "counter"),
                      ("voice_http_request_duration_seconds", "histogram"),
                      ("voice_twilio_requests_total", "counter"),
                      ("voice_webhook_signature_failures_total", "counter"),
                      ("voice_calls_final_total", "counter")):
        check(types.get(name) == typ, f"/metrics: # TYPE {name} is {types.get(name)!r}, want {typ}")
    check(family(samples, "voice_http_requests_total"), "/metrics has no voice_http_requests_total")


@h.test
def one_call_story_in_the_logs():
    r, sid = place_call(TO_STORY)
    rid = r.header("x-request-id", "")
    check(REQUEST_ID.fullmatch(rid), f"POST /call X-Request-Id {rid!r}")
    wait_completed(sid)
    callbacks = [d for d in sim_deliveries(sid) if d[0] == "status-callback"]
    check(len(callbacks) == 4, f"the simulator delivered {len(callbacks)} status callbacks: {callbacks!r}")

    # The call worker: the access line, the Twilio interaction, the call placed.
    call = json_lines(h.log_lines("call"), "call.log", strict=False)
    mine = [(line, d) for line, d in call if d.get("request_id") == rid]
    access = [d for _, d in mine if d.get("msg") == "request"]
    check(len(access) == 1, f"call.log has {len(access)} access lines for request {rid}: {access!r}")
    check_access_line(access[0], "POST /call access line", "/call", 201)
    check(access[0].get("worker") == "call", f"POST /call access line: worker {access[0].get('worker')!r}")
    check(access[0].get("call_sid") == sid, f"POST /call access line: call_sid {access[0].get('call_sid')!r}")
    check(access[0].get("api_key") == STATE["key_name"],
          f"POST /call access line: api_key {access[0].get('api_key')!r}, want {STATE['key_name']}")
    tw = [d for _, d in mine if d.get("msg") == "twilio request"]
    check(len(tw) == 1, f"call.log has {len(tw)} 'twilio request' lines for request {rid}")
    tw = tw[0]
    check_line_basics(tw, "twilio request line")
    check(tw.get("level") == "info" and tw.get("http_status") == 201 and tw.get("attempt") == 1
          and tw.get("call_sid") == sid and isinstance(tw.get("latency_ms"), int),
          f"twilio request line: {tw!r}")
    check(tw.get("to") == masked(TO_STORY), f"twilio request line: to {tw.get('to')!r}, "
          f"want {masked(TO_STORY)!r}")
    placed = [d for _, d in mine if d.get("msg") == "call placed"]
    check(len(placed) == 1 and placed[0].get("call_sid") == sid and placed[0].get("to") == masked(TO_STORY),
          f"call.log 'call placed' lines for {rid}: {placed!r}")
    for line, d in mine:
        check_line_basics(d, f"call.log line {line[:120]!r}")

    # nginx's access log joins on the same id.
    ng = nginx_access(rid)
    check(ng is not None and ng.get("status") == 201 and ng.get("uri") == "/call",
          f"nginx's access log for {rid}: {ng!r}")

    # The webhook worker: one access line per status callback, by call SID,
    # each joined by its own request id to the event it stored.
    hook = json_lines(h.log_lines("webhook"), "webhook.log", strict=False)
    hits = [d for _, d in hook if d.get("msg") == "request" and d.get("call_sid") == sid
            and d.get("route") == "/twilio/webhook"]
    check(len(hits) == len(callbacks),
          f"webhook.log has {len(hits)} /twilio/webhook access lines for {sid}, "
          f"the simulator delivered {len(callbacks)}: {hits!r}")
    rids = [d.get("request_id") for d in hits]
    check(len(set(rids)) == len(rids), f"callback access lines share request ids: {rids!r}")
    stored = {}
    for d in hits:
        check_access_line(d, f"callback access line {d.get('request_id')}", "/twilio/webhook", 204)
        check(d.get("worker") == "webhook", f"callback access line: worker {d.get('worker')!r}")
        ev = [e for _, e in hook if e.get("request_id") == d["request_id"]
              and e.get("msg") == "call event stored"]
        check(len(ev) == 1 and ev[0].get("call_sid") == sid,
              f"request {d['request_id']}: 'call event stored' lines {ev!r}")
        check_line_basics(ev[0], "call event stored line")
        stored[ev[0].get("status")] = ev[0].get("sequence_number")
    check(stored == {"initiated": 0, "ringing": 1, "in-progress": 2, "completed": 3},
          f"stored events by status -> sequence number: {stored!r}")

    # Numbers are masked everywhere in the story.
    story = [line for line, d in mine] + \
        [line for line, d in hook if d.get("call_sid") == sid or d.get("request_id") in rids]
    for line in story:
        for n in (TO_STORY, h.env()["TWILIO_FROM_NUMBER"]):
            for form in raw_forms(n):
                check(form not in line, f"a log line holds {form!r} unmasked: {line[:200]}")
    check(any(masked(TO_STORY) in line for line in story), "no masked number in the call's story")
    print(f"     POST /call {rid}: {len(mine)} call.log lines; {sid}: {len(hits)} callbacks",
          flush=True)


def access_line(pool, rid):
    lines = [d for _, d in json_lines(h.log_lines(pool), f"{pool}.log", strict=False)
             if d.get("msg") == "request" and d.get("request_id") == rid]
    check(len(lines) == 1, f"{pool}.log has {len(lines)} access lines for request {rid}")
    return lines[0] if lines else {}


@h.test
def access_lines_name_the_error_answered():
    # refused before any work: the code, no key, no Twilio code
    r = h.post("/call", {"to": TO_STORY}, timeout=30)
    check(r.status == 401, f"POST /call without a key: {r!r}")
    d = access_line("call", r.header("x-request-id", ""))
    check_access_line(d, "401 access line", "/call", 401, error="unauthorized")
    check(d.get("api_key") is None, f"401 access line: api_key {d.get('api_key')!r}")
    # refused by Twilio (the simulator's To=+15005550001 is 21217): both codes
    r = h.post("/call", {"to": "+15005550001"}, headers=auth(), timeout=60)
    check(r.status == 422, f"POST /call to a number Twilio refuses: {r!r}")
    d = access_line("call", r.header("x-request-id", ""))
    check_access_line(d, "422 access line", "/call", 422, error="invalid_phone_number",
                      twilio_code=21217)
    check(d.get("api_key") == STATE["key_name"], f"422 access line: api_key {d.get('api_key')!r}")
    # a webhook answers 204 after a provisional internal_error: no error logged
    # (one_call_story_in_the_logs checks the callbacks' lines); a bad one
    # names its own
    r = bad_webhook("bm90IGEgc2lnbmF0dXJl")
    check(r.status == 403, f"webhook with a wrong signature: {r!r}")
    d = access_line("webhook", r.header("x-request-id", ""))
    check_access_line(d, "403 access line", "/twilio/webhook", 403, error="invalid_signature")


def private_tmp():
    tmp = tempfile.mkdtemp(prefix="obstest-")
    STATE["tmp_dirs"].append(tmp)
    return tmp


def read_log(log_path, label):
    with open(log_path, encoding="utf-8", errors="replace") as f:
        lines = f.read().splitlines()
    # AddressSanitizer/UBSan reports are not JSON: show them as such.
    check(not any("Sanitizer" in x or "runtime error" in x for x in lines),
          f"{label}: the private worker reported: {lines[:20]!r}")
    return lines


def fcgi(sock_path, method, path, body=b"", extra=None):
    r = h.fcgi(sock_path, method, path, body, extra, timeout=30)
    return r.status, r.request_id


def run_level(level):
    """GET /healthz and a keyless POST /call through a private worker at
    LOG_LEVEL=level; returns (log lines as dicts, healthz rid, call rid)."""
    label = f"LOG_LEVEL={level}"
    with h.private_worker(private_tmp(), level, {"LOG_LEVEL": level}) as (sock_path, log_path, _):
        status, rid_health = fcgi(sock_path, "GET", "/healthz")
        check(status == 200, f"{label}: GET /healthz answered {status}")
        body = b'{"to":"+14155550140"}'
        status, rid_call = fcgi(sock_path, "POST", "/call", body,
                                {"CONTENT_TYPE": "application/json"})
        check(status == 401, f"{label}: POST /call without a key answered {status}")
    docs = [d for _, d in json_lines(read_log(log_path, label), f"private worker log ({label})")]
    return docs, rid_health, rid_call


@h.test
def log_level_is_honoured():
    # Control: at info the requests log what the warn run must not.
    docs, rid_h, rid_c = run_level("info")
    check(any(d.get("msg") == "request" and d.get("request_id") == rid_h and d.get("level") == "info"
              for d in docs), f"LOG_LEVEL=info: no info access line for GET /healthz: {docs!r}")
    check(any(d.get("msg") == "api key refused" and d.get("request_id") == rid_c
              and d.get("level") == "warn" for d in docs),
          f"LOG_LEVEL=info: no warn 'api key refused' line for the keyless POST /call: {docs!r}")

    docs, rid_h, rid_c = run_level("warn")
    info = [d for d in docs if d.get("level") in ("info", "debug")]
    check(not info, f"LOG_LEVEL=warn: the worker wrote {len(info)} info/debug lines: {info[:5]!r}")
    check(not any(d.get("request_id") == rid_h for d in docs),
          f"LOG_LEVEL=warn: GET /healthz was logged: {docs!r}")
    check(any(d.get("msg") == "api key refused" and d.get("request_id") == rid_c
              and d.get("level") == "warn" for d in docs),
          f"LOG_LEVEL=warn: the warn line 'api key refused' is missing: {docs!r}")


@h.test
def database_messages_are_json_log_lines():
    # PostgreSQL sends messages outside any result: a FATAL "terminating
    # connection due to administrator command" when it shuts down (seen in
    # the suite when it lands right after a statement's answer), WARNINGs,
    # NOTICEs. libpq hands them to the connection's notice processor, whose
    # default prints them raw on stderr - the workers' log. To provoke such
    # messages deterministically, a private worker connects with
    # client_min_messages=debug5, which makes the server send DEBUG notices
    # with every statement; its stderr must still be JSON lines only.
    url = h.env()["DATABASE_URL"]
    sep = "&" if "?" in url else "?"
    url += sep + "options=-c%20client_min_messages%3Ddebug5"
    label = "client_min_messages=debug5"
    with h.private_worker(private_tmp(), "notices",
                               {"DATABASE_URL": url, "LOG_LEVEL": "info"}) as (sock_path, log_path, _):
        status, rid = fcgi(sock_path, "GET", "/readyz")
        check(status == 200, f"{label}: GET /readyz answered {status} (the database must answer)")
    lines = read_log(log_path, label)
    bad = [x for x in lines if x.strip() and not x.lstrip().startswith("{")]
    check(not bad, f"{label}: the worker's stderr has {len(bad)} lines that are not JSON, e.g. "
          f"{bad[:3]!r} (libpq's default notice processor; see the report)")
    docs = [d for _, d in json_lines(lines, f"private worker log ({label})")]
    check(any(d.get("msg") == "request" and d.get("request_id") == rid for d in docs),
          f"{label}: no access line for GET /readyz")


def teardown():
    for d in STATE["tmp_dirs"]:
        shutil.rmtree(d, ignore_errors=True)
    if STATE["key_name"]:
        try:
            h.key_revoke(STATE["key_name"])
        except Exception as e:  # reported, not fatal
            print(f"     (could not revoke {STATE['key_name']}: {e})", flush=True)


if __name__ == "__main__":
    h.run(setup=setup_api_key, teardown=teardown)
