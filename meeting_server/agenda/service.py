"""The agenda: ordered items with durations, presenters and linked documents."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..core.errors import Invalid, NotFound
from .models import AgendaItem


def items(s: Session, meeting_id: int) -> list[AgendaItem]:
    return list(s.scalars(select(AgendaItem).where(AgendaItem.meeting_id == meeting_id).order_by(AgendaItem.position)))


def item_json(it: AgendaItem, documents: list[int] | None = None) -> dict[str, Any]:
    return {
        "id": it.id,
        "position": it.position,
        "title": it.title,
        "description": it.description,
        "duration_minutes": it.duration_minutes,
        "presenter_id": it.presenter_id,
        "document_ids": documents or [],
    }


def agenda_json(s: Session, meeting_id: int, visible_docs: set[int] | None = None) -> list[dict[str, Any]]:
    from ..documents.models import Document

    docs: dict[int, list[int]] = {}
    q = select(Document.id, Document.agenda_item_id).where(Document.meeting_id == meeting_id).order_by(Document.position, Document.id)
    for doc_id, item_id in s.execute(q):
        if item_id is not None and (visible_docs is None or doc_id in visible_docs):
            docs.setdefault(item_id, []).append(doc_id)
    return [item_json(it, docs.get(it.id)) for it in items(s, meeting_id)]


def _check_presenter(s: Session, meeting_id: int, presenter_id: int | None) -> None:
    if presenter_id is None:
        return
    from ..roster.service import get_attendee

    a = get_attendee(s, presenter_id)
    if a is None or a.meeting_id != meeting_id:
        raise Invalid("presenter_id is not an attendee of this meeting", fields=[{"field": "presenter_id", "problem": "unknown"}])


def create_item(s: Session, meeting_id: int, **fields: Any) -> AgendaItem:
    _check_presenter(s, meeting_id, fields.get("presenter_id"))
    current = items(s, meeting_id)
    pos = fields.pop("position", None) or len(current) + 1
    pos = min(pos, len(current) + 1)
    for it in current:
        if it.position >= pos:
            it.position += 1
    it = AgendaItem(meeting_id=meeting_id, position=pos, **fields)
    s.add(it)
    s.flush()
    return it


def update_item(s: Session, it: AgendaItem, changes: dict[str, Any]) -> None:
    if "presenter_id" in changes:
        _check_presenter(s, it.meeting_id, changes["presenter_id"])
    for k, v in changes.items():
        setattr(it, k, v)


def delete_item(s: Session, it: AgendaItem) -> None:
    meeting_id = it.meeting_id
    s.delete(it)
    s.flush()
    for i, other in enumerate(items(s, meeting_id), start=1):
        other.position = i


def reorder(s: Session, meeting_id: int, order: list[int]) -> list[AgendaItem]:
    current = {it.id: it for it in items(s, meeting_id)}
    if sorted(order) != sorted(current) or len(set(order)) != len(order):
        raise Invalid("order must list every agenda item id of the meeting exactly once", code="invalid")
    for i, item_id in enumerate(order, start=1):
        current[item_id].position = i
    return [current[i] for i in order]


def get_item(s: Session, meeting_id: int, item_id: int) -> AgendaItem:
    it = s.get(AgendaItem, item_id)
    if it is None or it.meeting_id != meeting_id:
        raise NotFound("no such agenda item")
    return it
