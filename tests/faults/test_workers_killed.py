#!/usr/bin/env python3
"""Fault: worker processes SIGKILLed under load: every second for KILL_S,
every worker of both pools (the children of the pools' masters, as an OOM
killer or an operator's kill -9 would) -- all of them, so that the outcome
does not depend on which worker a random pick spares. A request in a killed
worker must get nginx's 503 service_unavailable ("retry") only when that is
true (for POST /call: nothing dialed), else the documented outcome_unknown;
callbacks acknowledged before the kill are stored; and once the kills stop
the pools are back (/readyz green) within faults.READY_BOUND_S. See
faults.py for the load and the checks."""

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
                rng.shuffle(workers)
                for victim in workers:
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
