"""The `vote` Socket.IO event: ballots arriving together are committed together.

One transaction per vote (BEGIN IMMEDIATE, audit append, commit) costs a few
milliseconds on SQLite, too slow for a thousand tablets pressing at once. So
the `vote` handler queues its ballot and waits; one of the waiting handlers
(the leader) takes everything queued, writes it in ONE transaction (still one
audit entry per vote) and commits; only then is each handler's ack released.

* Every ack strictly follows the commit of its ballot.
* A refused vote does not fail the others: each vote is fully checked before
  anything of it is written (`service.cast`), and a refusal only becomes that
  vote's error ack. Should the batch's commit itself fail, every vote in it is
  retried alone through the ordinary pipeline.
* Nothing holds a lock while waiting: the leader sleeps WINDOW_S to let more
  ballots arrive *before* it begins the transaction.

The leader role passes from handler to handler (no resident thread), so the
batcher works the same under eventlet, gevent and plain threads.
"""

from __future__ import annotations

import gc
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from sqlalchemy.exc import DBAPIError

from ..core import audit, db
from ..core.commands import CLOSED_STATUSES, ack_error, authorize, execute, registry, retryable, validate
from ..core.errors import AppError, Conflict, Forbidden, Invalid, NotFound, Unauthorized
from ..core.identity import Actor

log = logging.getLogger(__name__)

#: How long a leader waits for more ballots before writing (seconds).
WINDOW_S = 0.003
#: At most this many ballots per transaction.
MAX_BATCH = 2000
#: Who writes a batch, in the audit log (each vote in it names its voter).
BATCHER = {"kind": "system", "id": None, "name": "vote batcher", "role": "system"}
#: A handler gives up waiting for its commit after this long (the ballot may still commit: resend it).
WAIT_S = 30.0
#: A batch is written again after a deadlock or a `Stale` check at most this often, then vote by vote.
ATTEMPTS = 3


@dataclass
class Item:
    actor: Actor
    raw: Any
    payload: Any
    app: Any
    sid: str | None = None
    result: dict[str, Any] | None = None
    lead: bool = False
    #: When the handler queued it (perf_counter).
    t: float = field(default_factory=time.perf_counter)
    #: Set for a handler waiting in `submit` (created there); None for an item `post`ed with a `reply`.
    done: threading.Event | None = None
    #: Called with the ack once the ballot is committed (`post`): no thread waits for it.
    reply: Callable[[dict[str, Any]], None] | None = None


