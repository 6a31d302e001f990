"""The live room: connect, state, presenting (page, view, agenda item, follow lock), pointer and ink, seat status."""

from __future__ import annotations

import logging

from flask import request
from flask_socketio import join_room

from ..core import db, rooms
from ..core.commands import ORGANIZER, PRESENTERS, ROOM_STAFF, SEATS, CommandSet, Ctx
from ..core.errors import AppError, NotFound
from ..core.sockets import authenticate, connections, refuse
from . import fast, presence, schemas, state

log = logging.getLogger(__name__)
commands = CommandSet("live")
commands.event("state", "The full snapshot, to one client on connect.")
commands.event(
    "page",
    'The presenter changed the page: the whole `current` block `{"document_id", "page", "seq", "view", '
    '"agenda_item_id", "follow_lock"}`; to everyone in the meeting.',
)
commands.event(
    "view", "The presenter's zoom/scroll changed: the whole `current` block; to everyone in the meeting."
)
commands.event("agenda.current", "The current agenda item changed: the whole `current` block; to everyone.")
commands.event("follow.lock", "The follow lock was set or lifted: the whole `current` block; to everyone.")
commands.event(
    "pointer", "The presenter's laser pointer (ephemeral); to everyone in the meeting but the sender."
)
commands.event("ink", "A piece of the presenter's temporary drawing (ephemeral); to everyone but the sender.")
commands.event(
    "ink.clear", "Temporary drawing cleared (by the presenter, or because the page changed); to everyone."
)
commands.event("seat.status", "One seat's presence and what it shows changed; to the room staff.")

STAFF_ROLES = {"chair", "presenter", "secretary"}


def rooms_for(actor) -> list[str]:
    mid = actor.meeting_id
    out = [rooms.meeting(mid)]
    if actor.is_user:
        out += [rooms.staff(mid), rooms.organizers(mid), rooms.chairs(mid), rooms.presenters(mid)]
    else:
        out += [rooms.seat(actor.id), rooms.role(mid, actor.role)]
        if actor.role in STAFF_ROLES:
            out.append(rooms.staff(mid))
        if actor.role == "chair":
            out.append(rooms.chairs(mid))
        if actor.role in ("chair", "presenter"):
            out.append(rooms.presenters(mid))
    return out


def is_staff(actor) -> bool:
    return actor.is_user or actor.role in STAFF_ROLES


# -- connection life cycle -------------------------------------------------
def on_connect(auth=None):
    from ..core import tokens
    from ..extensions import socketio

    sid = request.sid
    token = auth.get("token") if isinstance(auth, dict) else None
    try:
        if isinstance(token, str) and token.startswith(tokens.SEAT_PREFIX):
            # A tablet: authenticated in the batcher's round together with the others arriving now
            # (one query for the round's tokens), which then joins its rooms before the round's
            # snapshot transaction begins.
            actor, snapshot = snapshots.connect(socketio, sid, token)
        else:
            actor = authenticate(auth)
            # Rooms first, snapshot second: a change committed in between reaches this client as an
            # event (its seq is not above the snapshot's, or it is newer and the client keeps it),
            # never nowhere. A refused connection leaves every room again.
            for room in rooms_for(actor):
                join_room(room)
            snapshot = snapshots.get(socketio, actor)
    except AppError as e:
        raise refuse(e) from None
    connections[sid] = actor

    socketio.emit("state", snapshot, to=sid)
    # Outside any database session: with Redis this may yield.
    status = presence.current.connect(sid, actor, snapshot.get("me"))
    if not _still_there(socketio, sid):
        # The client went away while we built its snapshot (a reconnect storm after a restart, a
        # client that timed out). python-socketio never calls `disconnect` for a connection that
        # was still pending, so undo here, or the seat would look online forever.
        connections.pop(sid, None)
        presence.current.disconnect(sid)
        return False
    if status is not None:
        socketio.emit("seat.status", status, to=rooms.staff(actor.meeting_id))
    return True


