"""The live room: connect, state, presenting, check-in."""

from __future__ import annotations

import logging

from flask import request
from flask_socketio import join_room

from ..core import db, rooms
from ..core.commands import PRESENTERS, SEATS, CommandSet, Ctx
from ..core.db import iso, utcnow
from ..core.errors import AppError, NotFound
from ..core.sockets import authenticate, connections, refuse
from . import schemas, state

log = logging.getLogger(__name__)
commands = CommandSet("live")
commands.event("state", "The full snapshot, to one client on connect.")
commands.event(
    "page",
    'The presenter changed the page: `{"document_id", "page", "seq", "view"?}`; to everyone in the meeting.',
)
commands.event(
    "attendance",
    'Attendance counts changed: `{"present", "expected", "quorum"?}`; to everyone in the meeting.',
)
commands.event(
    "seat.checkin", 'A seat checked in or out: `{"attendee_id", "checked_in", "at"}`; to the room staff.'
)

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


def on_connect(auth=None):
    try:
        actor = authenticate(auth)
        from ..meetings.models import Meeting

        with db.reader() as s:
            meeting = s.get(Meeting, actor.meeting_id)
            snapshot = state.build(s, meeting, actor)
    except AppError as e:
        raise refuse(e) from None
    connections[request.sid] = actor
    for room in rooms_for(actor):
        join_room(room)
    from ..extensions import socketio

    socketio.emit("state", snapshot, to=request.sid)
    return True


def on_disconnect(*_args):
    connections.pop(request.sid, None)


def init_socket(socketio) -> None:
    socketio.on_event("connect", on_connect)
    socketio.on_event("disconnect", on_disconnect)


@commands.command("state.get", roles={"organizer", *SEATS}, write=False, socket=True, schema=schemas.Empty)
def get_state(ctx: Ctx, p) -> dict:
    """The full snapshot again (same as `state` on connect), as the ack."""
    return {"state": state.build(ctx.s, ctx.meeting, ctx.actor)}


@commands.command("present", roles=PRESENTERS, schema=schemas.Present, socket=True)
def present(ctx: Ctx, p: schemas.Present) -> dict:
    """Show a document page to the room; every client gets `page` with a growing `seq`."""
    from ..documents.models import Document

    m = ctx.meeting
    d = ctx.s.get(Document, p.document_id)
    if d is None or d.meeting_id != m.id:
        raise NotFound("no such document")
    if d.page_count and p.page > d.page_count:
        raise NotFound(f"the document has {d.page_count} pages", code="no_such_page")
    m.current_document_id = d.id
    m.current_page = p.page
    m.current_view = p.view.model_dump() if p.view else None
    m.page_seq = (m.page_seq or 0) + 1
    msg = {"document_id": d.id, "page": p.page, "seq": m.page_seq}
    if p.view:
        msg["view"] = m.current_view
    ctx.emit("page", msg, to=rooms.meeting(m.id))
    return {"seq": m.page_seq}


@commands.command("checkin", roles=SEATS, schema=schemas.Empty, socket=True)
def checkin(ctx: Ctx, p) -> dict:
    """Check this seat in; idempotent. Everyone gets the new `attendance`."""
    from ..roster.models import Attendee

    a = ctx.s.get(Attendee, ctx.actor.id)
    changed = not a.present
    if changed:
        a.present = True
        a.checked_in_at = a.checked_in_at or utcnow()
        a.checked_out_at = None
    else:
        ctx.skip_audit = True
    counts = state.attendance(ctx.s, ctx.meeting)
    if changed:
        ctx.emit("attendance", counts, to=rooms.meeting(ctx.meeting.id))
        ctx.emit(
            "seat.checkin",
            {"attendee_id": a.id, "checked_in": True, "at": iso(a.checked_in_at)},
            to=rooms.staff(ctx.meeting.id),
        )
    return {"checked_in_at": iso(a.checked_in_at)}
