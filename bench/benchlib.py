"""Shared plumbing for the benchmark scripts (python3 standard library only).

Not a test: nothing here runs in CI. It starts a stack with
tests/integration/stack.py (deploy/up on free loopback ports) in a temporary
directory and stops it again (stack.py down: deploy/down, by PID), or uses an
existing one given by BENCH_STACK_DIR (a run directory holding stack.env).
"""

import contextlib
import http.client
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STACK_PY = os.path.join(SOURCE_DIR, "tests", "integration", "stack.py")
sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "integration"))
import harness as h  # noqa: E402

UP_TIMEOUT = 300
DOWN_TIMEOUT = 150


def die(msg):
    print(f"{os.path.basename(sys.argv[0])}: {msg}", file=sys.stderr, flush=True)
    sys.exit(2)


def env_int(name, default, lo, hi):
    raw = os.environ.get(name, "")
    if raw == "":
        return default
    try:
        v = int(raw)
    except ValueError:
        die(f"{name}={raw!r} is not an integer")
    if not lo <= v <= hi:
        die(f"{name}={v} is outside {lo}..{hi}")
    return v


def _use(run_dir):
    h.ITEST_DIR = run_dir
    h._ENV = None
    os.environ["VOICE_ITEST_DIR"] = run_dir


@contextlib.contextmanager
def stack():
    """Yields the stack's settings (stack.env as a dict)."""
    existing = os.environ.get("BENCH_STACK_DIR")
    if existing:
        existing = os.path.abspath(existing)
        if not os.path.isfile(os.path.join(existing, "stack.env")):
            die(f"BENCH_STACK_DIR={existing} has no stack.env")
        _use(existing)
        print(f"# using the stack in {existing}", flush=True)
        yield h.env()
        return
    build = os.path.abspath(os.environ.get("VOICE_BUILD_DIR") or
                            os.path.join(SOURCE_DIR, "build", "bench"))
    for b in ("call_fcgi", "webhook_fcgi", "sim/twilio_sim"):
        if not os.access(os.path.join(build, b), os.X_OK):
            die(f"{build}/{b} is missing; build first: cmake -S . -B build/bench "
                "-DCMAKE_BUILD_TYPE=Release -DVOICE_SANITIZE=OFF && cmake --build build/bench -j")
    run_dir = tempfile.mkdtemp(prefix="voice-bench-")
    os.chmod(run_dir, 0o755)  # PostgreSQL and the workers run as other users
    senv = dict(os.environ, VOICE_ITEST_DIR=run_dir, VOICE_BUILD_DIR=build,
                VOICE_SOURCE_DIR=SOURCE_DIR)
    print(f"# starting a stack in {run_dir} with {build}", flush=True)
    started = False
    try:
        p = subprocess.run([sys.executable, STACK_PY, "up"], env=senv, timeout=UP_TIMEOUT,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if p.returncode != 0:
            print(p.stdout, file=sys.stderr)
            die("stack.py up failed")
        started = True
        _use(run_dir)
        yield h.env()
    finally:
        keep = os.environ.get("BENCH_KEEP") == "1"
        if started or os.path.exists(os.path.join(run_dir, "stack.env")):
            p = subprocess.run([sys.executable, STACK_PY, "down"], env=senv, timeout=DOWN_TIMEOUT,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            if p.returncode != 0:
                print(p.stdout, file=sys.stderr)
                print("# stack.py down failed", file=sys.stderr, flush=True)
                keep = True
            else:
                print("# stack stopped", flush=True)
        if keep:
            print(f"# kept {run_dir}", flush=True)
        else:
            shutil.rmtree(run_dir, ignore_errors=True)


class Client:
    """One keep-alive HTTPS connection to the stack's nginx (reopened when
    nginx closes it)."""

    def __init__(self, timeout=30):
        self.timeout = timeout
        self.conn = None

    def request(self, method, path, body, headers):
        if self.conn is None:
            self.conn = http.client.HTTPSConnection("127.0.0.1", int(h.env()["VOICE_HTTPS_PORT"]),
                                                    timeout=self.timeout, context=h.tls_context())
        try:
            self.conn.request(method, path, body=body, headers=headers)
            r = self.conn.getresponse()
            data = r.read()
            if r.getheader("connection", "").lower() == "close":
                self.close()
            return r.status, data, r.getheader("x-request-id")
        except BaseException:
            self.close()
            raise

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def pool_size(e, pool):
    """"W workers x T threads" of pool ("call", "webhook") as the stack's
    settings give them; "default" where the binary's default applies (the
    number of CPUs for workers; deploy/up hands them on only when set)."""
    up = pool.upper()
    return (f"{e.get(f'VOICE_{up}_WORKERS', 'default')} {pool} workers x "
            f"{e.get(f'VOICE_{up}_THREADS', 'default')} threads")


def run_clients(jobs_per_client, work, deadline_s):
    """Runs work(client, job) for each client's jobs on its own thread and
    Client; returns (results, wall seconds). Each result is (job, status,
    seconds, error). Clients stop taking jobs after deadline_s."""
    results = []
    lock = threading.Lock()
    t0 = time.perf_counter()
    stop_at = time.monotonic() + deadline_s

    def loop(jobs):
        c = Client()
        mine = []
        try:
            for job in jobs:
                if time.monotonic() > stop_at:
                    break
                s = time.perf_counter()
                try:
                    status = work(c, job)
                    err = None
                except (OSError, http.client.HTTPException) as e:
                    status, err = 0, f"{type(e).__name__}: {e}"
                mine.append((job, status, time.perf_counter() - s, err))
        finally:
            c.close()
            with lock:
                results.extend(mine)

    threads = [threading.Thread(target=loop, args=(jobs,), daemon=True) for jobs in jobs_per_client]
    for t in threads:
        t.start()
    for t in threads:
        t.join(deadline_s + 120)
    return results, time.perf_counter() - t0


def percentile(sorted_values, p):
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    k = max(1, math.ceil(p / 100.0 * len(sorted_values)))
    return sorted_values[k - 1]


def report(what, unit, results, wall):
    lat = sorted(r[2] * 1000.0 for r in results)
    n = len(results)
    print(f"{what}: {n} in {wall:.2f} s = {n / wall:.1f} {unit}/s", flush=True)
    if lat:
        print(f"latency ms: p50 {percentile(lat, 50):.1f}  p90 {percentile(lat, 90):.1f}  "
              f"p99 {percentile(lat, 99):.1f}  max {lat[-1]:.1f}", flush=True)
    by = {}
    for r in results:
        by[r[1]] = by.get(r[1], 0) + 1
    print("status: " + ", ".join(f"{k or 'no answer'}: {v}" for k, v in sorted(by.items())),
          flush=True)
