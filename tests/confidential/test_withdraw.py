"""Withdrawal: by the organizer, and of every confidential document when the meeting ends."""

from __future__ import annotations

from tests.annotations.helpers import got, image, ok, pen
from tests.confidential.conftest import ALLOWED, OUTSIDE


def _tablets(room, roles):
    out = {r: room.tablet(r) for r in roles}
    for c in out.values():
        c.get_received()
    return out


def test_organizer_withdraws_a_document(conf):
    room = conf.room
    seat = room.join("attendee")
    page = conf.url("/api/v1/documents/{id}/pages/1")
    assert image(seat, page).status_code == 200  # cached per seat before the withdrawal
    ok(room.tablet("attendee"), "annotation.save", pen(conf.doc_id, "a1"))
    inside, outside = _tablets(room, ALLOWED), _tablets(room, OUTSIDE)

    assert seat.post(conf.url("/api/v1/documents/{id}/withdraw")).status_code == 403
    r = room.org.post(conf.url("/api/v1/documents/{id}/withdraw"))
    assert r.status_code == 200 and r.get_json()["withdrawn"] is True
    for c in inside.values():
        assert got(c, "documents.withdrawn") == [{"document_ids": [conf.doc_id], "reason": "withdrawn"}]
    for c in outside.values():
        assert c.get_received() == []

    for url in (
        "/api/v1/documents/{id}",
        "/api/v1/documents/{id}/pages/1",
        "/api/v1/documents/{id}/thumbs/1",
        "/api/v1/documents/{id}/annotations",
    ):
        assert seat.get(conf.url(url)).status_code == 404, url
    assert conf.doc_id not in [
        d["id"] for d in seat.get(conf.url("/api/v1/meetings/{mid}/documents")).get_json()["documents"]
    ]
    assert room.org.get(page).status_code == 200
    assert room.org.get(conf.url("/api/v1/documents/{id}/annotations")).get_json()["annotations"]

    assert room.org.post(conf.url("/api/v1/documents/{id}/withdraw")).status_code == 200  # idempotent
    assert all(c.get_received() == [] for c in inside.values())


def test_withdrawing_a_public_document_tells_everyone(conf):
    room = conf.room
    observer = room.tablet("observer")
    observer.get_received()
    assert room.org.post(f"/api/v1/documents/{conf.public_id}/withdraw").status_code == 200
    assert got(observer, "documents.withdrawn") == [{"document_ids": [conf.public_id], "reason": "withdrawn"}]
    assert room.join("observer").get(f"/api/v1/documents/{conf.public_id}/pages/1").status_code == 404


def test_meeting_end_withdraws_confidential_documents(conf):
    room = conf.room
    seat = room.join("attendee")  # joined before the end (joining is refused afterwards)
    inside, outside = _tablets(room, ALLOWED), _tablets(room, OUTSIDE)
    assert room.org.post(f"/api/v1/meetings/{room.meeting['id']}/end").status_code == 200
    for c in inside.values():
        assert got(c, "documents.withdrawn") == [{"document_ids": [conf.doc_id], "reason": "meeting_ended"}]
    for c in outside.values():
        assert got(c, "documents.withdrawn") == []
    assert seat.get(conf.url("/api/v1/documents/{id}/pages/1")).status_code == 404
    assert seat.get(f"/api/v1/documents/{conf.public_id}/pages/1").status_code == 200
    assert room.org.get(conf.url("/api/v1/documents/{id}/pages/1")).status_code == 200
    # Withdrawing stays possible after the end (it only protects).
    assert room.org.post(f"/api/v1/documents/{conf.public_id}/withdraw").status_code == 200