class SnapshotBatcher:
    """Authenticates and builds the `state` of connections that arrive together, in rounds.

    A hall connecting at once (a start, a reconnect storm after the access point failed) asks for
    hundreds of snapshots. Each round takes up to `ROUND` waiting connections (oldest first) and

    1. resolves the seat tokens among them with one query (`auth.service.actors_for_seat_tokens`,
       in its own short read transaction) and joins each such connection to its rooms;
    2. then opens one reader session and builds every connection's snapshot in it, grouped by
       meeting: the meeting, its documents, agenda, attendance counts, open poll and the seats'
       attendee rows are read once a round (`state.build`'s memo, `state.prefetch`) instead of once a
       connection.

    Rooms first: a connection joins its rooms (step 1, or before it queues when it authenticated
    itself: organizers, `get`) before the round's snapshot transaction begins, so a change committed
    in between still reaches it as an event (the rule `on_connect` keeps). One green thread builds
    at a time: the first connection to arrive builds its own round, then a background task builds
    the next rounds (yielding to the room between rounds) until none is waiting; the others wait for
    their round.
    """

    #: Longest a connection waits for its round before it is refused (the builder died or is stuck).
    WAIT_SECONDS = 120.0
    #: Most connections in one round (one auth query and one read transaction, without yielding).
    ROUND = 32
    #: Connections built by one background run that count as a hall connecting at once.
    STORM = 50

    def __init__(self) -> None:
        import threading

        self._lock = threading.Lock()
        self._waiting: list[dict] = []
        self._building = False
        self.rounds = 0  #: rounds built (this process)
        self.built = 0  #: snapshots built (this process)
        self.authenticated = 0  #: seat tokens resolved in rounds (this process)

    def get(self, socketio, actor) -> dict:
        """The snapshot of an authenticated actor (who has joined its rooms already)."""
        slot = self._wait(socketio, {"actor": actor, "token": None, "sid": None})
        return slot["snap"]

    def connect(self, socketio, sid: str, token: str) -> tuple:
        """Authenticate a seat token in a round, join `sid` to its rooms, build its snapshot:
        returns (actor, snapshot); raises what `authenticate` would for a bad token."""
        slot = self._wait(socketio, {"actor": None, "token": token, "sid": sid})
        return slot["actor"], slot["snap"]

    def _wait(self, socketio, slot: dict) -> dict:
        slot.update(snap=None, err=None, done=socketio.server.eio.create_event())
        with self._lock:
            self._waiting.append(slot)
            builder = not self._building
            self._building = True
        if builder:
            self._rounds(socketio, own=slot)
        elif not slot["done"].wait(self.WAIT_SECONDS):
            raise AppError("the server is busy; try again", code="unavailable", status=503)
        if slot["err"] is not None:
            raise slot["err"]
        return slot

    def _next_batch(self) -> list[dict] | None:
        """The next round (oldest first, at most ROUND); None, and building stops, when nobody waits."""
        with self._lock:
            if not self._waiting:
                self._building = False
                return None
            batch, self._waiting = self._waiting[: self.ROUND], self._waiting[self.ROUND :]
            return batch

    def _rounds(self, socketio, own: dict | None = None) -> None:
        """Build rounds until nobody waits. A connection's handler builds until its own round is done,
        then hands the rest to a background task, so its CONNECT is not held up by later arrivals."""
        first = True
        built = 0
        try:
            while True:
                if not first:
                    socketio.sleep(0)  # let the room run, and new arrivals queue for the next round
                first = False
                batch = self._next_batch()
                if batch is None:
                    if own is None and built >= self.STORM:
                        freeze_seated_room()
                    return
                self._round(socketio, batch)
                built += len(batch)
                if own is not None and own["done"].is_set():
                    socketio.start_background_task(self._rounds, socketio)
                    return
        except BaseException:
            with self._lock:
                self._building = False
                left, self._waiting = self._waiting, []
            for other in left:  # nobody is left waiting for ever
                other["err"] = other["err"] or AppError(
                    "the server could not build the room's state; try again", code="internal", status=500
                )
                other["done"].set()
            raise

    def _round(self, socketio, batch: list[dict]) -> None:
        try:
            self.rounds += 1
            self._authenticate(socketio, [slot for slot in batch if slot["actor"] is None])
            self._build([slot for slot in batch if slot["err"] is None])
        finally:
            for slot in batch:
                if slot["snap"] is None and slot["err"] is None:
                    slot["err"] = AppError(
                        "the server could not build the room's state; try again", code="internal", status=500
                    )
                slot["done"].set()

    def _authenticate(self, socketio, slots: list[dict]) -> None:
        """Resolve the round's seat tokens (one query), then join each connection to its rooms."""
        if not slots:
            return
        from ..auth.service import actors_for_seat_tokens

        try:
            with db.reader() as s:
                found = actors_for_seat_tokens(s, [slot["token"] for slot in slots])
        except Exception as e:  # the database failing: every connection of the round gets it
            for slot in slots:
                slot["err"] = e
            return
        server = socketio.server
        for slot in slots:
            actor = found[slot["token"]]
            if isinstance(actor, AppError):
                slot["err"] = actor
                continue
            joined: list[str] = []
            try:
                for room in rooms_for(actor):
                    server.enter_room(slot["sid"], room, namespace="/")
                    joined.append(room)
            except (KeyError, ValueError):
                # The client went away while it waited for its round: python-socketio has already
                # dropped its sid. Refuse this one only (the others of the round go on).
                for room in joined:
                    server.leave_room(slot["sid"], room, namespace="/")
                slot["err"] = AppError("the connection was closed", code="gone", status=410)
                continue
            slot["actor"] = actor
            self.authenticated += 1

    def _build(self, batch: list[dict]) -> None:
        from ..meetings.models import Meeting

        by_meeting: dict[int, list[dict]] = {}
        for slot in batch:
            by_meeting.setdefault(slot["actor"].meeting_id, []).append(slot)
        if not by_meeting:
            return
        try:
            with db.reader() as s:
                state.share_reads(s)
                for mid, slots in by_meeting.items():
                    meeting = s.get(Meeting, mid)
                    if meeting is None:
                        for slot in slots:
                            slot["err"] = NotFound("no such meeting")
                        continue
                    memo: dict = {}
                    state.prefetch(s, [slot["actor"] for slot in slots], memo)
                    for slot in slots:
                        try:
                            slot["snap"] = state.build(s, meeting, slot["actor"], memo)
                            self.built += 1
                        except AppError as e:
                            slot["err"] = e
        except Exception as e:  # AppError, or the database failing: every connection still waiting gets it
            for slot in batch:
                if slot["snap"] is None:
                    slot["err"] = slot["err"] or e


