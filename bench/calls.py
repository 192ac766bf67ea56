#!/usr/bin/env python3
"""POST /call throughput against the local Twilio simulator: N calls from C
concurrent keep-alive HTTPS clients through nginx, the call pool (API key
check, validation, one Twilio REST request each, the call stored). Prints
calls/s and latency p50/p90/p99/max; fails (exit 1) on any answer but 201,
or if any call the simulator accepted is missing from PostgreSQL. Each call
then plays out in the simulator (callbacks to the webhook pool), which loads
the machine too. See bench/README.md.

  BENCH_N (default 200, 1..5000)  BENCH_C (4, 1..64)  BENCH_MAX_SECONDS (300)
  BENCH_STACK_DIR (use a running stack)
  VOICE_BUILD_DIR (binaries for a stack started here; default build/bench)

A stack started here allows 100 POST /call per second with a burst of 1000
(stack.py); a stack of your own may rate-limit sooner (429 is reported).
"""

import json
import sys
import time

import benchlib as b
from benchlib import h

# Plain answered calls (555-01xx outside the simulator's scenario numbers).
NUMBERS = [f"+1415555015{i}" for i in range(10)]
SETTLE_SECONDS = 120


def main():
    n = b.env_int("BENCH_N", 200, 1, 5000)
    c = b.env_int("BENCH_C", 4, 1, 64)
    max_s = b.env_int("BENCH_MAX_SECONDS", 300, 10, 3600)
    ok = True
    with b.stack() as e:
        name = h.unique_name("bench")
        key = h.key_create(name)
        try:
            jobs = [[] for _ in range(c)]
            for i in range(n):
                body = json.dumps({"to": NUMBERS[i % len(NUMBERS)]}).encode()
                jobs[i % c].append(body)
            headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
            sids = []

            def work(client, body):
                status, data, _ = client.request("POST", "/call", body, headers)
                if status == 201:
                    sids.append(json.loads(data)["sid"])  # list.append is atomic
                return status

            print(f"# {n} calls, {c} clients, {b.pool_size(e, 'call')}, "
                  f"SIM_TIME_SCALE {e.get('SIM_TIME_SCALE', '?')}", flush=True)
            results, wall = b.run_clients(jobs, work, max_s)
            b.report("calls", "calls", results, wall)
            if len(results) < n:
                print(f"FAIL: only {len(results)} of {n} calls sent within {max_s} s")
                ok = False
            bad = [r for r in results if r[1] != 201]
            if bad:
                print(f"FAIL: {len(bad)} calls were not 201, e.g. {bad[0][1]} {bad[0][3] or ''}")
                ok = False
            # Every call the service answered 201 for is in PostgreSQL.
            rows = h.psql("SELECT call_sid FROM calls WHERE api_key_name = :'k'", k=name)
            stored = {r[0] for r in rows}
            missing = [s for s in sids if s not in stored]
            print(f"recorded: {len(sids) - len(missing)} of {len(sids)} created calls", flush=True)
            if missing or len(set(sids)) != len(sids):
                print(f"FAIL: {len(missing)} created calls are not recorded (or a sid repeated)")
                ok = False
            # Let the simulated calls finish (bounded) so their callbacks do
            # not run into the stack's shutdown; report how many completed.
            deadline = time.monotonic() + SETTLE_SECONDS
            done = 0
            while time.monotonic() < deadline:
                done = int(h.psql("SELECT count(*) FROM calls WHERE api_key_name = :'k' "
                                  "AND status = 'completed'", k=name)[0][0])
                if done >= len(sids):
                    break
                time.sleep(1)
            print(f"completed (callbacks stored): {done} of {len(sids)}", flush=True)
        finally:
            h.key_revoke(name)
    print("ok" if ok else "FAILED", flush=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
