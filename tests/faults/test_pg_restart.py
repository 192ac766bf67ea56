#!/usr/bin/env python3
"""Fault: PostgreSQL restarted under load. The embedded cluster is stopped
(pg_ctl -m fast: every connection is closed), kept down DOWN_S, and started
again. While it is down: callbacks are spooled (204), POST /call answers 503
database_unavailable with Retry-After (nothing dialed). See faults.py for
the load and the checks."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faults as f  # noqa: E402
import harness as h  # noqa: E402

DOWN_S = 8.0


@h.test
def pg_restarted():
    h.check(h.embedded_pg(), "this case needs the stack's embedded PostgreSQL")

    def fault():
        t = f.now()
        h.pg_stop()
        stopped = f.now() - t
        try:
            time.sleep(DOWN_S)
        finally:
            t = f.now()
            h.pg_start()
        return {"pg_stop_s": round(stopped, 1), "pg_start_s": round(f.now() - t, 1)}

    f.run_case("pg_restarted", fault)


if __name__ == "__main__":
    h.run(setup=f.setup, teardown=f.teardown)
