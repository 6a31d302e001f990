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


def test_seat_tokens_resolved_in_one_query_as_one_by_one(room):
    """The round's batched token lookup gives each token what `actor_for_token` gives it (or raises)."""
    from meeting_server.auth.service import actor_for_token, actors_for_seat_tokens
    from meeting_server.core import db
    from meeting_server.core.errors import Unauthorized
    from meeting_server.roster.service import revoke_sessions

    good = [room.join(role).token for role in ("attendee", "chair", "observer")]
    revoked = room.join("secretary").token
    with db.transaction() as s:
        revoke_sessions(s, room.seats["secretary"]["id"])
    unknown = "seat_" + "x" * 43
    tokens = [*good, revoked, unknown, good[0]]  # the same tablet twice in one round
    with db.reader() as s:
        batch = actors_for_seat_tokens(s, tokens)
    assert set(batch) == set(tokens)
    for token in tokens:
        with db.reader() as s:
            try:
                one = actor_for_token(s, token)
            except Unauthorized as e:
                assert isinstance(batch[token], Unauthorized), token
                assert batch[token].to_dict() == e.to_dict()
            else:
                assert batch[token] == one
    assert [batch[t].id for t in good] == [room.seats[r]["id"] for r in ("attendee", "chair", "observer")]
    assert batch[revoked].code == batch[unknown].code == "bad_token"


def test_a_tablet_is_in_its_rooms_before_its_snapshot_is_read(room, monkeypatch):
    """Rooms first: the round joins each authenticated tablet to its rooms before the snapshot read
    begins, so a change committed while the round is built reaches it as an event."""
    from meeting_server.core import rooms
    from meeting_server.extensions import socketio
    from meeting_server.live import commands as live
    from meeting_server.live import state

    mid = room.meeting["id"]
    seat = room.seats["chair"]
    members: list[set] = []
    real = state.build

    def build(s, meeting, actor, memo=None):
        ns = socketio.server.manager.rooms.get("/", {})
        members.append(
            {r for r in (rooms.meeting(mid), rooms.seat(seat["id"]), rooms.chairs(mid)) if len(ns.get(r, {}))}
        )
        return real(s, meeting, actor, memo)

    monkeypatch.setattr(state, "build", build)
    before = live.snapshots.authenticated
    tablet = room.tablet("chair")
    assert tablet.is_connected()
    assert live.snapshots.authenticated == before + 1  # it went through the round's token lookup
    assert members == [{rooms.meeting(mid), rooms.seat(seat["id"]), rooms.chairs(mid)}]
    snap = next(e["args"][0] for e in tablet.get_received() if e["name"] == "state")
    assert snap["me"]["attendee_id"] == seat["id"]


def test_a_bad_seat_token_is_refused_with_its_code_and_joins_no_room(room):
    from meeting_server.extensions import socketio

    ns = socketio.server.manager.rooms.get("/", {})
    sizes = {r: len(m) for r, m in ns.items()}
    c = socketio.test_client(room.app, auth={"token": "seat_" + "y" * 43})
    assert not c.is_connected()
    assert {r: len(m) for r, m in socketio.server.manager.rooms.get("/", {}).items() if len(m)} == {
        r: n for r, n in sizes.items() if n
    }


def _ok(client, event: str, payload=None) -> dict:
    a = client.emit(event, {} if payload is None else payload, callback=True)
    assert a["ok"] is True, f"{event}: {a}"
    return a


def _timeless(snap: dict) -> dict:
    """A snapshot without its clocks (server_time and the like differ between two builds)."""
    if isinstance(snap, dict):
        return {k: _timeless(v) for k, v in snap.items() if k not in ("server_time", "closes_in_s")}
    if isinstance(snap, list):
        return [_timeless(v) for v in snap]
    return snap


