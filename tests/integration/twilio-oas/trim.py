#!/usr/bin/env python3
"""Makes twilio_api_v2010.subset.json, the part of Twilio's OpenAPI
description of REST API v2010 that the integration tests read, from the
upstream file (spec/json/twilio_api_v2010.json of github.com/twilio/twilio-oai):

    python3 trim.py UPSTREAM.json COMMIT > twilio_api_v2010.subset.json

COMMIT is the twilio-oai commit UPSTREAM.json comes from; it is recorded in
the subset's info.x-voice-subset and belongs in README.md too.

Kept, in upstream order and unchanged:
- the operations OPERATIONS lists: every request our service sends to Twilio
  (common/twilio.c), which oas.check_request() looks up by method and path
  and oas.response_fields() by operationId; a path keeps its own fields
  (servers, description, ...) and only those operations;
- the component schemas SCHEMAS lists, which the tests name
  (oas.schema_fields(), test_sim.py's create_returns_call_resource);
- every component those reference ($ref), transitively;
- openapi, info, servers, security, components.securitySchemes, and the tags
  the kept operations name.

oas.operation() takes the first path template that matches a request, so
the script checks that, for a request to each kept operation, the first
match in the upstream file is that operation's own template: the subset then
answers exactly as the whole file does. A request our service starts sending
to another operation needs that operation added to OPERATIONS here.
"""

import json
import re
import sys

# (method, path template, operationId): the requests of common/twilio.c
OPERATIONS = [
    ("post", "/2010-04-01/Accounts/{AccountSid}/Calls.json", "CreateCall"),
    ("get", "/2010-04-01/Accounts/{AccountSid}/Calls.json", "ListCall"),
    ("get", "/2010-04-01/Accounts/{AccountSid}/Calls/{Sid}.json", "FetchCall"),
    ("post", "/2010-04-01/Accounts/{AccountSid}/Calls/{Sid}.json", "UpdateCall"),
    ("get", "/2010-04-01/Accounts/{Sid}.json", "FetchAccount"),
    ("get", "/2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers.json",
     "ListIncomingPhoneNumber"),
    ("get", "/2010-04-01/Accounts/{AccountSid}/OutgoingCallerIds.json", "ListOutgoingCallerId"),
]

# component schemas the tests name
SCHEMAS = [
    "api.v2010.account",
    "api.v2010.account.call",
    "api.v2010.account.incoming_phone_number",
    "api.v2010.account.outgoing_caller_id",
]

METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def refs(node):
    """Every $ref under node."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                yield v
            else:
                yield from refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from refs(v)


def first_match(doc, method, path):
    """The template oas.operation() picks for a concrete path (the same
    matching rule)."""
    for template, item in doc["paths"].items():
        rx = "^" + re.sub(r"\\\{[^}]+\\\}", "([^/]+)", re.escape(template)) + "$"
        if re.match(rx, path) and method in item:
            return template
    return None


def sample_path(template):
    """A concrete path for a template, as our service would send it."""
    samples = {"AccountSid": "AC" + "0" * 32, "Sid": "CA" + "1" * 32}
    if template == "/2010-04-01/Accounts/{Sid}.json":
        samples["Sid"] = "AC" + "0" * 32
    return re.sub(r"\{([^}]+)\}", lambda m: samples[m.group(1)], template)


def trim(up, commit):
    paths = {}
    for template, item in up["paths"].items():
        wanted = {m for m, t, _ in OPERATIONS if t == template}
        if not wanted:
            continue
        paths[template] = {k: v for k, v in item.items() if k not in METHODS or k in wanted}
    for method, template, op_id in OPERATIONS:
        op = paths.get(template, {}).get(method)
        if op is None or op.get("operationId") != op_id:
            sys.exit(f"trim.py: upstream has no {op_id} at {method.upper()} {template}")
        got = first_match(up, method, sample_path(template))
        if got != template:
            sys.exit(f"trim.py: upstream matches {method.upper()} {sample_path(template)} "
                     f"to {got}, not {template}")

    # components reachable from the kept paths and the named schemas
    comps = up["components"]
    keep = set()
    todo = list(refs(paths)) + [f"#/components/schemas/{n}" for n in SCHEMAS]
    while todo:
        ref = todo.pop()
        parts = ref.split("/")
        if len(parts) != 4 or parts[:2] != ["#", "components"]:
            sys.exit(f"trim.py: a $ref this script does not follow: {ref}")
        kind, name = parts[2], parts[3]
        if name not in comps.get(kind, {}):
            sys.exit(f"trim.py: unresolved $ref {ref}")
        if (kind, name) not in keep:
            keep.add((kind, name))
            todo.extend(refs(comps[kind][name]))

    out = {}
    for key, value in up.items():  # upstream's key order
        if key == "paths":
            out[key] = paths
        elif key == "components":
            out[key] = {}
            for kind, members in value.items():
                if kind == "securitySchemes":
                    out[key][kind] = members
                else:
                    kept = {n: v for n, v in members.items() if (kind, n) in keep}
                    if kept:
                        out[key][kind] = kept
        elif key == "tags":
            used = {t for item in paths.values() for m, op in item.items()
                    if m in METHODS for t in op.get("tags", [])}
            out[key] = [t for t in value if t.get("name") in used]
        else:
            out[key] = value
    out["info"] = dict(out["info"])
    out["info"]["x-voice-subset"] = {
        "source": "https://github.com/twilio/twilio-oai/blob/" + commit
                  + "/spec/json/twilio_api_v2010.json",
        "made-by": "tests/integration/twilio-oas/trim.py",
        "operations": [op_id for _, _, op_id in OPERATIONS],
    }
    return out


def main():
    if len(sys.argv) != 3 or not re.fullmatch(r"[0-9a-f]{40}", sys.argv[2]):
        sys.exit("usage: trim.py UPSTREAM_twilio_api_v2010.json TWILIO_OAI_COMMIT")
    with open(sys.argv[1], encoding="utf-8") as f:
        up = json.load(f)
    json.dump(trim(up, sys.argv[2]), sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