class Batcher:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[Item] = []
        self._busy = False
        #: Statistics for benchmarks: batches written and ballots in them.
        self.batches = 0
        self.ballots = 0
        self.largest = 0

    def submit(self, item: Item) -> dict[str, Any]:
        """Queue `item` and wait (this thread) until its ballot is committed; returns its ack."""
        if item.done is None:
            item.done = threading.Event()
        with self._lock:
            self._pending.append(item)
            lead = not self._busy
            self._busy = True
        if lead:
            self._lead()
        deadline = time.monotonic() + WAIT_S
        while item.result is None:
            left = deadline - time.monotonic()
            if left <= 0:
                with self._lock:
                    must_lead = item.lead  # handed the leader role: others wait on it, so lead anyway
                    if not must_lead and item in self._pending:
                        self._pending.remove(item)
                if not must_lead:
                    break
            else:
                item.done.wait(left)
            if item.result is None and item.lead:
                item.lead = False
                item.done.clear()
                self._lead()
        if item.result is None:
            return ack_error(
                Conflict(
                    "the vote was not confirmed in time; resend it with the same ballot_id", code="timeout"
                )
            )
        return item.result

    def post(self, item: Item) -> None:
        """Queue `item` (with `item.reply` set) and return at once; `reply` gets the ack after the commit.

        No thread waits per ballot: one background task leads while ballots are queued.
        """
        assert item.reply is not None
        with self._lock:
            self._pending.append(item)
            start = not self._busy
            self._busy = True
        if start:
            _spawn(self._run)

    def _run(self) -> None:
        """A background leader: write batches until nothing is queued."""
        while self._lead_once(background=True):
            pass

    def _lead(self) -> None:
        self._lead_once(background=False)

    def _lead_once(self, background: bool) -> bool:
        """Write one batch; True if this (background) leader should write the next one too."""
        from ..extensions import socketio

        if WINDOW_S:
            socketio.sleep(WINDOW_S)
        with self._lock:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
        nxt = None
        try:
            if batch:
                self._write(batch)
        finally:
            for it in batch:  # (only if writing itself broke) no item is left without an answer
                if it.result is None:
                    _answer(
                        it, ack_error(Conflict("the vote could not be recorded; resend it", code="timeout"))
                    )
            with self._lock:
                nxt = self._pending[0] if self._pending else None
                if nxt is None:
                    self._busy = False
                elif not background and nxt.reply is None:
                    nxt.lead = True
            if nxt is not None and not background:
                if nxt.reply is None:
                    nxt.done.set()  # hand the leader role on to a waiting handler
                else:
                    _spawn(self._run)  # a posted ballot has no thread to lead: start one
        return background and nxt is not None

    def _write(self, batch: list[Item]) -> None:
        t0 = time.perf_counter()
        app = batch[0].app
        touched: set[tuple[int, int]] = set()
        expired: set[int] = set()
        # A full garbage collection of a server's heap takes longer than writing a thousand ballots;
        # the batch makes thousands of short-lived objects, so hold collections until it is committed.
        gc_was_on = gc.isenabled()
        gc.disable()
        try:
            with app.app_context():
                results = None
                for attempt in range(ATTEMPTS):
                    touched.clear()
                    expired.clear()
                    try:
                        with db.transaction() as s:
                            results = write_batch(s, batch, touched, expired)
                        break
                    except Stale as e:  # checked again from the start: those votes are refused now
                        log.info("a batch of %d votes is written again: %s", len(batch), e)
                    except DBAPIError as e:
                        if not retryable(e):
                            log.exception("a batch of %d votes failed to commit", len(batch))
                            break
                        log.warning(
                            "a batch of %d votes: %s; writing it again", len(batch), type(e.orig).__name__
                        )
                        time.sleep(random.uniform(0.01, 0.05) * (attempt + 1))  # green threads: yields
                    except Exception:
                        log.exception("a batch of %d votes failed to commit", len(batch))
                        break
                if results is None:
                    log.warning("retrying each of %d votes alone", len(batch))
                    results = [_alone(it) for it in batch]
                    touched.clear()
        finally:
            if gc_was_on:
                gc.enable()
        log.debug(
            "vote batch: %d ballots, oldest waited %.1f ms, written in %.1f ms",
            len(batch), (t0 - min(it.t for it in batch)) * 1000, (time.perf_counter() - t0) * 1000,
        )  # fmt: skip
        self.batches += 1
        self.ballots += len(batch)
        self.largest = max(self.largest, len(batch))
        for it, res in zip(batch, results, strict=True):
            _answer(it, res)
        from . import progress, timers

        try:  # after the acks: courtesy broadcasts and closing a poll whose time ran out
            for poll_id, meeting_id in touched:
                progress.touch(poll_id, meeting_id)
            for poll_id in expired:
                timers.auto_close(poll_id)
        except Exception:
            log.warning("after a vote batch: progress or closing an expired poll failed", exc_info=True)


def _answer(it: Item, res: dict[str, Any]) -> None:
    it.result = res
    if it.reply is not None:
        try:
            it.reply(res)
        except Exception:  # one unreachable tablet must not stop the other acks
            log.warning("sending a vote ack failed", exc_info=True)
    elif it.done is not None:
        it.done.set()


def _spawn(fn: Callable[[], None]) -> None:
    from ..extensions import socketio

    socketio.start_background_task(fn)


def _alone(it: Item) -> dict[str, Any]:
    try:
        res = execute(registry.get("vote"), it.actor, it.raw, {}, sid=it.sid)
        return {"ok": True, **res}
    except Exception as e:
        return ack_error(e)


class Stale(Exception):
    """Something a batch's votes were checked against changed before the batch locked its meeting
    (the poll was closed, the meeting ended, a seat was checked out, revoked, deleted or given another
    role or weight): the batch is written again from the start, where those votes are refused."""


#: A batch whose seats were also cast by another transaction decides those votes again (bounded).
ROUNDS = 3


