#!/usr/bin/env python3
"""Fault: PostgreSQL read-only under load, as after a failover to a standby:
ALTER SYSTEM SET default_transaction_read_only = on and a reload, for
READONLY_S, then back. Every write fails with SQLSTATE 25006 while reads
work: callbacks must be spooled (204) or refused with 503 + Retry-After,
never lost once acknowledged, and a spooled record must wait for the
database to take writes again, not be rejected. See faults.py."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faults as f  # noqa: E402
import harness as h  # noqa: E402

READONLY_S = 10.0


@h.test
def pg_read_only():
    h.check(h.embedded_pg(), "this case needs the stack's embedded PostgreSQL")

    def fault():
        f.pg_super("ALTER SYSTEM SET default_transaction_read_only = on")
        f.pg_super("SELECT pg_reload_conf()")
        try:
            time.sleep(READONLY_S)
        finally:
            f.pg_super("ALTER SYSTEM RESET default_transaction_read_only")
            f.pg_super("SELECT pg_reload_conf()")
        return {}

    f.run_case("pg_read_only", fault)


if __name__ == "__main__":
    h.run(setup=f.setup, teardown=f.teardown)
