"""Twilio's OpenAPI description of REST API v2010 (docs/TWILIO.md,
"Sources"), as a yardstick for the requests our service sends: each one the
simulator recorded (/_sim/requests) must be an operation of the document,
with its path parameters, query parameters and form parameters declared
there and their values valid for the declared schema.

The document is the part of Twilio's twilio_api_v2010.json that the tests
read, vendored in twilio-oas/ beside this file (OAS_PATH): the operations
our service calls, unchanged, and the schemas they and the tests use.
twilio-oas/README.md says where it comes from and how to refresh it.
"""

import json
import os
import re
import urllib.parse

import harness as h

OAS_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "twilio-oas",
                        "twilio_api_v2010.subset.json")
_DOC = None


def doc():
    global _DOC
    if _DOC is None:
        with open(OAS_PATH, encoding="utf-8") as f:
            _DOC = json.load(f)
    return _DOC


def node_ref_parts(ref):
    h.check(ref.startswith("#/"), f"OAS: only local $ref, got {ref!r}")
    return ref[2:].split("/")


def schema(node):
    """node with every $ref followed (one level at a time)."""
    while isinstance(node, dict) and "$ref" in node:
        target = doc()
        for part in node_ref_parts(node["$ref"]):
            target = target[part]
        node = target
    return node


def operation(method, path):
    """(template, operation) of the OAS for a concrete path, and the path
    parameters by name."""
    for template, item in doc()["paths"].items():
        names = re.findall(r"\{([^}]+)\}", template)
        rx = "^" + re.sub(r"\\\{[^}]+\\\}", "([^/]+)", re.escape(template)) + "$"
        m = re.match(rx, path)
        if m and method.lower() in item:
            return template, item[method.lower()], dict(zip(names, m.groups()))
    raise h.TestFailure(f"Twilio's OAS (the vendored subset) has no operation {method} {path}: "
                        "a request to another operation needs it in twilio-oas/trim.py")


def value_ok(sch, value):
    """A form or query value (a string) against an OAS schema."""
    sch = schema(sch)
    t = sch.get("type")
    if t == "array":
        return value_ok(sch.get("items", {}), value)
    if "enum" in sch and value not in sch["enum"]:
        return False
    if "pattern" in sch and re.search(sch["pattern"], value) is None:
        return False
    if "minLength" in sch and len(value) < sch["minLength"]:
        return False
    if "maxLength" in sch and len(value) > sch["maxLength"]:
        return False
    if t == "integer":
        if re.fullmatch(r"-?[0-9]+", value) is None:
            return False
        n = int(value)
        return sch.get("minimum", n) <= n <= sch.get("maximum", n)
    if t == "boolean":
        return value in ("true", "false")
    if sch.get("format") == "phone-number":
        return re.fullmatch(r"\+[1-9][0-9]{6,14}", value) is not None
    if sch.get("format") == "uri":
        return re.match(r"^https?://", value) is not None
    return True


def check_request(rec, accounts):
    """One record of /_sim/requests against the OAS; accounts are the user
    names Basic auth may carry (the account SID, an API key SID). Returns
    the operationId."""
    method, path = rec["method"], rec["path"]
    template, op, path_params = operation(method, path)
    what = f"{method} {path}"
    declared = {p["name"]: p for p in (schema(x) for x in op.get("parameters", []))}
    for name, value in path_params.items():
        h.check(name in declared and declared[name]["in"] == "path",
                f"{what}: path parameter {name} is not declared")
        sch = dict(declared[name]["schema"])
        sch.pop("format", None)
        if name == "Sid" and value.endswith(".json"):
            value = value[:-5]
        h.check(value_ok(sch, value), f"{what}: path parameter {name}={value!r} is not valid")
    query = urllib.parse.parse_qsl(rec.get("query") or "", keep_blank_values=True)
    for name, value in query:
        h.check(name in declared and declared[name]["in"] == "query",
                f"{what}: query parameter {name} is not in the OAS ({template})")
        h.check(value_ok(declared[name]["schema"], value),
                f"{what}: query parameter {name}={value!r} is not valid for the OAS")
    params = rec.get("params") or []
    if params:
        body = op.get("requestBody", {}).get("content", {})
        h.check("application/x-www-form-urlencoded" in body,
                f"{what}: a form body, but the OAS takes none")
        props = schema(body["application/x-www-form-urlencoded"]["schema"])["properties"]
        for name, value in params:
            h.check(name in props, f"{what}: form parameter {name} is not in the OAS")
            h.check(value_ok(props[name], value),
                    f"{what}: form parameter {name}={value!r} is not valid for the OAS")
        h.check(rec.get("content_type", "").split(";")[0] == "application/x-www-form-urlencoded",
                f"{what}: form body sent as {rec.get('content_type')!r}")
    else:
        h.check(method != "POST" or not op.get("requestBody", {}).get("required"),
                f"{what}: no body, but the OAS requires one")
    h.check(rec.get("auth_user") in accounts,
            f"{what}: Basic auth user {rec.get('auth_user')!r}, want one of {sorted(accounts)}")
    return op["operationId"]


def response_fields(operation_id, status="200"):
    """The property names of an operation's JSON answer."""
    for item in doc()["paths"].values():
        for op in item.values():
            if isinstance(op, dict) and op.get("operationId") == operation_id:
                content = op["responses"][status]["content"]["application/json"]
                return set(schema(content["schema"])["properties"])
    raise h.TestFailure(f"no operation {operation_id} in the OAS")


def schema_fields(name):
    return set(doc()["components"]["schemas"][name]["properties"])