def test_a_shared_round_gives_each_seat_exactly_its_own_snapshot(room_with_doc):
    """Every seat's snapshot built in one round (shared reads, prefetched rows, one memo) equals the
    one built for it alone: per-seat parts (own check-in, service calls, announcement to one seat,
    annotations, a confidential document only some seats may see) never reach another seat."""
    from sqlalchemy import event

    from meeting_server.core import db
    from meeting_server.core.identity import Actor
    from meeting_server.live import state
    from meeting_server.meetings.models import Meeting
    from tests.conftest import make_pdf

    room = room_with_doc
    mid = room.meeting["id"]
    r = room.org.upload(
        f"/api/v1/meetings/{mid}/documents", make_pdf(2, "Secret"), "secret.pdf", confidential="true"
    )
    assert r.status_code == 202, r.get_json()
    secret = r.get_json()["id"]
    audience = {"roles": ["chair"], "attendees": [room.seats["attendee"]["id"]]}
    assert room.org.patch(f"/api/v1/documents/{secret}", json={"audience": audience}).status_code == 200
    tablets = {role: room.tablet(role) for role in ("attendee", "chair", "secretary", "observer")}
    console = room.console()
    _ok(tablets["attendee"], "checkin")
    _ok(tablets["chair"], "service.call", {"kind": "water"})
    _ok(tablets["attendee"], "speaker.request")
    _ok(console, "announce", {"text": "only for the observer", "attendee_id": room.seats["observer"]["id"]})
    _ok(tablets["attendee"], "annotation.save", {"document_id": secret, "id": "s1", "page": 1, "kind": "pen",
                                                  "points": [[1, 2], [3, 4]]})  # fmt: skip
    _ok(tablets["chair"], "annotation.save", {"document_id": room.document["id"], "id": "c1", "page": 1,
                                               "kind": "pen", "points": [[5, 6], [7, 8]]})  # fmt: skip
    _ok(console, "present", {"document_id": secret, "page": 2})

    actors = [
        Actor("seat", a["id"], a["name"], a["role"], mid, None)
        for role, a in room.seats.items()
        if role in ("attendee", "chair", "secretary", "observer", "presenter")
    ]
    statements: list[str] = []

    def count(conn, cursor, statement, *rest):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        alone = {}
        for actor in actors:
            with db.reader() as s:
                alone[actor.id] = state.build(s, s.get(Meeting, mid), actor)
        one_by_one, statements[:] = len(statements), []
        with db.reader() as s:
            memo: dict = {}
            state.share_reads(s)
            meeting = s.get(Meeting, mid)
            state.prefetch(s, actors, memo)
            together = {a.id: state.build(s, meeting, a, memo) for a in actors}
        in_a_round = len(statements)
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    for actor in actors:
        assert _timeless(together[actor.id]) == _timeless(alone[actor.id]), actor.role
    by_role = {a.role: together[a.id] for a in actors}
    assert by_role["attendee"]["current"]["document_id"] == secret  # in the audience
    assert by_role["secretary"]["current"]["document_id"] is None  # not in it
    assert secret not in {d["id"] for d in by_role["secretary"]["documents"]}
    assert by_role["observer"]["announcement"]["text"] == "only for the observer"
    assert by_role["attendee"]["announcement"] is None
    assert by_role["attendee"]["me"]["checked_in"] is True and by_role["chair"]["me"]["checked_in"] is False
    assert [c["kind"] for c in by_role["chair"]["service_calls"]] == ["water"]
    assert by_role["attendee"]["service_calls"] == []
    assert by_role["attendee"]["annotations"]["counts"] == {str(secret): 1}
    assert by_role["chair"]["annotations"]["counts"] == {str(room.document["id"]): 1}
    assert by_role["secretary"]["annotations"]["counts"] == {}
    # The questions every seat asks alike were asked once: far fewer statements than one by one.
    assert in_a_round < one_by_one * 0.6, (in_a_round, one_by_one)


def test_a_tablet_gone_before_its_round_is_refused_alone(room, monkeypatch):
    """A connection dropped while it waited for its round (its sid already forgotten by python-socketio)
    is refused by itself: the other tablets of the round still get their snapshots."""
    from meeting_server.extensions import socketio
    from meeting_server.live import commands as live

    batcher = live.SnapshotBatcher()
    tokens = [room.join(role).token for role in ("attendee", "chair")]
    server = socketio.server
    sid = "gone-sid"  # never connected (or already disconnected): not in the namespace
    ok_sid = "here-sid"
    server.manager.rooms.setdefault("/", {}).setdefault(None, {})[ok_sid] = "eio-here"
    try:
        with room.app.app_context():
            slots = [
                {"actor": None, "token": tokens[0], "sid": sid},
                {"actor": None, "token": tokens[1], "sid": ok_sid},
            ]
            for slot in slots:
                slot.update(snap=None, err=None, done=server.eio.create_event())
            batcher._round(socketio, slots)
        gone, here = slots
        assert gone["err"] is not None and gone["err"].code == "gone" and gone["snap"] is None
        assert here["err"] is None and here["snap"]["me"]["attendee_id"] == room.seats["chair"]["id"]
        ns = server.manager.rooms["/"]
        assert not any(sid in members for members in ns.values())
        assert any(ok_sid in members for r, members in ns.items() if r is not None)
    finally:
        server.manager.disconnect(ok_sid, "/")


def test_one_round_with_seats_of_two_meetings_gives_each_its_own_meeting(room):
    """Rounds are per process, not per meeting: a round holding seats of two meetings builds each
    seat's snapshot from its own meeting (its title, its attendance, its `me`)."""
    from meeting_server.core.identity import Actor
    from meeting_server.extensions import socketio
    from tests.conftest import create_meeting

    other = create_meeting(room.org, title="另一个会议 Other meeting")
    seats = {
        mid: [add_attendee(room.org, mid, f"m{mid}-{i}", "attendee", f"S{i}") for i in range(3)]
        for mid in (room.meeting["id"], other["id"])
    }
    batcher = SnapshotBatcher()
    slots = []
    for mid, atts in seats.items():
        for a in atts:
            slot = {
                "actor": Actor("seat", a["id"], a["name"], "attendee", mid, None),
                "token": None,
                "sid": None,
            }
            slot.update(snap=None, err=None, done=socketio.server.eio.create_event())
            slots.append(slot)
    with room.app.app_context():
        batcher._round(socketio, slots[::2] + slots[1::2])  # the two meetings interleaved in one round
    titles = {room.meeting["id"]: room.meeting["title"], other["id"]: other["title"]}
    for slot in slots:
        actor = slot["actor"]
        assert slot["err"] is None, slot["err"]
        assert slot["snap"]["meeting"]["id"] == actor.meeting_id
        assert slot["snap"]["meeting"]["title"] == titles[actor.meeting_id]
        assert slot["snap"]["me"]["attendee_id"] == actor.id
    expected = {slot["actor"].meeting_id: slot["snap"]["attendance"]["expected"] for slot in slots}
    assert expected == {room.meeting["id"]: len(room.seats) - 1 + 3, other["id"]: 3}  # no observers
    assert batcher.rounds == 1 and batcher.built == len(slots)
