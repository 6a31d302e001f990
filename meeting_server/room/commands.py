"""Room services: requests to speak and the speech timer, service calls, announcements, nameplates."""

from __future__ import annotations

import datetime as dt

from ..core import rooms
from ..core.commands import CHAIRS, ORGANIZER, SEATS, CommandSet, Ctx
from ..core.db import utcnow
from ..core.errors import Conflict
from ..live.state import contributors
from ..roster.models import Attendee
from ..roster.service import must_attendee
from . import schemas, service
from .models import Announcement

commands = CommandSet("room")
commands.event(
    "speakers",
    'The speaker queue changed: `{"seq", "queue": [...], "current": speaker_or_null, "server_time"}`; to everyone.',
)
commands.event(
    "service.call",
    "A service call was made, closed or cancelled; to the organizers, the secretaries and that seat.",
)
commands.event("announcement", "A message from the staff; to the room, or to one seat (and the staff).")
commands.event(
    "announcement.cleared", '`{"id", "attendee_id"}`: stop showing an announcement; same audience.'
)
commands.event(
    "nameplate", '`{"on", "attendee_id", "seq"}`: show (or stop showing) the seat\'s name full screen.'
)

#: Who sends announcements and switches nameplates.
ANNOUNCERS = frozenset({ORGANIZER, "chair", "secretary"})
#: Who sees and closes service calls.
SERVICE_STAFF = frozenset({ORGANIZER, "secretary"})


def init_app(app) -> None:
    contributors["room"] = _state_part


def _state_part(s, meeting, actor, attendee) -> dict:
    aid = attendee.id if attendee is not None else None
    service_staff = actor.is_user or actor.role == "secretary"
    staff = actor.is_user or actor.role in ("chair", "presenter", "secretary")
    return {
        "speakers": service.speakers(s, meeting.id),
        "service_calls": service.calls(s, meeting.id, attendee_id=None if service_staff else aid),
        "announcement": service.last_announcement(s, meeting.id, aid),
        "nameplate": service.nameplate_state(s, meeting.id, aid, staff),
    }


def _speakers_changed(ctx: Ctx) -> dict:
    msg = service.bump_speakers(ctx.s, ctx.meeting.id)
    ctx.emit("speakers", msg, to=rooms.meeting(ctx.meeting.id))
    return msg


# -- speakers -----------------------------------------------------------------
@commands.command("speaker.request", roles=SEATS, schema=schemas.SpeakerRequest, socket=True)
def speaker_request(ctx: Ctx, p: schemas.SpeakerRequest) -> dict:
    """Ask to speak; idempotent while the request is open. Everyone gets `speakers`."""
    r, created = service.request_to_speak(ctx.s, ctx.meeting, ctx.actor.id, p.note)
    if created:
        _speakers_changed(ctx)
    else:
        ctx.skip_audit = True
    return {"request_id": r.id, "status": r.status}


@commands.command("speaker.withdraw", roles=SEATS, schema=schemas.Empty, socket=True)
def speaker_withdraw(ctx: Ctx, p) -> dict:
    """Withdraw this seat's request (or finish its own speech early)."""
    r = service.open_request_of(ctx.s, ctx.meeting.id, ctx.actor.id)
    if r is None:
        ctx.skip_audit = True
        return {"request_id": None}
    if r.status == "speaking":
        service.end_speech(r)
    else:
        r.status = "withdrawn"
        r.ended_at = utcnow()
    _speakers_changed(ctx)
    return {"request_id": r.id, "status": r.status}


@commands.command("speaker.add", roles=CHAIRS, schema=schemas.SpeakerAdd, socket=True)
def speaker_add(ctx: Ctx, p: schemas.SpeakerAdd) -> dict:
    """Put an attendee on the list of speakers (the chair's own call)."""
    must_attendee(ctx.s, ctx.meeting.id, p.attendee_id)
    r, created = service.request_to_speak(ctx.s, ctx.meeting, p.attendee_id, p.note, added_by="chair")
    if created:
        _speakers_changed(ctx)
    else:
        ctx.skip_audit = True
    return {"request_id": r.id, "status": r.status}


