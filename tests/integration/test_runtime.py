#!/usr/bin/env python3
"""The worker runtime (call_fcgi / webhook_fcgi as a master that forks
VOICE_*_WORKERS workers, each serving VOICE_*_THREADS requests at once over a
pool of at most VOICE_*_DB_CONNECTIONS PostgreSQL connections), against the
stack stack.py started and private masters of the stack's build:

- callbacks sent concurrently and shuffled through nginx (40 calls x
  initiated/ringing/in-progress/final, same-token redeliveries, other-token
  and tokenless duplicates, a call's deliveries in flight together) end in
  each call's true final status with one event row per distinct delivery,
  while poisoned events among them are refused and their batch-mates stored.
  common/callback.c refuses every value the schema would (SequenceNumber over
  1,000,000, AnsweredBy over 31 bytes, From/To over 64, invalid UTF-8, NUL,
  …), so no well-formed signed callback makes PostgreSQL refuse a write by
  itself: the test adds a NOT VALID CHECK constraint on call_events refusing
  three random CallSids for its duration (dropped afterwards) — a real
  statement-time refusal inside whatever batch the event lands in — and also
  sends SequenceNumber=2^31, which the C side must refuse with 400;
- with Twilio taking 10 s to answer POST Calls.json (a fake Twilio thread
  here), a master with VOICE_CALL_WORKERS=1 and VOICE_CALL_THREADS=8 keeps
  answering GET /calls and /readyz in under 2 s while 6 slow POST /call are
  in flight in its one worker;
- a stack webhook worker SIGKILLed under load is replaced within a few
  seconds, and every callback that was answered 2xx is in PostgreSQL;
- SIGTERM to a master with 4 POST /call in flight (Twilio taking 3 s): all 4
  answered 201, the master exits 0 within the bound, no worker left;
- VOICE_*_DB_CONNECTIONS holds under 200 concurrent requests (webhook master:
  1 worker, cap 3; call master: 2 workers, cap 4): the master's and its
  workers' ESTABLISHED TCP connections to PostgreSQL (their socket inodes in
  /proc/net/tcp), sampled all along, and pg_stat_activity by an
  application_name the test gives the master, never exceed the cap; every
  request answered 2xx;
- a spool of 20,000 event records (5,000 calls x 4 events, in shuffled order)
  written into a webhook master's spool before it starts drains completely:
  exactly those 20,000 events stored, every call completed, nothing rejected;
- a batch of callbacks joined into one statement (common/db.c,
  STMT_EVENTS_RECORD) ends where the same callbacks sent one at a time
  (STMT_EVENT_RECORD each) end: the same deliveries, in the same order, for
  two sets of calls, one set sent one by one through nginx, the other
  written into a private webhook master's spool and replayed as one batch;
  the calls rows (status, sequence number, AnsweredBy, duration, SIP code)
  and the stored events must match call for call. The deliveries mix
  redeliveries (same token, or none), statuses out of order, AnsweredBy and
  CallDuration on several events of a call, and calls that exist before
  the batch, with a higher status or a lower one;
- connections kept open FastCGI-style (FCGI_KEEP_CONN, as nginx's
  fastcgi_keep_conn sends) hold no thread while idle: a call master with one
  worker of 2 threads keeps 5 of them open, serves a fresh connection
  promptly beside them and the next request on each; after SIGTERM it still
  answers a request sent on one (then closes it), waits for the others,
  and once the client closed all but one, exits 0 when its 10 s wait for
  that last one is over (and closes it); and through the stack's nginx,
  requests leave connections to the webhook pool open behind them.

Every process started here is stopped by its PID (private masters by
harness.private_worker, which also kills workers a master left behind).
Timings are printed; bounds are generous for an ASan build, except the
runtime's own promises (< 2 s while Twilio is slow, replacement within a few
seconds).
"""

import concurrent.futures
import errno
import http.client
import http.server
import json
import os
import random
import re
import secrets
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check  # noqa: E402

FORM = "application/x-www-form-urlencoded"
REQUEST_TIMEOUT = 30        # seconds per request

# 1. concurrent, shuffled, poisoned
SHUFFLE_CALLS = 40
SHUFFLE_SAME_TOKEN = 40     # redeliveries with the same idempotency token
SHUFFLE_OTHER = 20          # the same event without a token or with another one
SHUFFLE_THREADS = 24
SHUFFLE_POISONED = 3
SHUFFLE_DEADLINE = 180
# 2. slow Twilio
SLOW_TWILIO_S = 10
SLOW_POSTS = 6
PROMPT_S = 2.0
# 3. SIGKILL under load
KILL_THREADS = 8
KILL_WARMUP_S = 2.0
KILL_AFTER_S = 3.0          # load kept up after the replacement appeared
REPLACE_BOUND_S = 5.0       # the contract says 1 s; "a few seconds" here
KILL_GRACE_S = 1.0          # after the replacement, every callback must be 204 again
# 4. SIGTERM drains
TERM_TWILIO_S = 3
TERM_POSTS = 4
TERM_BOUND_S = 30
# 5. connection cap
CAP_REQUESTS = 200
# 6. spool drain
SPOOL_CALLS = 5000          # x 4 events = 20,000 records
SPOOL_DRAIN_BOUND_S = 240
# 7. a joined batch against one callback at a time
JOIN_CALLS = 12             # their deliveries: one spool batch (at most DB_MAX_BATCH, 64)
# 8. kept connections
KEPT_THREADS = 2
KEPT_CONNS = 5              # idle kept connections: more than the threads
KEPT_WAIT_S = 10.0          # a stopping worker waits this long for them (server.c)

STATE = {"secret": None, "key_name": None, "tmp_dirs": []}


# ---------------------------------------------------------------- helpers --

def run_prefix():
    """12 hex digits: CallSids of one test share them, so the test's rows
    are found by prefix (no list of thousands of SIDs on a command line)."""
    return secrets.token_hex(6)


def new_sid(prefix):
    return "CA" + prefix + secrets.token_hex(10)


def like(prefix):
    return "CA" + prefix + "%"


def new_token():
    return secrets.token_hex(16) + "-" + secrets.token_hex(8)


def callback_params(sid, status, seq=None, **extra):
    """A status callback's parameters as Twilio sends them."""
    p = [
        ("AccountSid", h.env()["TWILIO_ACCOUNT_SID"]),
        ("ApiVersion", "2010-04-01"),
        ("CallSid", sid),
        ("CallStatus", status),
        ("Called", "+14155550199"),
        ("Caller", "+14155550100"),
        ("Direction", "outbound-api"),
        ("From", "+14155550100"),
        ("To", "+14155550199"),
        ("CallbackSource", "call-progress-events"),
        ("Timestamp", time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())),
    ]
    if seq is not None:
        p.append(("SequenceNumber", str(seq)))
    p.extend(extra.items())
    return p


