"""Fault injection under load: the shared machinery of tests/faults/test_*.py.

Each case runs against the stack stack.py started for this suite (its own,
in $VOICE_ITEST_DIR, see tests/CMakeLists.txt) and follows one timeline:

    load starts ── WARMUP_S ── fault ── ... ── fault ends ── AFTER_S ── load stops ── checks

The load (python threads, loopback only, bounded in count and time):
  - signed status callbacks through nginx: calls of their own (CallSids with a
    per-case prefix), initiated → ringing → in-progress → completed, each
    delivery with its own I-Twilio-Idempotency-Token, never retried (Twilio
    does not retry a status callback that got an answer);
  - POST /call with an Idempotency-Key: one key per destination, retried with
    the same key and body while the answer says "retry" (503, 409, 429,
    nginx's 502/504, no answer), and once more after an answer that leaves the
    outcome open (504 twilio_timeout, 502 twilio_error, outcome_unknown), as
    docs/API.md tells clients to;
  - POST /call without a key: one request per destination, never retried.
Every destination is a fresh number, so the simulator's own request log
(requests.jsonl in its state directory) or the test's fake Twilio tells how
many times each was dialed.

The checks after the load (all of them are evaluated; the case fails with
every problem found):
  1. every request got an answer within CLIENT_TIMEOUT_S: 204 (callbacks) /
     201 (POST /call), or 503 with Retry-After, or an answer docs/API.md
     documents for the situation (409/429 with Retry-After, 504
     twilio_timeout, outcome_unknown; per case more, e.g. 502 twilio_error
     for an unreadable Twilio answer). nginx's own 504 means a worker hung
     past nginx's timeout: a failure;
  2. every callback answered 2xx is in call_events once the fault ended,
     after spool replay (bounded by REPLAY_BOUND_S);
  3. no destination dialed twice for one Idempotency-Key; an answer that
     says nothing was dialed (503 database_unavailable, request_expired,
     nginx's 503 service_unavailable) is true; every Idempotency-Key has a final answer
     (201, a replay, another non-retryable answer) within RESOLVE_BOUND_S of
     the fault's end: no key left blocked (issue 9: a dead owner's lease
     expires, then a retry gets a final answer at once);
  4. no status moved backwards: a sampler reads the calls of the case every
     SAMPLE_S while the load runs; and in the end no call's status is behind
     one of its own stored events;
  5. /readyz and /readyz/webhook (and a private worker's /readyz) are 200
     within READY_BOUND_S of the fault's end; where a case says so
     (PostgreSQL hung), requests sent once the circuit breaker had time to
     open are answered promptly (issue 9: spool straight away instead of
     paying a timeout on every request);
  6. every call answered 201 is in PostgreSQL (README: every call Twilio
     accepted is recorded); no worker died other than by the test's SIGKILL;
     no sanitizer report in the pools' logs.
What the fault cost (answers by phase, time until /readyz is green, until
the errors stop, until the spool is replayed) is printed as one "COST" line
and written to $VOICE_ITEST_DIR/costs/<case>.json.
"""

import collections
import http.client
import http.server
import json
import os
import random
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "integration"))
import harness as h  # noqa: E402
from harness import check  # noqa: E402

FORM = "application/x-www-form-urlencoded"
CLIENT_TIMEOUT_S = 35.0    # a client's patience: nginx's longest read timeout (30 s) + 5
READY_BOUND_S = 5.0        # /readyz green after the fault ends
READY_MEASURE_S = 40.0     # how long we keep measuring when it is not
REPLAY_BOUND_S = 30.0      # acknowledged callbacks in PostgreSQL after the fault ends
RESOLVE_BOUND_S = 60.0     # every Idempotency-Key has a final answer after the fault ends:
                           # a dead owner's lease (/call's 28 s budget + 5 s) expires, and
                           # a retry that was waiting on it (up to 10 s) gets 409 first,
                           # the next one the final answer: ~45 s at worst, plus margin
WARMUP_S = 3.0
AFTER_S = 6.0
SAMPLE_S = 0.5
JOIN_BOUND_S = CLIENT_TIMEOUT_S + RESOLVE_BOUND_S + 15
MAX_CALLBACKS = 30000      # per case, whatever the pace
MAX_KEYS = 400             # per idempotent thread
MAX_PLAIN = 400            # per plain thread
MAX_KEY_ATTEMPTS = 80

LIFECYCLE = ("initiated", "ringing", "in-progress", "completed")
RANK = {"queued": 0, "initiated": 1, "ringing": 2, "in-progress": 3, "completed": 4,
        "busy": 4, "failed": 4, "no-answer": 4, "canceled": 4}
# POST /call answers that end a key's retries but leave the call's existence
# open (docs/API.md): the client retries once more with the same key, which
# must replay, never dial.
UNCERTAIN = {(504, "twilio_timeout"), (502, "twilio_error")}
# answers that promise nothing was dialed (docs/API.md)
NOTHING_DIALED = {(503, "database_unavailable"), (503, "service_unavailable"),
                  (503, "request_expired")}

