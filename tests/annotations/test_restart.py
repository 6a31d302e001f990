"""Annotations survive a server restart: the database is the truth (a file database here)."""

from __future__ import annotations

import pytest

from tests.annotations.helpers import ok, pen
from tests.conftest import Api, test_settings


@pytest.fixture
def settings(tmp_path):
    return test_settings(tmp_path, database_url=f"sqlite:///{tmp_path / 'meeting.sqlite'}")


def test_annotations_survive_a_restart(settings, room_with_doc):
    from meeting_server import create_app
    from meeting_server.core import db

    doc_id = room_with_doc.document["id"]
    token = room_with_doc.join("attendee").token
    ok(room_with_doc.tablet("attendee"), "annotation.save", pen(doc_id, "kept", page=2))
    db.engine.dispose()

    again = create_app(settings)  # a new process would do the same: nothing is kept in memory
    seat = Api(again.test_client(), token)
    rows = seat.get(f"/api/v1/documents/{doc_id}/annotations").get_json()["annotations"]
    assert [(r["id"], r["page"]) for r in rows] == [("kept", 2)]
