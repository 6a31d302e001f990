"""The finger signature drawn at check-in: kept as vector strokes for the minutes, bounded, audited by hash."""

from __future__ import annotations

import pytest

from meeting_server.attendance import service
from meeting_server.core.db import reader
from tests.live.conftest import ack

SIG = {
    "width": 600,
    "height": 200,
    "strokes": [[[0.1, 0.5, 0], [0.2, 0.4, 16], [0.3, 0.6, 33]], [[0.5, 0.5, 90]]],
}


def _audit(room) -> list[dict]:
    r = room.org.get(f"/api/v1/meetings/{room.meeting['id']}/audit")
    assert r.status_code == 200, r.get_json()
    return r.get_json()["entries"]


def _signatures(app, room) -> dict:
    with app.app_context(), reader() as s:
        return service.signatures(s, room.meeting["id"])


def _person(room, role: str) -> dict:
    rep = room.org.get(f"/api/v1/meetings/{room.meeting['id']}/attendance").get_json()
    return next(a for a in rep["attendees"] if a["attendee_id"] == room.seats[role]["id"])


def test_checkin_with_a_signature_keeps_the_strokes_and_audits_their_hash(app, room):
    t = room.tablet("attendee")
    a = ack(t, "checkin", {"signature": SIG})
    assert a["ok"] and a["signed"] is True and a["checked_in_at"]
    sigs = _signatures(app, room)
    mine = sigs[room.seats["attendee"]["id"]]
    assert mine["strokes"] == SIG["strokes"] and mine["aspect"] == pytest.approx(3.0)
    assert _person(room, "attendee")["signed"] is True and _person(room, "chair")["signed"] is False
    entry = [e for e in _audit(room) if e["command"] == "checkin"][-1]
    assert (
        entry["data"]["signature_sha256"]
        == mine["sha256"]
        == service.signature_digest(mine["strokes"], mine["aspect"])
    )
    assert "strokes" not in str(entry["data"])


def test_signing_after_checking_in_replaces_the_signature_without_a_new_stay(app, room):
    t = room.tablet("attendee")
    first = ack(t, "checkin")
    assert first["ok"] and first["signed"] is False
    t.get_received()
    second = ack(t, "checkin", {"signature": {**SIG, "aspect": 2.5}})
    assert second["ok"] and second["signed"] and second["checked_in_at"] == first["checked_in_at"]
    assert [e["name"] for e in t.get_received()] == []  # no new stay, no attendance broadcast
    assert len(_person(room, "attendee")["records"]) == 1
    assert _signatures(app, room)[room.seats["attendee"]["id"]]["aspect"] == 2.5
    # the same signature again changes nothing and writes no audit entry
    n = len(_audit(room))
    assert ack(t, "checkin", {"signature": {**SIG, "aspect": 2.5}})["signed"]
    assert len(_audit(room)) == n


@pytest.mark.parametrize(
    "bad",
    [
        {"strokes": []},
        {"strokes": [[[1.5, 0.2]]]},
        {"strokes": [[[0.1]]]},
        {"strokes": [[[0.1, 0.2, -5]]]},
        {"strokes": [[[0.1, 0.2]]] * 201},
        {"strokes": [[[0.1, 0.2]] * 8001]},
        {"strokes": "x"},
        "not an object",
    ],
    ids=[
        "empty",
        "outside-pad",
        "one-coordinate",
        "negative-time",
        "too-many-strokes",
        "too-many-points",
        "str",
        "str-sig",
    ],
)
def test_a_bad_signature_is_refused_and_nothing_changes(app, room, bad):
    t = room.tablet("attendee")
    a = ack(t, "checkin", {"signature": bad})
    assert a["ok"] is False and a["error"]["code"] == "invalid", a
    assert _person(room, "attendee")["checked_in"] is False
    assert _signatures(app, room) == {}
