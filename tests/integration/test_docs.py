#!/usr/bin/env python3
"""The documentation cannot rot: runs every example of docs/API.md against
the stack stack.py started and checks it against docs/openapi.yaml; checks
that docs/API.md and docs/openapi.yaml document exactly the error codes of
the catalogue (common/apierr.def), and that nginx's own JSON errors use
its codes, statuses, messages and Retry-After; checks
deploy/alerts.yml and the links between the documents.

Runnable examples in docs/API.md are fenced ```sh blocks directly after a
comment of the form

    <!-- example: NAME status=S1[,S2...] [capture=VAR:json_field] -->

The block runs under bash (set -euo pipefail) with https://127.0.0.1:8443
replaced by the stack's address and these variables set: API_KEY (a key
minted with voicectl for this run), TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN
(from stack.env), and any variable an earlier example captured (CALL_SID,
CURSOR, ...; a dotted capture such as recordings.0.sid walks members and
indexes). `curl` is a recording wrapper: each invocation's status must be
the next of status=..., its media type must be one openapi.yaml lists for
that path, method and status, and a JSON body must validate against that
schema. capture=VAR:field takes field from the last JSON answer.

Needs python3-yaml and python3-jsonschema (tests/packages.txt): without
them the test fails, it never skips.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

try:
    import yaml
    import jsonschema
except ImportError as e:  # fail, never skip
    print(f"FAIL dependencies: {e} (install python3-yaml and python3-jsonschema, "
          "see tests/packages.txt)", flush=True)
    print("0 passed, 1 failed", flush=True)
    sys.exit(1)

SRC = h.SOURCE_DIR
API_MD = os.path.join(SRC, "docs", "API.md")
OPS_MD = os.path.join(SRC, "docs", "OPERATIONS.md")
OPENAPI = os.path.join(SRC, "docs", "openapi.yaml")
ALERTS = os.path.join(SRC, "deploy", "alerts.yml")
README = os.path.join(SRC, "README.md")
NGINX_SITE = os.path.join(SRC, "nginx", "voice.conf.template")
CATALOGUE = os.path.join(SRC, "common", "apierr.def")
DOC_BASE = "https://127.0.0.1:8443"
EXAMPLE_TIMEOUT = 60     # seconds per example block
CURL_MAX_TIME = "30"     # seconds per curl inside a block

# The metric families the service exports (the contract for alerts.yml).
METRICS = {
    "voice_http_requests_total", "voice_http_request_duration_seconds",
    "voice_twilio_requests_total", "voice_webhook_signature_failures_total",
    "voice_db_errors_total", "voice_db_reconnects_total", "voice_calls_final_total",
    "voice_spool_records_total", "voice_worker_starts_total", "voice_reconcile_total",
    "voice_api_key_lookups_total",
}

_results = []


def check_step(name):
    """Decorator-free runner: check_step(name)(fn) runs fn, records the
    outcome, prints one line, never stops the run."""
    def run(fn, *args):
        t0 = time.monotonic()
        try:
            fn(*args)
        except h.TestFailure as e:
            _results.append(False)
            print(f"FAIL {name}: {e}", flush=True)
            return False
        except Exception:  # an unexpected error is a failure too, with its trace
            _results.append(False)
            print(f"FAIL {name}: unexpected error", flush=True)
            traceback.print_exc()
            return False
        _results.append(True)
        print(f"ok   {name} ({time.monotonic() - t0:.1f}s)", flush=True)
        return True
    return run


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


# OpenAPI -> JSON Schema --------------------------------------------------------

_DATE_TIME = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$"


def resolve_ref(doc, ref):
    h.check(ref.startswith("#/"), f"openapi: only local $ref supported, got {ref!r}")
    node = doc
    for part in ref[2:].split("/"):
        h.check(isinstance(node, dict) and part in node, f"openapi: unresolved $ref {ref!r}")
        node = node[part]
    return node


def to_jsonschema(doc, node, depth=0):
    """An OpenAPI 3.0 schema object as a self-contained JSON Schema: $ref
    inlined, nullable as a type union, format date-time as a pattern."""
    h.check(depth < 50, "openapi: $ref nesting too deep (a cycle?)")
    if isinstance(node, list):
        return [to_jsonschema(doc, x, depth + 1) for x in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return to_jsonschema(doc, resolve_ref(doc, node["$ref"]), depth + 1)
    out = {}
    for k, v in node.items():
        if k in ("nullable", "example", "description", "readOnly", "writeOnly", "deprecated"):
            continue
        if k in ("properties", "patternProperties"):
            out[k] = {pk: to_jsonschema(doc, pv, depth + 1) for pk, pv in v.items()}
        else:
            out[k] = to_jsonschema(doc, v, depth + 1)
    if node.get("format") == "date-time" and "pattern" not in out:
        out["pattern"] = _DATE_TIME
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = list(out["enum"]) + [None]
    return out


_OPENAPI = None


def openapi():
    global _OPENAPI
    if _OPENAPI is None:
        _OPENAPI = yaml.safe_load(read(OPENAPI))
    return _OPENAPI


def find_operation(method, path):
    """(template, operation) for a concrete request path."""
    paths = openapi()["paths"]
    if path in paths:
        template = path
    else:
        template = None
        for t in paths:
            rx = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(t)) + "$"
            if re.match(rx, path):
                template = t
                break
    h.check(template is not None, f"openapi.yaml documents no path matching {path}")
    op = paths[template].get(method.lower())
    h.check(op is not None, f"openapi.yaml documents no {method} {template}")
    return template, op


def validate_response(method, url, status, headers, body):
    path = re.sub(r"^https?://[^/]+", "", url).split("?", 1)[0] or "/"
    template, op = find_operation(method, path)
    resp = op["responses"].get(str(status))
    h.check(resp is not None,
            f"{method} {template}: status {status} is not documented in openapi.yaml "
            f"(documented: {sorted(op['responses'])})")
    if "$ref" in resp:
        resp = resolve_ref(openapi(), resp["$ref"])
    h.check("x-request-id" in headers, f"{method} {path} -> {status}: no X-Request-Id header")
    content = resp.get("content")
    if not content:
        h.check(body == b"", f"{method} {template} {status}: openapi.yaml says no body, got {body[:200]!r}")
        return None
    ctype = headers.get("content-type", "")
    media = ctype.split(";", 1)[0].strip().lower()
    h.check(media in content, f"{method} {template} {status}: Content-Type {ctype!r} is not one of "
            f"{sorted(content)}")
    if media != "application/json":
        return None
    h.check(ctype.lower().replace(" ", "") == "application/json;charset=utf-8",
            f"{method} {path}: JSON Content-Type is {ctype!r}, not application/json; charset=utf-8")
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise h.TestFailure(f"{method} {path} -> {status}: body is not JSON ({e}): {body[:200]!r}")
    schema = to_jsonschema(openapi(), content[media]["schema"])
    err = jsonschema.exceptions.best_match(jsonschema.Draft7Validator(schema).iter_errors(doc))
    if err is not None:
        where = "/".join(str(p) for p in err.absolute_path) or "(root)"
        raise h.TestFailure(f"{method} {path} -> {status}: body does not match openapi.yaml at "
                            f"{where}: {err.message}")
    return doc


# Examples ------------------------------------------------------------------

EXAMPLE_RX = re.compile(
    r"<!--\s*example:\s*([a-z0-9-]+)((?:\s+[a-z]+=\S+)*)\s*-->\s*\n```sh\n(.*?)\n```",
    re.S)


def parse_examples(text):
    out = []
    for m in EXAMPLE_RX.finditer(text):
        name, attrs, code = m.group(1), m.group(2), m.group(3)
        opts = dict(a.split("=", 1) for a in attrs.split())
        h.check(set(opts) <= {"status", "capture"}, f"example {name}: unknown attribute in {attrs!r}")
        h.check("status" in opts, f"example {name}: no status=")
        statuses = [int(s) for s in opts["status"].split(",")]
        capture = None
        if "capture" in opts:
            var, field = opts["capture"].split(":", 1)
            capture = (var, field)
        out.append({"name": name, "statuses": statuses, "capture": capture, "code": code})
    return out


WRAPPER = r'''#!/usr/bin/env python3
# curl as the docs examples call it, recorded: runs the real curl, prints
# what the user would see, appends {argv, status, headers, body} to the log.
import json, os, subprocess, sys, tempfile
real, log = os.environ["DOCS_REAL_CURL"], os.environ["DOCS_CURL_LOG"]
include, args = False, []
for a in sys.argv[1:]:
    if a in ("-i", "--include"):
        include = True
        continue
    if len(a) > 2 and a[0] == "-" and a[1] != "-" and set(a[1:]) <= set("sSkiLfv") and "i" in a:
        include = True
        a = a.replace("i", "")
    args.append(a)
with tempfile.TemporaryDirectory() as d:
    hf, bf = os.path.join(d, "h"), os.path.join(d, "b")
    p = subprocess.run([real, *args, "-D", hf, "-o", bf, "-w", "%{http_code}",
                        "--max-time", os.environ.get("DOCS_CURL_MAX_TIME", "30")],
                       capture_output=True)
    headers = open(hf, "rb").read() if os.path.exists(hf) else b""
    body = open(bf, "rb").read() if os.path.exists(bf) else b""
with open(log, "a", encoding="utf-8") as f:
    f.write(json.dumps({"argv": sys.argv[1:], "rc": p.returncode,
                        "status": p.stdout.decode("ascii", "replace"),
                        "headers": headers.decode("latin-1"),
                        "body": body.decode("latin-1")}) + "\n")
out = (headers if include else b"") + body
sys.stdout.buffer.write(out)
sys.stderr.buffer.write(p.stderr)
sys.exit(p.returncode)
'''


def curl_method_url(argv):
    method, url, data = None, None, False
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("-X", "--request") and i + 1 < len(argv):
            method = argv[i + 1]
            i += 2
            continue
        if a in ("-d", "--data", "--data-raw", "--data-binary", "--data-urlencode", "--json"):
            data = True
            i += 2
            continue
        if a in ("-H", "--header", "-o", "-D", "-w", "--max-time", "--cacert", "-u"):
            i += 2
            continue
        if re.match(r"^https?://", a):
            url = a
        elif a in ("-I", "--head"):
            method = method or "HEAD"
        i += 1
    return method or ("POST" if data else "GET"), url


def headers_dict(raw):
    """The last response's headers (lower-case names) from curl -D output."""
    blocks = [b for b in re.split(r"\r?\n\r?\n", raw) if b.strip()]
    out = {}
    if not blocks:
        return out
    for line in blocks[-1].splitlines()[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            out[k.strip().lower()] = v.strip()
    return out


class ExampleRunner:
    def __init__(self, base, variables):
        self.base = base
        self.vars = dict(variables)
        self.dir = tempfile.mkdtemp(prefix="docs-examples-")
        self.real_curl = shutil.which("curl")
        h.check(self.real_curl is not None, "curl is not installed")
        with open(os.path.join(self.dir, "curl"), "w", encoding="utf-8") as f:
            f.write(WRAPPER)
        os.chmod(os.path.join(self.dir, "curl"), 0o755)
        self.log = os.path.join(self.dir, "curl.log")
        self.last = {}

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def run(self, ex):
        open(self.log, "w").close()
        code = ex["code"].replace(DOC_BASE, self.base)
        env = dict(os.environ)
        env.update(self.vars)
        env.update({"PATH": self.dir + os.pathsep + env.get("PATH", ""),
                    "DOCS_REAL_CURL": self.real_curl, "DOCS_CURL_LOG": self.log,
                    "DOCS_CURL_MAX_TIME": CURL_MAX_TIME})
        try:
            p = subprocess.run(["bash", "-euo", "pipefail", "-c", code], env=env,
                               capture_output=True, timeout=EXAMPLE_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise h.TestFailure(f"the example did not finish within {EXAMPLE_TIMEOUT}s")
        h.check(p.returncode == 0, f"the example exited {p.returncode}: "
                f"{p.stderr.decode('utf-8', 'replace').strip()[-400:]}")
        with open(self.log, encoding="utf-8") as f:
            calls = [json.loads(line) for line in f if line.strip()]
        h.check(len(calls) == len(ex["statuses"]),
                f"the example ran curl {len(calls)} times, status= lists {len(ex['statuses'])}")
        docs = []
        for n, (c, want) in enumerate(zip(calls, ex["statuses"]), 1):
            method, url = curl_method_url(c["argv"])
            h.check(url is not None, f"curl #{n}: no URL in {c['argv']!r}")
            h.check(c["rc"] == 0, f"curl #{n} ({method} {url}) failed with exit status {c['rc']}")
            status = int(c["status"] or 0)
            body = c["body"].encode("latin-1")
            h.check(status == want, f"curl #{n} {method} {url}: expected {want}, got {status}: "
                    f"{body[:300]!r}")
            hdrs = headers_dict(c["headers"])
            docs.append((validate_response(method, url, status, hdrs, body), hdrs, body))
        self.last[ex["name"]] = docs
        if ex["capture"]:
            var, field = ex["capture"]
            val = docs[-1][0]
            for part in field.split("."):  # "recordings.0.sid": members and indexes
                if isinstance(val, list) and part.isdigit() and int(part) < len(val):
                    val = val[int(part)]
                elif isinstance(val, dict) and part in val:
                    val = val[part]
                else:
                    raise h.TestFailure(f"capture {var}: the last answer has no {field!r}")
            h.check(val is not None, f"capture {var}: {field} is null")
            self.vars[var] = str(val)


# Error codes ----------------------------------------------------------------

_CATALOGUE_LINE = re.compile(
    r'APIERR\(([A-Z][A-Z0-9_]*), ([1-5]\d\d), (\d+), "([a-z][a-z0-9_]*)", "((?:[^"\\]|\\.)+)"\)')


def catalogue():
    """{code: (status, default message, Retry-After)} from common/apierr.def,
    the one table of every error the API answers (workers and nginx alike)."""
    text = re.sub(r"/\*.*?\*/", " ", read(CATALOGUE), flags=re.S)
    out, names = {}, set()
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        m = _CATALOGUE_LINE.fullmatch(line)
        h.check(m is not None, f"common/apierr.def: not an APIERR(NAME, status, retry_after, "
                f"\"code\", \"message\") line: {line!r}")
        name, status, retry_after, code, message = m.groups()
        h.check(name not in names and code not in out, f"common/apierr.def lists {code} twice")
        names.add(name)
        out[code] = (int(status), message.replace('\\"', '"').replace("\\\\", "\\"),
                     int(retry_after))
    h.check(out, "common/apierr.def is empty or unreadable")
    return out


def documented_codes():
    """{code: set of statuses} from the Error codes table of API.md."""
    text = read(API_MD)
    h.check("\n## Error codes\n" in text, "docs/API.md has no '## Error codes' section")
    section = text.split("\n## Error codes\n", 1)[1].split("\n## ", 1)[0]
    out = {}
    for code, statuses in re.findall(r"^\| `([a-z_]+)` \| ([0-9, ]+) \|", section, re.M):
        h.check(code not in out, f"docs/API.md lists {code} twice")
        out[code] = {int(s) for s in statuses.replace(" ", "").split(",") if s}
    h.check(out, "docs/API.md's Error codes table is empty or unreadable")
    return out


def openapi_error_codes(known):
    """{code: set of statuses} named in the descriptions of openapi.yaml's
    responses whose body is an Error, under paths (with their status) and
    in components/responses (no status). A code is a word of the catalogue
    (known) or any snake_case word with an underscore."""
    doc = openapi()
    out = {}

    def scan(status, resp):
        if "$ref" in resp:
            resp = resolve_ref(doc, resp["$ref"])
        schemas = [m.get("schema", {}) for m in (resp.get("content") or {}).values()]
        if not any(sc.get("$ref") == "#/components/schemas/Error" for sc in schemas):
            return
        for word in re.findall(r"\b[a-z][a-z0-9_]*\b", resp.get("description", "")):
            if "_" in word or word in known:
                out.setdefault(word, set()).update([int(status)] if status else [])

    for item in doc["paths"].values():
        for op in item.values():
            for status, resp in op.get("responses", {}).items():
                if str(status).isdigit():
                    scan(status, resp)
    for resp in doc.get("components", {}).get("responses", {}).values():
        scan(None, resp)
    return out


def nginx_errors():
    """[(status, code, message, Retry-After or 0)] of the JSON errors nginx
    answers itself, one named location each."""
    out = []
    for block in re.findall(r"^  location @\w+ \{\n(.*?)^  \}", read(NGINX_SITE), re.M | re.S):
        m = re.search(r"return\s+(\d{3})\s+'(\{\"error\".*?)\\n';", block)
        if m is None:
            continue
        err = json.loads(m.group(2))["error"]
        ra = re.search(r"add_header\s+Retry-After\s+(\d+)", block)
        out.append((int(m.group(1)), err.get("code"), err.get("message"),
                    int(ra.group(1)) if ra else 0))
    h.check(out, "nginx/voice.conf.template: no JSON error found")
    return out


# Markdown links -------------------------------------------------------------

def anchors(md):
    out = set()
    for title in re.findall(r"^#{1,6} (.+)$", md, re.M):
        a = title.strip().lower()
        a = re.sub(r"[^\w\- ]", "", a)
        out.add(a.replace(" ", "-"))
    return out


def check_links(path):
    text = read(path)
    base = os.path.dirname(path)
    text_nocode = re.sub(r"```.*?```", "", text, flags=re.S)
    for target in re.findall(r"\]\(([^)\s]+)\)", text_nocode):
        if re.match(r"^[a-z]+://", target):
            continue
        file_part, _, frag = target.partition("#")
        dest = os.path.normpath(os.path.join(base, file_part)) if file_part else path
        h.check(os.path.exists(dest), f"{os.path.relpath(path, SRC)}: link to missing {target}")
        if frag and dest.endswith(".md"):
            h.check(frag in anchors(read(dest)),
                    f"{os.path.relpath(path, SRC)}: link {target}: no heading with that anchor")


# Checks ---------------------------------------------------------------------

def t_openapi_valid():
    doc = openapi()
    h.check(str(doc.get("openapi", "")).startswith("3.0."), "openapi.yaml is not OpenAPI 3.0.x")
    want = {"/call": "post", "/calls": "get", "/calls/{sid}": "get", "/twilio/webhook": "post",
            "/twilio/voice": "post", "/healthz": "get", "/readyz": "get", "/metrics": "get",
            "/calls/{sid}/cancel": "post", "/calls/{sid}/hangup": "post",
            "/recordings/{sid}": "get", "/twilio/recording": "post"}
    for path, method in want.items():
        h.check(method in doc["paths"].get(path, {}), f"openapi.yaml lacks {method.upper()} {path}")
    for name in ("Call", "CallDetail", "CallEvent", "CallPage", "Error", "CallRequest", "Recording"):
        h.check(name in doc["components"]["schemas"], f"openapi.yaml lacks schema {name}")
    # every schema and every response compiles as JSON Schema; every $ref resolves
    for name, schema in doc["components"]["schemas"].items():
        jsonschema.Draft7Validator.check_schema(to_jsonschema(doc, schema))
    for path, item in doc["paths"].items():
        for method, op in item.items():
            h.check(op.get("responses"), f"{method.upper()} {path}: no responses")
            for status, resp in op["responses"].items():
                if "$ref" in resp:
                    resp = resolve_ref(doc, resp["$ref"])
                for media in (resp.get("content") or {}).values():
                    jsonschema.Draft7Validator.check_schema(to_jsonschema(doc, media["schema"]))


def t_error_codes_documented():
    known = catalogue()
    documented = documented_codes()
    missing = sorted(set(known) - set(documented))
    h.check(not missing, f"error codes in common/apierr.def but not in docs/API.md's Error codes "
            f"table: {', '.join(missing)}")
    wrong = [f"{c} ({'/'.join(map(str, sorted(documented[c])))} not {known[c][0]})"
             for c in sorted(known) if c in documented and documented[c] != {known[c][0]}]
    h.check(not wrong, f"docs/API.md gives the wrong HTTP status for: {', '.join(wrong)}")
    stale = sorted(set(documented) - set(known))
    h.check(not stale, f"docs/API.md documents codes common/apierr.def does not have: "
            f"{', '.join(stale)}")


def t_error_codes_in_openapi():
    known = catalogue()
    named = openapi_error_codes(known)
    missing = sorted(set(known) - set(named))
    h.check(not missing, f"openapi.yaml's error responses never mention: {', '.join(missing)}")
    stale = sorted(set(named) - set(known))
    h.check(not stale, f"openapi.yaml's error responses name codes common/apierr.def does not "
            f"have: {', '.join(stale)}")
    wrong = [f"{c} (under {'/'.join(map(str, sorted(named[c])))}, answered {known[c][0]})"
             for c in sorted(named) if c in known and named[c] and known[c][0] not in named[c]]
    h.check(not wrong, f"openapi.yaml never lists these codes under their status: "
            f"{', '.join(wrong)}")


def t_nginx_errors_from_catalogue():
    known = catalogue()
    for status, code, message, retry_after in nginx_errors():
        h.check(code in known, f"nginx/voice.conf.template answers {code!r}, which "
                "common/apierr.def does not have")
        h.check(status == known[code][0], f"nginx/voice.conf.template answers {code} with "
                f"{status}, common/apierr.def with {known[code][0]}")
        h.check(message == known[code][1], f"nginx/voice.conf.template's message for {code} is "
                f"{message!r}, common/apierr.def's default is {known[code][1]!r}")
        h.check(retry_after == known[code][2], f"nginx/voice.conf.template's Retry-After for "
                f"{code} is {retry_after or 'none'}, common/apierr.def's {known[code][2] or 'none'}")


def t_error_bodies_from_catalogue():
    """Handlers name errors by enum (common/apierr.h); only common/apierr.c
    writes the error body, so no other C source can spell a code into one."""
    for d in ("common", "handlers", "sim"):
        for name in sorted(os.listdir(os.path.join(SRC, d))):
            path = os.path.join(SRC, d, name)
            if name.endswith((".c", ".cc", ".h")) and path != os.path.join(SRC, "common", "apierr.c"):
                h.check('\\"error\\":' not in read(path),
                        f"{d}/{name} writes an error body itself; use apierr_reply (common/apierr.h)")


def t_links():
    for p in (API_MD, OPS_MD, README):
        check_links(p)
    readme = read(README)
    m = re.search(r"^## Documentation\n(.*?)(?=^## |\Z)", readme, re.M | re.S)
    h.check(m is not None, "README.md has no '## Documentation' section")
    for target in ("docs/API.md", "docs/OPERATIONS.md", "docs/openapi.yaml", "sim/README.md"):
        h.check(f"]({target})" in m.group(1), f"README's Documentation section does not link {target}")


def t_design_links():
    """The design documents and the simulator's README: links as t_links
    checks them, and README's Documentation section links the design."""
    for p in (os.path.join(SRC, "docs", "ARCHITECTURE.md"), os.path.join(SRC, "docs", "TWILIO.md"),
              os.path.join(SRC, "sim", "README.md")):
        check_links(p)
    m = re.search(r"^## Documentation\n(.*?)(?=^## |\Z)", read(README), re.M | re.S)
    h.check(m is not None, "README.md has no '## Documentation' section")
    for target in ("docs/ARCHITECTURE.md", "docs/TWILIO.md"):
        h.check(f"]({target})" in m.group(1), f"README's Documentation section does not link {target}")


# Nothing in the repository points outside it --------------------------------

# bench/ compares the service with a peer whose harness lives beside the
# checkout, on purpose; everything else stands on its own.
SELF_CONTAINED_SKIP = ("bench/",)
# Design notes that were never part of the repository, a directory beside the
# checkout (a shared tree or this machine's work area), and the Python way to
# reach beside it. Spelled so that these lines do not match themselves.
OUTSIDE_RX = re.compile(r"\b(?:DESIGN|STYLE)\.md\b|\.\./shared\b|(?<![\w.-])share[d]/"
                        r"|(?<![\w.])/work(?=/)|dirname\((?:h\.)?SOURCE_DIR\)")
# A cited Markdown file: a relative path or a bare name, not part of a URL.
MD_CITE_RX = re.compile(r"(?<![\w./-])([\w./-]*[\w-]\.md)(?![\w-])")
URL_RX = re.compile(r"[a-z][a-z0-9+.-]*://\S+")


def repo_files():
    """The repository's files, relative to SRC: git's list when SRC is a
    checkout, else the tree without build output."""
    p = subprocess.run(["git", "-C", SRC, "ls-files", "-z"], capture_output=True, timeout=60)
    if p.returncode == 0:
        return sorted(f for f in p.stdout.decode("utf-8").split("\0") if f)
    out = []
    for d, dirs, files in os.walk(SRC):
        dirs[:] = [x for x in dirs if x not in (".git", ".run", "__pycache__")
                   and not (d == SRC and x.startswith("build"))]
        out += [os.path.relpath(os.path.join(d, f), SRC) for f in files]
    return sorted(out)


def md_citations(rel, text):
    """(line, cited path) of every Markdown file a text cites; in Python,
    os.path.join("docs", "API.md") counts as docs/API.md."""
    text = URL_RX.sub(" ", text)
    if rel.endswith(".py"):
        text = re.sub(r'"([\w-]+)"\s*,\s*"', r'"\1/', text)
    return [(text.count("\n", 0, m.start()) + 1, m.group(1)) for m in MD_CITE_RX.finditer(text)]


def t_self_contained():
    """Every tracked text file (bench/ aside) cites only documents of the
    repository: no design notes that never were in it, no paths beside or
    outside the checkout, and every cited Markdown file exists, either as a
    path from the repository's top or from the citing file's directory, or
    as a bare name the same file also cites with its path (docs/API.md once,
    then API.md)."""
    files = repo_files()
    h.check(files, "no repository files found")
    present = set(files)
    problems = []
    for rel in files:
        if rel.startswith(SELF_CONTAINED_SKIP):
            continue
        try:
            with open(os.path.join(SRC, rel), "rb") as f:
                text = f.read().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            continue  # binary, or deleted from the worktree: not text to read
        if "\0" in text:
            continue
        for m in OUTSIDE_RX.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            problems.append(f"{rel}:{line}: {m.group(0)}")
        cites = md_citations(rel, text)
        here = os.path.dirname(rel)

        def resolves(target):
            if target.startswith("/"):
                return None
            for cand in (os.path.join(here, target), target):
                cand = os.path.normpath(cand)
                if cand in present:
                    return cand
            return None
        full = {os.path.basename(t): resolves(t) for _, t in cites if "/" in t and resolves(t)}
        for line, target in cites:
            if resolves(target) or ("/" not in target and full.get(target)) \
                    or OUTSIDE_RX.search(target):  # reported above
                continue
            problems.append(f"{rel}:{line}: {target}")
    h.check(not problems, f"{len(problems)} reference(s) to what is not in the repository: "
            + "; ".join(problems[:20]) + (" ..." if len(problems) > 20 else ""))


def alert_rules():
    doc = yaml.safe_load(read(ALERTS))
    h.check(isinstance(doc, dict) and isinstance(doc.get("groups"), list) and doc["groups"],
            "deploy/alerts.yml: no groups")
    rules = []
    for g in doc["groups"]:
        h.check(isinstance(g.get("name"), str) and g["name"], "deploy/alerts.yml: a group without a name")
        h.check(isinstance(g.get("rules"), list) and g["rules"], f"group {g.get('name')}: no rules")
        rules += g["rules"]
    return rules


def t_alerts():
    rules = alert_rules()
    ops_anchors = anchors(read(OPS_MD))
    names = set()
    for r in rules:
        a = r.get("alert")
        h.check(isinstance(a, str) and re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", a or ""),
                f"deploy/alerts.yml: a rule without a valid alert name: {r!r}")
        h.check(a not in names, f"alert {a} defined twice")
        names.add(a)
        h.check(isinstance(r.get("expr"), str) and r["expr"].strip(), f"alert {a}: no expr")
        h.check(re.fullmatch(r"\d+[smh]", str(r.get("for", ""))), f"alert {a}: for: is missing or not a duration")
        h.check(r.get("labels", {}).get("severity") in ("page", "ticket", "critical", "warning"),
                f"alert {a}: labels.severity missing")
        ann = r.get("annotations", {})
        h.check(ann.get("summary"), f"alert {a}: no summary annotation")
        rb = ann.get("runbook", "")
        m = re.fullmatch(r"docs/OPERATIONS\.md#([a-z0-9-]+)", rb)
        h.check(m is not None, f"alert {a}: runbook {rb!r} is not docs/OPERATIONS.md#anchor")
        h.check(m.group(1) in ops_anchors, f"alert {a}: runbook anchor #{m.group(1)} is not a heading "
                "in docs/OPERATIONS.md")
        used = set(re.findall(r"\b(voice_[a-z_]+)", r["expr"]))
        used = {re.sub(r"_(bucket|sum|count)$", "", u) for u in used}
        h.check(used, f"alert {a}: expr uses no voice_ metric")
        h.check(used <= METRICS, f"alert {a}: unknown metric(s) {sorted(used - METRICS)}")
    want = {"twilio auth": r"code=\"20003\"", "signature": r"voice_webhook_signature_failures_total",
            "database": r"kind=\"unavailable\"", "5xx ratio": r"status=~\"5",
            "no callbacks": r"route=\"/twilio/webhook\"", "spool": r"voice_spool_records_total"}
    exprs = "\n".join(r["expr"] for r in rules)
    for what, rx in want.items():
        h.check(re.search(rx, exprs), f"deploy/alerts.yml has no rule for {what}")
    # promtool is optional (Debian's prometheus package is large): when it is
    # on PATH or in VOICE_PROMTOOL, check the syntax and unit-test two rules.
    promtool = os.environ.get("VOICE_PROMTOOL") or shutil.which("promtool")
    if promtool:
        p = subprocess.run([promtool, "check", "rules", ALERTS], capture_output=True, text=True,
                           timeout=60)
        h.check(p.returncode == 0, f"promtool check rules: {p.stdout.strip()} {p.stderr.strip()}")
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "t.yml"), "w", encoding="utf-8") as f:
                f.write(PROMTOOL_TEST.replace("@ALERTS@", ALERTS))
            p = subprocess.run([promtool, "test", "rules", os.path.join(d, "t.yml")],
                               capture_output=True, text=True, timeout=60)
            h.check(p.returncode == 0, f"promtool test rules: {p.stdout.strip()} {p.stderr.strip()}")
    else:
        print("note: promtool not found (set VOICE_PROMTOOL); checked alerts.yml's structure only",
              flush=True)


