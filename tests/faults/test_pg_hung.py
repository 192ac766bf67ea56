#!/usr/bin/env python3
"""Fault: PostgreSQL hung under load. The embedded cluster's postmaster and
every one of its children are SIGSTOPped for HUNG_S, then SIGCONTinued:
connections are accepted by the kernel but nothing answers, queries in
flight never return. A request must still get an answer within nginx's
timeout (callbacks spooled, POST /call 503 with Retry-After), and once the
circuit breaker had time to open, at once. See faults.py for the load and
the checks."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faults as f  # noqa: E402
import harness as h  # noqa: E402

HUNG_S = 20.0
# The first statement in each worker waits out the 6 s client deadline (a
# callback queued behind it gives up after 5 s); then the worker's circuit
# breaker is open and nothing should wait on the database: callbacks sent
# from BREAKER_S into the hang are answered within PROMPT_S.
BREAKER_S = 8.0
PROMPT_S = 2.0


@h.test
def pg_hung():
    h.check(h.embedded_pg(), "this case needs the stack's embedded PostgreSQL")

    def fault():
        stopped = f.pg_freeze()
        try:
            time.sleep(HUNG_S)
        finally:
            f.pg_thaw(stopped)   # whatever happened: never leave it stopped
        return {"pg_processes_stopped": len(stopped)}

    f.run_case("pg_hung", fault, prompt=(BREAKER_S, PROMPT_S))


if __name__ == "__main__":
    h.run(setup=f.setup, teardown=f.teardown)
