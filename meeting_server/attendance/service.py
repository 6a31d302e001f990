"""Attendance: check-in and check-out with their history, late arrival, early leave, counts and quorum."""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..core.db import iso, utcnow
from ..core.identity import Actor
from ..live.models import peek_room_state, room_state
from ..roster.models import Attendee
from .models import AttendanceRecord, Signature


def required(rule: dict[str, Any] | None, expected: int) -> int | None:
    """How many present attendees the quorum rule needs (None: no rule)."""
    if not rule:
        return None
    if rule["kind"] == "count":
        return int(rule["value"])
    return max(1, math.ceil(float(rule["value"]) * expected - 1e-9))


def counts(s: Session, meeting: Any) -> dict[str, Any]:
    """`attendance` as broadcast: present and expected exclude observers; only checked-in seats are present."""
    base = (
        select(func.count())
        .select_from(Attendee)
        .where(Attendee.meeting_id == meeting.id, Attendee.deleted.is_(False), Attendee.role != "observer")
    )
    expected = s.scalar(base) or 0
    present = s.scalar(base.where(Attendee.present.is_(True))) or 0
    rs = peek_room_state(s, meeting.id)
    out: dict[str, Any] = {"present": present, "expected": expected, "seq": rs.attendance_seq if rs else 0}
    need = required(meeting.quorum, expected)
    if need is not None:
        out["quorum"] = {"rule": meeting.quorum, "required": need, "reached": present >= need}
    return out


def bump(s: Session, meeting: Any) -> dict[str, Any]:
    """Attendance changed: advance its sequence and return the counts to broadcast."""
    rs = room_state(s, meeting.id)
    rs.attendance_seq += 1
    s.flush()
    return counts(s, meeting)


def open_record(s: Session, attendee_id: int) -> AttendanceRecord | None:
    q = (
        select(AttendanceRecord)
        .where(AttendanceRecord.attendee_id == attendee_id, AttendanceRecord.out_at.is_(None))
        .order_by(AttendanceRecord.id.desc())
    )
    return s.scalars(q).first()


def records(s: Session, meeting_id: int, attendee_id: int | None = None) -> list[AttendanceRecord]:
    q = select(AttendanceRecord).where(AttendanceRecord.meeting_id == meeting_id)
    if attendee_id is not None:
        q = q.where(AttendanceRecord.attendee_id == attendee_id)
    return list(s.scalars(q.order_by(AttendanceRecord.in_at, AttendanceRecord.id)))


def _label(actor: Actor) -> dict[str, Any]:
    return actor.audit_label()


def check_in(
    s: Session, meeting: Any, a: Attendee, by: Actor, *, method: str = "self", reason: str = ""
) -> AttendanceRecord | None:
    """Open a stay for `a`; None when it is already in (check-in is idempotent)."""
    if a.present and open_record(s, a.id) is not None:
        return None
    now = utcnow()
    first = (
        s.scalar(
            select(func.count()).select_from(AttendanceRecord).where(AttendanceRecord.attendee_id == a.id)
        )
        == 0
    )
    late = bool(
        first and meeting.status == "live" and meeting.started_at is not None and now > meeting.started_at
    )
    rec = AttendanceRecord(
        meeting_id=meeting.id,
        attendee_id=a.id,
        in_at=now,
        in_method=method,
        in_by=_label(by),
        in_reason=reason,
        late=late,
        early=False,
        out_reason="",
    )
    s.add(rec)
    a.present = True
    a.checked_in_at = a.checked_in_at or now
    a.checked_out_at = None
    s.flush()
    return rec


def check_out(
    s: Session, meeting: Any, a: Attendee, by: Actor, *, method: str = "self", reason: str = ""
) -> AttendanceRecord | None:
    """Close the open stay of `a`; None when it is not in."""
    rec = open_record(s, a.id)
    if rec is None and not a.present:
        return None
    now = utcnow()
    if rec is None:  # checked in without a history row (data from before the history existed)
        rec = AttendanceRecord(
            meeting_id=meeting.id,
            attendee_id=a.id,
            in_at=a.checked_in_at or now,
            in_method="self",
            in_by={},
            in_reason="",
            late=False,
            early=False,
        )
        s.add(rec)
    rec.out_at = now
    rec.out_method = method
    rec.out_by = _label(by)
    rec.out_reason = reason
    rec.early = meeting.status == "live"
    a.present = False
    a.checked_out_at = now
    s.flush()
    return rec