# Calls created with no webhook at all fires VoiceNoCallbacks (the "or
# vector(0)" matters: the webhook series may not exist); a host whose spool
# was never replayed fires VoiceSpoolNotDraining, one that replayed does not.
PROMTOOL_TEST = """
rule_files: ["@ALERTS@"]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'voice_twilio_requests_total{instance="a",outcome="created",code="none"}'
        values: '0+1x40'
      - series: 'voice_http_requests_total{instance="a",pool="call",route="/call",status="201"}'
        values: '0+1x40'
      - series: 'voice_spool_records_total{instance="a",action="spooled"}'
        values: '0 5x40'
      - series: 'voice_spool_records_total{instance="b",action="spooled"}'
        values: '0 5x40'
      - series: 'voice_spool_records_total{instance="b",action="replayed"}'
        values: '0 0 5x39'
    alert_rule_test:
      - eval_time: 25m
        alertname: VoiceNoCallbacks
        exp_alerts:
          - exp_labels: {severity: page}
            exp_annotations:
              summary: "Calls are being placed but no status callback arrived for 15 minutes"
              description: "Twilio created 15 calls in 15 minutes and not one request reached /twilio/webhook: call records stay queued."
              runbook: docs/OPERATIONS.md#no-callbacks
      - eval_time: 35m
        alertname: VoiceSpoolNotDraining
        exp_alerts:
          - exp_labels: {severity: page, instance: a}
            exp_annotations:
              summary: "Spooled records on a have not reached PostgreSQL for 30 minutes"
              description: "About 5 records wait in VOICE_SPOOL_DIR on a; they are on that host's disk only."
              runbook: docs/OPERATIONS.md#spool-not-draining
      - eval_time: 10m
        alertname: VoiceHighErrorRatio
        exp_alerts: []
"""


