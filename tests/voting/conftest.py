"""Fixtures of the voting tests: a hall of voters with tablets, polls, votes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.conftest import Api, Room, add_attendee, events


@pytest.fixture(autouse=True)
def _immediate(monkeypatch):
    """No batching window and no progress coalescing: every test sees its events at once.

    (Attendance broadcasts run one per change in every in-process test: tests/conftest.py.)
    """
    from meeting_server.voting import batcher, progress

    monkeypatch.setattr(progress, "INTERVAL_S", 0)
    monkeypatch.setattr(batcher, "WINDOW_S", 0)
    progress.reset()
    yield
    progress.reset()


def join(room: Room, attendee: dict) -> Api:
    c = room.app.test_client()
    r = c.post("/api/v1/join", json={"token": attendee["join_token"]})
    assert r.status_code == 200, r.get_json()
    return Api(c, r.get_json()["session_token"])


def tablet(room: Room, attendee: dict, checkin: bool = True):
    """A Socket.IO test client on `attendee`'s seat, checked in, with its inbox emptied."""
    from meeting_server.extensions import socketio

    t = socketio.test_client(room.app, auth={"token": join(room, attendee).token})
    assert t.is_connected()
    if checkin:
        ack = t.emit("checkin", {}, callback=True)
        assert ack["ok"], ack
    t.get_received()
    return t


def make_poll(room: Room, **kw: Any) -> dict:
    body = {"title": kw.pop("title", "表决 Motion"), **kw}
    r = room.org.post(f"/api/v1/meetings/{room.meeting['id']}/polls", json=body)
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def open_poll(room: Room, poll_id: int, **kw: Any) -> dict:
    r = room.org.post(f"/api/v1/polls/{poll_id}/open", json=kw)
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def close_poll(room: Room, poll_id: int) -> dict:
    r = room.org.post(f"/api/v1/polls/{poll_id}/close")
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def vote(t, poll_id: int, choices: list, **kw: Any) -> dict:
    return t.emit("vote", {"poll_id": poll_id, "choices": choices, **kw}, callback=True)


def ballot_id() -> str:
    return str(uuid.uuid4())


@dataclass
class Hall:
    """`room` plus `n` ordinary members, each with a checked-in tablet."""

    room: Room
    members: list[dict]
    tablets: list[Any] = field(default_factory=list)

    @property
    def org(self) -> Api:
        return self.room.org

    @property
    def mid(self) -> int:
        return self.room.meeting["id"]

    def drain(self) -> None:
        for t in self.tablets:
            t.get_received()


@pytest.fixture
def hall_factory(room):
    def make(n: int = 5, weights: list[float] | None = None, checkin: bool = True) -> Hall:
        members = []
        for i in range(n):
            a = add_attendee(
                room.org, room.meeting["id"], f"委员{i + 1} Member {i + 1}", seat=f"M{i + 1:03d}"
            )
            if weights:
                r = room.org.patch(
                    f"/api/v1/meetings/{room.meeting['id']}/attendees/{a['id']}",
                    json={"vote_weight": weights[i]},
                )
                assert r.status_code == 200, r.get_json()
            members.append(a)
        h = Hall(room, members)
        h.tablets = [tablet(room, a, checkin=checkin) for a in members]
        return h

    return make


@pytest.fixture
def hall(hall_factory) -> Hall:
    return hall_factory(5)


__all__ = ["Hall", "ballot_id", "close_poll", "events", "join", "make_poll", "open_poll", "tablet", "vote"]