#: The snapshot batcher of this process.
snapshots = SnapshotBatcher()
#: Times `freeze_seated_room` froze the heap (this process).
freezes = 0


def freeze_seated_room() -> bool:
    """A hall has just connected: move what it allocated out of the collector's sight, now.

    `serve --gc tuned` (meeting_server/cli.py) freezes the heap at start-up and again when the
    number of connections has held still for a 10 s check, after a `gc.collect(1)`: with its raised
    thresholds the young generations then hold up to a million objects, and that collection, landing
    in the first flips after the hall sat down, stalled the room for about a third of a second
    (py-spy, 1,000 tablets). Freezing when the connect storm ends (no collection: `gc.freeze()` only
    moves lists) leaves that later check almost nothing to walk. Only when the collector is tuned
    (thresholds raised); `serve --gc default` keeps CPython's behaviour.
    """
    import gc

    global freezes
    if gc.get_threshold()[0] <= 700:
        return False
    gc.freeze()
    freezes += 1
    return True


def _still_there(socketio, sid: str) -> bool:
    server = socketio.server
    eio_sid = server.manager.eio_sid_from_sid(sid, "/")
    return eio_sid is not None and eio_sid in server.environ


def on_disconnect(*_args):
    sid = request.sid
    actor = connections.pop(sid, None)
    fast.forget(sid)
    status = presence.current.disconnect(sid)
    if actor is not None and status is not None:
        from ..extensions import socketio

        socketio.emit("seat.status", status, to=rooms.staff(actor.meeting_id))