def signed(params, path="/twilio/webhook"):
    """(form body, X-Twilio-Signature) for a POST of params to path."""
    url = h.env()["PUBLIC_BASE_URL"] + path
    return urllib.parse.urlencode(params), h.twilio_signature(url, params)


def call_lifecycle(sid, final="completed", duration=5):
    """The four status callbacks of one call, sequence numbers 0..3."""
    out = []
    for seq, status in enumerate(("initiated", "ringing", "in-progress", final)):
        extra = {"CallDuration": str(duration)} if seq == 3 else {}
        out.append(callback_params(sid, status, seq, **extra))
    return out


class Conn:
    """A keep-alive HTTPS connection to nginx for one thread. request()
    returns (status, body); a reused connection that nginx closed before our
    request reached it is reopened once (that resend is a duplicate delivery,
    which the service absorbs)."""

    def __init__(self):
        self.c = None

    def request(self, method, path, body, headers):
        for attempt in (0, 1):
            fresh = self.c is None
            if fresh:
                self.c = http.client.HTTPSConnection(
                    "127.0.0.1", int(h.env()["VOICE_HTTPS_PORT"]), timeout=REQUEST_TIMEOUT,
                    context=h.tls_context())
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


def post_webhook(conn, body, sig, token):
    headers = {"Content-Type": FORM, "X-Twilio-Signature": sig}
    if token is not None:
        headers["I-Twilio-Idempotency-Token"] = token
    try:
        return conn.request("POST", "/twilio/webhook", body, headers)
    except (OSError, http.client.HTTPException) as ex:
        conn.close()
        return None, repr(ex).encode()


def fcgi_retry(sock_path, method, path, body=b"", headers=None, timeout=60):
    """harness.fcgi, with a connect that found the listen queue full
    (EAGAIN on a unix socket: nothing was sent) tried again, bounded."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return h.fcgi(sock_path, method, path, body, headers, timeout=timeout)
        except BlockingIOError:
            pass
        except OSError as ex:
            if ex.errno != errno.EAGAIN:
                raise
        if time.monotonic() >= deadline:
            raise h.TestFailure(f"could not connect to {sock_path} within {timeout}s (queue full)")
        time.sleep(0.01)


def fcgi_callback(sock_path, params, token=None):
    body, sig = signed(params)
    hdrs = {"CONTENT_TYPE": FORM, "HTTP_X_TWILIO_SIGNATURE": sig}
    if token is not None:
        hdrs["HTTP_I_TWILIO_IDEMPOTENCY_TOKEN"] = token
    return fcgi_retry(sock_path, "POST", "/twilio/webhook", body.encode(), hdrs)


def api_headers():
    return {"HTTP_AUTHORIZATION": f"Bearer {STATE['secret']}"}


def post_call_body(to):
    return json.dumps({"to": to}).encode()


def run_threads(fns, bound, what):
    """Runs each fn in its own thread; returns their results (an exception
    is returned as the result). Fails if any is still running after bound
    seconds."""
    results = [None] * len(fns)

    def one(i, fn):
        try:
            results[i] = fn()
        except Exception as ex:  # reported by the caller
            results[i] = ex

    threads = [threading.Thread(target=one, args=(i, fn), daemon=True) for i, fn in enumerate(fns)]
    for t in threads:
        t.start()
    return threads, results, lambda: _join(threads, results, bound, what)


def _join(threads, results, bound, what):
    deadline = time.monotonic() + bound
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    alive = sum(t.is_alive() for t in threads)
    check(not alive, f"{what}: {alive} of {len(threads)} requests still running after {bound}s")
    return results


def status_of(r):
    return r.status if isinstance(r, h.Response) else r


def events_by_prefix(prefix):
    return h.psql("SELECT call_sid, status, sequence_number::text,"
                  " coalesce(idempotency_token, '') FROM call_events WHERE call_sid LIKE :'p'",
                  p=like(prefix))


def calls_by_prefix(prefix):
    rows = h.psql("SELECT call_sid, status, coalesce(sequence_number::text, '') FROM calls"
                  " WHERE call_sid LIKE :'p'", p=like(prefix))
    return {r[0]: (r[1], r[2]) for r in rows}


def check_private_log_clean(log_path, what):
    with open(log_path, encoding="utf-8", errors="replace") as f:
        lines = f.read().splitlines()
    bad = [x for x in lines if "Sanitizer" in x or "runtime error" in x]
    check(not bad, f"{what}: the private master's log has sanitizer reports: {bad[:5]!r}")


# A fake Twilio that holds its Calls.json answers ------------------------------

class FakeTwilio:
    """A loopback HTTP server answering POST …/Calls.json with a valid
    Twilio Call resource (201) after delay seconds (cut short on exit).
    Records arrival and answer times."""

    def __init__(self, delay):
        self.delay = delay
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.arrived, self.answered = [], []
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                params = dict(urllib.parse.parse_qsl(self.rfile.read(n).decode("utf-8")))
                with fake.lock:
                    fake.arrived.append(time.monotonic())
                fake.release.wait(fake.delay)
                m = re.search(r"/Accounts/(AC[0-9a-fA-F]{32})/Calls\.json$", self.path)
                if m is None:
                    self._send(404, {"code": 20404, "message": "not found", "status": 404})
                    return
                sid = "CA" + secrets.token_hex(16)
                now = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())
                self._send(201, {
                    "sid": sid, "account_sid": m.group(1), "status": "queued",
                    "direction": "outbound-api", "to": params.get("To", ""),
                    "from": params.get("From", ""), "date_created": now, "date_updated": now,
                    "api_version": "2010-04-01",
                    "uri": f"/2010-04-01/Accounts/{m.group(1)}/Calls/{sid}.json"})
                with fake.lock:
                    fake.answered.append(time.monotonic())

            def _send(self, status, doc):
                body = json.dumps(doc).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client gave up

            def log_message(self, *args):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.srv.daemon_threads = True
        self.thread = threading.Thread(target=self.srv.serve_forever,
                                       kwargs={"poll_interval": 0.1}, daemon=True)

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.srv.server_address[1]}"

    def counts(self):
        with self.lock:
            return len(self.arrived), len(self.answered)

    def wait_arrived(self, n, bound, what):
        """Waits until n requests are held here at once (bounded)."""
        deadline = time.monotonic() + bound
        while self.counts()[0] < n and time.monotonic() < deadline:
            time.sleep(0.02)
        arrived, answered = self.counts()
        check(arrived >= n, f"{what}: only {arrived} of {n} reached Twilio within {bound}s "
                            f"({answered} answered): the worker does not serve them at once")

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.srv.shutdown()
        self.srv.server_close()
        self.thread.join(10)


def private(label, overrides, pool="call"):
    """harness.private_worker in a temporary directory kept until teardown
    (so its log can be read after the master stopped)."""
    tmp = tempfile.mkdtemp(prefix="runtimetest-")
    STATE["tmp_dirs"].append(tmp)
    return h.private_worker(tmp, label, overrides, pool=pool)


def call_worker_env(fake, workers, threads):
    return {"TWILIO_API_BASE_URL": fake.base_url, "TWILIO_TIMEOUT_MS": "30000",
            "VOICE_CALL_WORKERS": str(workers), "VOICE_CALL_THREADS": str(threads)}


def wait_children(master, n, what):
    return h.wait_until(lambda: (lambda k: k if len(k) == n else None)(h.children(master)),
                        15, f"{what}: {n} worker(s) forked by master {master}"
                        f" (has {h.children(master)})")


# PostgreSQL connections of a process tree ------------------------------------

def pg_port():
    url = h.env()["DATABASE_URL"]
    if re.match(r"^postgres(ql)?://", url):
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        q = dict(urllib.parse.parse_qsl(parts.query))
        if host.startswith("/") or (not host and "host" in q and q["host"].startswith("/")):
            return None
        return int(q.get("port") or parts.port or 5432)
    m = re.search(r"\bport\s*=\s*(\d+)", url)
    hm = re.search(r"\bhost\s*=\s*(\S+)", url)
    if hm and hm.group(1).startswith("/"):
        return None
    return int(m.group(1)) if m else 5432


# Runs as its own process (not a thread here: 200 request threads hold the
# GIL and would thin out the samples). argv: master PID, PostgreSQL port.
# Samples until its stdin closes, then prints {"max", "at", "samples"}.
SAMPLER = r"""
import json, os, select, sys

