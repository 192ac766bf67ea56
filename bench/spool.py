#!/usr/bin/env python3
"""Spool replay rate: how fast the workers move spooled records into
PostgreSQL once it answers again. Writes N status-callback records (the
format record_event spools while the database is down: one file per record,
{"kind":"event","token":…,"body":<the raw form body>}) for N/4 calls
(initiated, ringing, in-progress, completed) straight into the stack's spool
directory, then measures the time until no record is left there. Prints
records/s; fails (exit 1) unless the spool emptied within BENCH_TIMEOUT,
nothing was rejected, PostgreSQL holds exactly N events for those calls and
every call ended 'completed'. See bench/README.md.

  BENCH_N (default 20000, multiple of 4, 4..200000)
  BENCH_TIMEOUT (300 s: the longest wait for the spool to empty)
  BENCH_STACK_DIR (use a running stack)  VOICE_BUILD_DIR (default build/bench)
"""

import json
import os
import secrets
import shutil
import sys
import time
import urllib.parse

import benchlib as b
from benchlib import h

STATUSES = ["initiated", "ringing", "in-progress", "completed"]
TO = "+14155550150"
FROM = "+14155550199"
POLL_S = 0.2
PROGRESS_S = 10


def body(e, sid, seq):
    """The form body Twilio would have posted (what the webhook spools)."""
    params = [("AccountSid", e["TWILIO_ACCOUNT_SID"]), ("ApiVersion", "2010-04-01"),
              ("CallSid", sid), ("CallStatus", STATUSES[seq]), ("Called", TO), ("Caller", FROM),
              ("Direction", "outbound-api"), ("From", FROM), ("To", TO),
              ("CallbackSource", "call-progress-events"), ("SequenceNumber", str(seq)),
              ("Timestamp", "Tue, 01 Sep 2026 12:00:0%d +0000" % seq)]
    if STATUSES[seq] == "completed":
        params += [("CallDuration", "5"), ("Duration", "1"), ("SipResponseCode", "200")]
    return urllib.parse.urlencode(params)


def pending(spool):
    """Records still queued (<name>.rec) or claimed by a worker
    (<name>.rec.<pid>), as spool_pending sees them."""
    n = 0
    with os.scandir(spool) as it:
        for de in it:
            name = de.name
            if not name.startswith(".") and (name.endswith(".rec") or ".rec." in name):
                n += 1
    return n


def rejected(spool):
    try:
        return len(os.listdir(os.path.join(spool, "rejected")))
    except FileNotFoundError:
        return 0


def spool_metrics():
    """voice_spool_records_total by action from /metrics (a call worker
    answers; its replay runs after the answer, interval-gated as always)."""
    try:
        r = h.get("/metrics", timeout=10)
    except Exception:  # noqa: BLE001 (the figures are informative only)
        return {}
    if r.status != 200:
        return {}
    out = {}
    for line in r.body.decode("utf-8", "replace").splitlines():
        if line.startswith("voice_spool_records_total{"):
            action = line.split('action="', 1)[1].split('"', 1)[0]
            out[action] = int(float(line.rsplit(" ", 1)[1]))
    return out


