#!/usr/bin/env python3
"""POST /call never dials after its client can have given up, and never
invites a retry that could dial twice.

- a request that waited in the worker's queue past its budget (nginx's
  X-Request-Start long ago) is refused with 503 request_expired, and
  Twilio hears nothing;
- a request whose Idempotency-Key is held by a request that died (pending
  past its lease) gets 502 outcome_unknown at once, and Twilio hears
  nothing;
- a worker killed while it waits on Twilio gives the client nginx's
  502 outcome_unknown, not a 503 that says "retry".
"""

import contextlib
import http.server
import json
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

STATE = {}


class FakeTwilio(http.server.BaseHTTPRequestHandler):
    """Counts requests; never creates anything (the tests expect none)."""
    hits = []

    def do_POST(self):
        FakeTwilio.hits.append(self.path)
        self.send_response(500)
        self.end_headers()

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def fake_twilio():
    FakeTwilio.hits = []
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeTwilio)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


def setup():
    name = h.unique_name("deadline")
    STATE["key"] = h.key_create(name)
    STATE["name"] = name


def call_body(to):
    return json.dumps({"to": to}).encode()


@h.test
def queued_past_the_budget_is_refused_without_dialing():
    with fake_twilio() as base, h.private_worker(None, "expired",
                                                 {"TWILIO_API_BASE_URL": base}) as (sock, _, _p):
        # nginx's $msec with a leading zero in its milliseconds, as one
        # request in ten has: the fraction once failed to parse, and the
        # request was then dialed as if it had just arrived
        long_ago = f"{int(time.time()) - 40}.042"
        r = h.fcgi(sock, "POST", "/call", call_body("+14155550100"),
                   {"CONTENT_TYPE": "application/json",
                    "HTTP_AUTHORIZATION": f"Bearer {STATE['key']}",
                    "HTTP_X_REQUEST_START": long_ago})
        h.check_json_error(r, 503, "request queued past its budget")
        h.check(r.json()["error"]["code"] == "request_expired", f"code: {r.body!r}")
        h.check(not FakeTwilio.hits, f"an expired request dialed: {FakeTwilio.hits}")
        h.check(r.header("retry-after") is not None, "request_expired without Retry-After")
        # a fresh request on the same worker is dialed (and fails at the fake)
        r = h.fcgi(sock, "POST", "/call", call_body("+14155550100"),
                   {"CONTENT_TYPE": "application/json",
                    "HTTP_AUTHORIZATION": f"Bearer {STATE['key']}",
                    "HTTP_X_REQUEST_START": f"{time.time():.3f}"})
        h.check(len(FakeTwilio.hits) >= 1, f"a fresh request did not reach Twilio: {r!r}")


@h.test
def abandoned_idempotency_key_answers_at_once():
    key = "abandoned-" + h.unique_name("k")
    body = call_body("+14155550100")
    # a request claimed the key, then its worker died: pending, lease over
    h.psql("INSERT INTO idempotency_keys (api_key_name, idem_key, request_hash, lease_until,"
           " created_at) VALUES (:'n', :'k', :'h', now() - interval '1 minute',"
           " now() - interval '2 minutes')", n=STATE["name"], k=key, h=h.sha256_hex(body.decode()))
    with fake_twilio() as base, h.private_worker(None, "abandoned",
                                                 {"TWILIO_API_BASE_URL": base}) as (sock, _, _p):
        t0 = time.monotonic()
        r = h.fcgi(sock, "POST", "/call", body,
                   {"CONTENT_TYPE": "application/json",
                    "HTTP_AUTHORIZATION": f"Bearer {STATE['key']}",
                    "HTTP_IDEMPOTENCY_KEY": key})
        took = time.monotonic() - t0
        h.check_json_error(r, 502, "abandoned key")
        h.check(r.json()["error"]["code"] == "outcome_unknown", f"code: {r.body!r}")
        h.check(took < 3, f"an abandoned key took {took:.1f} s to answer")
        h.check(not FakeTwilio.hits, f"an abandoned key dialed: {FakeTwilio.hits}")
        # a key still within its lease is in progress, not abandoned
        live = "live-" + h.unique_name("k")
        h.psql("INSERT INTO idempotency_keys (api_key_name, idem_key, request_hash, lease_until)"
               " VALUES (:'n', :'k', :'h', now() + interval '1 minute')",
               n=STATE["name"], k=live, h=h.sha256_hex(body.decode()))
        r = h.fcgi(sock, "POST", "/call", body,
                   {"CONTENT_TYPE": "application/json",
                    "HTTP_AUTHORIZATION": f"Bearer {STATE['key']}",
                    "HTTP_IDEMPOTENCY_KEY": live}, timeout=60)
        h.check(r.status == 409 and r.json()["error"]["code"] == "idempotency_key_in_progress",
                f"a leased key answered {r!r}")
        h.check(not FakeTwilio.hits, f"a leased key dialed: {FakeTwilio.hits}")


@h.test
def worker_killed_mid_call_is_outcome_unknown():
    results = {}

    def place():
        # the simulator's slow scenario holds its answer for SIM_SLOW_MS
        results["r"] = h.post("/call", {"to": "+14155550108"},
                              headers={"Authorization": f"Bearer {STATE['key']}"}, timeout=40)

    t = threading.Thread(target=place, daemon=True)
    t.start()
    time.sleep(1.5)
    victims = h.worker_pids("call")
    h.check(victims, "no call workers to kill")
    for pid in victims:  # by PID, the stack's own call workers
        os.kill(pid, signal.SIGKILL)
    t.join(40)
    h.check(not t.is_alive(), "POST /call did not return after its worker died")
    r = results["r"]
    h.check_json_error(r, 502, "worker killed mid-call")
    h.check(r.json()["error"]["code"] == "outcome_unknown", f"code: {r.body!r}")
    # the pool is back
    h.wait_until(lambda: h.get("/readyz").status == 200, 15, "the call pool after the kill")


if __name__ == "__main__":
    sys.exit(h.run(setup=setup))
