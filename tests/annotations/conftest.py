"""Fixtures of the annotation tests: a room with a ready 5-page document (tests.conftest) and tablets."""

from __future__ import annotations

import pytest


@pytest.fixture
def doc_id(room_with_doc) -> int:
    return room_with_doc.document["id"]


@pytest.fixture
def att(room_with_doc):
    """The attendee's tablet (a Socket.IO test client)."""
    c = room_with_doc.tablet("attendee")
    c.get_received()
    yield c
    if c.is_connected():
        c.disconnect()