def write_batch(s, batch: list[Item], touched: set, expired: set) -> list[dict[str, Any]]:
    """Check and write every vote of `batch` in session `s`; returns one ack per item (valid once committed).

    Nothing is locked while the votes are checked and written: the meeting row (the audit chain's head)
    is locked only at the end, for the audit entry and the commit, so the batches of several server
    processes check, hash and insert their ballots at the same time and queue only for that last step.
    What keeps it exact:

    * exactly once: participations go in with `INSERT … ON CONFLICT DO NOTHING` on the unique
      (poll, attendee) pair; a vote whose seat another transaction got in first is decided again
      against that row (a resend gets the same receipt, anything else `already_voted`), and its
      ballot is not written;
    * nothing changed meanwhile: once the meeting row is locked (every `poll.close`, check-out,
      revocation and role change holds it until its commit), the poll is read again (still open?) and
      so are the voters' seats and sessions; if anything a written vote relied on changed, `Stale`
      makes the caller write the batch again, where those votes are refused;
    * a batch that changes earlier votes (`previous_ballot_id`: rows another transaction could update
      too) locks its meetings first, as every other write does;
    * SQLite has one writer at a time (BEGIN IMMEDIATE): there a batch reads, checks and writes as if
      it had locked everything first, and none of the above is needed (plain INSERTs, no second look).
    """
    from sqlalchemy import select

    from ..meetings.models import Meeting
    from ..roster.models import Attendee, SeatSession
    from . import service
    from .models import Poll

    cmd = registry.get("vote")
    key = service.current_key()
    meeting_ids = sorted({it.actor.meeting_id for it in batch if it.actor.meeting_id is not None})
    # Changing a vote updates existing rows: only then is the meeting locked before anything is read.
    # SQLite writes one transaction at a time (BEGIN IMMEDIATE): everything read here is current until
    # the commit, as if locked; nothing to read again, nothing another writer could insert meanwhile.
    pg = s.get_bind().dialect.name == "postgresql"
    locked_first = not pg or any(it.payload.previous_ballot_id is not None for it in batch)
    q = select(Meeting).where(Meeting.id.in_(meeting_ids)).order_by(Meeting.id)
    meetings = {m.id: m for m in s.scalars(q.with_for_update() if locked_first else q)}
    # What authorization and `cast` need, as plain rows in two queries (no ORM objects: this is the hot path).
    sessions = dict(
        s.execute(
            select(SeatSession.id, SeatSession.revoked_at).where(
                service.among(s, SeatSession.id, {it.actor.session_id for it in batch})
            )
        ).all()
    )
    attendees = {
        a.id: a
        for a in s.execute(
            select(
                Attendee.id, Attendee.meeting_id, Attendee.name, Attendee.role, Attendee.present,
                Attendee.deleted, Attendee.vote_weight,
            ).where(service.among(s, Attendee.id, {it.actor.id for it in batch}))
        )
    }  # fmt: skip

    def authorize_seat(actor: Actor, meeting) -> Actor:
        """`core.commands.authorize` for seats, on the rows above; anyone else goes through it."""
        if not actor.is_seat:
            return authorize(cmd, actor, meeting, s)
        if actor.meeting_id != meeting.id:
            raise NotFound("no such item")
        if actor.session_id not in sessions or sessions[actor.session_id] is not None:
            raise Unauthorized("this tablet's session was revoked; scan the seat's QR code again")
        a = attendees.get(actor.id)
        if a is None or a.deleted:
            raise Unauthorized("this seat no longer exists")
        if a.role not in cmd.roles:
            raise Forbidden(f"the role {a.role} may not do this")
        return Actor("seat", a.id, a.name, a.role, a.meeting_id, actor.session_id)

    poll_ids = {it.payload.poll_id for it in batch if it.payload.poll_id is not None}
    # Plain copies of the polls (read only here): `cast` reads a dozen attributes per vote, and an ORM
    # attribute costs several times a plain one.
    columns = [c.key for c in Poll.__table__.columns]
    polls = {
        p.id: SimpleNamespace(**{k: getattr(p, k) for k in columns})
        for p in s.scalars(select(Poll).where(Poll.id.in_(poll_ids)))
    }
    cache = service.VoteCache()
    cache.preload(s, {(it.payload.poll_id, it.actor.id) for it in batch if it.payload.poll_id in polls})
    out: list[dict[str, Any]] = [{}] * len(batch)
    #: What each written vote adds to the audit entry: (meeting id, record), None for nothing written.
    recorded: list[tuple[int, dict[str, Any]] | None] = [None] * len(batch)

    def decide(i: int) -> None:
        it = batch[i]
        recorded[i] = None
        try:
            meeting = meetings.get(it.actor.meeting_id)
            if meeting is None or meeting.deleted_at is not None:
                raise NotFound("no such meeting")
            actor = authorize_seat(it.actor, meeting)
            if meeting.status in CLOSED_STATUSES:
                raise Conflict("the meeting has ended; nothing can be changed", code="meeting_ended")
            p = polls.get(it.payload.poll_id) if it.payload.poll_id is not None else None
            if p is None or p.meeting_id != meeting.id:
                raise NotFound("no such poll")
            attendee = attendees.get(actor.id)
            if attendee is None:
                raise Unauthorized("this seat no longer exists")
            pl = it.payload
            ack, data = service.cast(
                s,
                p,
                attendee,
                pl.choices,
                pl.ballot_id,
                key,
                previous_ballot_id=pl.previous_ballot_id,
                cache=cache,
            )
            if data is not None:
                data.update(attendee_id=attendee.id, name=attendee.name)
                recorded[i] = (meeting.id, data)
            out[i] = {"ok": True, **ack}
        except service.PollExpired as e:
            expired.add(it.payload.poll_id)
            out[i] = ack_error(e)
        except AppError as e:
            out[i] = ack_error(e)

    with s.no_autoflush:  # everything written here is written by `flush_new` and the commit
        todo = range(len(batch))
        for round_ in range(ROUNDS):
            for i in todo:
                decide(i)
            lost = cache.flush_new(s, on_conflict=pg)
            if not lost:
                break
            # Another transaction (another server process) got these seats' votes in first: decide
            # every vote of those seats again, against the rows it committed.
            todo = [i for i, it in enumerate(batch) if (it.payload.poll_id, it.actor.id) in lost]
            if round_ == ROUNDS - 1:
                for i in todo:
                    recorded[i] = None
                    out[i] = ack_error(Conflict("the vote could not be recorded; resend it", code="timeout"))
                break
            for k in lost:
                cache.parts.pop(k, None)
                cache.named.pop(k, None)
            cache.preload(s, lost)
        votes: dict[int, list[dict[str, Any]]] = {}
        for rec, it in zip(recorded, batch, strict=True):
            if rec is not None:
                votes.setdefault(rec[0], []).append(rec[1])
                touched.add((it.payload.poll_id, rec[0]))
        if not votes:
            return out
        if locked_first:
            locked = meetings
        else:
            # The meeting rows, locked (in id order) and read afresh: the audit chain's head, and the
            # moment from which nothing this batch relies on can change until it commits.
            locked = {
                m.id: m
                for m in s.scalars(
                    select(Meeting)
                    .where(Meeting.id.in_(sorted(votes)))
                    .order_by(Meeting.id)
                    .with_for_update()
                    .execution_options(populate_existing=True)
                )
            }
            _recheck(s, batch, recorded, locked, attendees)
        for meeting_id, records in votes.items():
            # One audit entry per meeting and batch lists every vote in it, as `vote` entries would
            # (who voted in which poll; the choices of named polls only).
            audit.append(s, locked[meeting_id], BATCHER, "vote.batch", {"votes": records})
    return out