master, port = int(sys.argv[1]), int(sys.argv[2])


def children(pid):
    kids = set()
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                kids.update(int(x) for x in f.read().split())
        except OSError:
            pass
    return kids


def inodes():
    # ESTABLISHED (01) TCP connections whose remote port is PostgreSQL's
    out = set()
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    p = line.split()
                    if len(p) >= 10 and p[3] == "01" and int(p[2].rsplit(":", 1)[1], 16) == port:
                        out.add(p[9])
        except OSError:
            pass
    return out


def sample():
    ino, per, todo = inodes(), {}, [master]
    while todo:
        pid = todo.pop()
        todo.extend(children(pid))
        n = 0
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:[") and link[8:-1] in ino:
                n += 1
        per[pid] = n
    return per


best, at, samples = -1, {}, 0
while True:
    per = sample()
    samples += 1
    if sum(per.values()) > best:
        best, at = sum(per.values()), per
    if select.select([sys.stdin], [], [], 0.005)[0]:
        break
print(json.dumps({"max": best, "at": at, "samples": samples}), flush=True)
"""


class ConnSampler:
    """Samples the master tree's PostgreSQL connections (a sampler process
    reading /proc, every few ms) and pg_stat_activity rows with
    application_name app (every ~150 ms, a thread here) until stopped; keeps
    the maxima."""

    def __init__(self, master, port, app):
        self.master, self.port, self.app = master, port, app
        self.stop = threading.Event()
        self.proc_max, self.proc_max_at, self.proc_samples = 0, {}, 0
        self.pg_max, self.pg_samples, self.pg_errors = 0, 0, []
        self.thread = threading.Thread(target=self._pg, daemon=True)
        self.proc = None

    def _pg(self):
        while not self.stop.is_set():
            try:
                rows = h.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = :'a'",
                              timeout=10, a=self.app)
                self.pg_max = max(self.pg_max, int(rows[0][0]))
                self.pg_samples += 1
            except (h.TestFailure, OSError, ValueError) as ex:
                self.pg_errors.append(str(ex))
            self.stop.wait(0.15)

    def __enter__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", SAMPLER, str(self.master),
                                      str(self.port)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(15)
        try:
            out, _ = self.proc.communicate("stop\n", timeout=15)
            doc = json.loads(out)
            self.proc_max, self.proc_samples = doc["max"], doc["samples"]
            self.proc_max_at = {int(k): v for k, v in doc["at"].items()}
        except (subprocess.TimeoutExpired, ValueError, KeyError) as ex:
            self.proc.kill()   # the sampler we started, by its PID
            self.proc.wait(10)
            raise h.TestFailure(f"the connection sampler failed: {ex!r}")


def database_url_with_app(app):
    url = h.env()["DATABASE_URL"]
    if re.match(r"^postgres(ql)?://", url):
        return url + ("&" if "?" in url else "?") + "application_name=" + app
    return url + " application_name=" + app


# ------------------------------------------------------------------ checks --

def setup_api_key():
    name = h.unique_name("runtimetest")
    STATE["secret"] = h.key_create(name)
    STATE["key_name"] = name
    r = h.get("/readyz")
    check(r.status == 200, f"/readyz before the tests: {r!r}")


def reload_stack_webhook_workers():
    """SIGHUP to the stack's webhook master (graceful replacement of its
    workers); waits, bounded, until none of the old workers serves."""
    masters = h.master_pids("webhook")
    old = set(w for m in masters for w in h.children(m))
    for m in masters:
        os.kill(m, signal.SIGHUP)
    try:
        h.wait_until(lambda: not old & set(w for m in masters for w in h.children(m)), 30,
                     "the stack's webhook workers to be replaced after SIGHUP")
        print(f"     (the stack's webhook workers {sorted(old)} were replaced by SIGHUP)",
              flush=True)
    except h.TestFailure as ex:
        print(f"     (could not replace the stack's webhook workers: {ex})", flush=True)


@h.test
def concurrent_shuffled_callbacks_with_poisoned_events():
    rng = random.Random(secrets.randbits(64))
    prefix = run_prefix()
    finals = ("completed", "busy", "no-answer", "failed")
    truth, deliveries = {}, []      # deliveries: (params, token)
    for _ in range(SHUFFLE_CALLS):
        sid = new_sid(prefix)
        truth[sid] = rng.choice(finals)
        for params in call_lifecycle(sid, truth[sid], rng.randint(0, 600)):
            deliveries.append((params, new_token()))
    distinct = len(deliveries)
    extra = [rng.choice(deliveries) for _ in range(SHUFFLE_SAME_TOKEN)]
    for _ in range(SHUFFLE_OTHER):
        params, _ = rng.choice(deliveries)
        extra.append((params, rng.choice((None, new_token()))))
    # calls in random order, each call's deliveries (duplicates included)
    # shuffled and next to each other: 24 threads race on the same call
    per_call = {}
    for params, tok in deliveries + extra:
        per_call.setdefault(dict(params)["CallSid"], []).append((params, tok))
    order = list(per_call)
    rng.shuffle(order)
    sends = []   # (kind, params, token): kind good / poison / invalid
    for sid in order:
        rng.shuffle(per_call[sid])
        sends.extend(("good", p, t) for p, t in per_call[sid])
    poison_sids = [new_sid(prefix) for _ in range(SHUFFLE_POISONED)]
    bad = [("poison", callback_params(s, "ringing", 1), new_token()) for s in poison_sids]
    invalid_sid = new_sid(prefix)
    # over the integer column's range: the C side must refuse it itself
    bad.append(("invalid", callback_params(invalid_sid, "ringing", 2 ** 31), new_token()))
    for item in bad:   # among the others, not at the edges
        sends.insert(rng.randint(len(sends) // 4, 3 * len(sends) // 4), item)
    prepared = [(kind, dict(p)["CallSid"], *signed(p), t) for kind, p, t in sends]

    constraint = "runtime_test_poison_" + secrets.token_hex(4)
    refused = ", ".join(f"'{s}'" for s in poison_sids)   # hex only: safe to inline
    h.psql(f"SET lock_timeout = '10s'; ALTER TABLE call_events ADD CONSTRAINT {constraint}"
           f" CHECK (call_sid NOT IN ({refused})) NOT VALID")
    local = threading.local()
    conns, conns_lock = [], threading.Lock()

    def deliver(item):
        _, _, body, sig, tok = item
        c = getattr(local, "conn", None)
        if c is None:
            c = local.conn = Conn()
            with conns_lock:
                conns.append(c)
        return post_webhook(c, body, sig, tok)

    answers = []
    t0 = time.monotonic()
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=SHUFFLE_THREADS)
    try:
        futures = [pool.submit(deliver, item) for item in prepared]
        done, not_done = concurrent.futures.wait(futures, timeout=SHUFFLE_DEADLINE)
        for f in not_done:
            f.cancel()
        check(not not_done, f"{len(not_done)} of {len(futures)} callbacks not answered within "
                            f"{SHUFFLE_DEADLINE}s")
        answers = [f.result() for f in futures]
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        for c in conns:
            c.close()
        h.psql(f"SET lock_timeout = '30s'; ALTER TABLE call_events DROP CONSTRAINT IF EXISTS"
               f" {constraint}")
    wall = time.monotonic() - t0
    tally = {}
    for (kind, *_), (status, _) in zip(prepared, answers):
        tally[(kind, status)] = tally.get((kind, status), 0) + 1
    print(f"     {len(prepared)} callbacks ({distinct} distinct, {len(extra)} duplicates, "
          f"{len(bad)} bad) for {SHUFFLE_CALLS} calls from {SHUFFLE_THREADS} threads in "
          f"{wall:.2f}s; answers {dict(sorted(tally.items(), key=str))}", flush=True)

    wrong_good = [(sid, st, b[:160]) for (kind, sid, *_), (st, b) in zip(prepared, answers)
                  if kind == "good" and st != 204]
    if wrong_good:
        # a worker may be left damaged (e.g. a connection stuck in a failed
        # transaction): give the files after this one fresh workers
        reload_stack_webhook_workers()
    check(not wrong_good, f"{len(wrong_good)} good callbacks not answered 204, e.g. "
                          f"{wrong_good[:3]}")
    wrong_bad = [(kind, sid, st, b[:160]) for (kind, sid, *_), (st, b) in zip(prepared, answers)
                 if kind != "good" and (st is None or 200 <= st < 300
                                        or (kind == "invalid" and st != 400))]
    check(not wrong_bad, f"bad callbacks answered as if stored (or not 400 for the invalid one): "
                         f"{wrong_bad}")

    got = calls_by_prefix(prefix)
    for sid in poison_sids + [invalid_sid]:
        check(sid not in got, f"a calls row was stored for the refused callback {sid}")
    ev = events_by_prefix(prefix)
    stray = [r for r in ev if r[0] not in truth]
    check(not stray, f"event rows stored for refused callbacks: {stray}")
    check(len(got) == SHUFFLE_CALLS, f"{len(got)} calls rows, want {SHUFFLE_CALLS}")
    wrong = [(s, got.get(s), truth[s]) for s in truth if got.get(s) != (truth[s], "3")]
    check(not wrong, f"{len(wrong)} calls not in their true final status, e.g. {wrong[:3]}")
    keys = [(r[0], r[1], r[2]) for r in ev]
    check(len(keys) == distinct and len(set(keys)) == distinct,
          f"call_events holds {len(keys)} rows ({len(set(keys))} distinct), want {distinct}")
    sent = {}
    for kind, p, t in sends:
        d = dict(p)
        sent.setdefault((d["CallSid"], d["CallStatus"], d["SequenceNumber"]), set()).add(t or "")
    odd = [r for r in ev if r[3] not in sent.get((r[0], r[1], r[2]), set())]
    check(not odd, f"{len(odd)} event rows with a token never sent for them: {odd[:3]}")


@h.test
def slow_twilio_does_not_block_reads():
    with FakeTwilio(SLOW_TWILIO_S) as fake, \
            private("slowtwilio", call_worker_env(fake, 1, 8)) as (sock, log, p):
        try:
            workers = wait_children(p.pid, 1, "VOICE_CALL_WORKERS=1")
            r = fcgi_retry(sock, "GET", "/readyz")
            check(r.status == 200, f"/readyz before the slow calls: {r!r}")
            tos = [f"+1415555015{i}" for i in range(SLOW_POSTS)]
            _, results, join = run_threads(
                [lambda to=to: h.fcgi(sock, "POST", "/call", post_call_body(to),
                                      dict(api_headers(), CONTENT_TYPE="application/json"),
                                      timeout=60) for to in tos],
                SLOW_TWILIO_S + 50, "slow POST /call")
            t0 = time.monotonic()
            fake.wait_arrived(SLOW_POSTS, SLOW_TWILIO_S - 4, "slow POST /call")
            spread = time.monotonic() - t0
            probes = []
            for i in range(3):
                for what, path, hdrs in (("GET /calls", "/calls?limit=5", api_headers()),
                                         ("GET /readyz", "/readyz", None)):
                    t = time.monotonic()
                    r = h.fcgi(sock, "GET", path, b"", hdrs, timeout=SLOW_TWILIO_S + 20)
                    dt = time.monotonic() - t
                    probes.append((what, r.status, dt, fake.counts()))
            print(f"     {SLOW_POSTS} POST /call in flight at Twilio {spread:.2f}s after the "
                  f"first was sent; probes (what, status, seconds, (at Twilio, answered)): "
                  + ", ".join(f"({w}, {s}, {d:.3f}, {c})" for w, s, d, c in probes), flush=True)
            for what, status, dt, (arrived, answered) in probes:
                check(status == 200, f"{what} while Twilio is slow: {status}")
                check(dt < PROMPT_S, f"{what} took {dt:.2f}s while {SLOW_POSTS} POST /call wait "
                                     f"for Twilio (want < {PROMPT_S}s)")
                check(answered == 0 and arrived >= SLOW_POSTS,
                      f"{what} did not run while all {SLOW_POSTS} POST /call were held "
                      f"(at Twilio {arrived}, answered {answered}): the check proves nothing")
            results = join()
            bad = [r if not isinstance(r, h.Response) else (r.status, r.body[:160])
                   for r in results if status_of(r) != 201]
            check(not bad, f"slow POST /call not all 201: {bad}")
            check(h.children(p.pid) == workers,
                  f"the worker changed during the test: {workers} -> {h.children(p.pid)}")
        finally:
            fake.release.set()
    check_private_log_clean(log, "slow Twilio")


@h.test
def killed_webhook_worker_is_replaced_and_nothing_acknowledged_is_lost():
    masters = h.master_pids("webhook")
    check(len(masters) == 1, f"webhook.pid holds {masters}, want the master's PID alone")
    master = masters[0]
    before = h.children(master)
    check(before, f"the webhook master {master} has no worker children")
    victim = random.choice(before)
    prefix = run_prefix()
    stop = threading.Event()
    log, log_lock = [], threading.Lock()    # (token, status, time)

    def load():
        c = Conn()
        try:
            while not stop.is_set():
                sid = new_sid(prefix)
                for params in call_lifecycle(sid):
                    tok = new_token()
                    body, sig = signed(params)
                    status, _ = post_webhook(c, body, sig, tok)
                    with log_lock:
                        log.append((tok, status, time.monotonic()))
                    if stop.is_set():
                        break
        finally:
            c.close()

    threads = [threading.Thread(target=load, daemon=True) for _ in range(KILL_THREADS)]
    for t in threads:
        t.start()
    try:
        time.sleep(KILL_WARMUP_S)
        t_kill = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        new = h.wait_until(
            lambda: (lambda k: sorted(set(k) - set(before)) if victim not in k
                     and len(k) == len(before) else None)(h.children(master)),
            REPLACE_BOUND_S + 10, f"a new worker in place of the killed {victim}",
            interval=0.02)
        replaced = time.monotonic() - t_kill
        time.sleep(KILL_AFTER_S)
    finally:
        stop.set()
        for t in threads:
            t.join(REQUEST_TIMEOUT + 10)
    check(not any(t.is_alive() for t in threads), "the load threads did not stop")
    check(not h.pid_alive(victim), f"the SIGKILLed worker {victim} is still alive")
    after = h.children(master)
    tally = {}
    for _, st, _ in log:
        tally[st] = tally.get(st, 0) + 1
    late_ok = sum(1 for _, st, t in log if st == 204 and t > t_kill + replaced)
    print(f"     killed {victim} of {before}; replaced by {new} after {replaced:.2f}s; "
          f"{len(log)} callbacks from {KILL_THREADS} threads, answers {tally}; "
          f"{late_ok} answered 204 after the replacement", flush=True)
    check(replaced <= REPLACE_BOUND_S, f"the killed worker was replaced after {replaced:.2f}s "
                                       f"(want <= {REPLACE_BOUND_S}s; the contract says 1 s)")
    check(len(after) == len(before), f"workers after the kill: {after}, before: {before}")
    check(late_ok > 0, "no callback was answered 204 after the replacement")
    # Only requests around the kill may fail: before it, and once the new
    # worker has had a second, the pool answers every callback 204.
    healthy = [(st, round(t - t_kill, 2)) for _, st, t in log
               if st != 204 and (t < t_kill or t > t_kill + replaced + KILL_GRACE_S)]
    check(not healthy, f"{len(healthy)} callbacks outside the kill window (before it, or more "
                       f"than {KILL_GRACE_S}s after the replacement) not answered 204, e.g. "
                       f"(status, seconds after the kill) {healthy[:5]}")
    acked = {tok for tok, st, _ in log if st is not None and 200 <= st < 300}

    def missing():
        stored = {r[3] for r in events_by_prefix(prefix)}
        return sorted(acked - stored)

    lost = missing()
    if lost:   # a 2xx may only stand for a spooled record: give replay a bound
        try:
            h.wait_until(lambda: not missing(), 30, "acknowledged callbacks to reach PostgreSQL",
                         interval=1)
        except h.TestFailure:
            pass
        lost = missing()
    check(not lost, f"{len(lost)} of {len(acked)} callbacks answered 2xx are not in "
                    f"PostgreSQL, e.g. tokens {lost[:3]}")


@h.test
def sigterm_finishes_requests_in_flight():
    with FakeTwilio(TERM_TWILIO_S) as fake, \
            private("sigterm", call_worker_env(fake, 2, 8)) as (sock, log, p):
        workers = wait_children(p.pid, 2, "VOICE_CALL_WORKERS=2")
        # every worker's database connection and API key check warmed up
        _, warm, join = run_threads([lambda: fcgi_retry(sock, "GET", "/calls?limit=1", b"",
                                                        api_headers()) for _ in range(8)],
                                    60, "warm-up GET /calls")
        check(all(status_of(r) == 200 for r in join()), f"warm-up GET /calls: {warm}")
        tos = [f"+1415555016{i}" for i in range(TERM_POSTS)]
        _, results, join = run_threads(
            [lambda to=to: h.fcgi(sock, "POST", "/call", post_call_body(to),
                                  dict(api_headers(), CONTENT_TYPE="application/json"),
                                  timeout=TERM_BOUND_S + 10) for to in tos],
            TERM_BOUND_S + 20, "POST /call across SIGTERM")
        try:
            fake.wait_arrived(TERM_POSTS, TERM_TWILIO_S - 0.5, "POST /call before SIGTERM")
            check(fake.counts()[1] == 0, "Twilio answered before SIGTERM: nothing in flight")
            t_term = time.monotonic()
            p.send_signal(signal.SIGTERM)   # the master we started, by its PID
            try:
                rc = p.wait(timeout=TERM_BOUND_S)
            except Exception:
                rc = None
            exited = time.monotonic() - t_term
            results = join()
        finally:
            fake.release.set()
            for k in workers:   # workers the master left behind, by PID
                if h.pid_alive(k):
                    os.kill(k, signal.SIGKILL)
    statuses = [status_of(r) for r in results]
    print(f"     SIGTERM with {TERM_POSTS} POST /call in flight: answers {statuses}; master "
          f"exited {rc} after {exited:.2f}s", flush=True)
    check(rc is not None, f"the master did not exit within {TERM_BOUND_S}s of SIGTERM")
    check(rc == 0, f"the master exited {rc} after SIGTERM, want 0")
    bad = [r if not isinstance(r, h.Response) else (r.status, r.body[:160])
           for r in results if status_of(r) != 201]
    check(not bad, f"requests in flight at SIGTERM not answered 201: {bad}")
    left = [k for k in workers if h.pid_alive(k)]
    check(not left, f"workers {left} outlived their master")
    check_private_log_clean(log, "SIGTERM")


def cap_holds(pool, workers, cap, request):
    """200 concurrent requests (request(sock, i) -> Response) to a private
    master of pool with the given workers and connection cap; samples its
    PostgreSQL connections throughout. Returns the responses."""
    port = pg_port()
    app = "runtime-cap-" + secrets.token_hex(4)
    up = pool.upper()
    overrides = {f"VOICE_{up}_WORKERS": str(workers), f"VOICE_{up}_DB_CONNECTIONS": str(cap),
                 "DATABASE_URL": database_url_with_app(app)}
    with private(f"{pool}-cap{cap}", overrides, pool=pool) as (sock, log, p):
        wait_children(p.pid, workers, f"VOICE_{up}_WORKERS={workers}")
        barrier = threading.Barrier(CAP_REQUESTS, timeout=60)

        def one(i):
            barrier.wait()
            return request(sock, i)

        with ConnSampler(p.pid, port, app) as sampler:
            t0 = time.monotonic()
            _, results, join = run_threads([lambda i=i: one(i) for i in range(CAP_REQUESTS)],
                                           120, f"{CAP_REQUESTS} concurrent requests")
            results = join()
            wall = time.monotonic() - t0
            time.sleep(0.3)   # a last sample or two with the pool settled
        check_private_log_clean(log, f"{pool} cap {cap}")
    statuses = {}
    for r in results:
        statuses[status_of(r) if isinstance(r, h.Response) else type(r).__name__] = \
            statuses.get(status_of(r) if isinstance(r, h.Response) else type(r).__name__, 0) + 1
    print(f"     {pool}: {workers} worker(s), cap {cap}: {CAP_REQUESTS} requests in {wall:.2f}s, "
          f"answers {statuses}; PostgreSQL connections at most {sampler.proc_max} by /proc "
          f"({sampler.proc_samples} samples, at the max {sampler.proc_max_at}) and "
          f"{sampler.pg_max} by pg_stat_activity ({sampler.pg_samples} samples)", flush=True)
    check(sampler.proc_max <= cap, f"{pool}: {sampler.proc_max} connections to PostgreSQL at "
                                   f"once ({sampler.proc_max_at}), cap {cap}")
    check(sampler.pg_max <= cap, f"{pool}: pg_stat_activity showed {sampler.pg_max} backends "
                                 f"of the master, cap {cap}")
    check(sampler.proc_max >= 1 or sampler.pg_max >= 1,
          f"{pool}: no connection to PostgreSQL was ever seen: the sampler is blind "
          f"(port {port}, pg errors {sampler.pg_errors[:2]})")
    bad = [r if not isinstance(r, h.Response) else (r.status, r.body[:160])
           for r in results if not (isinstance(r, h.Response) and 200 <= r.status < 300)]
    check(not bad, f"{pool}: {len(bad)} of {CAP_REQUESTS} requests not answered 2xx, "
                   f"e.g. {bad[:3]}")
    return results


@h.test
def db_connection_cap_holds_under_200_concurrent_requests():
    check(pg_port() is not None, "DATABASE_URL is not TCP: this check counts TCP connections")
    prefix = run_prefix()
    sids = [new_sid(prefix) for _ in range(CAP_REQUESTS)]
    cap_holds("webhook", 1, 3, lambda sock, i: fcgi_callback(
        sock, callback_params(sids[i], "ringing", 1), new_token()))
    got = calls_by_prefix(prefix)
    check(len(got) == CAP_REQUESTS and len(events_by_prefix(prefix)) == CAP_REQUESTS,
          f"webhook cap: {len(got)} calls stored, want {CAP_REQUESTS}")
    cap_holds("call", 2, 4, lambda sock, i: fcgi_retry(
        sock, "GET", "/calls?limit=5", b"", api_headers()))


def write_spool(spool, records):
    """Writes records (JSON-able) as spool files the way common/spool.c
    does: `%020lld-<pid>-<counter>.rec`, written under a dot name and
    renamed, names sorting in list order."""
    os.makedirs(spool, mode=0o700, exist_ok=True)
    base = time.time_ns() - 3600 * 10 ** 9   # an hour ago: older than anything new
    pid = os.getpid()
    for i, rec in enumerate(records):
        name = f"{base + i * 1000:020d}-{pid}-{i}.rec"
        tmp = os.path.join(spool, f".tmp-{pid}-{name}")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(rec, f, separators=(",", ":"))
        os.rename(tmp, os.path.join(spool, name))


def spool_left(spool):
    """Records not yet replayed: *.rec, and claimed ones
    (*.rec.<pid>.<start>@<host>, or an older version's *.rec.<pid>)."""
    try:
        names = os.listdir(spool)
    except FileNotFoundError:
        return 0
    return sum(1 for n in names if not n.startswith(".") and (n.endswith(".rec") or ".rec." in n))


@h.test
def spool_of_20000_records_drains():
    rng = random.Random(secrets.randbits(64))
    prefix = run_prefix()
    records, sids = [], []
    for _ in range(SPOOL_CALLS):
        sid = new_sid(prefix)
        sids.append(sid)
        for params in call_lifecycle(sid):
            records.append({"kind": "event", "token": "rt6-" + new_token(),
                            "body": urllib.parse.urlencode(params)})
    rng.shuffle(records)   # replayed in name order: events of a call out of order
    total = len(records)
    label = "spool"
    tmp = tempfile.mkdtemp(prefix="runtimetest-")
    try:
        spool = os.path.join(tmp, f"spool-{label}")   # harness.private_worker's spool
        t = time.monotonic()
        write_spool(spool, records)
        print(f"     wrote {total} spool records in {time.monotonic() - t:.1f}s", flush=True)
        with h.private_worker(tmp, label, {}, pool="webhook") as (sock, log, p):
            t0 = time.monotonic()
            last = [total, t0]

            def drained():
                n = spool_left(spool)
                if n != last[0]:
                    last[0], last[1] = n, time.monotonic()
                check(p.poll() is None, f"the webhook master exited {p.returncode} while draining")
                return n == 0

            try:
                h.wait_until(drained, SPOOL_DRAIN_BOUND_S, f"the spool of {total} to drain",
                             interval=0.5)
            except h.TestFailure:
                raise h.TestFailure(f"{spool_left(spool)} of {total} records still spooled after "
                                    f"{SPOOL_DRAIN_BOUND_S}s (the master: "
                                    f"{'running' if p.poll() is None else 'exited %s' % p.returncode}"
                                    f"; last progress {time.monotonic() - last[1]:.0f}s ago)")
            took = time.monotonic() - t0
            r = fcgi_retry(sock, "GET", "/readyz")
            check(r.status == 200, f"/readyz after draining: {r!r}")
        check_private_log_clean(log, "spool drain")
        rejected = os.path.join(spool, "rejected")
        rej = os.listdir(rejected) if os.path.isdir(rejected) else []
        print(f"     {total} records drained in {took:.1f}s ({total / max(took, 0.001):.0f}/s); "
              f"{len(rej)} rejected", flush=True)
        check(not rej, f"{len(rej)} spooled records were rejected, e.g. {rej[:3]}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rows = h.psql("SELECT count(*), count(DISTINCT idempotency_token),"
                  " count(DISTINCT (call_sid, status, sequence_number)),"
                  " count(*) FILTER (WHERE idempotency_token NOT LIKE 'rt6-%')"
                  " FROM call_events WHERE call_sid LIKE :'p'", p=like(prefix))
    n, n_tok, n_ev, foreign = (int(x) for x in rows[0])
    check((n, n_tok, n_ev, foreign) == (total, total, total, 0),
          f"call_events: {n} rows, {n_tok} tokens, {n_ev} distinct events, {foreign} other "
          f"tokens; want {total}, {total}, {total}, 0")
    want_tokens = {rec["token"] for rec in records}
    got_tokens = {r[3] for r in events_by_prefix(prefix)}
    check(got_tokens == want_tokens, f"{len(want_tokens - got_tokens)} spooled tokens not stored")
    calls = calls_by_prefix(prefix)
    check(len(calls) == SPOOL_CALLS, f"{len(calls)} calls rows, want {SPOOL_CALLS}")
    wrong = [(s, v) for s, v in calls.items() if v != ("completed", "3")]
    check(not wrong, f"{len(wrong)} calls not completed(3), e.g. {wrong[:3]}")


def join_script(rng, k):
    """Call k's deliveries for joined_batch_matches_one_at_a_time: a list of
    (status, seq, extra params, token key or None), in delivery order, and
    how many of them go first, before the batch (the call then exists)."""
    final = rng.choice(["completed", "busy", "no-answer", "failed"])
    evs = []
    for seq, status in enumerate(("initiated", "ringing", "in-progress", final)):
        extra = {}
        if k == 0 and seq >= 2:   # AnsweredBy on two events: the last one's stays
            extra["AnsweredBy"] = "machine_start" if seq == 2 else "human"
        elif rng.random() < 0.3:
            extra["AnsweredBy"] = rng.choice(["human", "machine_start", "fax"])
        if k == 1 and seq >= 2 or rng.random() < 0.3:
            extra["CallDuration"] = str(rng.randrange(0, 600))
        if rng.random() < 0.2:
            extra["SipResponseCode"] = rng.choice(["200", "486", "487"])
        if k == 5 or rng.random() < 0.3:   # the batch's arrays escape " and \
            extra["CallerName"] = rng.choice(['Ann "Bo" \\ {x,y}', 'NULL', '', 'Ünï\\"'])
        if k in (0, 1, 2) or rng.random() < 0.8:
            evs.append((status, seq, extra, f"{k}-{seq}" if rng.random() < 0.8 else None))
    for e in list(evs):
        if rng.random() < 0.3 or (k == 2 and e[1] == 1):   # the same delivery again
            evs.append(e)
    rng.shuffle(evs)
    if k == 0:   # machine_start, then human
        evs.sort(key=lambda e: e[1])
    if k == 2:   # in-progress after the final status, both in the batch
        evs.sort(key=lambda e: e[1] != 3)
    head = 0
    if k == 3:   # exists with its final status before the batch
        evs.sort(key=lambda e: e[1] != 3)
        head = 1
    elif k == 4 or rng.random() < 0.2:   # exists with some status before the batch
        head = 1
    return evs, head


def join_params(sid, ev):
    status, seq, extra, _ = ev
    return callback_params(sid, status, seq, **extra)


def join_token(variant, ev):
    return None if ev[3] is None else f"rt7{variant}-{ev[3]}-" + STATE["join_nonce"]


def post_one(conn, sid, variant, ev):
    body, sig = signed(join_params(sid, ev))
    status, text = post_webhook(conn, body, sig, join_token(variant, ev))
    check(status == 204, f"callback {ev[:2]} for {sid}: {status} {text[:200]!r}")


def call_state(sid):
    rows = h.psql("SELECT status, coalesce(sequence_number::text, ''), coalesce(answered_by, ''),"
                  " coalesce(duration_seconds::text, ''), coalesce(sip_response_code::text, '')"
                  " FROM calls WHERE call_sid = :'s'", s=sid)
    events = h.psql("SELECT status, coalesce(sequence_number::text, ''),"
                    " coalesce(split_part(idempotency_token, '-', 2) || '-' ||"
                    "   split_part(idempotency_token, '-', 3), '')"
                    " FROM call_events WHERE call_sid = :'s' ORDER BY 1, 2, 3", s=sid)
    return (tuple(rows[0]) if rows else None), [tuple(e) for e in events]


@h.test
def joined_batch_matches_one_at_a_time():
    seed = secrets.randbits(32)
    rng = random.Random(seed)
    STATE["join_nonce"] = secrets.token_hex(4)
    scripts = [join_script(rng, k) for k in range(JOIN_CALLS)]
    one = [new_sid(run_prefix()) for _ in scripts]
    joined = [new_sid(run_prefix()) for _ in scripts]
    conn = Conn()
    try:
        for k, (evs, head) in enumerate(scripts):
            for ev in evs:
                post_one(conn, one[k], "o", ev)
            for ev in evs[:head]:
                post_one(conn, joined[k], "j", ev)
    finally:
        conn.close()
    # the rest of each call's deliveries, calls interleaved at random but
    # each call's in order (a batch is sorted by call sid, stably)
    queues = [list(evs[head:]) for evs, head in scripts]
    records, sent = [], {}
    while any(queues):
        k = rng.choice([i for i, q in enumerate(queues) if q])
        ev = queues[k].pop(0)
        params = join_params(joined[k], ev)
        sent.setdefault((joined[k], ev[0], str(ev[1])), []).append(dict(params))
        rec = {"kind": "event", "body": urllib.parse.urlencode(params)}
        if join_token("j", ev) is not None:
            rec["token"] = join_token("j", ev)
        records.append(rec)
    check(len(records) <= 64, f"{len(records)} records: more than one batch (seed {seed})")
    tmp = tempfile.mkdtemp(prefix="runtimetest-")
    STATE["tmp_dirs"].append(tmp)
    spool = os.path.join(tmp, "spool-join")
    write_spool(spool, records)
    with h.private_worker(tmp, "join", {}, pool="webhook") as (sock, log, p):
        h.wait_until(lambda: spool_left(spool) == 0, 60, "the joined batch's replay")
    rejected = os.path.join(spool, "rejected")
    check(not (os.path.isdir(rejected) and os.listdir(rejected)),
          f"records rejected: {os.listdir(rejected) if os.path.isdir(rejected) else []}")
    with open(log, encoding="utf-8") as f:
        rolled = [x for x in f if "rolled back" in x]
    check(not rolled, f"the batch was not stored as one: {rolled[:1]}")
    diff = []
    for k in range(JOIN_CALLS):
        a, b = call_state(one[k]), call_state(joined[k])
        if a != b:
            diff.append((k, scripts[k], a, b))
    print(f"     {len(records)} callbacks of {JOIN_CALLS} calls in one batch (seed {seed}); "
          f"{sum(1 for evs, head in scripts if head)} calls existed before it", flush=True)
    check(not diff, f"one at a time vs joined differ (seed {seed}): {diff[:2]}")
    wrong = []
    for sid in joined:
        for status, seq, payload in h.psql("SELECT status, sequence_number, payload::text"
                                           " FROM call_events WHERE call_sid = :'s'", s=sid):
            want = sent.get((sid, status, seq))
            if want is not None and json.loads(payload) not in want:
                wrong.append((sid, status, seq, payload[:300]))
    check(not wrong, f"payloads stored from the batch differ from what was sent: {wrong[:2]}")
    first = call_state(joined[0])[0]
    check(first is not None and first[2] == "human",
          f"AnsweredBy after machine_start then human: {first} (seed {seed})")


def still_open(s, wait=0.3):
    """True when the worker has neither closed s nor sent anything on it
    within wait seconds (a kept connection waiting for the next request)."""
    readable, _, _ = select.select([s], [], [], wait)
    return not readable


def kept_request(s, what):
    h.fcgi_send(s, h.fcgi_params("GET", "/healthz"), b"", keep=True)
    status, _, body = h.fcgi_read(s, what, REQUEST_TIMEOUT)
    check(status == 200, f"{what}: {status} {body[:160]!r}")


@h.test
def kept_connections_hold_no_thread_and_drain_on_sigterm():
    env = {"VOICE_CALL_WORKERS": "1", "VOICE_CALL_THREADS": str(KEPT_THREADS)}
    with private("kept", env) as (sock, log, p):
        workers = wait_children(p.pid, 1, "VOICE_CALL_WORKERS=1")
        conns = []
        try:
            for i in range(KEPT_CONNS):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                conns.append(s)
                s.connect(sock)
                kept_request(s, f"first request on kept connection {i}")
            shut = [i for i, s in enumerate(conns) if not still_open(s)]
            check(not shut, f"kept connections {shut} closed by the worker after a request")
            t0 = time.monotonic()
            r = h.fcgi(sock, "GET", "/healthz", timeout=REQUEST_TIMEOUT)
            fresh = time.monotonic() - t0
            check(r.status == 200, f"a fresh connection beside {KEPT_CONNS} kept ones: {r.status}")
            check(fresh < PROMPT_S, f"a fresh connection beside {KEPT_CONNS} idle kept ones "
                  f"waited {fresh:.2f}s for one of {KEPT_THREADS} threads")
            for i, s in enumerate(conns):
                kept_request(s, f"second request on kept connection {i}")

            t_term = time.monotonic()
            p.send_signal(signal.SIGTERM)   # the master we started, by its PID
            h.wait_until(lambda: "draining the workers" in open(log, encoding="utf-8").read(),
                         10, "the master's SIGTERM to its worker")
            time.sleep(0.3)  # the worker's own sigwait
            kept_request(conns[0], "a request on a kept connection after SIGTERM")
            check(not still_open(conns[0], 5) and conns[0].recv(1) == b"",
                  "a stopping worker kept the connection open after answering on it")
            check(p.poll() is None, "the master exited while kept connections were open")
            for s in conns[1:-1]:
                s.close()
            try:
                rc = p.wait(timeout=KEPT_WAIT_S + 20)
            except subprocess.TimeoutExpired:
                rc = None
            waited = time.monotonic() - t_term
            last_closed = not still_open(conns[-1], 1) and conns[-1].recv(1) == b""
        finally:
            for s in conns:
                s.close()
            for k in workers:   # workers the master left behind, by PID
                if h.pid_alive(k):
                    os.kill(k, signal.SIGKILL)
    print(f"     fresh connection beside {KEPT_CONNS} kept ones: {fresh * 1000:.0f} ms; "
          f"master exited {rc} {waited:.1f}s after SIGTERM with one kept connection left",
          flush=True)
    check(rc == 0, f"the master exited {rc} after SIGTERM, want 0")
    check(waited >= KEPT_WAIT_S - 0.5, f"the master exited {waited:.1f}s after SIGTERM: it did "
          f"not wait {KEPT_WAIT_S:.0f}s for the kept connection nginx could still use")
    check(last_closed, "the last kept connection was not closed when the worker exited")
    check_private_log_clean(log, "kept connections")


def connected_on(sock_path):
    """Connected sockets accepted on the listening unix socket sock_path
    (/proc/net/unix: an accepted socket carries its listener's path)."""
    n = 0
    with open("/proc/net/unix", encoding="utf-8") as f:
        next(f)
        for line in f:
            parts = line.split()
            if len(parts) >= 8 and parts[7] == sock_path and parts[5] == "03":
                n += 1
    return n


@h.test
def nginx_keeps_connections_to_the_pools():
    sock = os.path.join(h.env()["VOICE_SOCK_DIR"], "webhook.sock")
    for i in range(5):
        r = h.get("/healthz/webhook")
        check(r.status == 200, f"GET /healthz/webhook through nginx: {r.status}")
    time.sleep(0.5)  # a connection closed after its answer is gone by then; a kept one stays 4 s
    kept = connected_on(sock)
    print(f"     after 5 requests through nginx: {kept} connection(s) to {sock} kept open",
          flush=True)
    check(kept >= 1, f"nginx kept no FastCGI connection to {sock} open after its requests "
          "(fastcgi_keep_conn and the upstream keepalive in nginx/voice.conf.template)")


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