def t_metrics_documented():
    ops = read(OPS_MD)
    for m in sorted(METRICS):
        h.check(f"`{m}" in ops, f"docs/OPERATIONS.md does not document {m}")


def t_metrics_exported():
    r = h.get("/metrics")
    h.check(r.status == 200, f"GET /metrics: {r!r}")
    text = r.body.decode("utf-8", "replace")
    missing = [m for m in sorted(METRICS) if f"# TYPE {m} " not in text]
    h.check(not missing, f"/metrics does not export {', '.join(missing)} (alerts.yml and "
            "OPERATIONS.md rely on them)")


def main():
    step = check_step
    step("openapi.yaml is valid")(t_openapi_valid)
    step("docs/API.md documents exactly the catalogue's error codes")(t_error_codes_documented)
    step("openapi.yaml names exactly the catalogue's error codes")(t_error_codes_in_openapi)
    step("nginx's own JSON errors come from the catalogue")(t_nginx_errors_from_catalogue)
    step("only common/apierr.c writes error bodies")(t_error_bodies_from_catalogue)
    step("links and README Documentation section")(t_links)
    step("links of the design documents and sim/README.md")(t_design_links)
    step("nothing in the repository points outside it")(t_self_contained)
    step("deploy/alerts.yml")(t_alerts)
    step("metrics documented in OPERATIONS.md")(t_metrics_documented)

    e = h.env()
    base = f"https://127.0.0.1:{e['VOICE_HTTPS_PORT']}"
    runner = None
    ok = step("stack settings fit the examples")(lambda: h.check(
        e.get("PUBLIC_BASE_URL") == base and e.get("TWILIO_AUTH_TOKEN") and e.get("TWILIO_ACCOUNT_SID"),
        f"PUBLIC_BASE_URL is {e.get('PUBLIC_BASE_URL')!r}, want {base!r}, with Twilio credentials"))
    if ok:
        key_name = h.unique_name("docs")
        api_key = h.key_create(key_name)
        runner = ExampleRunner(base, {"API_KEY": api_key,
                                      "TWILIO_ACCOUNT_SID": e["TWILIO_ACCOUNT_SID"],
                                      "TWILIO_AUTH_TOKEN": e["TWILIO_AUTH_TOKEN"]})
        try:
            examples = parse_examples(read(API_MD))
            step("API.md has runnable examples for every endpoint")(lambda: check_coverage(examples))
            for ex in examples:
                step(f"example {ex['name']}")(runner.run, ex)
            for title, fn in OUTPUT_CHECKS:
                step(title)(fn, runner)
            step("/metrics exports the documented families")(t_metrics_exported)
        finally:
            runner.close()
            try:
                h.key_revoke(key_name)
            except h.TestFailure as err:
                print(f"note: {err}", flush=True)
    passed, failed = _results.count(True), _results.count(False)
    print(f"{passed} passed, {failed} failed", flush=True)
    sys.exit(1 if failed or not passed else 0)


