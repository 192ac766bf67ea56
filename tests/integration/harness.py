"""Helpers for the integration tests (python3 standard library only).

The stack is started by stack.py (deploy/up) into $VOICE_ITEST_DIR; its
effective settings are in $VOICE_ITEST_DIR/stack.env. Every helper is bounded
in time; nothing here starts a process that outlives the call.
"""

import contextlib
import hashlib
import http.client
import json
import os
import re
import secrets
import shlex
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse

ITEST_DIR = os.environ.get("VOICE_ITEST_DIR", "")
SOURCE_DIR = os.environ.get(
    "VOICE_SOURCE_DIR",
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
VOICECTL = os.path.join(SOURCE_DIR, "deploy", "voicectl")


class TestFailure(Exception):
    pass


def check(cond, message):
    """Fails the current test with message unless cond holds."""
    if not cond:
        raise TestFailure(message)


def load_env(path=None):
    """Reads stack.env (KEY='value' lines as written by deploy/up)."""
    path = path or os.path.join(ITEST_DIR, "stack.env")
    env = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#") or "=" not in line:
                continue
            key, raw = line.split("=", 1)
            parts = shlex.split(raw) if raw else [""]
            env[key] = parts[0] if parts else ""
    return env


_ENV = None


def env():
    global _ENV
    if _ENV is None:
        if not ITEST_DIR:
            raise TestFailure("VOICE_ITEST_DIR is not set (run through ctest, or export it)")
        _ENV = load_env()
    return _ENV


# HTTP -----------------------------------------------------------------------

class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # lower-case name -> value (last wins)
        self.body = body

    def header(self, name, default=None):
        return self.headers.get(name.lower(), default)

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise TestFailure(f"response is not JSON ({e}): {self.body[:200]!r}")

    def __repr__(self):
        return f"<{self.status} {self.body[:200]!r}>"


def tls_context():
    ctx = ssl.create_default_context(cafile=env()["VOICE_TLS_CERT"])
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def request(method, path, body=None, headers=None, https=True, port=None, host="127.0.0.1",
            timeout=15):
    """One request to the stack's nginx; returns Response. body: bytes, str or
    a JSON-able object (sent as application/json)."""
    hdrs = dict(headers or {})
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
        hdrs.setdefault("Content-Type", "application/json")
    if isinstance(body, str):
        body = body.encode("utf-8")
    if https:
        conn = http.client.HTTPSConnection(host, int(port or env()["VOICE_HTTPS_PORT"]),
                                           timeout=timeout, context=tls_context())
    else:
        conn = http.client.HTTPConnection(host, int(port or env()["VOICE_HTTP_PORT"]),
                                          timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=hdrs)
        r = conn.getresponse()
        data = r.read()
        headers = {k.lower(): v for k, v in r.getheaders()}
        return Response(r.status, headers, data)
    finally:
        conn.close()


def get(path, **kw):
    return request("GET", path, **kw)


def post(path, body=None, **kw):
    return request("POST", path, body=body, **kw)


def check_json_error(resp, status, what):
    """Asserts resp is the API's JSON error (docs/API.md, "Conventions") with
    this status."""
    check(resp.status == status, f"{what}: expected {status}, got {resp!r}")
    ctype = resp.header("content-type", "")
    check(ctype.lower().replace(" ", "") == "application/json;charset=utf-8",
          f"{what}: Content-Type is {ctype!r}")
    doc = resp.json()
    err = doc.get("error") if isinstance(doc, dict) else None
    check(isinstance(err, dict) and isinstance(err.get("code"), str) and err["code"]
          and isinstance(err.get("message"), str) and err["message"],
          f"{what}: body is not {{\"error\":{{\"code\",\"message\"}}}}: {doc!r}")
    check(re.fullmatch(r"[a-z0-9_]+", err["code"]) is not None,
          f"{what}: error code {err['code']!r} is not snake_case")
    check(resp.header("x-request-id"), f"{what}: no X-Request-Id header")
    return err


# Database ---------------------------------------------------------------------

def _pg_args_env():
    """psql arguments and environment for DATABASE_URL, with the password
    moved to PGPASSWORD (never on a command line)."""
    url = env()["DATABASE_URL"]
    penv = dict(os.environ)
    penv.pop("PGPASSWORD", None)
    if re.match(r"^postgres(ql)?://", url):
        parts = urllib.parse.urlsplit(url)
        if "@" in parts.netloc:
            userinfo, hosts = parts.netloc.rsplit("@", 1)
            if ":" in userinfo:
                user, pw = userinfo.split(":", 1)
                penv["PGPASSWORD"] = urllib.parse.unquote(pw)
                url = urllib.parse.urlunsplit(parts._replace(netloc=user + "@" + hosts))
    penv["PGCONNECT_TIMEOUT"] = "5"
    return ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-t", "-A", "-F", "\x1f",
            "-d", url], penv


