from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..core.db import Base


class AttendanceRecord(Base):
    """One stay in the room: in at `in_at`, out at `out_at` (null while still in).

    Re-entry after a check-out opens a new record, so the history of a seat is
    its records in order. `Attendee.present` is the current state, kept in step.
    """

    __tablename__ = "attendance_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    attendee_id: Mapped[int] = mapped_column(ForeignKey("attendees.id", ondelete="CASCADE"), index=True)
    in_at: Mapped[dt.datetime]
    #: self | proxy (代签: staff checked the seat in on its behalf)
    in_method: Mapped[str] = mapped_column(String(10), default="self")
    #: Who checked in: the actor label (the seat itself, or the secretary/organizer).
    in_by: Mapped[dict] = mapped_column(default=dict)
    #: Why staff checked in on the seat's behalf (required for proxy check-in).
    in_reason: Mapped[str] = mapped_column(String(300), default="")
    #: The first arrival came after the meeting had started.
    late: Mapped[bool] = mapped_column(default=False)
    out_at: Mapped[dt.datetime | None]
    #: self | proxy
    out_method: Mapped[str | None] = mapped_column(String(10))
    out_by: Mapped[dict | None]
    out_reason: Mapped[str] = mapped_column(String(300), default="")
    #: Left while the meeting was live (before it ended).
    early: Mapped[bool] = mapped_column(default=False)

    def __repr__(self) -> str:
        return f"<AttendanceRecord {self.id} attendee={self.attendee_id} in={self.in_at} out={self.out_at}>"


class Signature(Base):
    """The finger signature an attendee drew on the tablet when checking in (for the minutes).

    Vector strokes, each a list of `[x, y]` or `[x, y, ms]` with x, y in 0..1 of the signing pad, and
    the pad's aspect (width / height), so the minutes can redraw it at any size. One per attendee: a
    new signature (a re-entry signed again) replaces it; the audit log keeps the SHA-256 of each.
    """

    __tablename__ = "attendance_signatures"
    __table_args__ = (UniqueConstraint("attendee_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    attendee_id: Mapped[int] = mapped_column(ForeignKey("attendees.id", ondelete="CASCADE"))
    strokes: Mapped[list] = mapped_column(default=list)
    aspect: Mapped[float] = mapped_column(default=3.0)
    signed_at: Mapped[dt.datetime]
    #: SHA-256 of the canonical JSON of `{"strokes", "aspect"}`; the same value is in the audit entry.
    sha256: Mapped[str] = mapped_column(String(64))
