"""Meetings: create, edit, the draft -> live -> ended life cycle."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..core.db import iso, utcnow
from ..core.errors import Conflict
from .models import Meeting


def meeting_summary(m: Meeting) -> dict[str, Any]:
    return {
        "id": m.id,
        "title": m.title,
        "description": m.description,
        "location": m.location,
        "starts_at": iso(m.starts_at),
        "status": m.status,
        "language": m.language,
        "quorum": m.quorum,
        "single_device": m.single_device,
        "owner_id": m.owner_id,
        "created_at": iso(m.created_at),
        "started_at": iso(m.started_at),
        "ended_at": iso(m.ended_at),
    }


def meeting_detail(s: Session, m: Meeting, *, for_staff: bool = True) -> dict[str, Any]:
    from ..agenda.service import agenda_json
    from ..documents.service import document_json, list_documents
    from ..roster.service import attendee_json, list_attendees
    from ..voting.service import list_polls, poll_json

    out = meeting_summary(m)
    out["agenda"] = agenda_json(s, m.id)
    out["attendees"] = [attendee_json(a, with_token=for_staff) for a in list_attendees(s, m.id)]
    out["documents"] = [document_json(d) for d in list_documents(s, m.id)]
    out["polls"] = [poll_json(p, s=s, reveal=for_staff) for p in list_polls(s, m.id)]
    return out


def create_meeting(s: Session, owner_id: int, **fields: Any) -> Meeting:
    m = Meeting(owner_id=owner_id, **fields)
    s.add(m)
    s.flush()
    return m


def update_meeting(m: Meeting, changes: dict[str, Any]) -> None:
    for key, value in changes.items():
        setattr(m, key, value)


def start_meeting(m: Meeting) -> None:
    if m.status == "live":
        return
    if m.status != "draft":
        raise Conflict("only a meeting in preparation can be started", code="meeting_ended")
    m.status = "live"
    m.started_at = utcnow()


def end_meeting(m: Meeting) -> None:
    if m.status in ("ended", "archived"):
        raise Conflict("the meeting has ended already", code="meeting_ended")
    m.status = "ended"
    m.ended_at = utcnow()
    if m.started_at is None:
        m.started_at = m.ended_at


def visible_meetings(s: Session, user_id: int, is_admin: bool) -> list[Meeting]:
    q = select(Meeting).where(Meeting.deleted_at.is_(None)).order_by(Meeting.id.desc())
    if not is_admin:
        q = q.where(Meeting.owner_id == user_id)
    return list(s.scalars(q))
