#!/usr/bin/env python3
"""`deploy/voicectl twilio check` (call_fcgi --check-twilio) against the
stack's simulator:

- good credentials: exit 0, the account's friendly name, status and type,
  TWILIO_FROM_NUMBER found among the account's phone numbers (or, for
  another number, among its verified caller IDs);
- a bad auth token, an unknown API key, a caller ID the account does not
  own, an unreachable Twilio, an invalid configuration: a non-zero exit with
  one clear line per problem, and no secret or full phone number printed;
- the requests it sent, from the simulator's own record: Twilio's OAS
  operations FetchAccount, ListIncomingPhoneNumber, ListOutgoingCallerId,
  with declared parameters only, valid values and the configured Basic auth;
- the simulator answers those operations with the OAS's fields;
- deploy/up runs the check when TWILIO_API_BASE_URL is set and says what it
  found (a second stack, on the first stack's database and simulator).
"""

import base64
import contextlib
import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import oas  # noqa: E402
from harness import check, test  # noqa: E402

UNOWNED = "+14155550142"
# log_mask_phone's shape: the country code (maybe more) kept, the last four
MASK = r"\+1[0-9]*•••"
VERIFIED = "+14155550198"   # stack.py: SIM_CALLER_IDS


def sim(method, path, timeout=15):
    return h.request(method, path, https=False, port=h.env()["VOICE_SIM_PORT"], timeout=timeout)


def sim_clear():
    r = sim("DELETE", "/_sim/requests")
    check(r.status == 204, f"DELETE /_sim/requests: {r!r}")


def sim_requests():
    r = sim("GET", "/_sim/requests")
    check(r.status == 200, f"GET /_sim/requests: {r!r}")
    return r.json()


def twilio_check(**overrides):
    """voicectl twilio check on the stack, with settings overridden in its
    environment (the environment wins over stack.env)."""
    env = dict(os.environ)
    env.pop("DATABASE_URL", None)
    env["VOICE_RUN_DIR"] = h.ITEST_DIR
    env.update(overrides)
    return subprocess.run([h.VOICECTL, "twilio", "check"], capture_output=True, text=True,
                          env=env, timeout=120)


def problems(p):
    return [line for line in p.stdout.splitlines() if line.startswith("problem: ")]


def no_secrets(p, what, *extra):
    e = h.env()
    out = p.stdout + p.stderr
    for s in (e["TWILIO_AUTH_TOKEN"], *extra):
        check(s not in out, f"{what}: a secret was printed")
    for n in (e["TWILIO_FROM_NUMBER"], UNOWNED, VERIFIED):
        check(n not in out, f"{what}: the full number {n} was printed (numbers are masked)")


def accounts():
    return {h.env()["TWILIO_ACCOUNT_SID"]}


@test
def good_credentials_pass():
    e = h.env()
    sim_clear()
    p = twilio_check()
    check(p.returncode == 0, f"exit {p.returncode}: {p.stdout} {p.stderr}")
    out = p.stdout
    check(not problems(p), f"problems reported: {problems(p)}")
    check(f'account: "Simulated account" ({e["TWILIO_ACCOUNT_SID"]}), status active, type Full'
          in out, f"no account line: {out!r}")
    check(re.search(r"caller ID: TWILIO_FROM_NUMBER " + MASK + r"0199 is a phone number of this "
                    r"account \(PN[0-9a-f]{32}\)", out), f"no caller ID line: {out!r}")
    check(out.splitlines()[-1].startswith("ok: "), f"last line: {out.splitlines()[-1]!r}")
    no_secrets(p, "good credentials")
    recs = sim_requests()
    ops = [oas.check_request(r, accounts()) for r in recs]
    check(ops == ["FetchAccount", "ListIncomingPhoneNumber"], f"requests: {ops}")
    check(all(r["method"] == "GET" and r["status"] == 200 and not r["params"] for r in recs),
          f"GETs without a body, answered 200: {recs}")
    check(recs[0]["path"] == f"/2010-04-01/Accounts/{e['TWILIO_ACCOUNT_SID']}.json"
          and recs[0]["query"] == "", f"account fetch: {recs[0]['path']}?{recs[0]['query']}")
    check(recs[1]["query"] == "PhoneNumber=%2B14155550199",
          f"the lookup asks for the caller ID only: {recs[1]['query']!r}")


