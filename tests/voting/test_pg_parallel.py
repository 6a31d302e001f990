"""Vote batches of several server processes on PostgreSQL: written at the same time, still exact.

Each test builds an app on a throwaway PostgreSQL database; "processes" are threads, each with its
own `Batcher` and database connection (what matters here is that their transactions overlap).
The interleavings that matter are forced (a hook on `VoteCache.flush_new`, and PostgreSQL's own
`pg_stat_activity` to see that a transaction really waits), never left to timing.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select, text

from meeting_server.core import db
from tests.conftest import Api, Room, add_attendee, create_meeting
from tests.pg import postgres_settings  # noqa: F401  (the app on a throwaway PostgreSQL database)
from tests.voting.conftest import close_poll, make_poll, open_poll, tablet
from tests.voting.test_batcher import _actor_of


@dataclass
class PgHall:
    room: Room
    members: list[dict]
    actors: list

    @property
    def org(self) -> Api:
        return self.room.org


@pytest.fixture
def pg_hall(app, organizer) -> PgHall:
    """A meeting of 12 joined, checked-in seats, on a throwaway PostgreSQL database."""
    room = Room(app, organizer, create_meeting(organizer), {})
    members = [add_attendee(organizer, room.meeting["id"], f"代表{i}", seat=f"S{i:02d}") for i in range(12)]
    for a in members:
        tablet(room, a)  # joined and checked in
    return PgHall(room, members, [_actor_of(a["id"]) for a in members])


def _item(app, actor, poll_id: int, choice: int, bid: str | None = None):
    from meeting_server.core.commands import registry, validate
    from meeting_server.voting import batcher

    raw = {"poll_id": poll_id, "choices": [choice], "ballot_id": bid or str(uuid.uuid4())}
    return batcher.Item(actor=actor, raw=raw, payload=validate(registry.get("vote"), raw), app=app)


def _write(items) -> list[dict]:
    from meeting_server.voting import batcher

    batcher.Batcher()._write(items)
    return [it.result for it in items]


def _lock_waiters() -> int:
    with db.engine.connect() as c:
        return c.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database()"
            )
        ).scalar()


def _audit_ok(meeting_id: int) -> bool:
    from meeting_server.core.audit import entries
    from meeting_server.core.chain import verify_chain

    with db.reader() as s:
        ok, _, message = verify_chain([e.as_record() for e in entries(s, meeting_id)])
    return ok


def _counts(poll_id: int) -> tuple[int, int]:
    from meeting_server.voting.models import Ballot, Participation

    with db.reader() as s:
        parts = s.scalar(
            select(func.count()).select_from(Participation).where(Participation.poll_id == poll_id)
        )
        ballots = s.scalar(select(func.count()).select_from(Ballot).where(Ballot.poll_id == poll_id))
    return parts, ballots


def test_two_batches_overlap_and_stay_exactly_once(pg_hall, monkeypatch):
    """Batch B inserts while batch A's rows are uncommitted: B waits for A, then decides its lost seats again."""
    from meeting_server.voting import service

    h, app = pg_hall, pg_hall.room.app
    p = make_poll(h.room, kind="motion", secret=True)
    open_poll(h.room, p["id"])
    pid = p["id"]
    bids = [str(uuid.uuid4()) for _ in h.members]
    a_items = [_item(app, h.actors[i], pid, i % 3, bids[i]) for i in range(8)]
    b_items = [_item(app, h.actors[i], pid, i % 3, bids[i]) for i in (4, 5)]  # resent through B
    b_items += [_item(app, h.actors[i], pid, (i + 1) % 3) for i in (6, 7)]  # a second ballot of the seat
    b_items += [_item(app, h.actors[i], pid, i % 3, bids[i]) for i in range(8, 12)]

    a_inserted, b_inserting = threading.Event(), threading.Event()
    lost_by: dict[str, list] = {"A": [], "B": []}
    real = service.VoteCache.flush_new

    def flush_new(self, s, **kw):
        who = threading.current_thread().name
        if who == "B":
            b_inserting.set()
        lost = real(self, s, **kw)
        lost_by[who].append(lost)
        if who == "A" and len(lost_by["A"]) == 1:
            a_inserted.set()  # A's rows are in, uncommitted; hold A until B waits on them
            assert b_inserting.wait(20)
            for _ in range(400):  # bounded: 20 s
                if _lock_waiters():
                    break
                time.sleep(0.05)
            else:
                raise AssertionError("batch B never waited for batch A's rows")
        return lost

    monkeypatch.setattr(service.VoteCache, "flush_new", flush_new)
    results: dict[str, list] = {}

    def run(name, items, after=None):
        if after is not None:
            assert after.wait(20)
        results[name] = _write(items)

    ta = threading.Thread(target=run, args=("A", a_items), name="A")
    tb = threading.Thread(target=run, args=("B", b_items, a_inserted), name="B")
    ta.start()
    tb.start()
    ta.join(60)
    tb.join(60)
    assert not ta.is_alive() and not tb.is_alive()
    ra, rb = results["A"], results["B"]
    assert all(r["ok"] and not r.get("resent") for r in ra), ra
    # B lost exactly the seats A had written; it decided them again against A's committed rows
    assert lost_by["B"][0] == {(pid, h.actors[i].id) for i in (4, 5, 6, 7)}
    assert [r["receipt"] for r in rb[:2]] == [ra[4]["receipt"], ra[5]["receipt"]]
    assert all(r["resent"] for r in rb[:2])
    assert [r["error"]["code"] for r in rb[2:4]] == ["already_voted", "already_voted"]
    assert all(r["ok"] and not r.get("resent") for r in rb[4:])
    assert _counts(pid) == (12, 12)
    closed = close_poll(h.room, pid)
    assert sum(closed["tally"]) == 12
    assert closed["tally"] == [sum(1 for i in range(12) if i % 3 == k) for k in range(3)]
    receipts = {r["receipt"] for r in ra + rb[4:]}
    rows = h.org.get(f"/api/v1/polls/{pid}/results.json").get_json()["ballots"]
    assert {b["receipt"] for b in rows} == receipts
    assert _audit_ok(h.room.meeting["id"])


