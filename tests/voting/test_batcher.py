"""The vote batcher: many ballots, one transaction, one ack each after the commit; bad ones fail alone."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from meeting_server.core import db
from tests.voting.conftest import ballot_id, make_poll, open_poll, tablet


def _actor_of(attendee_id: int):
    """The seat's identity as its tablet's connection holds it (built from this test's database)."""
    from meeting_server.core.identity import Actor
    from meeting_server.roster.models import Attendee, SeatSession

    with db.reader() as s:
        a = s.get(Attendee, attendee_id)
        sess = s.scalar(
            select(SeatSession).where(SeatSession.attendee_id == attendee_id).order_by(SeatSession.id.desc())
        )
        return Actor("seat", a.id, a.name, a.role, a.meeting_id, sess.id)


def _submit_together(app, jobs: list[tuple], window: float, monkeypatch) -> list[dict]:
    """Submit (actor, payload) pairs from parallel threads released at once; the leader waits `window`."""
    from meeting_server.core.commands import registry, validate
    from meeting_server.voting import batcher

    monkeypatch.setattr(batcher, "WINDOW_S", window)
    results: list = [None] * len(jobs)
    barrier = threading.Barrier(len(jobs))

    def run(i, actor, raw):
        item = batcher.Item(actor=actor, raw=raw, payload=validate(registry.get("vote"), raw), app=app)
        barrier.wait(5)
        results[i] = batcher.batcher.submit(item)

    threads = [threading.Thread(target=run, args=(i, a, r)) for i, (a, r) in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert not any(t.is_alive() for t in threads)
    return results


@pytest.fixture
def ready(hall):
    p = make_poll(hall.room, kind="motion", secret=True)
    open_poll(hall.room, p["id"])
    observer = tablet(hall.room, hall.room.seats["observer"])
    return hall, p["id"], observer


def test_one_transaction_many_acks_bad_votes_fail_alone(ready, monkeypatch):
    from meeting_server.core.audit import AuditEntry
    from meeting_server.voting import batcher
    from meeting_server.voting.models import Ballot, Participation

    hall, pid, _ = ready
    members = [_actor_of(a["id"]) for a in hall.members]
    observer = _actor_of(hall.room.seats["observer"]["id"])
    bid = ballot_id()
    jobs = [(members[i], {"poll_id": pid, "choices": [i % 3]}) for i in range(1, 5)]
    jobs += [
        (members[0], {"poll_id": pid, "choices": [0], "ballot_id": bid}),
        (members[0], {"poll_id": pid, "choices": [0], "ballot_id": bid}),  # the same ballot resent at once
        (members[1], {"poll_id": pid, "choices": [1], "ballot_id": ballot_id()}),  # member 1 again
        (observer, {"poll_id": pid, "choices": [0]}),
        (members[2], {"poll_id": pid, "choices": [7]}),
    ]
    before = batcher.batcher.batches
    results = _submit_together(hall.room.app, jobs, 0.5, monkeypatch)
    assert batcher.batcher.batches - before == 1 and batcher.batcher.largest >= len(jobs)
    ok = [r for r in results if r["ok"]]
    codes = sorted(r["error"]["code"] for r in results if not r["ok"])
    assert len(ok) == 6 and codes == ["already_voted", "forbidden", "invalid"]
    # the same ballot sent twice at once: one is written, the other answered as a resend (whichever came second)
    assert results[4]["receipt"] == results[5]["receipt"]
    assert sorted(bool(r.get("resent")) for r in results[4:6]) == [False, True]
    with db.reader() as s:
        assert s.scalar(select(func.count()).select_from(Participation)) == 5
        assert s.scalar(select(func.count()).select_from(Ballot)) == 5
        entries = s.scalars(select(AuditEntry).where(AuditEntry.command == "vote.batch")).all()
    # one audit entry for the batch names every vote in it (who, in which poll; never a secret choice)
    assert len(entries) == 1 and entries[0].actor["name"] == "vote batcher"
    voted = sorted(v["attendee_id"] for v in entries[0].data["votes"])
    assert voted == sorted(a["id"] for a in hall.members)
    assert all(set(v) == {"poll_id", "attendee_id", "name"} for v in entries[0].data["votes"])


def test_a_failed_commit_retries_each_vote_alone(ready, monkeypatch):
    from meeting_server.voting import batcher
    from meeting_server.voting.models import Participation

    hall, pid, _ = ready

    def broken(*_a, **_kw):
        raise RuntimeError("disk trouble")

    monkeypatch.setattr(batcher, "write_batch", broken)
    jobs = [(_actor_of(a["id"]), {"poll_id": pid, "choices": [0]}) for a in hall.members]
    results = _submit_together(hall.room.app, jobs, 0.3, monkeypatch)
    assert all(r["ok"] and r["receipt"] for r in results), results
    with db.reader() as s:
        assert s.scalar(select(func.count()).select_from(Participation)) == 5


def test_each_ack_follows_its_commit(ready, monkeypatch):
    """Record the order of commits and acks: no ack is released before the transaction holding it commits."""
    from meeting_server.voting import batcher

    hall, pid, _ = ready
    log: list[str] = []
    real_transaction = db.transaction

    from contextlib import contextmanager

    @contextmanager
    def recording():
        with real_transaction() as s:
            yield s
        log.append("commit")

    monkeypatch.setattr(batcher.db, "transaction", recording)
    real_set = threading.Event.set

    class LoggingEvent(threading.Event):
        def set(self):
            log.append("ack")
            real_set(self)

    monkeypatch.setattr(batcher, "Item", _item_with_event(batcher.Item, LoggingEvent))
    jobs = [(_actor_of(a["id"]), {"poll_id": pid, "choices": [1]}) for a in hall.members]
    results = _submit_together(hall.room.app, jobs, 0.3, monkeypatch)
    assert all(r["ok"] for r in results)
    assert log[0] == "commit" and log.count("ack") >= 5


def _item_with_event(cls, event_cls):
    from dataclasses import field, make_dataclass

    return make_dataclass("Item", [("done", event_cls, field(default_factory=event_cls))], bases=(cls,))


def test_progress_is_coalesced(app, monkeypatch):
    """A burst of commits yields one announcement at once and one at the end of the interval, not one each."""
    import time

    from meeting_server.voting import progress

    sent: list[float] = []
    monkeypatch.setattr(progress, "INTERVAL_S", 0.2)
    monkeypatch.setattr(progress, "announce", lambda poll_id, meeting_id: sent.append(time.monotonic()))
    progress.reset()
    for _ in range(10):
        progress.touch(1, 1)
    time.sleep(0.05)
    for _ in range(10):
        progress.touch(1, 1)
    deadline = time.monotonic() + 3
    while len(sent) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)
    assert len(sent) == 2 and sent[1] - sent[0] >= 0.19


def test_posted_votes_are_acked_by_the_leader_task_after_the_commit(ready, monkeypatch):
    """`post` (the eventlet path: no thread waits per ballot): one background leader writes, then replies."""
    import time
    from contextlib import contextmanager

    from meeting_server.core.commands import registry, validate
    from meeting_server.voting import batcher
    from meeting_server.voting.models import Participation

    hall, pid, _ = ready
    log: list[str] = []
    real_transaction = db.transaction

    @contextmanager
    def recording():
        with real_transaction() as s:
            yield s
        log.append("commit")

    monkeypatch.setattr(batcher.db, "transaction", recording)
    monkeypatch.setattr(batcher, "WINDOW_S", 0.3)  # every post below lands in the first batch
    replies: dict[int, dict] = {}
    before = batcher.batcher.batches
    bid = ballot_id()
    jobs = [(a, {"poll_id": pid, "choices": [0], "ballot_id": ballot_id()}) for a in hall.members]
    jobs.append((hall.members[0], {"poll_id": pid, "choices": [0], "ballot_id": bid}))  # already voted
    actors = [_actor_of(a["id"]) for a, _raw in jobs]  # read before the leader task uses the database
    for i, (actor, (_a, raw)) in enumerate(zip(actors, jobs, strict=True)):

        def reply(res, i=i):
            log.append("ack")
            replies[i] = res

        item = batcher.Item(
            actor=actor, raw=raw, payload=validate(registry.get("vote"), raw), app=hall.room.app
        )
        item.reply = reply
        assert item.done is None  # nothing to wait on
        batcher.batcher.post(item)
    deadline = time.monotonic() + 10
    # the leader task is done once it has replied and announced progress (it uses the database till then)
    while (len(replies) < len(jobs) or batcher.batcher._busy) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(replies) == len(jobs) and not batcher.batcher._busy
    assert batcher.batcher.batches - before == 1
    assert log[0] == "commit" and log[1:] == ["ack"] * len(jobs)
    assert all(replies[i]["ok"] and replies[i]["receipt"] for i in range(len(hall.members)))
    assert replies[len(jobs) - 1]["error"]["code"] == "already_voted"
    with db.reader() as s:
        assert s.scalar(select(func.count()).select_from(Participation)) == len(hall.members)
