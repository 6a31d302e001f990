"""docs/protocol.md is a tested contract: everything the server offers is documented there."""

import re
from pathlib import Path

import pytest

from meeting_server.core.commands import registry

DOC = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text(encoding="utf-8")


def http_commands():
    return [c for c in registry.commands.values() if c.http]


@pytest.fixture(autouse=True)
def _registry(app):
    """Building the app fills the registry."""


def test_every_route_is_documented():
    missing = []
    for c in http_commands():
        method, rule = c.http
        path = "/api/v1" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule)
        if f"`{method} {path}`" not in DOC:
            missing.append(f"{method} {path}")
    assert not missing, f"routes missing from docs/protocol.md: {missing}"


def test_every_socket_command_is_documented():
    missing = [c.name for c in registry.commands.values() if c.socket and f"`{c.name}`" not in DOC]
    assert not missing, f"Socket.IO commands missing from docs/protocol.md: {missing}"


def test_every_server_event_is_documented():
    missing = [name for name in registry.events if f"#### `{name}`" not in DOC]
    assert not missing, f"server events missing from docs/protocol.md: {missing}"


def test_every_route_is_in_openapi(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    for c in http_commands():
        method, rule = c.http
        path = "/api/v1" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule)
        assert method.lower() in spec["paths"].get(path, {}), f"{method} {path} missing from OpenAPI"


def test_undeclared_event_cannot_be_emitted(app):
    from meeting_server.core.commands import Ctx

    ctx = Ctx(s=None, actor=None, command=None)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError):
        ctx.emit("no.such.event", {}, to="x")
