"""Snapshots of connections that arrive together are built in rounds, each its own `me`."""

from __future__ import annotations

import threading
import time

from meeting_server.live.commands import SnapshotBatcher
from tests.conftest import add_attendee


def test_many_connections_at_once_each_get_their_own_snapshot(room, monkeypatch):
    from meeting_server.core import db
    from meeting_server.core.identity import Actor
    from meeting_server.extensions import socketio
    from meeting_server.roster.models import Attendee

    mid = room.meeting["id"]
    for i in range(20):
        add_attendee(room.org, mid, f"seat-{i}", "attendee", f"R{i:02d}")
    with db.reader() as s:
        seats = list(s.query(Attendee).filter_by(meeting_id=mid))
    actors = [Actor("seat", a.id, a.name, a.role, mid, None) for a in seats]
    batcher = SnapshotBatcher()
    monkeypatch.setattr(SnapshotBatcher, "ROUND", 4)
    results: dict[int, dict] = {}
    errors: list[BaseException] = []
    go = threading.Barrier(len(actors))

    def connect(actor):
        try:
            go.wait(10)
            with room.app.app_context():
                results[actor.id] = batcher.get(socketio, actor)
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=connect, args=(a,)) for a in actors]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert set(results) == {a.id for a in actors}
    for aid, snap in results.items():
        assert snap["me"]["attendee_id"] == aid
        assert snap["attendance"]["expected"] == len([a for a in actors if a.role != "observer"])
    assert batcher.built == len(actors)
    assert batcher.rounds >= len(actors) // 4  # at most ROUND a round
    deadline = time.monotonic() + 10  # the background builder finds nobody waiting and stops
    while batcher._building and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not batcher._building and not batcher._waiting  # nothing left behind


def test_a_failing_round_refuses_its_connections_and_the_next_one_builds(room, monkeypatch):
    from meeting_server.core.identity import Actor
    from meeting_server.extensions import socketio
    from meeting_server.live import state

    seat = room.seats["attendee"]
    actor = Actor("seat", seat["id"], seat["name"], "attendee", room.meeting["id"], None)
    batcher = SnapshotBatcher()
    real = state.build

    def broken(*a, **kw):
        raise RuntimeError("database went away")

    monkeypatch.setattr(state, "build", broken)
    with room.app.app_context():
        try:
            batcher.get(socketio, actor)
        except RuntimeError as e:
            assert "went away" in str(e)
        else:
            raise AssertionError("the failing build was not reported")
        monkeypatch.setattr(state, "build", real)
        assert batcher.get(socketio, actor)["me"]["attendee_id"] == seat["id"]
    assert not batcher._building and not batcher._waiting


def test_the_end_of_a_connect_storm_freezes_the_heap_only_when_gc_is_tuned(monkeypatch):
    import gc

    from meeting_server.live import commands as live

    frozen: list[int] = []
    monkeypatch.setattr(gc, "freeze", lambda: frozen.append(1))
    monkeypatch.setattr(gc, "get_threshold", lambda: (700, 10, 10))
    assert live.freeze_seated_room() is False and not frozen
    monkeypatch.setattr(gc, "get_threshold", lambda: (50_000, 20, 20))
    assert live.freeze_seated_room() is True and frozen == [1]
