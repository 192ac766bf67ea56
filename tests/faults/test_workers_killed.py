#!/usr/bin/env python3
"""Fault: worker processes SIGKILLed under load, one of each pool (a child of
the pool's master, chosen at random) every second for KILL_S. A request in
the killed worker gets nginx's 503 service_unavailable ("retry"), which for
POST /call must be true (nothing dialed) or be the documented
outcome_unknown instead; callbacks acknowledged before the kill are stored.
See faults.py for the load and the checks."""

import os
import random
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faults as f  # noqa: E402
import harness as h  # noqa: E402

KILL_S = 12


@h.test
def workers_sigkilled_every_second():
    rng = random.Random()

    def fault():
        killed = {"call": 0, "webhook": 0}
        t0 = f.now()
        for i in range(KILL_S):
            for pool in ("call", "webhook"):
                masters = set(h.master_pids(pool))
                workers = [w for w in h.worker_pids(pool) if w not in masters]
                if workers:
                    victim = rng.choice(workers)
                    try:
                        os.kill(victim, signal.SIGKILL)   # a worker of the stack's pool, by PID
                        killed[pool] += 1
                    except ProcessLookupError:
                        pass
            rest = t0 + i + 1 - f.now()
            if rest > 0:
                time.sleep(rest)
        return {"killed_call": killed["call"], "killed_webhook": killed["webhook"]}

    f.run_case("workers_sigkilled", fault, allow_signal=9)


if __name__ == "__main__":
    h.run(setup=f.setup, teardown=f.teardown)
