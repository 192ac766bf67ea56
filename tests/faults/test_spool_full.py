#!/usr/bin/env python3
"""Fault: the spool's filesystem full while PostgreSQL is down. A tmpfs of
SPOOL_FS_KB is mounted over the stack's VOICE_SPOOL_DIR (owned by the
workers' user, as deploy/up makes it), then PostgreSQL is stopped for
DOWN_S under load: the first callbacks are spooled (204) until the
filesystem is full, the rest must be refused with 503 + Retry-After (never
204 for a record that was not written). PostgreSQL then starts, the spool
drains into it, and the tmpfs is unmounted once it is empty (what is left
then is copied to $VOICE_ITEST_DIR/costs/ and counted as lost). See
faults.py."""

import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faults as f  # noqa: E402
import harness as h  # noqa: E402

SPOOL_FS_KB = 256
DOWN_S = 8.0
DRAIN_BOUND_S = 30.0


def mount_tmpfs(path):
    st = os.stat(path)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o",
                        f"size={SPOOL_FS_KB}k,mode=0700,uid={st.st_uid},gid={st.st_gid}",
                        "faults-spool", path], capture_output=True, text=True, timeout=30)
    h.check(p.returncode == 0, f"could not mount a tmpfs on {path}: {p.stderr.strip()}")


def umount(path):
    p = subprocess.run(["umount", path], capture_output=True, text=True, timeout=30)
    h.check(p.returncode == 0, f"could not unmount the tmpfs on {path}: {p.stderr.strip()}")


@h.test
def spool_filesystem_full():
    h.check(h.embedded_pg(), "this case needs the stack's embedded PostgreSQL")
    h.check(os.geteuid() == 0, "this case mounts a tmpfs: run it as root")
    spool = h.env()["VOICE_SPOOL_DIR"]
    watch = f.SpoolWatch(spool)
    h.wait_until(lambda: watch.count() == 0, DRAIN_BOUND_S,
                 "the stack's spool to be empty before the tmpfs hides it")
    h.check(not os.path.ismount(spool), f"{spool} is already a mount point")
    mount_tmpfs(spool)
    try:
        def fault():
            h.pg_stop()
            try:
                time.sleep(DOWN_S)
                df = shutil.disk_usage(spool)
            finally:
                h.pg_start()
            return {"spool_fs_kb": SPOOL_FS_KB, "spool_fs_free_kb_at_end": df.free // 1024}

        f.run_case("spool_filesystem_full", fault)
    finally:
        try:
            h.wait_until(lambda: watch.count() == 0, DRAIN_BOUND_S,
                         "the tmpfs spool to drain before unmounting it", interval=0.5)
        except h.TestFailure:
            keep = os.path.join(h.ITEST_DIR, "costs", "spool-left-on-tmpfs")
            shutil.copytree(spool, keep, dirs_exist_ok=True)
            print(f"     {watch.count()} records left on the tmpfs spool; copied to {keep}",
                  flush=True)
        umount(spool)


if __name__ == "__main__":
    h.run(setup=f.setup, teardown=f.teardown)