def _recheck(s, batch: list[Item], recorded: list, locked: dict, attendees: dict) -> None:
    """Raise `Stale` if anything the written votes were checked against changed before the meeting lock."""
    from sqlalchemy import select

    from ..roster.models import Attendee, SeatSession
    from . import service
    from .models import Poll

    written = [it for it, rec in zip(batch, recorded, strict=True) if rec is not None]
    for m in locked.values():
        if m.deleted_at is not None or m.status in CLOSED_STATUSES:
            raise Stale(f"meeting {m.id} ended or was deleted")
    poll_ids = {it.payload.poll_id for it in written}
    if any(st != "open" for st in s.scalars(select(Poll.status).where(Poll.id.in_(poll_ids)))):
        raise Stale("a poll was closed or cancelled")
    seats = [it.actor for it in written if it.actor.is_seat]
    now = {
        a.id: a
        for a in s.execute(
            select(
                Attendee.id, Attendee.role, Attendee.present, Attendee.deleted, Attendee.vote_weight
            ).where(service.among(s, Attendee.id, {a.id for a in seats}))
        )
    }
    for actor in seats:
        a, b = attendees[actor.id], now.get(actor.id)
        if b is None or (a.role, a.present, a.deleted, a.vote_weight) != (
            b.role,
            b.present,
            b.deleted,
            b.vote_weight,
        ):
            raise Stale(f"seat {actor.id} changed")
    session_ids = {a.session_id for a in seats}
    if session_ids and s.scalar(
        select(SeatSession.id)
        .where(service.among(s, SeatSession.id, session_ids), SeatSession.revoked_at.is_not(None))
        .limit(1)
    ):
        raise Stale("a seat session was revoked")