def check_coverage(examples):
    h.check(len({x["name"] for x in examples}) == len(examples), "two examples share a name")
    text = "\n".join(x["code"] for x in examples)
    for route in ("/call ", "/calls/$CALL_SID", "/calls?", "/twilio/webhook", "/twilio/voice",
                  "/healthz", "/readyz", "/metrics", "/cancel", "/hangup", "/recordings/$",
                  "/twilio/recording"):
        h.check(route.strip() in text, f"no runnable example uses {route.strip()}")


def _ran(runner, *names):
    for name in names:
        h.check(name in runner.last, f"example {name} did not run (or failed)")
    return runner.last


def out_create_call(runner):
    last = _ran(runner, "create-call")
    call = last["create-call"][0][0]
    h.check(last["create-call"][0][1].get("location") == f"/calls/{call['sid']}",
            "create-call: Location is not /calls/{sid}")
    h.check(call["to"] == "+14155550100" and call["from"] == h.env()["TWILIO_FROM_NUMBER"],
            f"create-call: the call has to={call['to']!r} from={call['from']!r}; requested to "
            f"+14155550100 from the default TWILIO_FROM_NUMBER ({h.env()['TWILIO_FROM_NUMBER']})")


def out_idempotent(runner):
    last = _ran(runner, "idempotent-retry")
    first, second = last["idempotent-retry"]
    h.check(first[0]["sid"] == second[0]["sid"], "idempotent-retry: the retry got another sid")
    h.check(second[1].get("idempotent-replayed") == "true",
            "idempotent-retry: the retry lacks Idempotent-Replayed: true")
    h.check("idempotent-replayed" not in first[1], "idempotent-retry: the first answer says replayed")