def psql(sql, timeout=30, **variables):
    """Runs sql (psql variables as :'name'); returns rows as lists of str."""
    args, penv = _pg_args_env()
    for k, v in variables.items():
        args += ["-v", f"{k}={v}"]
    p = subprocess.run(args, input=sql, capture_output=True, text=True, env=penv,
                       timeout=timeout)
    if p.returncode != 0:
        raise TestFailure(f"psql failed ({p.returncode}): {p.stderr.strip()}")
    return [line.split("\x1f") for line in p.stdout.splitlines() if line != ""]


def twilio_signature(url, params, token=None):
    """X-Twilio-Signature for a POST to url with params [(key, value), ...],
    computed here, independently of common/sig (docs/TWILIO.md,
    "Signatures"): keys sorted, each key's distinct values sorted, key+value
    appended to the URL, HMAC-SHA1 with the auth token, base64."""
    import base64
    import hmac
    token = token if token is not None else env()["TWILIO_AUTH_TOKEN"]
    s = url
    for key in sorted({k for k, _ in params}):
        for value in sorted({v for k, v in params if k == key}):
            s += key + value
    mac = hmac.new(token.encode("utf-8"), s.encode("utf-8"), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode("ascii")


def sha256_hex(s):
    return hashlib.sha256(s.encode("utf-8")).hexdigest()


# voicectl ----------------------------------------------------------------------

def voicectl(*args, timeout=60):
    e = dict(os.environ)
    e["VOICE_RUN_DIR"] = ITEST_DIR
    e.pop("DATABASE_URL", None)
    return subprocess.run([VOICECTL, *args], capture_output=True, text=True, env=e,
                          timeout=timeout)


def key_create(name):
    p = voicectl("key", "create", name)
    if p.returncode != 0:
        raise TestFailure(f"voicectl key create {name} failed: {p.stderr.strip()}")
    secret = p.stdout.strip()
    check(p.stdout == secret + "\n", f"voicectl key create printed more than the secret: {p.stdout!r}")
    check(re.fullmatch(r"vk_[0-9a-f]{64}", secret) is not None,
          f"voicectl key create printed {secret!r}, not vk_ + 64 hex")
    return secret


def key_revoke(name):
    p = voicectl("key", "revoke", name)
    if p.returncode != 0:
        raise TestFailure(f"voicectl key revoke {name} failed: {p.stderr.strip()}")


def unique_name(prefix):
    return f"{prefix}-{int(time.time() * 1000)}-{os.getpid()}"


# Embedded PostgreSQL and processes ----------------------------------------------

def _as_pg(args):
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *args]
    return args


def embedded_pg():
    return env().get("VOICE_EMBEDDED_PG") == "1"


def _pg_ctl(*args, timeout=90):
    """Runs the embedded cluster's pg_ctl with args (as its owner)."""
    e = env()
    return subprocess.run(_as_pg([os.path.join(e["VOICE_PG_BIN"], "pg_ctl"), "-D",
                                  e["VOICE_PG_DATA"], *args]),
                          capture_output=True, text=True, timeout=timeout)


