#!/usr/bin/env python3
"""The foundation's "done when" list, against the stack stack.py started:
health and readiness through nginx, the http->https redirect, readiness
following PostgreSQL with the same worker processes, API keys (create, use,
revoke, stored only hashed), a worker refusing to start without
TWILIO_ACCOUNT_SID, nginx's own JSON errors, X-Request-Id, /metrics."""

import concurrent.futures
import contextlib
import http.client
import os
import pwd
import re
import shutil
import signal
import ssl
import stat
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import check, test  # noqa: E402

REQUEST_ID = re.compile(r"[0-9a-f]{32}")


@test
def health_and_readiness():
    for path in ("/healthz", "/readyz", "/healthz/webhook", "/readyz/webhook"):
        r = h.get(path)
        check(r.status == 200, f"GET {path}: expected 200, got {r!r}")
        check(REQUEST_ID.fullmatch(r.header("x-request-id", "")),
              f"GET {path}: X-Request-Id {r.header('x-request-id')!r} is not nginx's id")


@test
def http_redirects_to_https():
    e = h.env()
    r = h.get("/healthz?probe=1", https=False)
    check(r.status in (301, 308), f"plain http: expected a redirect, got {r!r}")
    want = f"https://127.0.0.1:{e['VOICE_HTTPS_PORT']}/healthz?probe=1"
    check(r.header("location") == want, f"redirect Location {r.header('location')!r}, want {want!r}")
    # The target is PUBLIC_BASE_URL's origin, whatever Host the client sent
    # (a forged Host must not turn the service into an open redirect), on
    # the http port and for plain http sent to the https port (nginx's 497).
    origin = re.match(r"https://[^/]+", e["PUBLIC_BASE_URL"]).group(0)
    for port, what in ((e["VOICE_HTTP_PORT"], "http port"), (e["VOICE_HTTPS_PORT"], "https port")):
        conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=15)
        try:
            conn.request("GET", "/readyz?x=1", headers={"Host": "evil.example:666"})
            resp = conn.getresponse()
            resp.read()
            loc = resp.getheader("Location")
        finally:
            conn.close()
        check(resp.status == 301, f"plain http to the {what} with a forged Host: {resp.status}")
        check(loc == origin + "/readyz?x=1",
              f"plain http to the {what} with a forged Host: Location {loc!r}, want {origin}/readyz?x=1")


@test
def request_id_is_nginx_s_and_unique():
    a = h.get("/healthz", headers={"X-Request-Id": "client-chosen"})
    b = h.get("/healthz")
    ida, idb = a.header("x-request-id", ""), b.header("x-request-id", "")
    check(REQUEST_ID.fullmatch(ida), f"X-Request-Id {ida!r}: a client may not choose it")
    check(ida != idb, "two requests got the same X-Request-Id")
    hits = [line for line in h.log_lines("call") if ida in line]
    check(hits, f"the call worker's log has no line with request id {ida}")


@test
def nginx_errors_are_json():
    err = h.check_json_error(h.get("/no/such/route"), 404, "GET /no/such/route")
    check(err["code"] == "not_found", f"404 code is {err['code']!r}")
    h.check_json_error(h.post("/twilio/unknown", b"x"), 404, "POST /twilio/unknown")
    big = b'{"to":"' + b"1" * (17 * 1024) + b'"}'
    err = h.check_json_error(h.post("/call", big, headers={"Content-Type": "application/json"}),
                             413, "POST /call with 17 KiB")
    check(err["code"] == "payload_too_large", f"413 code is {err['code']!r}")
    h.check_json_error(h.post("/healthz", b"x" * 2048), 413, "POST /healthz with 2 KiB")


@test
def api_keys_authenticate_and_revoke():
    name = h.unique_name("ci")
    secret = h.key_create(name)
    body = {"to": "+14155550100"}
    try:
        r = h.post("/call", body, headers={"Authorization": f"Bearer {secret}"}, timeout=40)
        check(r.status != 401, f"POST /call with a fresh key was refused: {r!r}")
        check(r.header("x-request-id"), "POST /call: no X-Request-Id")

        for what, hdrs in (("no key", {}),
                           ("an unknown key", {"Authorization": "Bearer vk_" + "0" * 64}),
                           ("a malformed header", {"Authorization": "Basic Zm9vOmJhcg=="})):
            r = h.post("/call", body, headers=hdrs)
            h.check_json_error(r, 401, f"POST /call with {what}")
            check((r.header("www-authenticate") or "").startswith("Bearer"),
                  f"POST /call with {what}: WWW-Authenticate is {r.header('www-authenticate')!r}")

        dup = h.voicectl("key", "create", name)
        check(dup.returncode != 0 and dup.stdout == "",
              "voicectl key create accepted a second active key with the same name")
        listing = h.voicectl("key", "list")
        check(listing.returncode == 0 and name in listing.stdout,
              f"voicectl key list does not show {name}: {listing.stdout!r}")
        check(h.sha256_hex(secret) not in listing.stdout, "voicectl key list shows a hash")
    finally:
        h.key_revoke(name)
    r = h.post("/call", body, headers={"Authorization": f"Bearer {secret}"})
    h.check_json_error(r, 401, "POST /call with a revoked key")
    again = h.voicectl("key", "revoke", name)
    check(again.returncode != 0, "revoking an already revoked key succeeded")