STATE = {"secret": None, "key_name": None}


def now():
    return time.monotonic()


# ------------------------------------------------------------------ HTTP ---

_TLS = None


def tls():
    global _TLS
    if _TLS is None:
        _TLS = h.tls_context()
    return _TLS


class Answer:
    """One request's outcome: status None when there was no answer (error
    says why); t0/t1 monotonic send/answer times."""
    __slots__ = ("status", "code", "retry_after", "replayed", "t0", "t1", "error", "sid")

    def __init__(self, t0, t1, status=None, headers=None, body=b"", error=None):
        headers = headers or {}
        self.t0, self.t1, self.status, self.error = t0, t1, status, error
        self.code = self.sid = None
        self.retry_after = headers.get("retry-after")
        self.replayed = headers.get("idempotent-replayed") == "true"
        if status is not None and body:
            try:
                doc = json.loads(body.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                doc = None
            if isinstance(doc, dict):
                err = doc.get("error")
                if isinstance(err, dict) and isinstance(err.get("code"), str):
                    self.code = err["code"]
                if isinstance(doc.get("sid"), str):
                    self.sid = doc["sid"]

    @property
    def elapsed(self):
        return self.t1 - self.t0

    def key(self):
        """Short label for tallies: '204', '503 database_unavailable', 'none'."""
        if self.status is None:
            return "no answer" if self.elapsed < CLIENT_TIMEOUT_S - 0.5 else "hung"
        return f"{self.status} {self.code}" if self.code else str(self.status)

    def __repr__(self):
        ra = f" Retry-After={self.retry_after}" if self.retry_after else ""
        rp = " replayed" if self.replayed else ""
        err = f" ({self.error})" if self.error else ""
        return f"<{self.key()}{ra}{rp} after {self.elapsed:.2f}s{err}>"


def https(method, path, body=None, headers=None, timeout=CLIENT_TIMEOUT_S):
    """One request to the stack's nginx on a fresh connection."""
    t0 = now()
    conn = None
    try:
        conn = http.client.HTTPSConnection("127.0.0.1", int(h.env()["VOICE_HTTPS_PORT"]),
                                           timeout=timeout, context=tls())
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return Answer(t0, now(), r.status, {k.lower(): v for k, v in r.getheaders()}, data)
    except (OSError, http.client.HTTPException) as ex:
        return Answer(t0, now(), error=repr(ex)[:200])
    finally:
        if conn is not None:
            conn.close()


def fcgi(sock, method, path, body=b"", headers=None, timeout=CLIENT_TIMEOUT_S):
    """One request straight to a private worker's FastCGI socket."""
    t0 = now()
    try:
        r = h.fcgi(sock, method, path, body, headers, timeout=timeout)
        return Answer(t0, now(), r.status, r.headers, r.body)
    except (OSError, h.TestFailure) as ex:
        return Answer(t0, now(), error=repr(ex)[:200])


# -------------------------------------------------------------- Twilio-ish --

def callback_params(sid, status, seq):
    p = [("AccountSid", h.env()["TWILIO_ACCOUNT_SID"]), ("ApiVersion", "2010-04-01"),
         ("CallSid", sid), ("CallStatus", status), ("Called", "+14155550199"),
         ("Caller", "+14155550100"), ("Direction", "outbound-api"), ("From", "+14155550100"),
         ("To", "+14155550199"), ("CallbackSource", "call-progress-events"),
         ("Timestamp", time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())),
         ("SequenceNumber", str(seq))]
    if status == "completed":
        p.append(("CallDuration", "5"))
    return p


def signed(params):
    url = h.env()["PUBLIC_BASE_URL"] + "/twilio/webhook"
    return urllib.parse.urlencode(params), h.twilio_signature(url, params)


class Numbers:
    """Fresh destinations: +1 415 2XX XXXX (valid US numbers for
    libphonenumber, none of them a simulator scenario), never repeated in
    this process."""

    def __init__(self):
        self.lock = threading.Lock()
        self.used = set()
        self.rng = random.Random(secrets.randbits(64))

    def next(self):
        with self.lock:
            while True:
                n = f"+14152{self.rng.randrange(10 ** 6):06d}"
                if n not in self.used:
                    self.used.add(n)
                    return n


NUMBERS = Numbers()