def pg_stop():
    p = _pg_ctl("-m", "fast", "-w", "-t", "30", "stop", timeout=60)
    if p.returncode != 0:
        raise TestFailure(f"pg_ctl stop failed: {p.stderr.strip()}")


BREAKER_PROBE_S = 1.0  # common/db.c DB_PROBE_MS: a worker's breaker probe period


def pg_start():
    """Starts the embedded cluster, then waits until every worker of the
    stack can use it again: a worker that found it down fails fast (its
    circuit breaker) until its next probe, up to BREAKER_PROBE_S later, so
    a test that follows would otherwise see callbacks spooled and 503s."""
    p = _pg_ctl("-l", os.path.join(env()["VOICE_LOG_DIR"], "postgres.log"), "-w", "-t", "60", "start")
    if p.returncode != 0:
        raise TestFailure(f"pg_ctl start failed: {p.stderr.strip()}")
    for path in ("/readyz", "/readyz/webhook"):
        wait_until(lambda: get(path, timeout=10).status == 200, 30, f"{path} after PostgreSQL started")
    time.sleep(BREAKER_PROBE_S * 2)


def pg_running():
    return _pg_ctl("status", timeout=30).returncode == 0


def pid_alive(pid):
    """True if pid is a live (not zombie) process."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            stat = f.read()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def children(pid):
    """PIDs of pid's live child processes (/proc/PID/task/*/children: a
    child is listed under the thread that forked it), sorted."""
    kids = set()
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", encoding="utf-8") as f:
                kids.update(int(x) for x in f.read().split())
        except OSError:
            pass
    return sorted(k for k in kids if pid_alive(k))


def master_pids(pool):
    """PIDs in the pool's pid file ("call", "webhook", "sim"): since the
    worker runtime forks its own workers, the pools' masters (one each)."""
    path = os.path.join(env()["VOICE_PID_DIR"], f"{pool}.pid")
    with open(path, encoding="utf-8") as f:
        return [int(x) for x in f.read().split()]


def worker_pids(pool):
    """PIDs of the processes serving pool's requests: each master's children
    (the workers it forked), or a recorded process itself when it has none."""
    out = []
    for pid in master_pids(pool):
        out += children(pid) or [pid]
    return out


@contextlib.contextmanager
def private_worker(tmp, label, overrides, pool="call"):
    """See _private_worker; tmp=None uses a temporary directory removed on exit."""
    if tmp is not None:
        with _private_worker(tmp, label, overrides, pool) as w:
            yield w
        return
    with tempfile.TemporaryDirectory(prefix=f"{pool}-{label}-") as d:
        with _private_worker(d, label, overrides, pool) as w:
            yield w


