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
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "details": {"type": "object"}},
        }
    },
}


def openapi_path(rule: str) -> tuple[str, list[str]]:
    params = re.findall(r"<(?:\w+:)?(\w+)>", rule)
    return "/api/v1" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule), params


def build() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    components: dict[str, Any] = {"Error": ERROR_SCHEMA}
    for cmd in sorted(registry.commands.values(), key=lambda c: c.http or ("", "")):
        if not cmd.http:
            continue
        method, rule = cmd.http
        path, params = openapi_path(rule)
        op: dict[str, Any] = {
            "operationId": cmd.name,
            "summary": cmd.summary,
            "parameters": [
                {"name": p, "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0}} for p in params
            ],
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
                op["requestBody"] = {"required": True, "content": {"multipart/form-data": {"schema": body_schema}}}
            else:
                op["requestBody"] = {"required": False, "content": {"application/json": {"schema": ref}}}
        elif cmd.multipart:
            op["requestBody"] = {"required": True, "content": {"multipart/form-data": {"schema": {
                "type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}}}}
        ok = {"description": "success"}
        if cmd.binary:
            ok["content"] = {cmd.binary: {"schema": {"type": "string", "format": "binary"}}}
        else:
            ok["content"] = {"application/json": {"schema": {"type": "object"}}}
        op["responses"][str(cmd.status)] = ok
        err = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        for code, text in (("400", "invalid"), ("401", "no or bad credentials"), ("403", "not allowed"),
                           ("404", "unknown"), ("409", "conflicts with state"), ("413", "too large"),
                           ("415", "unsupported media type"), ("422", "cannot be processed"), ("429", "too many attempts")):
            op["responses"][code] = {"description": text, **err}
        paths.setdefault(path, {})[method.lower()] = op
    paths["/healthz"] = {"get": {"operationId": "healthz", "summary": "Liveness", "responses": {"200": {
        "description": "ok", "content": {"application/json": {"schema": {"type": "object"}}}}}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Paperless Meeting Server", "version": "1"},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
