"""The `state` snapshot a client gets on connect: enough to draw the whole screen."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..core.db import iso, utcnow
from ..core.identity import Actor

#: Other domains add parts of the snapshot, by name: fn(session, meeting, actor, attendee) -> dict.
contributors: dict[str, Callable[..., dict[str, Any]]] = {}


def attendance(s: Session, meeting: Any) -> dict[str, Any]:
    from ..roster.models import Attendee

    base = select(func.count()).select_from(Attendee).where(
        Attendee.meeting_id == meeting.id, Attendee.deleted.is_(False), Attendee.role != "observer")
    expected = s.scalar(base) or 0
    present = s.scalar(base.where(Attendee.present.is_(True))) or 0
    out: dict[str, Any] = {"present": present, "expected": expected}
    q = meeting.quorum
    if q:
        need = int(q["value"]) if q["kind"] == "count" else _ceil_fraction(q["value"], expected)
        out["quorum"] = {"rule": q, "required": need, "reached": present >= need}
    return out


def _ceil_fraction(fraction: float, expected: int) -> int:
    import math

    return max(1, math.ceil(fraction * expected - 1e-9))


def current(meeting: Any) -> dict[str, Any]:
    return {
        "document_id": meeting.current_document_id,
        "page": meeting.current_page,
        "seq": meeting.page_seq,
        "agenda_item_id": meeting.current_agenda_item_id,
        "view": meeting.current_view,
        "follow_lock": meeting.follow_lock,
    }


def build(s: Session, meeting: Any, actor: Actor) -> dict[str, Any]:
    from ..agenda.service import agenda_json
    from ..documents.service import document_json, list_documents, visible_to
    from ..roster.models import Attendee
    from ..voting.service import open_poll_json

    attendee = s.get(Attendee, actor.id) if actor.is_seat else None
    docs = [d for d in list_documents(s, meeting.id) if visible_to(d, attendee)]
    visible = {d.id for d in docs}
    cur = current(meeting)
    if cur["document_id"] is not None and cur["document_id"] not in visible:
        cur = {**cur, "document_id": None, "page": None}
    if attendee is not None:
        me = {"attendee_id": attendee.id, "name": attendee.name, "seat": attendee.seat, "role": attendee.role,
              "checked_in": attendee.present, "checked_in_at": iso(attendee.checked_in_at)}
    else:
        me = {"attendee_id": None, "user_id": actor.id, "name": actor.name, "role": "organizer", "checked_in": False}
    out = {
        "meeting": {"id": meeting.id, "title": meeting.title, "status": meeting.status, "location": meeting.location,
                    "starts_at": iso(meeting.starts_at), "language": meeting.language},
        "current": cur,
        "poll": open_poll_json(s, meeting.id, attendee=attendee, actor=actor),
        "attendance": attendance(s, meeting),
        "me": me,
        "agenda": agenda_json(s, meeting.id, visible_docs=visible),
        "documents": [document_json(d) for d in docs],
        "server_time": iso(utcnow()),
    }
    for fn in contributors.values():
        out.update(fn(s, meeting, actor, attendee))
    return out
