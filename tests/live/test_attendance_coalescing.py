"""`attendance` after check-in storms: one broadcast now, later changes folded into a trailing one."""

from __future__ import annotations

import time

import pytest

from meeting_server.attendance import broadcast
from tests.conftest import add_attendee
from tests.live.conftest import ack


@pytest.fixture
def interval(monkeypatch):
    # Long enough that ten check-ins through the test client fit in it on a loaded machine.
    monkeypatch.setattr(broadcast, "MIN_INTERVAL", 1.5)
    return 1.5


def _attendance(c) -> list[dict]:
    return [e["args"][0] for e in c.get_received() if e["name"] == "attendance"]


def _wait_attendance(c, n: int, timeout: float = 5.0) -> list[dict]:
    got: list[dict] = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        got += _attendance(c)
        time.sleep(0.02)
    return got


def test_a_storm_is_one_broadcast_now_and_one_with_the_final_counts(room, interval, monkeypatch):
    from meeting_server.extensions import socketio

    mid = room.meeting["id"]
    extra = [add_attendee(room.org, mid, f"extra-{i}", "attendee", f"E{i}") for i in range(6)]
    watcher = room.console()
    tablets = [room.tablet(role) for role in ("chair", "presenter", "secretary", "attendee")]
    for person in extra:
        r = room.app.test_client().post("/api/v1/join", json={"token": person["join_token"]})
        assert r.status_code == 200, r.get_json()
        tablets.append(socketio.test_client(room.app, auth={"token": r.get_json()["session_token"]}))
    for c in (watcher, *tablets):
        c.get_received()
    for t in tablets:
        assert ack(t, "checkin")["ok"] is True
    first = _attendance(watcher)
    assert [a["present"] for a in first] == [1]  # the first change: at once, in its command's events
    trailing = _wait_attendance(watcher, 1, timeout=interval + 5)
    assert len(trailing) == 1, trailing  # the other nine: folded into one
    last = trailing[0]
    assert (last["present"], last["expected"]) == (10, 10)
    assert last["seq"] == first[0]["seq"] + 9  # one seq step per change, none lost
    for t in tablets:  # every tablet gets the same final counts
        assert [a["present"] for a in _wait_attendance(t, 2, timeout=interval + 5)][-1] == 10
    assert broadcast.stats["immediate"] == 1 and broadcast.stats["trailing"] == 1
    assert broadcast.stats["folded"] == 9
    later = broadcast.clock() + interval + 0.01
    monkeypatch.setattr(broadcast, "clock", lambda: later)  # once quiet again, a change goes at once
    assert ack(tablets[0], "checkout")["ok"] is True
    assert [a["present"] for a in _attendance(watcher)] == [9]


def test_a_change_after_the_trailing_read_gets_its_own_broadcast(room, interval):
    watcher = room.console()
    a, b, c = (room.tablet(r) for r in ("chair", "attendee", "secretary"))
    watcher.get_received()
    ack(a, "checkin")  # at once
    ack(b, "checkin")  # folded: trailing broadcast scheduled
    got = _wait_attendance(watcher, 2, timeout=interval + 5)
    assert [x["present"] for x in got] == [1, 2]
    ack(c, "checkin")  # within the interval of the trailing one: folded into another
    got = _wait_attendance(watcher, 1, timeout=interval + 5)
    assert [x["present"] for x in got] == [3]