def kick_seat(attendee_id: int, session_id: int | None = None) -> int:
    """Disconnect this process's sockets of a seat whose sessions were revoked; returns how many.

    Sockets on other processes get `session.revoked` and are refused at their next write (the
    pipeline re-reads the session); a tablet that gets `session.revoked` disconnects itself.
    """
    from ..extensions import socketio

    sids = presence.current.sids_of(attendee_id, session_id)
    for sid in sids:
        try:
            socketio.server.disconnect(sid)
        except Exception:  # already gone
            log.debug("could not disconnect %s", sid, exc_info=True)
    return len(sids)


def kick_session(attendee_id: int, session_id: int) -> int:
    return kick_seat(attendee_id, session_id)


def init_socket(socketio) -> None:
    socketio.on_event("connect", on_connect)
    socketio.on_event("disconnect", on_disconnect)
    fast.register(socketio)


def init_app(app) -> None:
    presence.configure(app.config["SETTINGS"].redis_url)
    state.contributors["seats"] = _seats_part


def _seats_part(s, meeting, actor, attendee) -> dict:
    if not is_staff(actor):
        return {}
    return {"seats": state.seats(s, meeting)}


# -- snapshot commands -----------------------------------------------------
@commands.command("state.get", roles={ORGANIZER, *SEATS}, write=False, socket=True, schema=schemas.Empty)
def get_state(ctx: Ctx, p) -> dict:
    """The full snapshot again (same as `state` on connect), as the ack."""
    return {"state": state.build(ctx.s, ctx.meeting, ctx.actor)}


@commands.command("seats.status", roles=ROOM_STAFF, write=False, socket=True, schema=schemas.Empty)
def seats_status(ctx: Ctx, p) -> dict:
    """Every seat: online, devices, following, page, battery, last seen, checked in (the console's grid)."""
    return {"seats": state.seats(ctx.s, ctx.meeting)}


# -- presenting --------------------------------------------------------------
def _bump(ctx: Ctx, event: str) -> dict:
    m = ctx.meeting
    m.page_seq = (m.page_seq or 0) + 1
    msg = state.current(m)
    from ..documents.service import page_event_targets

    # A confidential document's id and page reach only its audience; other seats get them null.
    for to, data in page_event_targets(ctx.s, m.id, m.current_document_id, msg):
        ctx.emit(event, data, to=to)
    return msg


@commands.command("present", roles=PRESENTERS, schema=schemas.Present, socket=True)
def present(ctx: Ctx, p: schemas.Present) -> dict:
    """Show a document page to the room; every client gets `page` with a growing `seq`."""
    from ..documents.models import Document
    from ..documents.service import visible_to_actor

    m = ctx.meeting
    d = ctx.s.get(Document, p.document_id)
    if d is None or d.meeting_id != m.id or not visible_to_actor(ctx.s, d, ctx.actor):
        raise NotFound("no such document")
    if d.page_count and p.page > d.page_count:
        raise NotFound(f"the document has {d.page_count} pages", code="no_such_page")
    m.current_document_id = d.id
    m.current_page = p.page
    m.current_view = p.view.model_dump() if p.view else None
    msg = _bump(ctx, "page")
    if m.id in fast.ink_dirty:
        # Tablets clear ink on every `page` anyway; this tells anything that only listens for `ink.clear`.
        fast.ink_dirty.discard(m.id)
        ctx.emit("ink.clear", {"reason": "page", "seq": msg["seq"]}, to=rooms.meeting(m.id))
    return {"seq": msg["seq"]}


