"""OpenAPI path parameters are typed by their Flask converter (`<int:poll_id>` integer, `<code>` string)."""

from __future__ import annotations

import re

import pytest

from meeting_server.core.openapi import RULE_VAR, converter_schema, openapi_path


def test_every_path_parameter_has_its_converters_type(client):
    from meeting_server.core.commands import registry

    doc = client.get("/api/v1/openapi.json").get_json()
    seen = {"integer": 0, "string": 0}
    for cmd in registry.commands.values():
        if not cmd.http:
            continue
        method, rule = cmd.http
        path, names = openapi_path(rule)
        op = doc["paths"][path][method.lower()]
        params = {p["name"]: p for p in op["parameters"] if p["in"] == "path"}
        assert set(params) == set(names) == set(re.findall(r"{(\w+)}", path)), (path, params)
        for m in RULE_VAR.finditer(rule):
            schema = params[m["name"]]["schema"]
            want = {"int": "integer", "float": "number"}.get(m["conv"], "string")
            assert schema["type"] == want, (rule, m["name"], schema)
            seen[want] = seen.get(want, 0) + 1
    assert seen["integer"] > 50 and seen["string"] >= 1, seen


def test_the_receipt_code_is_a_string(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    op = doc["paths"]["/api/v1/polls/{poll_id}/receipts/{code}"]["get"]
    schemas = {p["name"]: p["schema"] for p in op["parameters"]}
    assert schemas["poll_id"] == {"type": "integer", "minimum": 0}
    assert schemas["code"] == {"type": "string", "pattern": "^[^/]+$", "minLength": 1}


@pytest.mark.parametrize(
    ("conv", "args", "schema"),
    [
        (None, None, {"type": "string", "pattern": "^[^/]+$", "minLength": 1}),
        ("string", "length=6", {"type": "string", "pattern": "^[^/]+$", "minLength": 6, "maxLength": 6}),
        (
            "string",
            "minlength=2, maxlength=8",
            {"type": "string", "pattern": "^[^/]+$", "minLength": 2, "maxLength": 8},
        ),
        ("int", None, {"type": "integer", "minimum": 0}),
        ("int", "signed=True", {"type": "integer"}),
        ("int", "min=1, max=9", {"type": "integer", "minimum": 1, "maximum": 9}),
        ("float", None, {"type": "number", "minimum": 0}),
        ("path", None, {"type": "string", "minLength": 1}),
        ("uuid", None, {"type": "string", "format": "uuid"}),
        ("any", "'pdf', 'zip'", {"type": "string", "enum": ["pdf", "zip"]}),
    ],
)
def test_converter_schema(conv, args, schema):
    assert converter_schema(conv, args) == schema


def test_rules_with_converter_arguments_become_plain_templates():
    assert openapi_path("/a/<any('x', 'y'):kind>/<int(signed=True):n>/<name>") == (
        "/api/v1/a/{kind}/{n}/{name}",
        ["kind", "n", "name"],
    )


def test_a_string_receipt_code_reaches_the_handler(room):
    """The documented string parameter is served by the route: the handler answers, not the router."""
    r = room.org.get("/api/v1/polls/999999/receipts/ABCD-EFGH")
    assert r.status_code == 404 and r.get_json()["error"]["message"] == "no such poll", r.get_json()
