#!/usr/bin/env python3
"""Faults of the Twilio REST API, each under load for TWILIO_FAULT_S: down
(connection refused), slow past the deadline (the call is created, the
answer comes after the worker's TWILIO_TIMEOUT_MS), answering 500, and
answering garbage (the call is created, the reply is not a Call resource).

POST /call goes to a private call master of the stack's build
(harness.private_worker, VOICE_CALL_WORKERS=2) whose TWILIO_API_BASE_URL is
a fake Twilio in this process (faults.FakeTwilio), which records every call
it created: the record the "dialed at most once per Idempotency-Key" check
reads. Callbacks go to the stack through nginx as in every case. What a
POST /call may answer: 201, 503 with Retry-After (nothing dialed for
certain, or a retry is safe with the same key), 504 twilio_timeout or
outcome_unknown (the call may exist; a retry with the same key replays it).
See faults.py for the load and the other checks."""

import contextlib
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faults as f  # noqa: E402
import harness as h  # noqa: E402

TWILIO_FAULT_S = 8.0
PRIVATE = {"stack": None, "fake": None, "sock": None, "log": None, "tmp": None}


def setup():
    f.setup()
    timeout_s = int(h.env().get("TWILIO_TIMEOUT_MS", "15000")) / 1000
    tmp = tempfile.mkdtemp(prefix="faults-twilio-")
    PRIVATE["tmp"] = tmp
    stack = contextlib.ExitStack()
    PRIVATE["stack"] = stack
    fake = f.FakeTwilio(slow_s=timeout_s + 2)
    stack.callback(fake.close)
    PRIVATE["fake"] = fake
    sock, log, _ = stack.enter_context(h.private_worker(
        tmp, "twilio", {"TWILIO_API_BASE_URL": fake.base_url, "VOICE_CALL_WORKERS": "2"}))
    PRIVATE["sock"], PRIVATE["log"] = sock, log
    ready, last = f.ready_after(f.now(), [sock])
    h.check(ready is not None, f"the private call master is not ready: {last}")


def teardown():
    try:
        if PRIVATE["stack"] is not None:
            PRIVATE["stack"].close()
    finally:
        if PRIVATE["tmp"]:
            shutil.rmtree(PRIVATE["tmp"], ignore_errors=True)
        f.teardown()


def twilio_case(name, mode, allow_call=()):
    fake = PRIVATE["fake"]

    def fault():
        fake.set_mode(mode)
        try:
            time.sleep(TWILIO_FAULT_S)
        finally:
            fake.set_mode("ok")
        return {}

    f.run_case(name, fault, call_sock=PRIVATE["sock"], private_socks=[PRIVATE["sock"]],
               dials=fake, allow_call=allow_call, extra_logs=[PRIVATE["log"]])


@h.test
def twilio_down():
    twilio_case("twilio_down", "down")


@h.test
def twilio_slow_past_the_deadline():
    twilio_case("twilio_slow", "slow")


@h.test
def twilio_answers_500():
    twilio_case("twilio_500", "error500")


@h.test
def twilio_answers_garbage():
    twilio_case("twilio_garbage", "garbage")


if __name__ == "__main__":
    h.run(setup=setup, teardown=teardown)
