"""Routes and events of the meetings domain."""

from __future__ import annotations

from ..core import rooms
from ..core.commands import ANY_USER, ORGANIZER, CommandSet, Ctx
from ..core.db import utcnow
from ..core.errors import Conflict
from . import schemas, service

commands = CommandSet("meetings")
commands.event(
    "meeting",
    "The meeting's summary changed (title, status draft/live/ended, …); to everyone in the meeting.",
)


@commands.command(
    "meetings.create", roles={ANY_USER}, schema=schemas.MeetingCreate, http=("POST", "/meetings"), status=201
)
def create(ctx: Ctx, p: schemas.MeetingCreate) -> dict:
    """Create a meeting in preparation (draft)."""
    fields = p.model_dump(exclude_none=True)
    if p.quorum is not None:
        fields["quorum"] = p.quorum.model_dump()
    m = service.create_meeting(ctx.s, ctx.actor.id, **fields)
    from ..core import audit

    audit.append(ctx.s, m, ctx.actor, "meetings.create", p.model_dump(mode="json"))
    return service.meeting_detail(ctx.s, m)


@commands.command("meetings.list", roles={ANY_USER}, write=False, http=("GET", "/meetings"))
def list_(ctx: Ctx, p) -> dict:
    """The meetings this account may manage (all of them for an admin)."""
    return {
        "meetings": [
            service.meeting_summary(m)
            for m in service.visible_meetings(ctx.s, ctx.actor.id, ctx.actor.is_admin)
        ]
    }


@commands.command(
    "meetings.get",
    roles={ORGANIZER},
    resource="meeting",
    write=False,
    http=("GET", "/meetings/<int:meeting_id>"),
)
def get(ctx: Ctx, p) -> dict:
    """The meeting with its status, agenda, attendees, documents and polls."""
    return service.meeting_detail(ctx.s, ctx.meeting)


@commands.command(
    "meetings.update",
    roles={ORGANIZER},
    schema=schemas.MeetingUpdate,
    resource="meeting",
    http=("PATCH", "/meetings/<int:meeting_id>"),
)
def update(ctx: Ctx, p: schemas.MeetingUpdate) -> dict:
    """Edit a meeting's title, time, place, language, quorum or device rule."""
    changes = p.model_dump(exclude_unset=True)
    if "quorum" in changes and p.quorum is not None:
        changes["quorum"] = p.quorum.model_dump()
    service.update_meeting(ctx.meeting, changes)
    ctx.emit("meeting", service.meeting_summary(ctx.meeting), to=rooms.meeting(ctx.meeting.id))
    return service.meeting_detail(ctx.s, ctx.meeting)


@commands.command(
    "meetings.delete", roles={ORGANIZER}, resource="meeting", http=("DELETE", "/meetings/<int:meeting_id>")
)
def delete(ctx: Ctx, p) -> dict:
    """Delete a meeting in preparation (a held meeting is kept for its record)."""
    if ctx.meeting.status != "draft":
        raise Conflict("a meeting that has started is kept for its record", code="meeting_started")
    ctx.meeting.deleted_at = utcnow()
    return {"ok": True}


@commands.command(
    "meetings.start",
    roles={ORGANIZER, "chair"},
    resource="meeting",
    http=("POST", "/meetings/<int:meeting_id>/start"),
    socket=True,
    schema=schemas.Empty,
)
def start(ctx: Ctx, p) -> dict:
    """Start the meeting (draft -> live)."""
    service.start_meeting(ctx.meeting)
    ctx.emit("meeting", service.meeting_summary(ctx.meeting), to=rooms.meeting(ctx.meeting.id))
    return service.meeting_summary(ctx.meeting)


@commands.command(
    "meetings.end",
    roles={ORGANIZER, "chair"},
    resource="meeting",
    http=("POST", "/meetings/<int:meeting_id>/end"),
    socket=True,
    schema=schemas.Empty,
)
def end(ctx: Ctx, p) -> dict:
    """End the meeting: no more writes; confidential materials are withdrawn from tablets."""
    service.end_meeting(ctx.meeting)
    from ..live import hooks
    from ..voting.commands import close_open_polls

    close_open_polls(ctx)  # counted against the attendance of the moment the meeting ends

    hooks.on_meeting_end(ctx)
    ctx.emit("meeting", service.meeting_summary(ctx.meeting), to=rooms.meeting(ctx.meeting.id))
    return service.meeting_summary(ctx.meeting)