def out_get_call(runner):
    last = _ran(runner, "create-call", "get-call")
    got, call = last["get-call"][0][0], last["create-call"][0][0]
    h.check(got["sid"] == call["sid"] and isinstance(got["events"], list),
            "get-call: not the call create-call placed")


def out_pages(runner):
    last = _ran(runner, "list-calls", "list-calls-next-page", "list-calls-filtered")
    page, page2 = last["list-calls"][0][0], last["list-calls-next-page"][0][0]
    h.check(len(page["calls"]) == 2 and page["next_cursor"],
            "list-calls: limit=2 did not give 2 calls and a cursor")
    first_sids = {c["sid"] for c in page["calls"]}
    h.check(not first_sids & {c["sid"] for c in page2["calls"]}, "list-calls-next-page repeats calls")
    keys = [(c["created_at"], c["sid"]) for c in page["calls"] + page2["calls"]]
    h.check(keys == sorted(keys, reverse=True), "the two pages are not newest first")
    for c in last["list-calls-filtered"][0][0]["calls"]:
        h.check(c["status"] == "completed" and c["direction"] == "outbound-api",
                f"list-calls-filtered returned {c['status']}/{c['direction']}")


def out_webhooks(runner):
    last = _ran(runner, "webhook-signed", "voice-inbound")
    h.check(last["webhook-signed"][0][2] == b"", "webhook-signed: 204 with a body")
    twiml = last["voice-inbound"][0][2].decode("utf-8", "replace")
    h.check("<Response>" in twiml and "</Response>" in twiml, f"voice-inbound: not TwiML: {twiml[:200]!r}")