@commands.command("view", roles=PRESENTERS, schema=schemas.SetView, socket=True)
def set_view(ctx: Ctx, p: schemas.SetView) -> dict:
    """Set the presenter's zoom and scroll on the current page; followers match it."""
    m = ctx.meeting
    if m.current_document_id is None:
        raise NotFound("nothing is being presented", code="nothing_presented")
    m.current_view = p.model_dump()
    ctx.skip_audit = True  # a scroll is not a record; the page itself is audited
    return {"seq": _bump(ctx, "view")["seq"]}


@commands.command(
    "agenda.activate",
    roles=PRESENTERS,
    schema=schemas.Activate,
    resource="meeting",
    socket=True,
    http=("POST", "/meetings/<int:meeting_id>/agenda/activate"),
)
def activate(ctx: Ctx, p: schemas.Activate) -> dict:
    """Make an agenda item the current one (null: none); everyone gets `agenda.current`."""
    if p.item_id is not None:
        from ..agenda.service import get_item

        get_item(ctx.s, ctx.meeting.id, p.item_id)
    ctx.meeting.current_agenda_item_id = p.item_id
    return _bump(ctx, "agenda.current")


@commands.command("follow.lock", roles=PRESENTERS, schema=schemas.FollowLock, socket=True)
def follow_lock(ctx: Ctx, p: schemas.FollowLock) -> dict:
    """Force every tablet to follow the presenter (`locked: true`), or let them browse freely."""
    ctx.meeting.follow_lock = p.locked
    return {"seq": _bump(ctx, "follow.lock")["seq"]}


# -- the fast path: ephemeral, never stored (see fast.py) ----------------------
def _by(actor) -> str:
    return f"seat:{actor.id}" if actor.is_seat else f"user:{actor.id}"


@commands.command("pointer", roles=PRESENTERS, schema=schemas.Pointer, write=False, socket=True)
def pointer(ctx, p: schemas.Pointer) -> dict:
    """The presenter's laser pointer, in page fractions; ephemeral, rate-limited."""
    by = _by(ctx.actor)
    msg = {**p.model_dump(), "by": by, "n": fast.next_n(by)}
    ctx.emit("pointer", msg, to=rooms.meeting(ctx.actor.meeting_id), skip_sid=ctx.sid)
    return {}


@commands.command("ink", roles=PRESENTERS, schema=schemas.Ink, write=False, socket=True)
def ink(ctx, p: schemas.Ink) -> dict:
    """A piece of a temporary stroke; ephemeral, rate-limited, cleared on every page change."""
    by = _by(ctx.actor)
    fast.ink_dirty.add(ctx.actor.meeting_id)
    msg = {**p.model_dump(), "by": by, "n": fast.next_n(by)}
    ctx.emit("ink", msg, to=rooms.meeting(ctx.actor.meeting_id), skip_sid=ctx.sid)
    return {}


@commands.command("ink.clear", roles=PRESENTERS, schema=schemas.InkClear, write=False, socket=True)
def ink_clear(ctx, p: schemas.InkClear) -> dict:
    """Clear the sender's temporary drawing (one stroke or all)."""
    msg = {"reason": "presenter", "by": _by(ctx.actor), "stroke_id": p.stroke_id}
    ctx.emit("ink.clear", msg, to=rooms.meeting(ctx.actor.meeting_id), skip_sid=ctx.sid)
    return {}


@commands.command("seat.status", roles=SEATS, schema=schemas.SeatStatus, write=False, socket=True)
def seat_status(ctx, p: schemas.SeatStatus) -> dict:
    """A tablet reports whether it follows and what it shows; the staff see it when it changes."""
    status = presence.current.report(ctx.sid, p.model_dump())
    if status is not None:
        ctx.emit("seat.status", status, to=rooms.staff(ctx.actor.meeting_id))
    return {}