def test_a_close_committed_while_a_batch_was_writing_refuses_the_batch(pg_hall, monkeypatch):
    """The poll is closed after the batch inserted (uncommitted) and before it locked the meeting:
    the batch is written again and every vote is refused; the close counted none of them."""
    from meeting_server.voting import service

    h, app = pg_hall, pg_hall.room.app
    p = make_poll(h.room, kind="motion", secret=True)
    open_poll(h.room, p["id"])
    pid = p["id"]
    items = [_item(app, h.actors[i], pid, i % 3) for i in range(6)]
    closed: list[dict] = []
    real = service.VoteCache.flush_new
    calls = []

    def flush_new(self, s, **kw):
        lost = real(self, s, **kw)
        calls.append(len(lost))
        if len(calls) == 1:  # rows inserted, not committed, no lock held: the chair closes now
            t = threading.Thread(target=lambda: closed.append(close_poll(h.room, pid)))
            t.start()
            t.join(30)
            assert not t.is_alive(), "poll.close waited for an unlocked batch"
        return lost

    monkeypatch.setattr(service.VoteCache, "flush_new", flush_new)
    res = _write(items)
    assert [r["error"]["code"] for r in res] == ["poll_not_open"] * 6
    assert closed and sum(closed[0]["tally"]) == 0 and closed[0]["voted"] == 0
    assert _counts(pid) == (0, 0)
    assert _audit_ok(h.room.meeting["id"])


def test_a_seat_checked_out_while_its_vote_was_written_is_refused(pg_hall, monkeypatch):
    from meeting_server.voting import service

    h, app = pg_hall, pg_hall.room.app
    p = make_poll(h.room, kind="single", options=["A", "B"], secret=False)
    open_poll(h.room, p["id"])
    pid, mid = p["id"], h.room.meeting["id"]
    items = [_item(app, h.actors[i], pid, i % 2) for i in range(4)]
    real = service.VoteCache.flush_new
    calls = []

    def flush_new(self, s, **kw):
        lost = real(self, s, **kw)
        calls.append(1)
        if len(calls) == 1:
            out = []

            def checkout():
                r = h.org.post(f"/api/v1/meetings/{mid}/attendees/{h.members[0]['id']}/checkout", {})
                out.append(r.status_code)

            t = threading.Thread(target=checkout)
            t.start()
            t.join(30)
            assert out == [200]
        return lost

    monkeypatch.setattr(service.VoteCache, "flush_new", flush_new)
    res = _write(items)
    assert res[0]["error"]["code"] == "not_checked_in"
    assert all(r["ok"] for r in res[1:])
    assert _counts(pid) == (3, 0)
    closed = close_poll(h.room, pid)
    assert sum(closed["tally"]) == 3
    assert _audit_ok(mid)


def test_three_writers_and_a_close_count_exactly_the_acked_ballots(pg_hall):
    """Three 'processes' write small batches while the chair closes: a ballot is counted iff acked ok."""
    h, app = pg_hall, pg_hall.room.app
    p = make_poll(h.room, kind="motion", secret=True)
    open_poll(h.room, p["id"])
    pid = p["id"]
    shares = [list(range(k, 12, 3)) for k in range(3)]
    acks: list[tuple[int, dict]] = []
    lock = threading.Lock()
    go = threading.Barrier(4)

    def writer(seats):
        go.wait(20)
        for j in range(0, len(seats), 2):
            items = [_item(app, h.actors[i], pid, i % 3) for i in seats[j : j + 2]]
            res = _write(items)
            with lock:
                acks.extend(zip(seats[j : j + 2], res, strict=True))

    threads = [threading.Thread(target=writer, args=(s,)) for s in shares]
    for t in threads:
        t.start()
    go.wait(20)
    r = h.org.post(f"/api/v1/polls/{pid}/close")
    assert r.status_code == 200, r.get_json()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert len(acks) == 12
    ok = {res["receipt"] for _i, res in acks if res["ok"]}
    assert all(res["ok"] or res["error"]["code"] == "poll_not_open" for _i, res in acks)
    rows = h.org.get(f"/api/v1/polls/{pid}/results.json").get_json()["ballots"]
    assert {b["receipt"] for b in rows} == ok
    tally = r.get_json()["tally"]
    assert tally == [sum(1 for i, res in acks if res["ok"] and i % 3 == k) for k in range(3)]
    assert _audit_ok(h.room.meeting["id"])