KEY_LOOKUPS = re.compile(r'^voice_api_key_lookups_total\{source="(remembered|database)"\} (\d+)$',
                         re.M)
WATCH_BACKENDS = ("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                  " WHERE query LIKE 'NOTIFY voice_api_keys%' OR query LIKE 'LISTEN voice_api_keys%'")


def key_lookups():
    """voice_api_key_lookups_total by source, summed over the call workers."""
    r = h.get("/metrics")
    check(r.status == 200, f"GET /metrics: {r!r}")
    got = {"remembered": 0, "database": 0}
    for source, n in KEY_LOOKUPS.findall(r.body.decode("utf-8")):
        got[source] = int(n)
    return got


def lookups_of(auth, n, want_status):
    """n GET /calls with auth, each answered want_status; how many of their
    keys came from memory and from the database."""
    before = key_lookups()
    for i in range(n):
        r = h.get("/calls?limit=1", headers=auth)
        check(r.status == want_status, f"GET /calls #{i + 1}: expected {want_status}, got {r!r}")
    after = key_lookups()
    return {k: after[k] - before[k] for k in after}


def settle(auth, source, times=1):
    """Sends rounds of 6 GET /calls with auth (each 200) until `times`
    rounds in a row had no key from source; bounded at 20 s. The last
    round's lookups by source."""
    deadline, run, d = time.monotonic() + 20, 0, None
    while time.monotonic() < deadline and run < times:
        d = lookups_of(auth, 6, 200)
        run = run + 1 if d[source] == 0 else 0
        if run < times and d[source] != 0:
            time.sleep(0.3)
    return d


@test
def api_keys_remembered_until_changed():
    """The call workers remember the keys they found and forget them when
    api_keys changes (docs/OPERATIONS.md, "API keys in memory"): a key
    revoked is refused from its next request on, by every worker. With the
    trigger that announces changes disabled, nothing is remembered."""
    name, other = h.unique_name("mem"), h.unique_name("mem2")
    secret, secret2 = h.key_create(name), h.key_create(other)
    auth, auth2 = ({"Authorization": f"Bearer {s}"} for s in (secret, secret2))
    try:
        # every worker looks the key up once, then remembers it
        d = settle(auth, "database")
        check(d == {"remembered": 6, "database": 0},
              f"a known key was still looked up in the database: {d!r}")
        h.key_revoke(name)
        d = lookups_of(auth, 6, 401)
        check(d["remembered"] == 0, f"a revoked key was answered from memory: {d!r}")

        # the trigger disabled and the watch reconnected: nothing remembered,
        # so a revocation that notifies nobody still takes effect at once
        h.psql("ALTER TABLE api_keys DISABLE TRIGGER api_keys_notify")
        h.psql(WATCH_BACKENDS)
        d = settle(auth2, "remembered", times=2)
        check(d == {"remembered": 0, "database": 6},
              f"keys were remembered with the trigger disabled: {d!r}")
        h.key_revoke(other)
        other = None
        d = lookups_of(auth2, 6, 401)
        check(d == {"remembered": 0, "database": 6}, f"after the revocation: {d!r}")
    finally:
        h.psql("ALTER TABLE api_keys ENABLE TRIGGER api_keys_notify")
        if other is not None:
            h.key_revoke(other)
        with contextlib.suppress(h.TestFailure):
            h.key_revoke(name)


@test
def keys_stored_only_hashed():
    name = h.unique_name("hash")
    secret = h.key_create(name)
    try:
        rows = h.psql("SELECT t::text FROM api_keys t")
        dump = "\n".join(r[0] for r in rows)
        check(secret not in dump and secret[3:] not in dump,
              "the plain-text API key is in the api_keys table")
        got = h.psql("SELECT key_hash FROM api_keys WHERE name = :'n' AND revoked_at IS NULL",
                     n=name)
        check(got == [[h.sha256_hex(secret)]],
              f"api_keys.key_hash for {name} is {got!r}, not the SHA-256 of the secret")
        rls = h.psql("SELECT relname FROM pg_class WHERE relname IN "
                     "('api_keys','calls','call_events','schema_migrations') "
                     "AND relkind = 'r' AND NOT relrowsecurity")
        check(rls == [], f"tables without row-level security: {rls!r}")
        mig = h.psql("SELECT version FROM schema_migrations ORDER BY version")
        check(mig and mig[0] == ["0001"], f"schema_migrations is {mig!r}")
    finally:
        h.key_revoke(name)


@test
def migrate_is_idempotent():
    before = h.psql("SELECT version, applied_at FROM schema_migrations ORDER BY version")
    p = h.voicectl("migrate")
    check(p.returncode == 0, f"voicectl migrate (again) failed: {p.stderr.strip()}")
    after = h.psql("SELECT version, applied_at FROM schema_migrations ORDER BY version")
    check(before == after, "a second migrate changed schema_migrations")


@test
def worker_without_account_sid_exits_2():
    e = h.env()
    base = {k: v for k, v in e.items()
            if k.startswith(("TWILIO_", "DATABASE_URL", "PUBLIC_BASE_URL", "LOG_LEVEL"))}
    base.pop("TWILIO_ACCOUNT_SID", None)
    base.update({"PATH": "/usr/bin:/bin", "VOICE_ENV_FILE": "/nonexistent",
                 "ASAN_OPTIONS": "detect_leaks=0"})
    for binary in (e["VOICE_CALL_BIN"], e["VOICE_WEBHOOK_BIN"]):
        p = subprocess.Popen([binary], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, env=base, text=True)
        try:
            _, err = p.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()  # the process we started, by its PID
            p.communicate()
            raise h.TestFailure(f"{binary} without TWILIO_ACCOUNT_SID did not exit within 10s")
        lines = [line for line in err.splitlines() if line.strip()]
        check(p.returncode == 2,
              f"{binary} without TWILIO_ACCOUNT_SID exited {p.returncode}, want 2 (stderr {err!r})")
        check(len(lines) == 1 and "TWILIO_ACCOUNT_SID" in lines[0],
              f"{binary}: want one stderr line naming TWILIO_ACCOUNT_SID, got {err!r}")


@test
def worker_refuses_a_metrics_file_others_can_write():
    # A local user who pre-creates the shared metrics file (or one left
    # group/world-readable) could shrink it under every worker's mapping:
    # SIGBUS. The workers refuse to start, with one clear line, and leave the
    # file alone. Here: our own file with mode 0644.
    for pool in ("call", "webhook"):
        with tempfile.TemporaryDirectory(prefix=f"metrics-{pool}-") as tmp:
            path = os.path.join(tmp, "workers.shm")
            with open(path, "wb") as f:
                f.write(b"\0" * 64)
            os.chmod(path, 0o644)
            with h.private_worker(tmp, "unsafe-metrics", {"VOICE_METRICS_FILE": path},
                                  pool=pool) as (_, log_path, _p):
                def refused():
                    with open(log_path, encoding="utf-8", errors="replace") as f:
                        text = f.read()
                    return text if "worker died; replacing it" in text else None
                text = h.wait_until(refused, 30, f"{pool}: a worker exiting on the metrics file")
            lines = text.splitlines()
            why = [x for x in lines if "metrics file refused" in x]
            check(why and '"mode":"0644"' in why[0] and path in why[0],
                  f"{pool}: no line naming the unsafe metrics file and its mode: {lines[:6]}")
            check(not any('"worker started"' in x for x in lines),
                  f"{pool}: a worker started with an unsafe metrics file")
            check(any('"exit_status":1' in x for x in lines if "worker died" in x),
                  f"{pool}: the worker did not exit with status 1")
            st = os.stat(path)
            check(st.st_size == 64 and stat.S_IMODE(st.st_mode) == 0o644,
                  f"{pool}: the refused metrics file was changed")
    # the stack's own file, created by its workers: theirs, 0600
    e = h.env()
    st = os.stat(e["VOICE_METRICS_FILE"])
    want = pwd.getpwnam("voice").pw_uid if os.geteuid() == 0 else os.geteuid()
    check(stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == want,
          f"the stack's metrics file is uid {st.st_uid} mode {oct(stat.S_IMODE(st.st_mode))}, "
          f"want uid {want} mode 0o600")


@test
def files_are_not_world_writable():
    e = h.env()
    for d in (e["VOICE_SOCK_DIR"], e["VOICE_PID_DIR"], e["VOICE_LOG_DIR"], e["VOICE_RUN_DIR"]):
        for root, dirs, files in os.walk(d):
            for name in dirs + files:
                path = os.path.join(root, name)
                try:
                    mode = os.lstat(path).st_mode
                except FileNotFoundError:
                    continue
                if stat.S_ISLNK(mode):
                    continue
                check(not mode & stat.S_IWOTH, f"{path} is world-writable")
    mode = os.stat(os.path.join(e["VOICE_RUN_DIR"], "stack.env")).st_mode
    check(stat.S_IMODE(mode) == 0o600, f"stack.env has mode {oct(stat.S_IMODE(mode))}, want 0600")


@test
def nginx_config_passes_test():
    e = h.env()
    nd = e["VOICE_NGINX_DIR"]
    p = subprocess.run(["nginx", "-t", "-p", nd, "-c", os.path.join(nd, "nginx.conf")],
                       capture_output=True, text=True, timeout=30)
    check(p.returncode == 0, f"nginx -t failed: {p.stderr.strip()}")


@test
def readiness_follows_postgres():
    if not h.embedded_pg():
        print("     (skipped: not an embedded PostgreSQL)")
        return
    pools = {pool: h.worker_pids(pool) for pool in ("call", "webhook")}
    for pool, pids in pools.items():
        check(pids and all(h.pid_alive(p) for p in pids), f"{pool} workers {pids} are not all alive")
    h.wait_until(lambda: h.get("/readyz").status == 200, 10, "/readyz 200 before the test")
    h.pg_stop()
    try:
        h.wait_until(lambda: h.get("/readyz").status == 503, 10, "/readyz 503 with PostgreSQL stopped")
        r = h.get("/readyz/webhook")
        check(r.status == 503, f"/readyz/webhook with PostgreSQL stopped: {r!r}")
        h.check_json_error(h.get("/readyz"), 503, "/readyz with PostgreSQL stopped")
        r = h.get("/healthz")
        check(r.status == 200, f"/healthz with PostgreSQL stopped: {r!r}")
    finally:
        if not h.pg_running():
            h.pg_start()
    h.wait_until(lambda: h.get("/readyz").status == 200, 20, "/readyz 200 after PostgreSQL restart")
    h.wait_until(lambda: h.get("/readyz/webhook").status == 200, 20,
                 "/readyz/webhook 200 after PostgreSQL restart")
    for pool, pids in pools.items():
        now = h.worker_pids(pool)
        check(now == pids, f"{pool} worker PIDs changed across the PostgreSQL restart: {pids} -> {now}")
        check(all(h.pid_alive(p) for p in now), f"{pool} workers {now} died across the restart")


@test
def metrics_from_loopback():
    # nginx allows loopback (allow 127.0.0.1; deny all): the request reaches
    # the call worker instead of nginx's 403.
    r = h.get("/metrics")
    check(r.status != 403, f"GET /metrics from 127.0.0.1 was refused: {r!r}")
    check(r.status == 200, f"GET /metrics from 127.0.0.1: expected 200, got {r!r}")
    ctype = r.header("content-type", "")
    check(ctype.startswith("text/plain"), f"/metrics Content-Type is {ctype!r}, want Prometheus text")


@test
def call_rate_limit_answers_429_json():
    # nginx's limit_req on /call is per client address: the burst comes from
    # 127.0.0.4 (still loopback) so 127.0.0.1's budget, which the other tests
    # use, is untouched. Bounded in requests and time, never in speed: the
    # budget refills at VOICE_CALL_RATE, so keep sending until it runs out.
    e = h.env()
    limited = []
    stop = threading.Event()
    deadline = time.monotonic() + 90

    def client(_):
        conn = http.client.HTTPSConnection("127.0.0.1", int(e["VOICE_HTTPS_PORT"]), timeout=15,
                                           context=h.tls_context(), source_address=("127.0.0.4", 0))
        try:
            for _ in range(1000):
                if stop.is_set() or time.monotonic() > deadline:
                    return
                conn.request("POST", "/call", body=b"{}", headers={
                    "Content-Type": "application/json", "Authorization": "Bearer not-a-key"})
                r = conn.getresponse()
                body = r.read()
                if r.status == 429:
                    limited.append(h.Response(r.status, {k.lower(): v for k, v in r.getheaders()},
                                              body))
                    stop.set()
        finally:
            conn.close()

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(client, range(16)))
    check(limited, "16,000 requests from one address never met the /call rate limit")
    h.check_json_error(limited[0], 429, "rate-limited POST /call")
    check(limited[0].json()["error"]["code"] == "rate_limited", f"429 body: {limited[0]!r}")
    check(limited[0].header("retry-after") == "1", f"429 without Retry-After: {limited[0].headers}")
    check(re.fullmatch(r"[0-9a-f]{32}", limited[0].header("x-request-id") or ""),
          f"429 without X-Request-Id: {limited[0].headers}")
    # 127.0.0.1 was not limited by 127.0.0.4's burst
    r = h.post("/call", b"{}", headers={"Content-Type": "application/json"})
    check(r.status == 401, f"POST /call from 127.0.0.1 after another address was limited: {r!r}")