@contextlib.contextmanager
def _private_worker(tmp, label, overrides, pool):
    """A call_fcgi (or, with pool="webhook", webhook_fcgi) of the stack's
    build on its own socket (-s) under tmp, with
    the stack's settings plus overrides (a None value removes a setting), its
    own spool and metrics file (so the stack's counters stay exact). Yields
    (socket path, log path, Popen); stopped by its PID (SIGTERM) on exit."""
    e = env()
    sock_path = os.path.join(tmp, f"{pool}-{label}.sock")
    log_path = os.path.join(tmp, f"{pool}-{label}.log")
    spool = os.path.join(tmp, f"spool-{label}")
    os.makedirs(spool, mode=0o700, exist_ok=True)
    wenv = {k: v for k, v in e.items()
            if k.startswith(("TWILIO_", "CALL_", "VOICE_INBOUND", "VOICE_GREETING",
                             "VOICE_FORWARD", "DATABASE_URL", "PUBLIC_BASE_URL", "LOG_LEVEL"))}
    wenv.update({"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "VOICE_ENV_FILE": "/nonexistent",
                 "VOICE_SPOOL_DIR": spool, "ASAN_OPTIONS": "detect_leaks=0",
                 "VOICE_METRICS_FILE": os.path.join(tmp, f"metrics-{label}.shm")})
    for k, v in overrides.items():
        if v is None:
            wenv.pop(k, None)
        else:
            wenv[k] = v
    with open(log_path, "w", encoding="utf-8") as logf:
        p = subprocess.Popen([e[f"VOICE_{pool.upper()}_BIN"], "-s", sock_path],
                             stdin=subprocess.DEVNULL,
                             stdout=logf, stderr=logf, env=wenv)
    try:
        wait_until(lambda: os.path.exists(sock_path) or p.poll() is not None, 30,
                   f"the private {pool} worker's socket ({label})")
        check(p.poll() is None, f"the private {pool} worker ({label}) exited {p.returncode}")
        yield sock_path, log_path, p
    finally:
        # The process started is a master that forks workers: stop it by its
        # PID, then any worker it left behind (it was killed, or its workers
        # outlived it), by theirs.
        kids = children(p.pid) if p.poll() is None else []
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)  # the process we started, by its PID
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                kids = sorted(set(kids) | set(children(p.pid)))
                p.kill()
                p.wait(timeout=10)
        for k in kids:
            if pid_alive(k):
                try:
                    os.kill(k, signal.SIGKILL)
                except OSError:
                    pass


def log_lines(pool):
    """The pool's log (JSON lines on the workers' stderr) as a list of str."""
    path = os.path.join(env()["VOICE_LOG_DIR"], f"{pool}.log")
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def wait_until(fn, timeout, what, interval=0.2):
    """Calls fn until it returns a truthy value (returned) or timeout seconds
    pass (TestFailure naming what). Exceptions from fn count as not yet."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            v = fn()
            if v:
                return v
            last = v
        except (OSError, http.client.HTTPException, TestFailure) as e:
            last = e
        if time.monotonic() >= deadline:
            raise TestFailure(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


# FastCGI (talking to a worker directly, without nginx) -----------------------

def fcgi_record(rtype, req_id, content):
    return struct.pack("!BBHHBx", 1, rtype, req_id, len(content), 0) + content


def fcgi_pairs(params):
    out = b""
    for k, v in params.items():
        k, v = k.encode(), v.encode()
        for n in (len(k), len(v)):
            out += bytes([n]) if n < 128 else struct.pack("!I", n | 0x80000000)
        out += k + v
    return out


def fcgi(sock_path, method, path, body=b"", headers=None, timeout=60):
    """An HTTP-like request straight to a worker's FastCGI socket, with the
    parameters nginx would send (a fresh X-Request-Id; headers are extra CGI
    parameters such as CONTENT_TYPE or HTTP_AUTHORIZATION; a query in path
    goes to QUERY_STRING, as nginx splits it). Returns a
    Response whose .request_id is the id sent."""
    params = fcgi_params(method, path, body, headers)
    status, hdrs, payload = fcgi_request(sock_path, params, body, timeout=timeout)
    r = Response(status, hdrs, payload)
    r.request_id = params["HTTP_X_REQUEST_ID"]
    return r


def fcgi_params(method, path, body=b"", headers=None):
    """The CGI parameters of fcgi()'s request."""
    doc, _, query = path.partition("?")
    params = {"REQUEST_METHOD": method, "REQUEST_URI": path, "DOCUMENT_URI": doc,
              "SCRIPT_NAME": doc, "QUERY_STRING": query, "CONTENT_LENGTH": str(len(body)),
              "HTTP_X_REQUEST_ID": secrets.token_hex(16), "REMOTE_ADDR": "127.0.0.1",
              "SERVER_PROTOCOL": "HTTP/1.1", "HTTPS": "on"}
    params.update(headers or {})
    return params


