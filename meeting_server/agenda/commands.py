"""Routes of the agenda domain."""

from __future__ import annotations

from ..core import rooms
from ..core.commands import EVERYONE_IN_MEETING, ORGANIZER, CommandSet, Ctx
from ..core.errors import NotFound
from . import schemas, service
from .models import AgendaItem

commands = CommandSet("agenda")
commands.event("agenda", 'The agenda changed: `{"items": [...]}`; to everyone in the meeting.')


@commands.loader("agenda_item", "item_id")
def _load(s, item_id: int):
    return s.get(AgendaItem, item_id)


def _item(ctx: Ctx) -> AgendaItem:
    if ctx.obj.meeting_id != int(ctx.params["meeting_id"]):
        raise NotFound("no such agenda item")
    return ctx.obj


def _visible_docs(ctx: Ctx, attendee=None) -> set[int]:
    """Ids of the meeting's documents `attendee` may see."""
    from ..documents.service import list_documents, visible_to

    return {d.id for d in list_documents(ctx.s, ctx.meeting.id) if visible_to(d, attendee)}


def _changed(ctx: Ctx) -> None:
    """Everyone learns the new agenda; confidential documents are named only to organizers."""
    from ..documents.service import is_restricted, list_documents

    mid = ctx.meeting.id
    public = {d.id for d in list_documents(ctx.s, mid) if not is_restricted(d) and d.withdrawn_at is None}
    ctx.emit("agenda", {"items": service.agenda_json(ctx.s, mid, visible_docs=public)}, to=rooms.meeting(mid))
    ctx.emit("agenda", {"items": service.agenda_json(ctx.s, mid)}, to=rooms.organizers(mid))


@commands.command(
    "agenda.create",
    roles={ORGANIZER},
    schema=schemas.ItemCreate,
    resource="meeting",
    http=("POST", "/meetings/<int:meeting_id>/agenda"),
    status=201,
)
def create(ctx: Ctx, p: schemas.ItemCreate) -> dict:
    """Add an agenda item (at the end, or at `position`)."""
    it = service.create_item(ctx.s, ctx.meeting.id, **p.model_dump())
    _changed(ctx)
    return service.item_json(it)


@commands.command(
    "agenda.list",
    roles=EVERYONE_IN_MEETING,
    resource="meeting",
    write=False,
    http=("GET", "/meetings/<int:meeting_id>/agenda"),
)
def list_(ctx: Ctx, p) -> dict:
    """The agenda in order, with the ids of the linked documents this client may see."""
    visible = None
    if ctx.actor.is_seat:
        from ..roster.models import Attendee

        visible = _visible_docs(ctx, ctx.s.get(Attendee, ctx.actor.id))
    return {"items": service.agenda_json(ctx.s, ctx.meeting.id, visible_docs=visible)}


@commands.command(
    "agenda.update",
    roles={ORGANIZER},
    schema=schemas.ItemUpdate,
    resource="agenda_item",
    http=("PATCH", "/meetings/<int:meeting_id>/agenda/<int:item_id>"),
)
def update(ctx: Ctx, p: schemas.ItemUpdate) -> dict:
    """Edit an agenda item's title, description, duration or presenter."""
    it = _item(ctx)
    service.update_item(ctx.s, it, p.model_dump(exclude_unset=True))
    _changed(ctx)
    return service.item_json(it)


@commands.command(
    "agenda.delete",
    roles={ORGANIZER},
    resource="agenda_item",
    http=("DELETE", "/meetings/<int:meeting_id>/agenda/<int:item_id>"),
)
def delete(ctx: Ctx, p) -> dict:
    """Delete an agenda item; its documents stay in the meeting, unlinked."""
    service.delete_item(ctx.s, _item(ctx))
    _changed(ctx)
    return {"ok": True}


@commands.command(
    "agenda.reorder",
    roles={ORGANIZER},
    schema=schemas.Reorder,
    resource="meeting",
    http=("POST", "/meetings/<int:meeting_id>/agenda/reorder"),
)
def reorder(ctx: Ctx, p: schemas.Reorder) -> dict:
    """Put the agenda items in a new order (every id, once)."""
    service.reorder(ctx.s, ctx.meeting.id, p.order)
    _changed(ctx)
    return {"items": service.agenda_json(ctx.s, ctx.meeting.id)}
