#!/usr/bin/env python3
"""Fault: nginx reloaded under load: SIGHUP to its master RELOADS times,
RELOAD_EVERY_S apart; the old workers finish their requests and exit. No
request may go unanswered or be answered with an error. See faults.py."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faults as f  # noqa: E402
import harness as h  # noqa: E402

RELOADS = 3
RELOAD_EVERY_S = 2.0
OLD_GONE_BOUND_S = 15.0


@h.test
def nginx_reloaded():
    def fault():
        old = set()
        for i in range(RELOADS):
            old |= set(f.nginx_workers())
            f.nginx_hup()
            time.sleep(RELOAD_EVERY_S)
        # the fault ends when the last old worker has exited
        t = f.now()
        h.wait_until(lambda: not (old & set(f.nginx_workers())), OLD_GONE_BOUND_S,
                     "nginx's old workers to exit after the reloads")
        return {"old_workers_gone_s": round(f.now() - t, 1)}

    f.run_case("nginx_reloaded", fault)


if __name__ == "__main__":
    h.run(setup=f.setup, teardown=f.teardown)