@test
def external_database_url_is_used_as_given():
    # deploy/up with DATABASE_URL set (Supabase, a managed PostgreSQL) starts
    # no cluster of its own, migrates that database, and deploy/down leaves
    # it running. The "external" database here is the stack's own.
    import stack  # tests/integration/stack.py: free ports, script runner
    e = h.env()
    run_dir = tempfile.mkdtemp(prefix="extdb-")
    https, http_port, sim, pg = stack.free_ports(4)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TWILIO_", "PUBLIC_BASE_URL", "VOICE_"))}
    env.update({"VOICE_RUN_DIR": run_dir, "VOICE_SKIP_INSTALL": "1",
                "VOICE_BUILD_DIR": e["VOICE_BUILD_DIR"], "DATABASE_URL": e["DATABASE_URL"],
                "VOICE_HTTPS_PORT": str(https), "VOICE_HTTP_PORT": str(http_port),
                "VOICE_SIM_PORT": str(sim), "VOICE_PG_PORT": str(pg),
                "VOICE_CALL_WORKERS": "1", "VOICE_WEBHOOK_WORKERS": "1"})
    up = os.path.join(run_dir, "up.out")
    try:
        rc = stack.run_script(os.path.join(h.SOURCE_DIR, "deploy", "up"), env, 240, up)
        with open(up, encoding="utf-8", errors="replace") as f:
            out = f.read()
        check(rc == 0, f"deploy/up with DATABASE_URL exited {rc}: {out[-1500:]}")
        check(not os.path.exists(os.path.join(run_dir, "pg", "data")),
              "deploy/up created its own cluster although DATABASE_URL was set")
        ctx = ssl.create_default_context(cafile=os.path.join(run_dir, "tls", "cert.pem"))
        conn = http.client.HTTPSConnection("127.0.0.1", https, timeout=15, context=ctx)
        try:
            conn.request("GET", "/readyz")
            r = conn.getresponse()
            check(r.status == 200, f"/readyz of the stack on the external database: {r.status} {r.read()!r}")
        finally:
            conn.close()
    finally:
        rc = stack.run_script(os.path.join(h.SOURCE_DIR, "deploy", "down"), env, 120,
                              os.path.join(run_dir, "down.out"))
    check(rc == 0, f"deploy/down of the second stack exited {rc}")
    shutil.rmtree(run_dir, ignore_errors=True)
    check(h.pg_running(), "deploy/down stopped the external database")
    check(h.get("/readyz").status == 200, "the first stack lost its database")