class Dials:
    """What Twilio saw: the simulator's requests.jsonl from the offset it
    had when the case started (read as root; the simulator's own record)."""

    def __init__(self):
        d = h.env()["SIM_STATE_DIR"]
        self.path = os.path.join(d, "requests.jsonl")
        self.cb_path = os.path.join(d, "callbacks.jsonl")
        self.offset, self.cb_offset = self._size(self.path), self._size(self.cb_path)

    @staticmethod
    def _size(p):
        try:
            return os.path.getsize(p)
        except OSError:
            return 0

    @staticmethod
    def _lines(path, offset):
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read().splitlines()

    def acked_callbacks(self):
        """{idempotency token: call_sid} of the simulator's status callbacks
        our service answered 2xx."""
        out = {}
        for line in self._lines(self.cb_path, self.cb_offset):
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            st = rec.get("http_status") or 0
            if rec.get("kind") == "status-callback" and 200 <= st < 300 \
                    and rec.get("idempotency_token"):
                sid = next((v for k, v in rec.get("params", []) if k == "CallSid"), None)
                out[rec["idempotency_token"]] = sid
        return out

    def created(self):
        """To -> [call_sid, ...] of every Calls.json create answered 201."""
        out = collections.defaultdict(list)
        for line in self._lines(self.path, self.offset):
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if rec.get("method") == "POST" and rec.get("path", "").endswith("/Calls.json") \
                    and rec.get("status") == 201:
                to = next((v for k, v in rec.get("params", []) if k == "To"), None)
                out[to].append(rec.get("call_sid"))
        return out


class FakeTwilio:
    """A loopback Twilio REST API for a private call worker
    (TWILIO_API_BASE_URL), switched between modes:
      ok       201 with a Call resource (the call is created)
      down     nothing listens on the port (connection refused)
      slow     the call is created, the answer held for slow_s (past the
               worker's TWILIO_TIMEOUT_MS), then 201
      error500 500 {"code":20500}: no call created
      garbage  the call is created, the answer is 200 with a body that is not
               a Call resource (Twilio's reply mangled on the way)
    Records every request it saw: (To, mode, created, sid)."""

    def __init__(self, slow_s):
        self.slow_s = slow_s
        self.mode = "ok"
        self.lock = threading.Lock()
        self.seen = []
        self.release = threading.Event()
        self.srv = None
        self.thread = None
        self.port = None
        self._listen()

    def _handler(self):
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            # one request per connection: "down" is then a clean refusal,
            # never a kept-alive connection still answering
            protocol_version = "HTTP/1.0"

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                params = dict(urllib.parse.parse_qsl(self.rfile.read(n).decode("utf-8")))
                mode = fake.mode
                m = re.search(r"/Accounts/(AC[0-9a-fA-F]{32})/Calls\.json$", self.path)
                if m is None:
                    self._send(404, json.dumps({"code": 20404, "message": "not found",
                                                "status": 404}).encode())
                    return
                created = mode in ("ok", "slow", "garbage")
                sid = "CA" + secrets.token_hex(16) if created else None
                with fake.lock:
                    fake.seen.append((params.get("To"), mode, created, sid))
                if mode == "error500":
                    self._send(500, json.dumps({"code": 20500, "message": "Internal Server Error",
                                                "status": 500}).encode())
                    return
                if mode == "garbage":
                    self._send(200, b"<html><body>502 Bad Gateway</body></html>", "text/html")
                    return
                if mode == "slow":
                    fake.release.wait(fake.slow_s)
                t = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())
                acct = m.group(1)
                self._send(201, json.dumps({
                    "sid": sid, "account_sid": acct, "status": "queued",
                    "direction": "outbound-api", "to": params.get("To", ""),
                    "from": params.get("From", ""), "date_created": t, "date_updated": t,
                    "api_version": "2010-04-01",
                    "uri": f"/2010-04-01/Accounts/{acct}/Calls/{sid}.json"}).encode())

            def _send(self, status, body, ctype="application/json"):
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass   # the worker gave up

            def log_message(self, *args):
                pass

        return Handler

    def _listen(self):
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", self.port or 0), self._handler())
        srv.daemon_threads = True
        self.srv = srv
        self.port = srv.server_address[1]
        self.thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1},
                                       daemon=True)
        self.thread.start()

    def _close(self):
        if self.srv is not None:
            self.srv.shutdown()
            self.srv.server_close()
            self.thread.join(10)
            self.srv = None

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.port}"

    def set_mode(self, mode):
        if mode == "down":
            self.mode = mode
            self._close()
            return
        if self.srv is None:
            deadline = now() + 10
            while True:   # the port was ours a moment ago; a rebind may need a retry
                try:
                    self._listen()
                    break
                except OSError:
                    if now() > deadline:
                        raise
                    time.sleep(0.1)
        self.release.clear()
        self.mode = mode

    def created(self):
        out = collections.defaultdict(list)
        with self.lock:
            for to, _, created, sid in self.seen:
                if created:
                    out[to].append(sid)
        return out

    def close(self):
        self.release.set()
        self._close()


# ------------------------------------------------------------------ load ---

