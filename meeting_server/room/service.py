"""Room services: the speaker queue and timer, service calls, announcements, nameplate mode."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from ..core.db import iso, utcnow
from ..core.errors import Conflict, Invalid, NotFound
from ..live.models import RoomState, peek_room_state, room_state
from ..roster.models import Attendee
from .models import Announcement, ServiceCall, SpeakerRequest

OPEN_SPEAKER = ("waiting", "speaking")


# -- speakers ----------------------------------------------------------------
def speaker_json(r: SpeakerRequest, a: Attendee | None) -> dict[str, Any]:
    duration = None
    if r.started_at is not None and r.ends_at is not None:
        duration = int((r.ends_at - r.started_at).total_seconds())
    return {
        "id": r.id,
        "attendee_id": r.attendee_id,
        "name": a.name if a else "",
        "seat": a.seat if a else None,
        "status": r.status,
        "note": r.note,
        "added_by": r.added_by,
        "agenda_item_id": r.agenda_item_id,
        "requested_at": iso(r.requested_at),
        "started_at": iso(r.started_at),
        "ends_at": iso(r.ends_at),
        "duration_seconds": duration,
    }


def _open_requests(s: Session, meeting_id: int) -> list[SpeakerRequest]:
    q = (
        select(SpeakerRequest)
        .where(SpeakerRequest.meeting_id == meeting_id, SpeakerRequest.status.in_(OPEN_SPEAKER))
        .order_by(SpeakerRequest.position, SpeakerRequest.id)
    )
    return list(s.scalars(q))


def speakers(s: Session, meeting_id: int, seq: int | None = None) -> dict[str, Any]:
    """The `speakers` message: the queue in order, who speaks now (with the timer's end), server time."""
    reqs = _open_requests(s, meeting_id)
    people = (
        {a.id: a for a in s.scalars(select(Attendee).where(Attendee.id.in_({r.attendee_id for r in reqs})))}
        if reqs
        else {}
    )
    current = next((r for r in reqs if r.status == "speaking"), None)
    if seq is None:
        rs = peek_room_state(s, meeting_id)
        seq = rs.speakers_seq if rs else 0
    return {
        "seq": seq,
        "queue": [speaker_json(r, people.get(r.attendee_id)) for r in reqs if r.status == "waiting"],
        "current": speaker_json(current, people.get(current.attendee_id)) if current else None,
        "server_time": iso(utcnow()),
    }


def bump_speakers(s: Session, meeting_id: int) -> dict[str, Any]:
    rs = room_state(s, meeting_id)
    rs.speakers_seq += 1
    s.flush()
    return speakers(s, meeting_id, rs.speakers_seq)


def open_request_of(s: Session, meeting_id: int, attendee_id: int) -> SpeakerRequest | None:
    q = select(SpeakerRequest).where(
        SpeakerRequest.meeting_id == meeting_id,
        SpeakerRequest.attendee_id == attendee_id,
        SpeakerRequest.status.in_(OPEN_SPEAKER),
    )
    return s.scalars(q).first()


def request_to_speak(
    s: Session, meeting: Any, attendee_id: int, note: str, added_by: str = "self"
) -> tuple[SpeakerRequest, bool]:
    """Put a seat on the list; returns (request, created). One open request per seat."""
    existing = open_request_of(s, meeting.id, attendee_id)
    if existing is not None:
        return existing, False
    last = s.scalar(
        select(func.max(SpeakerRequest.position)).where(
            SpeakerRequest.meeting_id == meeting.id, SpeakerRequest.status == "waiting"
        )
    )
    r = SpeakerRequest(
        meeting_id=meeting.id,
        attendee_id=attendee_id,
        agenda_item_id=meeting.current_agenda_item_id,
        status="waiting",
        position=(last or 0) + 1,
        note=note,
        added_by=added_by,
        requested_at=utcnow(),
    )
    s.add(r)
    s.flush()
    return r, True


def get_request(s: Session, meeting_id: int, request_id: int) -> SpeakerRequest:
    r = s.get(SpeakerRequest, request_id)
    if r is None or r.meeting_id != meeting_id:
        raise NotFound("no such request to speak")
    return r


def current_speaker(s: Session, meeting_id: int) -> SpeakerRequest | None:
    q = select(SpeakerRequest).where(
        SpeakerRequest.meeting_id == meeting_id, SpeakerRequest.status == "speaking"
    )
    return s.scalars(q).first()


def end_speech(r: SpeakerRequest) -> None:
    r.status = "done"
    r.ended_at = utcnow()


def grant(s: Session, meeting_id: int, request_id: int | None, duration_seconds: int) -> SpeakerRequest:
    reqs = _open_requests(s, meeting_id)
    waiting = [r for r in reqs if r.status == "waiting"]
    if request_id is None:
        if not waiting:
            raise Conflict("nobody is waiting to speak", code="queue_empty")
        r = waiting[0]
    else:
        r = get_request(s, meeting_id, request_id)
        if r.status != "waiting":
            raise Conflict(f"this request is {r.status}, not waiting", code="not_waiting")
    for other in reqs:
        if other.status == "speaking":
            end_speech(other)
    now = utcnow()
    r.status = "speaking"
    r.started_at = now
    r.ends_at = now + dt.timedelta(seconds=duration_seconds) if duration_seconds else None
    s.flush()
    return r


def reorder(s: Session, meeting_id: int, order: list[int]) -> None:
    waiting = {r.id: r for r in _open_requests(s, meeting_id) if r.status == "waiting"}
    if sorted(order) != sorted(waiting) or len(set(order)) != len(order):
        raise Invalid("order must list every waiting request id exactly once", code="invalid")
    for i, rid in enumerate(order, start=1):
        waiting[rid].position = i


# -- service calls -----------------------------------------------------------
def call_json(c: ServiceCall, a: Attendee | None = None) -> dict[str, Any]:
    return {
        "id": c.id,
        "attendee_id": c.attendee_id,
        "name": a.name if a else None,
        "seat": c.seat,
        "kind": c.kind,
        "note": c.note,
        "status": c.status,
        "created_at": iso(c.created_at),
        "closed_at": iso(c.closed_at),
        "closed_by": c.closed_by,
    }


def calls(
    s: Session, meeting_id: int, *, attendee_id: int | None = None, only_open: bool = True
) -> list[dict]:
    q = (
        select(ServiceCall, Attendee)
        .join(Attendee, Attendee.id == ServiceCall.attendee_id)
        .where(ServiceCall.meeting_id == meeting_id)
    )
    if attendee_id is not None:
        q = q.where(ServiceCall.attendee_id == attendee_id)
    if only_open:
        q = q.where(ServiceCall.status == "open")
    return [call_json(c, a) for c, a in s.execute(q.order_by(ServiceCall.id))]


def open_call(s: Session, meeting_id: int, a: Attendee, kind: str, note: str) -> tuple[ServiceCall, bool]:
    """One open call per seat and kind: asking again returns the open one."""
    q = select(ServiceCall).where(
        ServiceCall.meeting_id == meeting_id,
        ServiceCall.attendee_id == a.id,
        ServiceCall.kind == kind,
        ServiceCall.status == "open",
    )
    existing = s.scalars(q).first()
    if existing is not None:
        return existing, False
    c = ServiceCall(
        meeting_id=meeting_id,
        attendee_id=a.id,
        seat=a.seat,
        kind=kind,
        note=note,
        status="open",
        created_at=utcnow(),
    )
    s.add(c)
    s.flush()
    return c, True


def get_call(s: Session, meeting_id: int, call_id: int) -> ServiceCall:
    c = s.get(ServiceCall, call_id)
    if c is None or c.meeting_id != meeting_id:
        raise NotFound("no such service call")
    return c


# -- announcements -----------------------------------------------------------
def announcement_json(x: Announcement) -> dict[str, Any]:
    return {
        "id": x.id,
        "text": x.text,
        "level": x.level,
        "attendee_id": x.attendee_id,
        "by": x.by,
        "at": iso(x.created_at),
        "cleared": x.cleared_at is not None,
    }


def last_announcement(s: Session, meeting_id: int, attendee_id: int | None) -> dict[str, Any] | None:
    """The newest announcement still shown to this client (the room's, or one for its seat)."""
    cond = Announcement.attendee_id.is_(None)
    if attendee_id is not None:
        cond = or_(cond, Announcement.attendee_id == attendee_id)
    q = (
        select(Announcement)
        .where(Announcement.meeting_id == meeting_id, Announcement.cleared_at.is_(None), cond)
        .order_by(Announcement.id.desc())
    )
    x = s.scalars(q).first()
    return announcement_json(x) if x else None


def get_announcement(s: Session, meeting_id: int, announcement_id: int) -> Announcement:
    x = s.get(Announcement, announcement_id)
    if x is None or x.meeting_id != meeting_id:
        raise NotFound("no such announcement")
    return x


# -- nameplate -----------------------------------------------------------------
def nameplate_on(rs: RoomState | None, attendee_id: int | None) -> bool:
    if rs is None:
        return False
    if attendee_id is not None and str(attendee_id) in (rs.nameplate_seats or {}):
        return bool(rs.nameplate_seats[str(attendee_id)])
    return bool(rs.nameplate_all)


def set_nameplate(s: Session, meeting_id: int, on: bool, attendee_id: int | None) -> RoomState:
    rs = room_state(s, meeting_id)
    if attendee_id is None:
        rs.nameplate_all = on
        rs.nameplate_seats = {}
    else:
        # A new dict: JSON columns notice reassignment, not in-place changes.
        rs.nameplate_seats = {**(rs.nameplate_seats or {}), str(attendee_id): on}
    rs.nameplate_seq += 1
    s.flush()
    return rs


def nameplate_state(s: Session, meeting_id: int, attendee_id: int | None, staff: bool) -> dict[str, Any]:
    rs = peek_room_state(s, meeting_id)
    out: dict[str, Any] = {
        "on": nameplate_on(rs, attendee_id),
        "room": bool(rs.nameplate_all) if rs else False,
        "seq": rs.nameplate_seq if rs else 0,
    }
    if staff:
        out["seats"] = {k: bool(v) for k, v in ((rs.nameplate_seats or {}) if rs else {}).items()}
    return out