def main():
    n = b.env_int("BENCH_N", 20000, 4, 200000)
    timeout = b.env_int("BENCH_TIMEOUT", 300, 10, 3600)
    if n % 4:
        b.die("BENCH_N must be a multiple of 4 (four callbacks per call)")
    ok = True
    with b.stack() as e:
        spool = e.get("VOICE_SPOOL_DIR") or os.path.join(h.ITEST_DIR, "spool")
        if not os.path.isdir(spool):
            b.die(f"the spool directory {spool} does not exist")
        st = os.stat(spool)
        if pending(spool):
            b.die(f"{spool} already holds records; measure an empty spool")
        rejected_before = rejected(spool)
        before = spool_metrics()

        # Records are written to a staging directory beside the spool (same
        # file system), owned like the spool (the workers' user, 0600), and
        # then renamed in, oldest name first: the clock starts at the first
        # rename. Names as spool_put makes them: %020lld-<pid>-<counter>.rec.
        run = secrets.token_hex(4)  # this run's calls: CA + run + 24 hex
        sids = ["CA" + run + secrets.token_hex(12) for _ in range(n // 4)]
        stage = os.path.join(os.path.dirname(spool.rstrip("/")), f".spool-bench-{run}")
        os.mkdir(stage, 0o700)
        names = []
        try:
            t_ns = time.time_ns()
            pid = os.getpid()
            for i, sid in enumerate(sids):
                for seq in range(4):
                    k = len(names)
                    name = "%020d-%d-%d.rec" % (t_ns + k * 1000, pid, k)
                    rec = json.dumps({"kind": "event", "token": secrets.token_hex(16),
                                      "body": body(e, sid, seq)}, separators=(",", ":"))
                    path = os.path.join(stage, name)
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                    with os.fdopen(fd, "w", encoding="utf-8") as f:
                        f.write(rec)
                    if os.geteuid() == 0:
                        os.chown(path, st.st_uid, st.st_gid)
                    names.append(name)
            print(f"# {n} spooled callbacks for {len(sids)} calls in {spool}; "
                  f"{b.pool_size(e, 'call')} + {b.pool_size(e, 'webhook')} "
                  f"replay them", flush=True)
            t0 = time.monotonic()
            for name in names:
                os.rename(os.path.join(stage, name), os.path.join(spool, name))
            t_in = time.monotonic() - t0
        finally:
            shutil.rmtree(stage, ignore_errors=True)

        # Wait (bounded) until the spool holds no record.
        left = n
        next_progress = t0 + PROGRESS_S
        while True:
            left = pending(spool)
            now = time.monotonic()
            if left == 0 or now - t0 > timeout:
                break
            if now >= next_progress:
                done = n - left
                print(f"#   {now - t0:5.0f} s: {done} replayed, {left} left "
                      f"({done / (now - t0):.1f} records/s)", flush=True)
                next_progress += PROGRESS_S
            time.sleep(POLL_S)
        wall = time.monotonic() - t0
        done = n - left
        if left == 0:
            print(f"replayed: {n} records in {wall:.2f} s = {n / wall:.1f} records/s "
                  f"(renaming them in took {t_in:.2f} s)", flush=True)
        else:
            print(f"replayed: {done} of {n} records in {wall:.0f} s = {done / wall:.1f} records/s "
                  f"(partial: BENCH_TIMEOUT={timeout} s reached)", flush=True)
            print(f"FAIL: {left} records still in the spool after {timeout} s")
            ok = False

        bad = rejected(spool) - rejected_before
        if bad:
            print(f"FAIL: {bad} records were rejected (moved to {spool}/rejected)")
            ok = False
        after = spool_metrics()
        if after:
            delta = {k: after.get(k, 0) - before.get(k, 0) for k in ("replayed", "rejected")}
            print(f"metrics: voice_spool_records_total replayed +{delta['replayed']}, "
                  f"rejected +{delta['rejected']}", flush=True)
        like = "CA" + run + "%"
        events = int(h.psql("SELECT count(*) FROM call_events WHERE call_sid LIKE :'p'",
                            p=like)[0][0])
        completed = int(h.psql("SELECT count(*) FROM calls WHERE status = 'completed' AND "
                               "call_sid LIKE :'p'", p=like)[0][0])
        print(f"stored: {events} events for {n} spooled records; "
              f"{completed} of {len(sids)} calls completed", flush=True)
        if left == 0 and events != n:
            print("FAIL: stored events differ from spooled records")
            ok = False
        if left == 0 and completed != len(sids):
            print("FAIL: not every call ended completed")
            ok = False
        if left > 0 and events != done:
            print(f"note: {events} events stored for {done} records gone from the spool "
                  "(claimed ones are in flight)")
    print("ok" if ok else "FAILED", flush=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