batcher = Batcher()


def _prepare(app, sid: str, data: Any, extra: tuple) -> Item | dict[str, Any]:
    """The checks a `vote` needs before it is queued: an Item, or the error ack."""
    from ..core.sockets import connections

    actor = connections.get(sid)
    if actor is None:
        return ack_error(Unauthorized("not connected to a meeting", code="unauthorized"))
    raw = data if data is not None else {}
    try:
        if extra:
            raise Invalid("send one payload object with the event", code="invalid")
        payload = validate(registry.get("vote"), raw)
        if payload.poll_id is None:
            raise Invalid("poll_id is required", fields=[{"field": "poll_id", "problem": "required"}])
        return Item(actor=actor, raw=raw, payload=payload, app=app, sid=sid)
    except Exception as e:  # every failure becomes an error ack, never a dropped callback
        return ack_error(e)


def handler(app) -> Any:
    """The `vote` handler, registered on the python-socketio server itself (`voting.init_app`).

    It bypasses Flask-SocketIO's per-event Flask request context (environ, URL adapter, session),
    which cost as much as the rest of a vote; it needs neither `request` nor a session. It blocks
    its event's thread until the commit: the path of synchronous servers (the test client);
    under eventlet/gevent `install` answers votes without a thread per vote.
    """

    def on_vote(sid: str, data: Any = None, *extra: Any) -> dict[str, Any]:
        item = _prepare(app, sid, data, extra)
        if isinstance(item, dict):
            return item
        try:
            return batcher.submit(item)
        except Exception as e:
            return ack_error(e)

    return on_vote


def install(app, server) -> None:
    """Answer `vote` events without a green thread per event (when the server runs handlers asynchronously).

    python-socketio starts one thread per incoming event and sends its ack when the handler returns,
    so a vote handler waiting for its batch's commit costs a thread, an event, a timer and two context
    switches per ballot. Here a `vote` packet is checked where it is read, queued with a callback
    that sends its ACK packet, and the batcher's one leader task writes the batch and sends the acks,
    still each after its commit. Every other event, and every event when handlers run synchronously
    (Flask-SocketIO's test client), takes python-socketio's own path to the `vote` handler above.
    """
    from socketio import packet

    # Wrap python-socketio's own method once per server, whichever app installs last (tests build many).
    inner = server.__dict__.setdefault("_vote_inner_handle_event", server._handle_event)

    def handle_event(eio_sid, namespace, id, data):
        if (
            not server.async_handlers
            or not data
            or not isinstance(data[0], str)
            or data[0] != "vote"
            or (namespace or "/") != "/"
        ):
            return inner(eio_sid, namespace, id, data)
        sid = server.manager.sid_from_eio_sid(eio_sid, "/")
        if sid is None or not server.manager.is_connected(sid, "/"):
            return inner(eio_sid, namespace, id, data)  # python-socketio logs and drops it

        def reply(res: dict[str, Any]) -> None:
            if id is not None:
                server._send_packet(
                    eio_sid, server.packet_class(packet.ACK, namespace="/", id=id, data=[res])
                )

        item = _prepare(app, sid, data[1] if len(data) > 1 else None, tuple(data[2:]))
        if isinstance(item, dict):
            reply(item)
            return
        item.reply = reply
        try:
            batcher.post(item)
        except Exception as e:
            reply(ack_error(e))

    server._handle_event = handle_event
