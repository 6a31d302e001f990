"""Routes of polls: creation and reading (voting itself: ballots)."""

from __future__ import annotations

from ..core.commands import EVERYONE_IN_MEETING, ORGANIZER, CommandSet, Ctx
from ..core.errors import Conflict
from . import schemas, service
from .models import Poll

commands = CommandSet("voting")


@commands.loader("poll", "poll_id")
def _load(s, poll_id: int):
    return s.get(Poll, poll_id)


def _reveal(ctx: Ctx) -> bool:
    return ctx.actor.is_user or (ctx.actor.is_seat and ctx.actor.role == "chair")


@commands.command(
    "polls.create",
    roles={ORGANIZER},
    schema=schemas.PollCreate,
    resource="meeting",
    http=("POST", "/meetings/<int:meeting_id>/polls"),
    status=201,
)
def create(ctx: Ctx, p: schemas.PollCreate) -> dict:
    """Create a poll in draft: title, options, secret or named, how many choices."""
    if p.agenda_item_id is not None:
        from ..agenda.service import get_item

        get_item(ctx.s, ctx.meeting.id, p.agenda_item_id)
    poll = Poll(
        meeting_id=ctx.meeting.id,
        title=p.title,
        kind=p.kind,
        options=p.options,
        secret=p.secret,
        max_choices=p.max_choices or 1,
        min_choices=p.min_choices if p.min_choices is not None else 1,
        publish_on_close=p.publish_on_close,
        agenda_item_id=p.agenda_item_id,
        rule=p.rule,
    )
    ctx.s.add(poll)
    ctx.s.flush()
    return service.poll_json(poll, s=ctx.s, reveal=True)


@commands.command(
    "polls.list",
    roles=EVERYONE_IN_MEETING,
    resource="meeting",
    write=False,
    http=("GET", "/meetings/<int:meeting_id>/polls"),
)
def list_(ctx: Ctx, p) -> dict:
    """The meeting's polls (tallies as each client may see them)."""
    return {
        "polls": [
            service.poll_json(x, s=ctx.s, reveal=_reveal(ctx))
            for x in service.list_polls(ctx.s, ctx.meeting.id)
        ]
    }


@commands.command(
    "polls.get", roles=EVERYONE_IN_MEETING, resource="poll", write=False, http=("GET", "/polls/<int:poll_id>")
)
def get(ctx: Ctx, p) -> dict:
    """A poll with `status`, `voted`, `eligible`, and once closed its `tally` (tablets: once published)."""
    return service.poll_json(ctx.obj, s=ctx.s, reveal=_reveal(ctx))


@commands.command(
    "polls.update",
    roles={ORGANIZER},
    schema=schemas.PollUpdate,
    resource="poll",
    http=("PATCH", "/polls/<int:poll_id>"),
)
def update(ctx: Ctx, p: schemas.PollUpdate) -> dict:
    """Edit a poll while it is a draft."""
    poll = ctx.obj
    if poll.status != "draft":
        raise Conflict("only a draft poll can be edited", code="poll_not_draft")
    changes = p.model_dump(exclude_unset=True)
    if "max_choices" in changes and changes["max_choices"] > len(changes.get("options", poll.options)):
        from ..core.errors import Invalid

        raise Invalid("max_choices is larger than the number of options")
    for k, v in changes.items():
        setattr(poll, k, v)
    return service.poll_json(poll, s=ctx.s, reveal=True)


@commands.command("polls.delete", roles={ORGANIZER}, resource="poll", http=("DELETE", "/polls/<int:poll_id>"))
def delete(ctx: Ctx, p) -> dict:
    """Delete a draft poll."""
    if ctx.obj.status != "draft":
        raise Conflict("only a draft poll can be deleted; close or cancel it instead", code="poll_not_draft")
    ctx.s.delete(ctx.obj)
    return {"ok": True}
