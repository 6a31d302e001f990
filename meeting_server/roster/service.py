"""Attendees, seats, join tokens, QR codes and tablet sessions."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..core import tokens
from ..core.db import iso, utcnow
from ..core.errors import Conflict, Invalid, NotFound, Unauthorized
from .models import Attendee, SeatSession

ROLES = ("attendee", "chair", "presenter", "secretary", "observer")
# CSV headers we accept, Chinese and English, mapped to fields.
HEADERS = {
    "name": "name", "姓名": "name", "名字": "name",
    "seat": "seat", "座位": "seat", "座位号": "seat", "席位": "seat",
    "role": "role", "角色": "role", "身份": "role",
    "organization": "organization", "单位": "organization", "organisation": "organization",
    "weight": "vote_weight", "vote_weight": "vote_weight", "权重": "vote_weight",
}
ROLE_NAMES = {
    "参会人": "attendee", "参会": "attendee", "代表": "attendee", "委员": "attendee", "attendee": "attendee",
    "主持人": "chair", "主席": "chair", "chair": "chair",
    "主讲人": "presenter", "汇报人": "presenter", "presenter": "presenter",
    "秘书": "secretary", "记录员": "secretary", "secretary": "secretary",
    "列席": "observer", "旁听": "observer", "observer": "observer",
}


def join_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/tablet/#join={token}"


def attendee_json(a: Attendee, *, with_token: bool = False, base_url: str | None = None) -> dict[str, Any]:
    out = {
        "id": a.id,
        "meeting_id": a.meeting_id,
        "name": a.name,
        "seat": a.seat,
        "role": a.role,
        "organization": a.organization,
        "vote_weight": a.vote_weight,
        "checked_in": a.present,
        "checked_in_at": iso(a.checked_in_at),
        "checked_out_at": iso(a.checked_out_at),
    }
    if with_token:
        from flask import has_request_context, request

        base = base_url or (request.host_url if has_request_context() else "http://localhost/")
        out["join_token"] = a.join_token
        out["join_url"] = join_url(base, a.join_token)
    return out


def list_attendees(s: Session, meeting_id: int) -> list[Attendee]:
    return list(
        s.scalars(select(Attendee).where(Attendee.meeting_id == meeting_id, Attendee.deleted.is_(False)).order_by(Attendee.id))
    )


def _check_seat_free(s: Session, meeting_id: int, seat: str | None, except_id: int | None = None) -> None:
    if not seat:
        return
    q = select(Attendee.id).where(Attendee.meeting_id == meeting_id, Attendee.seat == seat, Attendee.deleted.is_(False))
    other = s.scalar(q)
    if other is not None and other != except_id:
        raise Conflict(f"seat {seat} is taken already", code="seat_taken")


def add_attendee(s: Session, meeting_id: int, **fields: Any) -> Attendee:
    _check_seat_free(s, meeting_id, fields.get("seat"))
    a = Attendee(meeting_id=meeting_id, join_token=tokens.new_join_token(), **fields)
    s.add(a)
    s.flush()
    return a


def update_attendee(s: Session, a: Attendee, changes: dict[str, Any]) -> None:
    if "seat" in changes:
        _check_seat_free(s, a.meeting_id, changes["seat"], except_id=a.id)
    for k, v in changes.items():
        setattr(a, k, v)


def revoke_sessions(s: Session, attendee_id: int) -> int:
    n = 0
    for sess in s.scalars(select(SeatSession).where(SeatSession.attendee_id == attendee_id, SeatSession.revoked_at.is_(None))):
        sess.revoked_at = utcnow()
        n += 1
    return n


def reissue_token(s: Session, a: Attendee) -> None:
    """A lost seat card: new token, and every device holding the seat is logged out."""
    a.join_token = tokens.new_join_token()
    revoke_sessions(s, a.id)


def decode_csv(data: bytes) -> str:
    for enc in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    raise Invalid("the CSV file is neither UTF-8 nor GBK/GB18030 text", code="bad_encoding")


def parse_csv(data: bytes) -> list[dict[str, Any]]:
    """Parse an attendee list; any bad row refuses the whole file, naming the row."""
    text = decode_csv(data)
    rows = list(csv.reader(io.StringIO(text)))
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        raise Invalid("the CSV file is empty", code="empty_csv")
    header = [HEADERS.get(c.strip().lower(), HEADERS.get(c.strip())) for c in rows[0]]
    if "name" not in header:
        raise Invalid("the first row must name the columns, with at least 姓名/name", code="bad_csv", row=1)
    out: list[dict[str, Any]] = []
    seats: set[str] = set()
    for i, row in enumerate(rows[1:], start=2):
        rec: dict[str, Any] = {}
        for col, value in zip(header, row, strict=False):
            if col:
                rec[col] = value.strip()
        name = rec.get("name", "")
        if not name or len(name) > 120:
            raise Invalid(f"row {i}: a name is required (at most 120 characters)", code="bad_csv", row=i)
        role = rec.get("role") or "attendee"
        role = ROLE_NAMES.get(role.lower(), ROLE_NAMES.get(role))
        if role is None:
            raise Invalid(f"row {i}: unknown role {rec.get('role')!r}", code="bad_csv", row=i)
        rec["role"] = role
        seat = rec.get("seat") or None
        if seat:
            if len(seat) > 40:
                raise Invalid(f"row {i}: the seat is longer than 40 characters", code="bad_csv", row=i)
            if seat in seats:
                raise Invalid(f"row {i}: seat {seat} appears twice", code="bad_csv", row=i)
            seats.add(seat)
        rec["seat"] = seat
        if "vote_weight" in rec:
            try:
                rec["vote_weight"] = float(rec["vote_weight"] or 1)
                if rec["vote_weight"] <= 0:
                    raise ValueError
            except ValueError:
                raise Invalid(f"row {i}: the weight must be a positive number", code="bad_csv", row=i) from None
        rec["organization"] = rec.get("organization", "")[:200]
        out.append(rec)
    return out


def import_csv(s: Session, meeting_id: int, data: bytes) -> list[Attendee]:
    records = parse_csv(data)
    taken = {a.seat for a in list_attendees(s, meeting_id) if a.seat}
    for i, rec in enumerate(records, start=2):
        if rec["seat"] and rec["seat"] in taken:
            raise Conflict(f"row {i}: seat {rec['seat']} is taken already", code="seat_taken", row=i)
    return [add_attendee(s, meeting_id, **rec) for rec in records]


def join(
    s: Session, token: str, *, device: str, address: str, ttl_hours: int, takeover: bool
) -> tuple[str, Attendee, SeatSession, int]:
    """A new session for the seat; returns (token, attendee, session, sessions revoked by a take-over)."""
    from ..meetings.models import Meeting

    a = s.scalar(select(Attendee).where(Attendee.join_token == token, Attendee.deleted.is_(False)))
    if a is None:
        raise Unauthorized("this seat card is not valid (it may have been re-issued)", code="bad_join_token")
    # Lock order: the meeting row FIRST, as the command pipeline does for every write. Inserting the
    # seat session takes a key-share lock on the meeting row (its foreign key), and the audit entry
    # then needs the row FOR UPDATE: two joins that each held the key-share lock and then waited for
    # the update lock deadlocked on PostgreSQL. Holding the update lock before the insert serializes
    # the joins of one meeting instead (short transactions), and `populate_existing` makes the audit
    # chain's head and seq the ones committed by the join before us, not a copy read earlier.
    m = s.get(Meeting, a.meeting_id, with_for_update=True, populate_existing=True)
    if m is None or m.deleted_at is not None:
        raise Unauthorized("this seat card is not valid", code="bad_join_token")
    # Read the seat again under the lock: a re-issue or delete committed meanwhile (they lock the
    # meeting row too) must refuse this card.
    s.refresh(a)
    if a.deleted or a.join_token != token:
        raise Unauthorized("this seat card is not valid (it may have been re-issued)", code="bad_join_token")
    if m.status in ("ended", "archived"):
        raise Conflict("the meeting has ended", code="meeting_ended")
    now = utcnow()
    revoked = 0
    if m.single_device:
        active = [
            x for x in s.scalars(select(SeatSession).where(SeatSession.attendee_id == a.id, SeatSession.revoked_at.is_(None)))
            if x.expires_at > now
        ]
        if active and not takeover:
            raise Conflict("this seat is already open on another device; ask the secretariat to release it", code="seat_in_use")
        if active:
            grant = usable_takeover_grant(s, a.id, now)
            if grant is None:
                raise Conflict("taking over a seat needs the organizer's permission (allow take-over)",
                               code="takeover_not_allowed")
            grant.used_at = now
            revoked = revoke_sessions(s, a.id)
    token_value = tokens.new_token(tokens.SEAT_PREFIX)
    sess = SeatSession(
        attendee_id=a.id, meeting_id=a.meeting_id, token_hash=tokens.digest(token_value),
        user_agent=device[:300], address=address[:64], expires_at=now + dt.timedelta(hours=ttl_hours),
    )
    s.add(sess)
    s.flush()
    return token_value, a, sess, revoked


#: How long the organizer's permission to take a single-device seat over stays good.
TAKEOVER_MINUTES = 10


def usable_takeover_grant(s: Session, attendee_id: int, now: dt.datetime):
    from ..live.models import TakeoverGrant

    q = (
        select(TakeoverGrant)
        .where(TakeoverGrant.attendee_id == attendee_id, TakeoverGrant.used_at.is_(None), TakeoverGrant.expires_at > now)
        .order_by(TakeoverGrant.id.desc())
    )
    return s.scalars(q).first()


def allow_takeover(s: Session, a: Attendee, granted_by: str, minutes: int = TAKEOVER_MINUTES):
    """Let the next device that joins this seat with `takeover: true` replace the current one (once)."""
    from ..live.models import TakeoverGrant

    now = utcnow()
    g = TakeoverGrant(attendee_id=a.id, meeting_id=a.meeting_id, granted_by=granted_by[:120], created_at=now,
                      expires_at=now + dt.timedelta(minutes=minutes))
    s.add(g)
    s.flush()
    return g


def revoke_session(s: Session, a: Attendee, session_id: int) -> SeatSession:
    sess = s.get(SeatSession, session_id)
    if sess is None or sess.attendee_id != a.id:
        raise NotFound("no such session")
    if sess.revoked_at is None:
        sess.revoked_at = utcnow()
    return sess


def session_json(x: SeatSession) -> dict[str, Any]:
    from ..live import presence

    return {
        "id": x.id, "attendee_id": x.attendee_id, "device": x.user_agent, "address": x.address,
        "created_at": iso(x.created_at), "expires_at": iso(x.expires_at), "revoked_at": iso(x.revoked_at),
        "last_seen_at": iso(x.last_seen_at),
        # Connected to this server process now (scaled out: to the process answering).
        "online": x.revoked_at is None and presence.current.session_online(x.id),
    }


def get_attendee(s: Session, attendee_id: int) -> Attendee | None:
    a = s.get(Attendee, attendee_id)
    return None if a is None or a.deleted else a


def must_attendee(s: Session, meeting_id: int, attendee_id: int) -> Attendee:
    a = get_attendee(s, attendee_id)
    if a is None or a.meeting_id != meeting_id:
        raise NotFound("no such attendee")
    return a