class Load:
    """The concurrent load of one case (see the module docstring). call_sock:
    POST /call goes to that private worker's FastCGI socket instead of
    nginx."""

    def __init__(self, call_sock=None, webhook_threads=4, idem_threads=2, plain_threads=1,
                 cb_pause=0.02, call_pause=0.2):
        self.prefix = secrets.token_hex(6)
        self.call_sock = call_sock
        self.cb_pause, self.call_pause = cb_pause, call_pause
        self.lock = threading.Lock()
        self.callbacks = []            # (token, sid, status, seq, Answer)
        self.keys = {}                 # key -> {"to", "attempts": [Answer], "final"}
        self.plain = {}                # to -> Answer
        self.stop_evt = threading.Event()
        self.stop_at = self.fault_end = None
        self.threads = ([threading.Thread(target=self._callbacks, daemon=True)
                         for _ in range(webhook_threads)] +
                        [threading.Thread(target=self._idem, args=(i,), daemon=True)
                         for i in range(idem_threads)] +
                        [threading.Thread(target=self._plain, daemon=True)
                         for _ in range(plain_threads)])

    # requests
    def post_call(self, body, key):
        if self.call_sock is None:
            hdrs = {"Authorization": f"Bearer {STATE['secret']}", "Content-Type": "application/json"}
            if key:
                hdrs["Idempotency-Key"] = key
            return https("POST", "/call", body, hdrs)
        hdrs = {"HTTP_AUTHORIZATION": f"Bearer {STATE['secret']}", "CONTENT_TYPE": "application/json"}
        if key:
            hdrs["HTTP_IDEMPOTENCY_KEY"] = key
        return fcgi(self.call_sock, "POST", "/call", body, hdrs)

    def _callbacks(self):
        while not self.stop_evt.is_set():
            with self.lock:
                if len(self.callbacks) >= MAX_CALLBACKS:
                    return
            sid = "CA" + self.prefix + secrets.token_hex(10)
            for seq, status in enumerate(LIFECYCLE):
                body, sig = signed(callback_params(sid, status, seq))
                tok = secrets.token_hex(16)
                a = https("POST", "/twilio/webhook", body,
                          {"Content-Type": FORM, "X-Twilio-Signature": sig,
                           "I-Twilio-Idempotency-Token": tok})
                with self.lock:
                    self.callbacks.append((tok, sid, status, seq, a))
                if self.stop_evt.wait(self.cb_pause):
                    return

    def _idem(self, i):
        for n in range(MAX_KEYS):
            if self.stop_evt.is_set():
                return
            key = f"faults-{self.prefix}-{i}-{n}"
            to = NUMBERS.next()
            body = json.dumps({"to": to}).encode()
            entry = {"to": to, "attempts": [], "final": None}
            with self.lock:
                self.keys[key] = entry
            open_outcome = False
            for _ in range(MAX_KEY_ATTEMPTS):
                a = self.post_call(body, key)
                with self.lock:
                    entry["attempts"].append(a)
                pair = (a.status, a.code)
                if a.status == 201 or a.replayed:
                    entry["final"] = a       # a replay is the key's answer for good
                    break
                if pair in UNCERTAIN or a.code == "outcome_unknown":
                    if open_outcome:
                        entry["final"] = a
                        break
                    open_outcome = True      # retry once: must replay, never dial
                    continue
                retry = a.status is None or a.status in (409, 429, 502, 503, 504)
                if not retry:
                    entry["final"] = a       # another 4xx/5xx: not for a retry
                    break
                if self.stop_evt.is_set() and \
                        now() > (self.fault_end or self.stop_at) + RESOLVE_BOUND_S:
                    break                    # left unresolved: reported
                try:
                    wait = min(float(a.retry_after or 1), 1.0)
                except ValueError:
                    wait = 1.0
                time.sleep(max(wait, 0.1))
            if self.stop_evt.wait(self.call_pause):
                return

    def _plain(self):
        for _ in range(MAX_PLAIN):
            if self.stop_evt.is_set():
                return
            to = NUMBERS.next()
            a = self.post_call(json.dumps({"to": to}).encode(), None)
            with self.lock:
                self.plain[to] = a
            if self.stop_evt.wait(self.call_pause):
                return

    # lifecycle
    def start(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        self.stop_at = now()
        self.stop_evt.set()
        deadline = now() + JOIN_BOUND_S
        for t in self.threads:
            t.join(max(0.0, deadline - now()))
        alive = sum(t.is_alive() for t in self.threads)
        check(not alive, f"{alive} load threads still running {JOIN_BOUND_S:.0f}s after the stop")


class StatusSampler:
    """Reads the case's calls (its callback prefix, and the calls its API key
    placed) every SAMPLE_S and remembers each call's ranks in the order seen."""

    def __init__(self, prefix):
        self.prefix = prefix
        self.seen = collections.defaultdict(list)   # sid -> [(t, status, seq)]
        self.samples = self.errors = 0
        self.stop_evt = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stop_evt.is_set():
            try:
                rows = h.psql("SELECT call_sid, status, coalesce(sequence_number, -1) FROM calls"
                              " WHERE call_sid LIKE :'p' OR (api_key_name = :'k'"
                              "   AND created_at > now() - interval '10 minutes')",
                              timeout=3, p="CA" + self.prefix + "%", k=STATE["key_name"])
                t = now()
                for sid, st, seq in rows:
                    obs = self.seen[sid]
                    if not obs or obs[-1][1] != st or obs[-1][2] != int(seq):
                        obs.append((t, st, int(seq)))
                self.samples += 1
            except (h.TestFailure, subprocess.TimeoutExpired, OSError, ValueError):
                self.errors += 1
            self.stop_evt.wait(SAMPLE_S)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.stop_evt.set()
        self.thread.join(10)

    def backwards(self):
        out = []
        for sid, obs in self.seen.items():
            for (t1, s1, q1), (t2, s2, q2) in zip(obs, obs[1:]):
                if RANK.get(s2, -1) < RANK.get(s1, -1) or \
                        (RANK.get(s2) == RANK.get(s1) and s2 != s1 and q2 < q1):
                    out.append((sid, s1, s2))
        return out


class SpoolWatch:
    """Counts the stack spool's records every 0.2 s: the largest backlog,
    the last time it was not empty, records moved to rejected/."""

    def __init__(self, path=None):
        self.path = path or h.env()["VOICE_SPOOL_DIR"]
        self.rejected0 = self._rejected()
        self.max, self.last_busy = 0, None
        self.stop_evt = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def count(self):
        try:
            names = os.listdir(self.path)
        except OSError:
            return 0
        return sum(1 for n in names if not n.startswith(".") and ".rec" in n)

    def _rejected(self):
        try:
            return len(os.listdir(os.path.join(self.path, "rejected")))
        except OSError:
            return 0

    def rejected(self):
        return self._rejected() - self.rejected0

    def _run(self):
        while not self.stop_evt.is_set():
            n = self.count()
            if n:
                self.max, self.last_busy = max(self.max, n), now()
            self.stop_evt.wait(0.2)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.stop_evt.set()
        self.thread.join(10)

    def drained_after(self, t_end):
        """Seconds after t_end when the spool was last seen non-empty (0 if
        it was empty by then; None if it never emptied)."""
        if self.count():
            return None
        if self.last_busy is None or self.last_busy < t_end:
            return 0.0
        return round(self.last_busy - t_end + 0.2, 1)


# ------------------------------------------------------------------ faults --

def pg_postmaster():
    with open(os.path.join(h.env()["VOICE_PG_DATA"], "postmaster.pid"), encoding="utf-8") as f:
        return int(f.readline().strip())


def pg_freeze():
    """SIGSTOP the embedded cluster's postmaster, then its children (listed
    again until no new one appears). Returns the PIDs stopped."""
    pm = pg_postmaster()
    os.kill(pm, signal.SIGSTOP)
    stopped = [pm]
    for _ in range(10):
        new = [k for k in h.children(pm) if k not in stopped]
        if not new:
            break
        for k in new:
            try:
                os.kill(k, signal.SIGSTOP)
                stopped.append(k)
            except ProcessLookupError:
                pass
    return stopped


def pg_thaw(pids):
    for p in pids:
        try:
            os.kill(p, signal.SIGCONT)
        except ProcessLookupError:
            pass


def pg_super(sql, timeout=30):
    """sql as the cluster's superuser (peer authentication on its socket)."""
    e = h.env()
    args = ["runuser", "-u", "postgres", "--", os.path.join(e["VOICE_PG_BIN"], "psql"), "-X",
            "-q", "-v", "ON_ERROR_STOP=1", "-h", e["VOICE_PG_SOCKET_DIR"], "-p", e["VOICE_PG_PORT"],
            "-d", "postgres", "-c", sql]
    p = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    check(p.returncode == 0, f"psql as postgres failed: {sql!r}: {p.stderr.strip()}")


def nginx_hup():
    with open(os.path.join(h.env()["VOICE_NGINX_DIR"], "nginx.pid"), encoding="utf-8") as f:
        os.kill(int(f.read().strip()), signal.SIGHUP)


def nginx_workers():
    with open(os.path.join(h.env()["VOICE_NGINX_DIR"], "nginx.pid"), encoding="utf-8") as f:
        return h.children(int(f.read().strip()))


# ----------------------------------------------------------------- checks --

def ready_after(t_end, socks=()):
    """Seconds from t_end until /readyz (call pool), /readyz/webhook and each
    private worker's /readyz answer 200 in the same round; None if not within
    READY_MEASURE_S. Also returns the last non-200 answers seen."""
    last = {}
    while True:
        probes = {"/readyz": https("GET", "/readyz", timeout=6),
                  "/readyz/webhook": https("GET", "/readyz/webhook", timeout=6)}
        for s in socks:
            probes[f"{os.path.basename(s)} /readyz"] = fcgi(s, "GET", "/readyz", timeout=6)
        bad = {k: a for k, a in probes.items() if a.status != 200}
        if not bad:
            return now() - t_end, last
        last = bad
        if now() - t_end > READY_MEASURE_S:
            return None, last
        time.sleep(0.1)


class LogWatch:
    """New lines of the stack's pool logs (and private logs) since the case
    started: sanitizer reports and workers that died."""

    def __init__(self, extra=()):
        d = h.env()["VOICE_LOG_DIR"]
        self.paths = [os.path.join(d, "call.log"), os.path.join(d, "webhook.log"), *extra]
        self.offsets = {p: self._size(p) for p in self.paths}

    @staticmethod
    def _size(p):
        try:
            return os.path.getsize(p)
        except OSError:
            return 0

    def add(self, path):
        self.paths.append(path)
        self.offsets[path] = 0

    def lines(self):
        out = []
        for p in self.paths:
            try:
                with open(p, "rb") as f:
                    f.seek(self.offsets[p])
                    out += [(os.path.basename(p), x.decode("utf-8", "replace"))
                            for x in f.read().splitlines()]
            except OSError:
                pass
        return out

    def problems(self, allow_signal=None):
        out, died, sanitizer = [], collections.Counter(), []
        for name, line in self.lines():
            if "Sanitizer" in line or "runtime error:" in line:
                sanitizer.append(f"{name}: {line[:200]}")
            if "worker died" in line:
                try:
                    doc = json.loads(line)
                except ValueError:
                    continue
                how = f"signal {doc['signal']}" if "signal" in doc else \
                    f"exit {doc.get('exit_status')}"
                died[(name, how)] += 1
        if sanitizer:
            out.append(f"{len(sanitizer)} sanitizer lines in the logs, e.g. {sanitizer[:3]}")
        bad = {k: v for k, v in died.items() if k[1] != f"signal {allow_signal}"}
        if bad:
            out.append(f"workers died during the case: {dict(bad)}")
        return out, dict(died)

    def count(self, needle):
        return sum(1 for _, x in self.lines() if needle in x)


def tally(answers):
    c = collections.Counter(a.key() for a in answers)
    return dict(sorted(c.items()))


def call_answer_ok(a, allow):
    """None if a is an acceptable POST /call answer, else why not."""
    if a.status is None:
        return f"no answer ({a.error}) after {a.elapsed:.1f}s"
    if a.elapsed > CLIENT_TIMEOUT_S:
        return f"answered after {a.elapsed:.1f}s, past the client's {CLIENT_TIMEOUT_S:.0f}s"
    pair = (a.status, a.code)
    if a.status == 201:
        return None
    if a.status == 504 and a.code == "gateway_timeout":
        return "504 gateway_timeout: the worker did not answer within nginx's timeout (a hang)"
    if a.status in (503, 409, 429):
        return None if a.retry_after else f"{a.status} {a.code} without Retry-After"
    if pair in UNCERTAIN and pair[0] == 504:
        return None
    if a.code == "outcome_unknown":
        return None
    if pair in allow:
        return None
    return f"{a.status} {a.code}: not an answer documented for this situation"


def callback_answer_ok(a):
    if a.status is None:
        return f"no answer ({a.error}) after {a.elapsed:.1f}s"
    if a.elapsed > CLIENT_TIMEOUT_S:
        return f"answered after {a.elapsed:.1f}s"
    if a.status == 204:
        return None
    if a.status == 503:
        return None if a.retry_after else f"503 {a.code} without Retry-After"
    if a.status == 504 and a.code == "gateway_timeout":
        return "504 gateway_timeout: the worker did not answer within nginx's timeout (a hang)"
    return f"{a.status} {a.code}: not 204 nor 503 with Retry-After"


def phase(a, t_start, t_end):
    if a.t1 < t_start:
        return "before"
    if a.t0 > t_end:
        return "after"
    return "during"


def run_case(name, fault, *, call_sock=None, private_socks=(), dials=None, allow_call=(),
             allow_signal=None, extra_logs=(), load_kw=None, prompt=None):
    """Runs one case: load, fault() (which injects the fault, holds it and
    ends it, returning a dict of its own measurements), then every check.
    dials: an object with .created() (default: the simulator's record).
    prompt=(after_s, bound_s): callbacks sent from after_s into the fault
    until its end must be answered within bound_s (the circuit breaker's
    promise: once it is open, nothing waits on the database). Callbacks
    only: each worker opens its own breaker when one of its own requests
    fails, and the callbacks' pace (hundreds a second) reaches every webhook
    worker within the first second, while POST /call's few a second may
    reach a call worker for the first time late into the fault, and that
    worker rightly pays its first deadline then."""
    dials = dials or Dials()
    logs = LogWatch(extra_logs)
    load = Load(call_sock=call_sock, **(load_kw or {}))
    sampler = StatusSampler(load.prefix).start()
    spool = SpoolWatch().start()
    problems, info = [], {}
    load.start()
    try:
        time.sleep(WARMUP_S)
        t_start = now()
        info.update(fault() or {})
        t_end = load.fault_end = now()
        ready, ready_last = ready_after(t_end, private_socks)
        rest = AFTER_S - (now() - t_end)
        if rest > 0:
            time.sleep(rest)
    finally:
        load.stop()
        sampler.stop()
        spool.stop()
    t_stop = load.stop_at
    fault_s = t_end - t_start

    # 1. every request answered, as documented
    cbs = [c[4] for c in load.callbacks]
    attempts = [a for e in load.keys.values() for a in e["attempts"]]
    plain = list(load.plain.values())
    bad = collections.Counter()
    examples = {}
    for kind, answers, judge in (("callback", cbs, callback_answer_ok),
                                 ("POST /call with a key", attempts,
                                  lambda a: call_answer_ok(a, allow_call)),
                                 ("POST /call without a key", plain,
                                  lambda a: call_answer_ok(a, allow_call))):
        for a in answers:
            why = judge(a)
            if why:
                k = (kind, why.split(" after ")[0] if why.startswith("no answer") else why)
                bad[k] += 1
                examples.setdefault(k, f"{a.t0 - t_start:+.1f}s from the fault's start")
    for (kind, why), n in sorted(bad.items()):
        problems.append(f"{n} {kind} answers: {why} (first sent {examples[(kind, why)]})")

    if prompt is not None:
        after_s, bound_s = prompt
        late = [a for a in cbs if t_start + after_s <= a.t0 <= t_end - bound_s
                and a.elapsed > bound_s]
        if late:
            worst = max(late, key=lambda a: a.elapsed)
            problems.append(f"{len(late)} callbacks sent more than {after_s:.0f}s into the fault "
                            f"waited more than {bound_s:.0f}s (the longest {worst.elapsed:.1f}s, "
                            f"sent at +{worst.t0 - t_start:.1f}s): with the circuit breaker "
                            f"open nothing should wait on the database")

    # 2. every callback answered 2xx is in PostgreSQL (after replay)
    acked = {c[0] for c in load.callbacks if c[4].status is not None and 200 <= c[4].status < 300}

    def missing():
        rows = h.psql("SELECT idempotency_token FROM call_events WHERE call_sid LIKE :'p'",
                      timeout=20, p="CA" + load.prefix + "%")
        return acked - {r[0] for r in rows}

    deadline = max(t_end + REPLAY_BOUND_S, now() + 1)
    lost = set(acked)
    while True:
        try:
            lost = missing()
        except (h.TestFailure, subprocess.TimeoutExpired):
            pass
        if not lost or now() > deadline:
            break
        time.sleep(0.5)
    if lost:
        problems.append(f"{len(lost)} of {len(acked)} callbacks answered 2xx are not in "
                        f"call_events {REPLAY_BOUND_S:.0f}s after the fault ended "
                        f"(e.g. tokens {sorted(lost)[:3]})")
    # and the simulator's own callbacks (of the calls the load placed)
    sim_acked = dials.acked_callbacks() if hasattr(dials, "acked_callbacks") else {}
    sim_lost = set()
    if sim_acked:
        def sim_missing():
            rows = h.psql("SELECT idempotency_token FROM call_events WHERE"
                          " idempotency_token = ANY(string_to_array(:'t', ','))",
                          timeout=20, t=",".join(sorted(sim_acked)))
            return set(sim_acked) - {r[0] for r in rows}
        sim_lost = sim_missing()
        deadline = max(t_end + REPLAY_BOUND_S, now() + 1)
        while sim_lost and now() < deadline:
            time.sleep(0.5)
            sim_lost = sim_missing()
        if sim_lost:
            problems.append(f"{len(sim_lost)} of {len(sim_acked)} simulator callbacks answered "
                            f"2xx are not in call_events (e.g. "
                            f"{[(t, sim_acked[t]) for t in sorted(sim_lost)[:3]]})")
    if spool.rejected():
        problems.append(f"{spool.rejected()} spooled records were moved to rejected/ "
                        f"during the case")

    # 3. dials
    created = dials.created()
    twice = [(k, e["to"], created.get(e["to"])) for k, e in load.keys.items()
             if len(created.get(e["to"], [])) > 1]
    if twice:
        problems.append(f"{len(twice)} Idempotency-Keys dialed more than once, e.g. "
                        f"{twice[:3]}")
    lies = [(to, a.key(), created[to]) for to, a in load.plain.items()
            if (a.status, a.code) in NOTHING_DIALED and created.get(to)]
    if lies:
        problems.append(f"{len(lies)} POST /call without a key answered as if nothing was "
                        f"dialed (a retry would dial again), but Twilio created the call: "
                        f"{lies[:3]}")
    unresolved = [(k, [x.key() for x in e["attempts"][-3:]], len(e["attempts"]))
                  for k, e in load.keys.items() if e["final"] is None]
    if unresolved:
        problems.append(f"{len(unresolved)} Idempotency-Keys without a final answer "
                        f"{RESOLVE_BOUND_S:.0f}s after the fault ended (last answers, attempts): "
                        f"{unresolved[:3]}")
    resolve_times = [e["final"].t1 - t_end for e in load.keys.values()
                     if e["final"] is not None and len(e["attempts"]) > 1
                     and e["final"].t1 > t_end]

    # 4. statuses never backwards
    back = sampler.backwards()
    if back:
        problems.append(f"{len(back)} calls seen moving backwards, e.g. {back[:3]}")
    rows = h.psql("SELECT c.call_sid, c.status, e.status FROM calls c JOIN call_events e"
                  " USING (call_sid) WHERE c.call_sid LIKE :'p' OR c.api_key_name = :'k'",
                  timeout=30, p="CA" + load.prefix + "%", k=STATE["key_name"])
    behind = sorted({(sid, cs, es) for sid, cs, es in rows if RANK.get(es, -1) > RANK.get(cs, -1)})
    if behind:
        problems.append(f"{len(behind)} calls whose status is behind one of their own events, "
                        f"e.g. {behind[:3]}")

    # 5. ready
    if ready is None or ready > READY_BOUND_S:
        problems.append(f"/readyz not green within {READY_BOUND_S:.0f}s of the fault's end "
                        f"({'not within %.0fs' % READY_MEASURE_S if ready is None else '%.1fs' % ready}"
                        f"; last: {ready_last})")

    # 6. recorded, no crash, no sanitizer
    sids = {a.sid for a in attempts + plain if a.status == 201 and a.sid}
    if sids:
        def unrecorded():
            got = h.psql("SELECT call_sid FROM calls WHERE call_sid = ANY(string_to_array(:'s', ','))",
                         timeout=20, s=",".join(sorted(sids)))
            return sids - {r[0] for r in got}
        left = unrecorded()
        deadline = now() + 10
        while left and now() < deadline:
            time.sleep(0.5)
            left = unrecorded()
        if left:
            problems.append(f"{len(left)} of {len(sids)} calls answered 201 are not in "
                            f"PostgreSQL (e.g. {sorted(left)[:3]})")
    lp, died = logs.problems(allow_signal)
    problems += lp

    # cost
    def errors_after(answers, ok):
        late = [a.t1 - t_end for a in answers if a.t0 > t_end and ok(a)]
        return round(max(late), 2) if late else 0.0

    def by_phase(answers):
        out = {}
        for ph in ("before", "during", "after"):
            sel = [a for a in answers if phase(a, t_start, t_end) == ph]
            if sel:
                out[ph] = tally(sel)
        return out

    def latency(answers):
        """p50/p99/max seconds of the answers sent during the fault."""
        sel = sorted(a.elapsed for a in answers if phase(a, t_start, t_end) == "during")
        if not sel:
            return None
        return [round(sel[len(sel) // 2], 3), round(sel[min(len(sel) - 1, len(sel) * 99 // 100)], 3),
                round(sel[-1], 3)]

    cost = {
        "case": name,
        "fault_s": round(fault_s, 1),
        "callbacks": by_phase(cbs),
        "sim_callbacks_acked": len(sim_acked),
        "post_call_key": by_phase(attempts),
        "post_call_plain": by_phase(plain),
        "keys": len(load.keys),
        "keys_retried_max_s": round(max(resolve_times), 1) if resolve_times else None,
        "ready_after_s": None if ready is None else round(ready, 2),
        "callback_errors_until_s": errors_after(cbs, lambda a: a.status != 204),
        "call_errors_until_s": errors_after(attempts + plain, lambda a: a.status != 201),
        "spool_max": spool.max,
        "spool_empty_after_s": spool.drained_after(t_end),
        "workers_died": {f"{k[0]} {k[1]}": v for k, v in died.items()},
        "slowest_callback_s": round(max((a.elapsed for a in cbs), default=0), 2),
        "slowest_call_s": round(max((a.elapsed for a in attempts + plain), default=0), 2),
        "callback_latency_during_p50_p99_max": latency(cbs),
        "call_latency_during_p50_p99_max": latency(attempts + plain),
        "status_samples": sampler.samples,
        "run_s": round(t_stop - t_start + WARMUP_S, 1),
        **info,
        "problems": len(problems),
    }
    print("COST " + json.dumps(cost, sort_keys=False), flush=True)
    try:
        d = os.path.join(h.ITEST_DIR, "costs")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"{name}.json"), "w", encoding="utf-8") as f:
            json.dump({"cost": cost, "problems": problems,
                       "keys": {k: [(round(a.t0 - t_start, 2), round(a.elapsed, 2), a.key(),
                                     a.replayed) for a in e["attempts"]]
                                for k, e in load.keys.items() if len(e["attempts"]) > 1},
                       "plain": {to: (round(a.t0 - t_start, 2), round(a.elapsed, 2), a.key(),
                                      created.get(to)) for to, a in load.plain.items()
                                 if a.status != 201}}, f, indent=1)
    except OSError:
        pass
    check(not problems, f"{name}: {len(problems)} problems:\n  - " + "\n  - ".join(problems))


# ------------------------------------------------------------ per file ---

def setup():
    name = h.unique_name("faults")
    STATE["secret"] = h.key_create(name)
    STATE["key_name"] = name
    ready, last = ready_after(now())
    check(ready is not None, f"the stack is not ready before the case: {last}")


def teardown():
    if STATE["key_name"]:
        try:
            h.key_revoke(STATE["key_name"])
        except Exception as ex:   # reported, not fatal
            print(f"     (could not revoke {STATE['key_name']}: {ex})", flush=True)