@commands.command("speaker.order", roles=CHAIRS, schema=schemas.SpeakerOrder, socket=True)
def speaker_order(ctx: Ctx, p: schemas.SpeakerOrder) -> dict:
    """Put the waiting requests in a new order (every waiting id, once)."""
    service.reorder(ctx.s, ctx.meeting.id, p.order)
    return {"seq": _speakers_changed(ctx)["seq"]}


@commands.command("speaker.grant", roles=CHAIRS, schema=schemas.SpeakerGrant, socket=True)
def speaker_grant(ctx: Ctx, p: schemas.SpeakerGrant) -> dict:
    """Give the floor (to a request, or the first in the queue) for `duration_seconds`; ends any current speech."""
    r = service.grant(ctx.s, ctx.meeting.id, p.request_id, p.duration_seconds)
    msg = _speakers_changed(ctx)
    return {"request_id": r.id, "ends_at": msg["current"]["ends_at"], "seq": msg["seq"]}


@commands.command("speaker.end", roles=CHAIRS, schema=schemas.Empty, socket=True)
def speaker_end(ctx: Ctx, p) -> dict:
    """End the current speech."""
    r = service.current_speaker(ctx.s, ctx.meeting.id)
    if r is None:
        raise Conflict("nobody is speaking", code="no_speaker")
    service.end_speech(r)
    return {"request_id": r.id, "seq": _speakers_changed(ctx)["seq"]}


@commands.command("speaker.extend", roles=CHAIRS, schema=schemas.SpeakerExtend, socket=True)
def speaker_extend(ctx: Ctx, p: schemas.SpeakerExtend) -> dict:
    """Give the current speaker more (or less) time; the timer's end moves, nobody counts down on the server."""
    r = service.current_speaker(ctx.s, ctx.meeting.id)
    if r is None:
        raise Conflict("nobody is speaking", code="no_speaker")
    base = r.ends_at or utcnow()
    r.ends_at = max(utcnow(), base + dt.timedelta(seconds=p.seconds))
    msg = _speakers_changed(ctx)
    return {"request_id": r.id, "ends_at": msg["current"]["ends_at"], "seq": msg["seq"]}


@commands.command("speaker.remove", roles=CHAIRS, schema=schemas.SpeakerRef, socket=True)
def speaker_remove(ctx: Ctx, p: schemas.SpeakerRef) -> dict:
    """Take a waiting request off the list."""
    r = service.get_request(ctx.s, ctx.meeting.id, p.request_id)
    if r.status != "waiting":
        raise Conflict(f"this request is {r.status}, not waiting", code="not_waiting")
    r.status = "removed"
    r.ended_at = utcnow()
    return {"request_id": r.id, "seq": _speakers_changed(ctx)["seq"]}


# -- service calls --------------------------------------------------------------
def _call_rooms(ctx: Ctx, attendee_id: int) -> list[str]:
    mid = ctx.meeting.id
    return [rooms.organizers(mid), rooms.role(mid, "secretary"), rooms.seat(attendee_id)]


@commands.command("service.call", roles=SEATS, schema=schemas.ServiceCall, socket=True)
def service_call(ctx: Ctx, p: schemas.ServiceCall) -> dict:
    """Call for water, tea, paper, a pen, a technician or other help; the secretaries see the seat number."""
    a = ctx.s.get(Attendee, ctx.actor.id)
    c, created = service.open_call(ctx.s, ctx.meeting.id, a, p.kind, p.note)
    msg = service.call_json(c, a)
    if created:
        ctx.emit("service.call", msg, to=_call_rooms(ctx, a.id))
    else:
        ctx.skip_audit = True
    return {"call": msg}


def _finish_call(ctx: Ctx, call_id: int, status: str) -> dict:
    c = service.get_call(ctx.s, ctx.meeting.id, call_id)
    if c.status != "open":
        raise Conflict(f"this call is {c.status} already", code="call_not_open")
    c.status = status
    c.closed_at = utcnow()
    c.closed_by = ctx.actor.name
    msg = service.call_json(c, ctx.s.get(Attendee, c.attendee_id))
    ctx.emit("service.call", msg, to=_call_rooms(ctx, c.attendee_id))
    return {"call": msg}


