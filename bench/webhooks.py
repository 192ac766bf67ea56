#!/usr/bin/env python3
"""Status-callback throughput: N signed POST /twilio/webhook for N/4 calls
(initiated, ringing, in-progress, completed each, in order per call) from C
concurrent keep-alive HTTPS clients through nginx to the webhook pool and
PostgreSQL. Prints callbacks/s and latency p50/p90/p99/max; fails (exit 1)
on any 5xx or connection error, or if PostgreSQL did not store exactly one
event per callback. See bench/README.md.

  BENCH_N (default 8000, multiple of 4, 4..200000)  BENCH_C (8, 1..64)
  BENCH_MAX_SECONDS (300)  BENCH_STACK_DIR (use a running stack)
  VOICE_BUILD_DIR (binaries for a stack started here; default build/bench)
"""

import secrets
import sys
import urllib.parse

import benchlib as b
from benchlib import h

STATUSES = ["initiated", "ringing", "in-progress", "completed"]
TO = "+14155550150"
FROM = "+14155550199"


def callback(e, sid, seq):
    params = [("AccountSid", e["TWILIO_ACCOUNT_SID"]), ("ApiVersion", "2010-04-01"),
              ("CallSid", sid), ("CallStatus", STATUSES[seq]), ("Called", TO), ("Caller", FROM),
              ("Direction", "outbound-api"), ("From", FROM), ("To", TO),
              ("CallbackSource", "call-progress-events"), ("SequenceNumber", str(seq)),
              ("Timestamp", "Tue, 01 Sep 2026 12:00:0%d +0000" % seq)]
    if STATUSES[seq] == "completed":
        params += [("CallDuration", "5"), ("Duration", "1"), ("SipResponseCode", "200")]
    url = e["PUBLIC_BASE_URL"] + "/twilio/webhook"
    body = urllib.parse.urlencode(params).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded",
               "X-Twilio-Signature": h.twilio_signature(url, params, e["TWILIO_AUTH_TOKEN"]),
               "I-Twilio-Idempotency-Token": secrets.token_hex(16)}
    return body, headers


def main():
    n = b.env_int("BENCH_N", 8000, 4, 200000)
    c = b.env_int("BENCH_C", 8, 1, 64)
    max_s = b.env_int("BENCH_MAX_SECONDS", 300, 10, 3600)
    if n % 4:
        b.die("BENCH_N must be a multiple of 4 (four callbacks per call)")
    ok = True
    with b.stack() as e:
        run = secrets.token_hex(4)  # this run's calls: CA + run + 24 hex
        sids = ["CA" + run + secrets.token_hex(12) for _ in range(n // 4)]
        # Bodies and signatures are made before the clock starts; each
        # client owns whole calls so a call's callbacks go out in order.
        jobs = [[] for _ in range(c)]
        for i, sid in enumerate(sids):
            for seq in range(4):
                jobs[i % c].append(callback(e, sid, seq))
        print(f"# {n} callbacks for {len(sids)} calls, {c} clients, "
              f"{b.pool_size(e, 'webhook')}", flush=True)

        def work(client, job):
            status, data, _ = client.request("POST", "/twilio/webhook", job[0], job[1])
            return status

        results, wall = b.run_clients(jobs, work, max_s)
        b.report("callbacks", "callbacks", results, wall)
        bad = [r for r in results if r[1] >= 500 or r[1] == 0]
        wrong = [r for r in results if r[1] not in (200, 204) and r not in bad]
        if len(results) < n:
            print(f"FAIL: only {len(results)} of {n} callbacks sent within {max_s} s")
            ok = False
        if bad:
            print(f"FAIL: {len(bad)} callbacks got a 5xx or no answer, e.g. "
                  f"{bad[0][1]} {bad[0][3] or ''}")
            ok = False
        if wrong:
            print(f"FAIL: {len(wrong)} callbacks were refused, e.g. status {wrong[0][1]}")
            ok = False
        # Every callback stored once, every call at completed.
        like = "CA" + run + "%"
        events = int(h.psql("SELECT count(*) FROM call_events WHERE call_sid LIKE :'p'",
                            p=like)[0][0])
        completed = int(h.psql("SELECT count(*) FROM calls WHERE status = 'completed' AND "
                               "call_sid LIKE :'p'", p=like)[0][0])
        sent_ok = sum(1 for r in results if r[1] in (200, 204))
        print(f"stored: {events} events for {sent_ok} accepted callbacks; "
              f"{completed} of {len(sids)} calls completed", flush=True)
        if events != sent_ok:
            print("FAIL: stored events differ from accepted callbacks")
            ok = False
        if len(results) == n and completed != len(sids):
            print("FAIL: not every call reached completed")
            ok = False
    print("ok" if ok else "FAILED", flush=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
