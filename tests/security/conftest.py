"""Fixtures of the security tests: one world (two meetings, every principal) per test module."""

from __future__ import annotations

import pytest

from tests.security.world import World, build_world


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    from meeting_server.core import db

    w = build_world(tmp_path_factory.mktemp("world"))
    yield w
    for c in w._sockets.values():
        if c.is_connected():
            c.disconnect()
    db.engine.dispose()