def flags(s: Session, meeting: Any) -> dict[int, dict[str, Any]]:
    """attendee_id -> {"late", "left_early"} for everyone with a history."""
    out: dict[int, dict[str, Any]] = {}
    last: dict[int, AttendanceRecord] = {}
    for r in records(s, meeting.id):
        if r.attendee_id not in out:
            out[r.attendee_id] = {"late": r.late, "left_early": False}
        last[r.attendee_id] = r
    for aid, r in last.items():
        out[aid]["left_early"] = r.out_at is not None and r.early
    return out


def me_part(s: Session, meeting: Any, a: Attendee) -> dict[str, Any]:
    """The attendance part of a tablet's `me`."""
    recs = records(s, meeting.id, a.id)
    cur = next((r for r in reversed(recs) if r.out_at is None), None)
    return {
        "checked_in": a.present,
        "checked_in_at": iso(a.checked_in_at),
        "entered_at": iso(cur.in_at) if cur and a.present else None,
        "checked_out_at": iso(a.checked_out_at),
        "late": bool(recs and recs[0].late),
        "left_early": bool(recs and not a.present and recs[-1].out_at is not None and recs[-1].early),
    }


def record_json(r: AttendanceRecord) -> dict[str, Any]:
    return {
        "id": r.id,
        "attendee_id": r.attendee_id,
        "in_at": iso(r.in_at),
        "in_method": r.in_method,
        "in_by": r.in_by,
        "in_reason": r.in_reason,
        "late": r.late,
        "out_at": iso(r.out_at),
        "out_method": r.out_method,
        "out_by": r.out_by,
        "out_reason": r.out_reason,
        "early": r.early,
    }


def report(s: Session, meeting: Any) -> list[dict[str, Any]]:
    """Every attendee with its attendance and full in/out history (for the console, minutes and archive)."""
    from ..roster.service import list_attendees

    by_attendee: dict[int, list[AttendanceRecord]] = {}
    signed = set(s.scalars(select(Signature.attendee_id).where(Signature.meeting_id == meeting.id)))
    for r in records(s, meeting.id):
        by_attendee.setdefault(r.attendee_id, []).append(r)
    out = []
    for a in list_attendees(s, meeting.id):
        recs = by_attendee.get(a.id, [])
        out.append(
            {
                "attendee_id": a.id,
                "name": a.name,
                "seat": a.seat,
                "role": a.role,
                "organization": a.organization,
                "checked_in": a.present,
                "checked_in_at": iso(a.checked_in_at),
                "checked_out_at": iso(a.checked_out_at),
                "late": bool(recs and recs[0].late),
                "left_early": bool(recs and not a.present and recs[-1].out_at is not None and recs[-1].early),
                "proxy": any(r.in_method == "proxy" for r in recs),
                "counted": a.role != "observer",
                "signed": a.id in signed,
                "records": [record_json(r) for r in recs],
            }
        )
    return out


def signature_digest(strokes: list, aspect: float) -> str:
    """SHA-256 of the canonical JSON of a signature: what the audit log records instead of the strokes."""
    body = json.dumps({"strokes": strokes, "aspect": aspect}, separators=(",", ":"), sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()


def save_signature(s: Session, meeting: Any, a: Attendee, strokes: list, aspect: float) -> str | None:
    """Keep `a`'s finger signature (replacing an earlier one); the digest, or None when it is unchanged."""
    digest = signature_digest(strokes, aspect)
    row = s.scalar(select(Signature).where(Signature.attendee_id == a.id))
    if row is not None and row.sha256 == digest:
        return None
    if row is None:
        row = Signature(meeting_id=meeting.id, attendee_id=a.id)
        s.add(row)
    row.strokes = strokes
    row.aspect = aspect
    row.signed_at = utcnow()
    row.sha256 = digest
    s.flush()
    return digest


def signatures(s: Session, meeting_id: int) -> dict[int, dict[str, Any]]:
    """Every attendee's finger signature: `{attendee_id: {"strokes", "aspect", "signed_at", "sha256"}}`."""
    rows = s.scalars(select(Signature).where(Signature.meeting_id == meeting_id))
    return {
        r.attendee_id: {
            "strokes": r.strokes,
            "aspect": r.aspect,
            "signed_at": iso(r.signed_at),
            "sha256": r.sha256,
        }
        for r in rows
    }


def has_signature(s: Session, attendee_id: int) -> bool:
    return s.scalar(select(Signature.id).where(Signature.attendee_id == attendee_id)) is not None
