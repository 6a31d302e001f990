"""The OpenAPI 3 document, generated from the command registry."""

from __future__ import annotations

import re
from typing import Any

from .commands import PUBLIC, registry

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "object"},
            },
        }
    },
}


#: A Flask/Werkzeug rule variable: `<name>`, `<converter:name>` or `<converter(args):name>`.
RULE_VAR = re.compile(r"<(?:(?P<conv>[a-zA-Z_]\w*)(?:\((?P<args>.*?)\))?:)?(?P<name>[a-zA-Z_]\w*)>")


def openapi_path(rule: str) -> tuple[str, list[str]]:
    params = [m["name"] for m in RULE_VAR.finditer(rule)]
    return "/api/v1" + RULE_VAR.sub(lambda m: "{" + m["name"] + "}", rule), params


def path_params(rule: str) -> list[dict[str, Any]]:
    """The OpenAPI path parameters of a Flask rule, each typed by its converter."""
    return [
        {"name": m["name"], "in": "path", "required": True, "schema": converter_schema(m["conv"], m["args"])}
        for m in RULE_VAR.finditer(rule)
    ]


def converter_schema(conv: str | None, args: str | None = None) -> dict[str, Any]:
    """The JSON schema of the values Werkzeug's converter `conv` (with its arguments) accepts.

    int/float: unsigned unless `signed=True`, bounded by `min`/`max`; string (the default): one path
    segment (no "/"), `minlength` (1) to `maxlength` or exactly `length`; path: any non-empty text;
    uuid; any(a, b): one of its words. Another (custom) converter is described by its regex.
    """
    from werkzeug.routing.rules import parse_converter_args

    pos, kw = parse_converter_args(args) if args else ((), {})
    conv = conv or "default"
    if conv in ("int", "float"):
        out: dict[str, Any] = {"type": "integer" if conv == "int" else "number"}
        if not kw.get("signed"):
            out["minimum"] = 0
        if kw.get("min") is not None:
            out["minimum"] = kw["min"]
        if kw.get("max") is not None:
            out["maximum"] = kw["max"]
        return out
    if conv in ("default", "string"):
        out = {"type": "string", "pattern": "^[^/]+$", "minLength": kw.get("minlength", 1)}
        if kw.get("maxlength") is not None:
            out["maxLength"] = kw["maxlength"]
        if kw.get("length") is not None:
            out["minLength"] = out["maxLength"] = kw["length"]
        return out
    if conv == "path":
        return {"type": "string", "minLength": 1}
    if conv == "uuid":
        return {"type": "string", "format": "uuid"}
    if conv == "any":
        return {"type": "string", "enum": [str(x) for x in pos]}
    from flask import current_app

    cls = current_app.url_map.converters.get(conv) if current_app else None
    regex = getattr(cls, "regex", None) or "[^/]+"
    return {"type": "string", "pattern": f"^(?:{regex})$"}


def build() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    components: dict[str, Any] = {"Error": ERROR_SCHEMA}
    for cmd in sorted(registry.commands.values(), key=lambda c: c.http or ("", "")):
        if not cmd.http:
            continue
        method, rule = cmd.http
        path, _params = openapi_path(rule)
        op: dict[str, Any] = {
            "operationId": cmd.name,
            "summary": cmd.summary,
            "parameters": path_params(rule),
            "responses": {},
        }
        if PUBLIC not in cmd.roles:
            op["security"] = [{"bearer": []}]
        if cmd.schema is not None and method in ("POST", "PATCH", "PUT"):
            schema = cmd.schema.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, sub in schema.pop("$defs", {}).items():
                components[name] = sub
            components[cmd.schema.__name__] = schema
            ref = {"$ref": f"#/components/schemas/{cmd.schema.__name__}"}
            if cmd.multipart:
                props = {k: v for k, v in schema.get("properties", {}).items()}
                props["file"] = {"type": "string", "format": "binary"}
                body_schema = {"type": "object", "properties": props, "required": ["file"]}
                op["requestBody"] = {
                    "required": True,
                    "content": {"multipart/form-data": {"schema": body_schema}},
                }
            else:
                op["requestBody"] = {"required": False, "content": {"application/json": {"schema": ref}}}
        elif cmd.multipart:
            op["requestBody"] = {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "properties": {"file": {"type": "string", "format": "binary"}},
                        }
                    }
                },
            }
        ok = {"description": "success"}
        if cmd.binary:
            ok["content"] = {cmd.binary: {"schema": {"type": "string", "format": "binary"}}}
        else:
            ok["content"] = {"application/json": {"schema": {"type": "object"}}}
        op["responses"][str(cmd.status)] = ok
        err = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        for code, text in (
            ("400", "invalid"),
            ("401", "no or bad credentials"),
            ("403", "not allowed"),
            ("404", "unknown"),
            ("409", "conflicts with state"),
            ("413", "too large"),
            ("415", "unsupported media type"),
            ("422", "cannot be processed"),
            ("429", "too many attempts"),
        ):
            op["responses"][code] = {"description": text, **err}
        paths.setdefault(path, {})[method.lower()] = op
    paths["/healthz"] = {
        "get": {
            "operationId": "healthz",
            "summary": "Liveness",
            "responses": {
                "200": {"description": "ok", "content": {"application/json": {"schema": {"type": "object"}}}}
            },
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Paperless Meeting Server", "version": "1"},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
