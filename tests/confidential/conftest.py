"""A room with a public document and a confidential one whose audience is the chair role and the attendee.

Allowed: organizers, chair (by role), attendee (by name). Outside: presenter, secretary, observer.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.conftest import Room, make_pdf

ALLOWED = ("chair", "attendee")
OUTSIDE = ("presenter", "secretary", "observer")


@dataclass
class Conf:
    room: Room
    doc: dict  # the confidential document's JSON
    item_id: int  # the agenda item it is attached to

    @property
    def doc_id(self) -> int:
        return self.doc["id"]

    @property
    def public_id(self) -> int:
        return self.room.document["id"]

    def url(self, path: str) -> str:
        return path.format(id=self.doc_id, mid=self.room.meeting["id"])


@pytest.fixture
def conf(room_with_doc) -> Conf:
    room = room_with_doc
    mid = room.meeting["id"]
    item = room.org.post(f"/api/v1/meetings/{mid}/agenda", json={"title": "人事 Personnel"}).get_json()
    r = room.org.upload(
        f"/api/v1/meetings/{mid}/documents",
        make_pdf(3, "机密 Secret"),
        "secret.pdf",
        title="机密人事方案 Secret plan",
        agenda_item_id=item["id"],
        confidential="true",
    )
    assert r.status_code == 202, r.get_json()
    did = r.get_json()["id"]
    audience = {"roles": ["chair"], "attendees": [room.seats["attendee"]["id"]]}
    r = room.org.patch(f"/api/v1/documents/{did}", json={"audience": audience})
    assert r.status_code == 200, r.get_json()
    doc = room.org.get(f"/api/v1/documents/{did}").get_json()
    assert doc["status"] == "ready" and doc["confidential"] is True
    return Conf(room, doc, item["id"])