def fcgi_post_call(sock_path, secret, body, timeout=60):
    """POST /call with a JSON body (bytes) and API key, through fcgi()."""
    return fcgi(sock_path, "POST", "/call", body,
                {"CONTENT_TYPE": "application/json", "HTTP_AUTHORIZATION": f"Bearer {secret}"},
                timeout=timeout)


def fcgi_send(s, params, body, keep=False):
    """Sends one FastCGI request (responder role, id 1) on the connected
    socket s; keep sets FCGI_KEEP_CONN, as nginx's fastcgi_keep_conn does."""
    msg = fcgi_record(1, 1, struct.pack("!HB5x", 1, 1 if keep else 0))
    msg += fcgi_record(4, 1, fcgi_pairs(params)) + fcgi_record(4, 1, b"")
    for i in range(0, len(body), 65535):
        msg += fcgi_record(5, 1, body[i:i + 65535])
    msg += fcgi_record(5, 1, b"")
    s.sendall(msg)


def fcgi_read(s, what, timeout=60):
    """Reads records from s up to the END_REQUEST of the request sent on it
    (not beyond: on a kept connection the worker may stay silent after it).
    Returns (status, headers, body)."""
    data, out = b"", b""
    deadline = time.monotonic() + timeout
    while True:
        while len(data) < 8 or len(data) < 8 + struct.unpack("!H", data[4:6])[0] + data[6]:
            check(time.monotonic() < deadline, f"FastCGI: no END_REQUEST within {timeout}s ({what})")
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                chunk = None
            check(chunk is not None, f"FastCGI: no END_REQUEST within {timeout}s ({what})")
            check(chunk, f"FastCGI: the worker closed the connection before END_REQUEST ({what})")
            data += chunk
        _, rtype, _, clen, plen = struct.unpack("!BBHHB", data[:7])
        content, data = data[8:8 + clen], data[8 + clen + plen:]
        if rtype == 6:
            out += content
        elif rtype == 3:
            break
    head, _, payload = out.partition(b"\r\n\r\n")
    headers = {}
    for line in head.decode("latin-1").split("\r\n"):
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    status = int(headers.get("status", "200").split()[0])
    return status, headers, payload


def fcgi_request(sock_path, params, body, timeout=60):
    """One FastCGI request (responder role) to the worker listening on the
    unix socket sock_path (e.g. `call_fcgi -s PATH`); params are the CGI
    parameters nginx would send. Returns (status, headers, body)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(sock_path)
        fcgi_send(s, params, body)
        return fcgi_read(s, sock_path, timeout)
    finally:
        s.close()


# Runner -----------------------------------------------------------------------

_TESTS = []


def test(fn):
    """Registers a test; tests run in definition order."""
    _TESTS.append(fn)
    return fn


def run(argv=None, setup=None, teardown=None):
    """Runs the registered tests in order, every one of them (a failure is
    reported and the next test runs). setup runs first whatever argv selects,
    and a failing setup stops the run; teardown always runs last. Prints one
    line per test, then "N passed, N failed"; exits 0 only if all passed.
    Optional argv names a subset."""
    names = set((argv or sys.argv)[1:])
    passed = failed = 0

    def one(fn):
        t0 = time.monotonic()
        try:
            fn()
        except TestFailure as e:
            print(f"FAIL {fn.__name__}: {e}", flush=True)
            return False
        except Exception:  # an unexpected error is a failure too, with its trace
            print(f"FAIL {fn.__name__}: unexpected error", flush=True)
            traceback.print_exc()
            return False
        print(f"ok   {fn.__name__} ({time.monotonic() - t0:.1f}s)", flush=True)
        return True

    try:
        if setup is None or one(setup):
            passed += setup is not None
            for fn in _TESTS:
                if names and fn.__name__ not in names:
                    continue
                if one(fn):
                    passed += 1
                else:
                    failed += 1
        else:
            failed += 1
    finally:
        if teardown is not None:
            teardown()
    print(f"{passed} passed, {failed} failed", flush=True)
    sys.exit(1 if failed or passed == 0 else 0)