@commands.command("service.close", roles=SERVICE_STAFF, schema=schemas.ServiceRef, socket=True)
def service_close(ctx: Ctx, p: schemas.ServiceRef) -> dict:
    """Mark a service call as done."""
    return _finish_call(ctx, p.call_id, "closed")


@commands.command("service.cancel", roles=SEATS, schema=schemas.ServiceRef, socket=True)
def service_cancel(ctx: Ctx, p: schemas.ServiceRef) -> dict:
    """The calling seat no longer needs it."""
    c = service.get_call(ctx.s, ctx.meeting.id, p.call_id)
    if c.attendee_id != ctx.actor.id:
        from ..core.errors import NotFound

        raise NotFound("no such service call")
    return _finish_call(ctx, p.call_id, "cancelled")


@commands.command(
    "service.list",
    roles=SERVICE_STAFF,
    schema=schemas.ServiceList,
    resource="meeting",
    write=False,
    socket=True,
    http=("GET", "/meetings/<int:meeting_id>/service-calls"),
)
def service_list(ctx: Ctx, p: schemas.ServiceList) -> dict:
    """The meeting's service calls (`status=open`, the default, or `all`)."""
    return {"calls": service.calls(ctx.s, ctx.meeting.id, only_open=p.status == "open")}


# -- announcements and nameplates ---------------------------------------------------
def _audience(ctx: Ctx, attendee_id: int | None) -> str | list[str]:
    mid = ctx.meeting.id
    if attendee_id is None:
        return rooms.meeting(mid)
    return [rooms.seat(attendee_id), rooms.staff(mid)]


@commands.command("announce", roles=ANNOUNCERS, schema=schemas.Announce, socket=True)
def announce(ctx: Ctx, p: schemas.Announce) -> dict:
    """Send a message to the whole room or to one seat; a reconnecting tablet gets the last one in `state`."""
    if p.attendee_id is not None:
        must_attendee(ctx.s, ctx.meeting.id, p.attendee_id)
    x = Announcement(
        meeting_id=ctx.meeting.id,
        attendee_id=p.attendee_id,
        text=p.text,
        level=p.level,
        by=ctx.actor.name,
        created_at=utcnow(),
    )
    ctx.s.add(x)
    ctx.s.flush()
    msg = service.announcement_json(x)
    ctx.emit("announcement", msg, to=_audience(ctx, p.attendee_id))
    return {"announcement": msg}


@commands.command("announce.clear", roles=ANNOUNCERS, schema=schemas.AnnouncementRef, socket=True)
def announce_clear(ctx: Ctx, p: schemas.AnnouncementRef) -> dict:
    """Stop showing an announcement."""
    x = service.get_announcement(ctx.s, ctx.meeting.id, p.announcement_id)
    if x.cleared_at is None:
        x.cleared_at = utcnow()
        ctx.emit(
            "announcement.cleared",
            {"id": x.id, "attendee_id": x.attendee_id},
            to=_audience(ctx, x.attendee_id),
        )
    else:
        ctx.skip_audit = True
    return {"id": x.id}


@commands.command("nameplate", roles=ANNOUNCERS, schema=schemas.Nameplate, socket=True)
def nameplate(ctx: Ctx, p: schemas.Nameplate) -> dict:
    """Nameplate mode on or off, for every seat or one: the tablet shows its name full screen."""
    if p.attendee_id is not None:
        must_attendee(ctx.s, ctx.meeting.id, p.attendee_id)
    rs = service.set_nameplate(ctx.s, ctx.meeting.id, p.on, p.attendee_id)
    msg = {"on": p.on, "attendee_id": p.attendee_id, "seq": rs.nameplate_seq}
    ctx.emit("nameplate", msg, to=_audience(ctx, p.attendee_id))
    return {"seq": rs.nameplate_seq}