def out_control(runner):
    last = _ran(runner, "create-ringing-call", "cancel-call", "cancel-call-again", "hangup-call")
    sid = last["create-ringing-call"][0][0]["sid"]
    for name in ("cancel-call", "cancel-call-again"):
        doc = last[name][0][0]
        h.check(doc["sid"] == sid and doc["status"] == "canceled",
                f"{name}: answered {doc['sid']} {doc['status']}, want {sid} canceled")
    h.check(last["hangup-call"][0][0]["sid"] == runner.vars["LONG_SID"], "hangup-call: another call")


def out_recordings(runner):
    last = _ran(runner, "get-call-recordings", "get-recording")
    recs = last["get-call-recordings"][0][0]["recordings"]
    rec = last["get-recording"][0][0]
    h.check(len(recs) == 1 and recs[0] == rec, f"get-recording is not the call's recording: {recs} {rec}")
    h.check(rec["status"] == "completed" and rec["media_url"].startswith("https://api.twilio.com/"),
            f"the recording: {rec}")


OUTPUT_CHECKS = [
    ("create-call answer as documented (Location, to, from)", out_create_call),
    ("idempotent-retry replays with Idempotent-Replayed", out_idempotent),
    ("get-call returns the placed call with events", out_get_call),
    ("pages are disjoint and newest first; filters apply", out_pages),
    ("webhook answers as documented", out_webhooks),
    ("cancel answers the final state, twice; hang up answers its call", out_control),
    ("the call's recording is the one GET /recordings/{sid} returns", out_recordings),
]

if __name__ == "__main__":
    main()
