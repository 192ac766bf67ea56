#!/usr/bin/env python3
"""Fault: PostgreSQL hung under load. The embedded cluster's postmaster and
every one of its children are SIGSTOPped for HUNG_S, then SIGCONTinued:
connections are accepted by the kernel but nothing answers, queries in
flight never return. A request must still get an answer within nginx's
timeout (callbacks spooled, POST /call 503 with Retry-After). See faults.py
for the load and the checks."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faults as f  # noqa: E402
import harness as h  # noqa: E402

HUNG_S = 20.0


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

    f.run_case("pg_hung", fault)


if __name__ == "__main__":
    h.run(setup=f.setup, teardown=f.teardown)
