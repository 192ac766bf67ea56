#!/usr/bin/env python3
"""Starts or stops the integration stack: `stack.py up` / `stack.py down`.

CTest runs `up` as the fixture setup and `down` as its cleanup with
VOICE_ITEST_DIR (the run directory), VOICE_BUILD_DIR (binaries to use) and
VOICE_SOURCE_DIR (the repository). `up` picks free loopback ports, downs a
stack left running in that directory, then runs deploy/up and fails with the
logs' tails if the stack is not healthy in time. `down` runs deploy/down.
"""

import glob
import os
import socket
import subprocess
import sys

UP_TIMEOUT = 240     # seconds for deploy/up (it waits for /healthz itself)
DOWN_TIMEOUT = 90


def fail(msg):
    print(f"stack.py: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def paths():
    itest = os.environ.get("VOICE_ITEST_DIR")
    if not itest:
        fail("VOICE_ITEST_DIR is not set")
    source = os.environ.get("VOICE_SOURCE_DIR") or os.path.dirname(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return os.path.abspath(itest), os.path.abspath(source)


def free_ports(n):
    """n distinct free TCP ports on 127.0.0.1 (held open together while
    choosing so they differ)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def tail(path, n=25):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()[-n:]
    except OSError:
        return
    print(f"==> {path} <==", file=sys.stderr)
    for line in lines:
        print(line, file=sys.stderr)


def run_script(script, env, timeout, out_path):
    with open(out_path, "w", encoding="utf-8") as out:
        os.chmod(out_path, 0o600)  # deploy/up prints a fresh API key
        p = subprocess.Popen([script], stdin=subprocess.DEVNULL, stdout=out,
                             stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            return p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            # Stop the script we started (its process group), never by name.
            os.killpg(p.pid, 9)
            p.wait()
            return None


def recorded_pids(itest):
    """PIDs the stack's pid files name: pools, simulator (and its per-call
    processes), nginx master, PostgreSQL postmaster."""
    files = glob.glob(os.path.join(itest, "pids", "*.pid")) + \
        glob.glob(os.path.join(itest, "sim", "pids", "*.pid")) + \
        [os.path.join(itest, "nginx", "nginx.pid")]
    pids = set()
    for f in files:
        try:
            with open(f, encoding="utf-8") as fh:
                pids.update(int(x) for x in fh.read().split() if x.isdigit())
        except OSError:
            pass
    try:
        with open(os.path.join(itest, "pg", "data", "postmaster.pid"), encoding="utf-8") as fh:
            first = fh.readline().strip()
            if first.isdigit():
                pids.add(int(first))
    except OSError:
        pass
    return pids


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def down(itest, source, quiet=False):
    if not os.path.isdir(itest):
        return 0
    before = recorded_pids(itest)
    env = dict(os.environ, VOICE_RUN_DIR=itest)
    out = os.path.join(itest, "down.out")
    rc = run_script(os.path.join(source, "deploy", "down"), env, DOWN_TIMEOUT, out)
    if rc != 0 and not quiet:
        tail(out)
        fail(f"deploy/down failed ({'timed out' if rc is None else 'exit ' + str(rc)})")
    left = sorted(p for p in before if alive(p))
    if left and not quiet:
        fail(f"deploy/down left processes running: {left}")
    return rc


def up(itest, source):
    os.makedirs(itest, exist_ok=True)
    if glob.glob(os.path.join(itest, "pids", "*.pid")) or \
            os.path.exists(os.path.join(itest, "nginx", "nginx.pid")) or \
            os.path.exists(os.path.join(itest, "pg", "data", "postmaster.pid")):
        print("stack.py: a previous stack is running here; stopping it first", flush=True)
        down(itest, source)
    https, http, sim, pg = free_ports(4)
    env = dict(os.environ)
    for k in ("DATABASE_URL", "TWILIO_API_BASE_URL", "PUBLIC_BASE_URL"):
        env.pop(k, None)  # the test stack always runs embedded
    env.update({
        "VOICE_RUN_DIR": itest,
        "VOICE_SKIP_INSTALL": "1",
        "VOICE_HTTPS_PORT": str(https),
        "VOICE_HTTP_PORT": str(http),
        "VOICE_SIM_PORT": str(sim),
        "VOICE_PG_PORT": str(pg),
        "VOICE_CALL_BURST": "1000",
        "VOICE_CALL_RATE": "100r/s",
        "VOICE_HEALTH_TIMEOUT": "120",
        "SIM_TIME_SCALE": "0.05",
        # Twilio timeouts short enough to keep the timeout tests quick, and
        # the simulator's slow scenario just longer than them; a loopback
        # simulator answers every other request in milliseconds.
        "TWILIO_TIMEOUT_MS": "3000",
        "TWILIO_CONNECT_TIMEOUT_MS": "1000",
        "SIM_SLOW_MS": "6000",
        # said explicitly (the default is the caller ID's country, US): GB
        # for the premium-rate refusal of an allowed country, FR stays out
        "CALL_ALLOWED_COUNTRIES": "US,CA,GB",
        # no reconciliation in the shared stack: it would fetch other tests'
        # calls at unpredictable times (test_reconcile runs it in private
        # workers with a short delay)
        "VOICE_RECONCILE_AFTER_S": "0",
        # a verified caller ID of the simulated account besides its number
        # (TWILIO_FROM_NUMBER): test_twilio_check
        "SIM_CALLER_IDS": "+14155550198",
    })
    if os.environ.get("VOICE_BUILD_DIR"):
        env["VOICE_BUILD_DIR"] = os.environ["VOICE_BUILD_DIR"]
    out = os.path.join(itest, "up.out")
    rc = run_script(os.path.join(source, "deploy", "up"), env, UP_TIMEOUT, out)
    if rc != 0:
        tail(out, 40)
        for f in ["nginx/logs/error.log", "logs/call.log", "logs/webhook.log", "logs/sim.log",
                  "logs/postgres.log"]:
            tail(os.path.join(itest, f))
        down(itest, source, quiet=True)
        fail(f"deploy/up failed ({'timed out after %ds' % UP_TIMEOUT if rc is None else 'exit ' + str(rc)})")
    print(f"stack.py: stack up in {itest} (https {https}, http {http}, sim {sim}, pg {pg})",
          flush=True)


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in ("up", "down"):
        fail("usage: stack.py up|down")
    itest, source = paths()
    if sys.argv[1] == "up":
        up(itest, source)
    else:
        down(itest, source)
        print("stack.py: stack stopped", flush=True)


if __name__ == "__main__":
    main()