@test
def verified_caller_id_passes():
    sim_clear()
    p = twilio_check(TWILIO_FROM_NUMBER=VERIFIED)
    check(p.returncode == 0, f"exit {p.returncode}: {p.stdout} {p.stderr}")
    check(re.search(r"caller ID: TWILIO_FROM_NUMBER " + MASK + r"0198 is a verified caller ID",
                    p.stdout), f"no verified caller ID line: {p.stdout!r}")
    ops = [oas.check_request(r, accounts()) for r in sim_requests()]
    check(ops == ["FetchAccount", "ListIncomingPhoneNumber", "ListOutgoingCallerId"],
          f"requests: {ops}")
    check(sim_requests()[2]["query"] == "PhoneNumber=%2B14155550198", "caller ID lookup query")


@test
def bad_token_fails_clearly():
    bad = "not-the-token-" + "x" * 20
    sim_clear()
    p = twilio_check(TWILIO_AUTH_TOKEN=bad)
    check(p.returncode == 1, f"exit {p.returncode}: {p.stdout} {p.stderr}")
    probs = problems(p)
    check(len(probs) == 1, f"one problem line, got {probs}")
    check("refused the credentials" in probs[0] and "TWILIO_AUTH_TOKEN" in probs[0]
          and "20003" in probs[0], f"problem line: {probs[0]!r}")
    check(p.stdout.splitlines()[-1] == "1 problem found", f"last line {p.stdout!r}")
    no_secrets(p, "bad token", bad)
    recs = sim_requests()
    check(len(recs) == 1 and recs[0]["status"] == 401 and recs[0]["twilio_code"] == 20003,
          f"one refused account fetch: {recs}")
    oas.check_request(recs[0], accounts())


@test
def unknown_api_key_fails_naming_the_key():
    key_sid, key_secret = "SK" + "7" * 32, "api-key-secret-" + "y" * 16
    sim_clear()
    p = twilio_check(TWILIO_API_KEY_SID=key_sid, TWILIO_API_KEY_SECRET=key_secret)
    check(p.returncode == 1, f"exit {p.returncode}: {p.stdout} {p.stderr}")
    probs = problems(p)
    check(len(probs) == 1 and "TWILIO_API_KEY_SID" in probs[0], f"problems: {probs}")
    check(f"API key {key_sid}" in p.stdout, "the report does not say the API key was used")
    no_secrets(p, "api key", key_secret)
    recs = sim_requests()
    check(len(recs) == 1, f"requests: {recs}")
    oas.check_request(recs[0], {key_sid})


@test
def unowned_caller_id_fails_clearly():
    sim_clear()
    p = twilio_check(TWILIO_FROM_NUMBER=UNOWNED)
    check(p.returncode == 1, f"exit {p.returncode}: {p.stdout} {p.stderr}")
    probs = problems(p)
    check(len(probs) == 1, f"one problem line, got {probs}")
    check(re.search(r"TWILIO_FROM_NUMBER " + MASK + r"0142 is neither a phone number of this "
                    r"account nor a verified caller ID", probs[0]), f"problem line: {probs[0]!r}")
    check("status active" in p.stdout, "the account line is missing")
    no_secrets(p, "unowned caller ID")
    ops = [oas.check_request(r, accounts()) for r in sim_requests()]
    check(ops == ["FetchAccount", "ListIncomingPhoneNumber", "ListOutgoingCallerId"],
          f"requests: {ops}")


@test
def unreachable_twilio_fails_clearly():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))  # bound, not listening: refused
    port = s.getsockname()[1]
    try:
        p = twilio_check(TWILIO_API_BASE_URL=f"http://127.0.0.1:{port}")
    finally:
        s.close()
    check(p.returncode == 1, f"exit {p.returncode}: {p.stdout} {p.stderr}")
    probs = problems(p)
    check(len(probs) == 1 and "could not reach Twilio" in probs[0] and str(port) in probs[0],
          f"problems: {probs}")


@test
def invalid_configuration_exits_2():
    p = twilio_check(TWILIO_ACCOUNT_SID="AC123")
    check(p.returncode == 2, f"exit {p.returncode}: {p.stdout} {p.stderr}")
    check("TWILIO_ACCOUNT_SID" in p.stderr, f"the line does not name the setting: {p.stderr!r}")