@test
def sigterm_finishes_the_current_request():
    # A private call worker is dialing (the simulator's slow scenario holds
    # Twilio's answer for SIM_SLOW_MS) when SIGTERM arrives: the request must
    # still be answered, then the worker exits 0.
    name = h.unique_name("sigterm")
    secret = h.key_create(name)
    slow_ms = int(h.env().get("SIM_SLOW_MS") or 20000)
    result = {}
    try:
        with h.private_worker(None, "sigterm",
                                   {"TWILIO_TIMEOUT_MS": str(slow_ms + 20000)}) as (sock, _, proc):
            t = threading.Thread(target=lambda: result.update(r=h.fcgi_post_call(
                sock, secret, b'{"to":"+14155550108"}', timeout=slow_ms / 1000 + 60)))
            t.start()
            time.sleep(min(1.0, slow_ms / 4000))
            proc.send_signal(signal.SIGTERM)  # the worker we started, by its PID
            t.join(timeout=slow_ms / 1000 + 90)
            check("r" in result, "no answer after SIGTERM: the request in flight was dropped")
            r = result["r"]
            check(r.status == 201 and r.json().get("sid", "").startswith("CA"),
                  f"the request in flight after SIGTERM: {r!r}")
            rc = proc.wait(timeout=30)
            check(rc == 0, f"the worker exited {rc} after SIGTERM, want 0")
    finally:
        h.key_revoke(name)


if __name__ == "__main__":
    h.run()