@test
def simulator_answers_as_the_oas_says():
    e = h.env()
    acct = e["TWILIO_ACCOUNT_SID"]
    import base64
    auth = {"Authorization": "Basic " + base64.b64encode(
        f"{acct}:{e['TWILIO_AUTH_TOKEN']}".encode()).decode()}

    def get(path):
        return h.request("GET", path, https=False, port=e["VOICE_SIM_PORT"], headers=auth)

    r = get(f"/2010-04-01/Accounts/{acct}.json")
    check(r.status == 200, f"account fetch: {r!r}")
    a = r.json()
    check(set(a) == oas.schema_fields("api.v2010.account"),
          f"account fields differ from the OAS: {sorted(set(a) ^ oas.schema_fields('api.v2010.account'))}")
    check(a["auth_token"] is None, "the simulator echoed the auth token")
    r = get(f"/2010-04-01/Accounts/{acct}/IncomingPhoneNumbers.json?PhoneNumber=%2B14155550199")
    check(r.status == 200, f"incoming numbers: {r!r}")
    page = r.json()
    check(set(page) == oas.response_fields("ListIncomingPhoneNumber"), f"page fields {sorted(page)}")
    nums = page["incoming_phone_numbers"]
    check(len(nums) == 1 and nums[0]["phone_number"] == "+14155550199", f"numbers {nums}")
    check(set(nums[0]) == oas.schema_fields("api.v2010.account.incoming_phone_number"),
          "incoming number fields differ from the OAS")
    r = get(f"/2010-04-01/Accounts/{acct}/OutgoingCallerIds.json?PhoneNumber=%2B14155550198")
    page = r.json()
    check(r.status == 200 and set(page) == oas.response_fields("ListOutgoingCallerId"),
          f"caller IDs: {r!r}")
    check(set(page["outgoing_caller_ids"][0]) ==
          oas.schema_fields("api.v2010.account.outgoing_caller_id"), "caller ID fields")
    r = get(f"/2010-04-01/Accounts/{acct}/OutgoingCallerIds.json?PhoneNumber=%2B14155550142")
    check(r.status == 200 and r.json()["outgoing_caller_ids"] == [], f"unknown caller ID: {r!r}")
    r = get(f"/2010-04-01/Accounts/{acct}/IncomingPhoneNumbers.json?Colour=red")
    check(r.status == 400 and r.json()["code"] == 20001, f"unknown query parameter: {r!r}")
    r = h.request("GET", f"/2010-04-01/Accounts/{acct}.json", https=False,
                  port=e["VOICE_SIM_PORT"])
    check(r.status == 401 and r.json()["code"] == 20003, f"no credentials: {r!r}")


class _FakeTwilio(http.server.BaseHTTPRequestHandler):
    """An account Twilio would answer for: suspended, Trial, its number
    without voice; the API key works, the auth token does not."""
    account = ""
    good_user = ""

    def do_GET(self):
        user = base64.b64decode(self.headers.get("Authorization", "Basic ")[6:] or b"").decode()
        user = user.split(":", 1)[0]
        if user != _FakeTwilio.good_user:
            self._send(401, {"code": 20003, "message": "Authenticate", "status": 401})
        elif self.path == f"/2010-04-01/Accounts/{_FakeTwilio.account}.json":
            self._send(200, {"sid": _FakeTwilio.account, "friendly_name": "Old\tTrial",
                             "status": "suspended", "type": "Trial", "auth_token": None})
        elif self.path.startswith(f"/2010-04-01/Accounts/{_FakeTwilio.account}/IncomingPhoneNumbers"):
            self._send(200, {"incoming_phone_numbers": [{
                "phone_number": "+14155550199", "sid": "PN" + "a" * 32,
                "capabilities": {"voice": False, "sms": True}}], "next_page_uri": None})
        else:
            self._send(404, {"code": 20404, "message": "not found", "status": 404})

    def _send(self, status, doc):
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def _fake_twilio():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeTwilio)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


@test
def account_problems_are_each_one_line():
    key_sid = "SK" + "5" * 32
    _FakeTwilio.account = h.env()["TWILIO_ACCOUNT_SID"]
    _FakeTwilio.good_user = key_sid
    with _fake_twilio() as base:
        p = twilio_check(TWILIO_API_BASE_URL=base, TWILIO_API_KEY_SID=key_sid,
                         TWILIO_API_KEY_SECRET="key-secret-" + "z" * 16)
    check(p.returncode == 1, f"exit {p.returncode}: {p.stdout} {p.stderr}")
    probs = problems(p)
    check(len(probs) == 3, f"three problems, got {probs}")
    check("the account is suspended" in probs[0], f"suspended: {probs}")
    check("TWILIO_AUTH_TOKEN" in probs[1] and "webhook signatures" in probs[1],
          f"the auth token refused: {probs}")
    check("without voice capability" in probs[2], f"voiceless number: {probs}")
    check('account: "Old Trial"' in p.stdout and "type Trial" in p.stdout,
          f"account line (a control character shown as a space): {p.stdout!r}")
    check("note: a trial account" in p.stdout, f"no trial note: {p.stdout!r}")
    check(p.stdout.splitlines()[-1] == "3 problems found", f"last line {p.stdout!r}")


def _second_stack(run_dir, extra):
    """deploy/up in run_dir on the first stack's database and simulator, with
    TWILIO_API_BASE_URL set (so no simulator of its own). Returns its
    output; stopped by the caller with deploy/down."""
    import stack  # tests/integration/stack.py: free ports, script runner
    e = h.env()
    https, http_port, simport, pg = stack.free_ports(4)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TWILIO_", "PUBLIC_BASE_URL", "VOICE_", "SIM_"))}
    env.update({"VOICE_RUN_DIR": run_dir, "VOICE_SKIP_INSTALL": "1",
                "VOICE_BUILD_DIR": e["VOICE_BUILD_DIR"], "DATABASE_URL": e["DATABASE_URL"],
                "VOICE_HTTPS_PORT": str(https), "VOICE_HTTP_PORT": str(http_port),
                "VOICE_SIM_PORT": str(simport), "VOICE_PG_PORT": str(pg),
                "VOICE_CALL_WORKERS": "1", "VOICE_WEBHOOK_WORKERS": "1",
                "TWILIO_API_BASE_URL": f"http://127.0.0.1:{e['VOICE_SIM_PORT']}",
                "TWILIO_ACCOUNT_SID": e["TWILIO_ACCOUNT_SID"],
                "TWILIO_AUTH_TOKEN": e["TWILIO_AUTH_TOKEN"],
                "TWILIO_FROM_NUMBER": e["TWILIO_FROM_NUMBER"]})
    env.update(extra)
    out_path = os.path.join(run_dir, "up.out")
    rc = stack.run_script(os.path.join(h.SOURCE_DIR, "deploy", "up"), env, 240, out_path)
    with open(out_path, encoding="utf-8", errors="replace") as f:
        out = f.read()
    return rc, out, env


@test
def deploy_up_runs_the_check_with_a_real_twilio_api():
    import stack
    run_dir = tempfile.mkdtemp(prefix="twcheck-")
    env = None
    try:
        rc, out, env = _second_stack(run_dir, {})
        check(rc == 0, f"deploy/up exited {rc}: {out[-1500:]}")
        check("deploy/voicectl twilio check" in out, f"deploy/up did not say it checks: {out[-1500:]}")
        check('account: "Simulated account"' in out, f"the account line is missing: {out[-1500:]}")
        check(re.search(r"Twilio check +ok", out), f"no 'Twilio check ok' in the summary: {out[-800:]}")
        # the same stack again with a caller ID the account does not own:
        # reported, not fatal
        rc, out, env = _second_stack(run_dir, {"TWILIO_FROM_NUMBER": UNOWNED})
        check(rc == 0, f"deploy/up with a bad caller ID exited {rc}: {out[-1500:]}")
        check(re.search(r"problem: TWILIO_FROM_NUMBER " + MASK + "0142 is neither", out),
              f"the problem is not reported: {out[-2500:]}")
        check(re.search(r"Twilio check +FAILED: 1 problem", out), f"summary: {out[-800:]}")
    finally:
        if env is not None:
            stack.run_script(os.path.join(h.SOURCE_DIR, "deploy", "down"), env, 120,
                             os.path.join(run_dir, "down.out"))
        shutil.rmtree(run_dir, ignore_errors=True)
    check(h.get("/readyz").status == 200, "the first stack lost its database")


if __name__ == "__main__":
    h.run()
