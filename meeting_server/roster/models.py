from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..core.db import Base, utcnow


class Attendee(Base):
    __tablename__ = "attendees"

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    seat: Mapped[str | None] = mapped_column(String(40))
    #: attendee | chair | presenter | secretary | observer
    role: Mapped[str] = mapped_column(String(20), default="attendee")
    organization: Mapped[str] = mapped_column(String(200), default="")
    #: Weight of this attendee's vote (1 unless the meeting weighs votes).
    vote_weight: Mapped[float] = mapped_column(default=1.0)
    #: Printed on the seat card as a QR code; re-issuing replaces it.
    join_token: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    #: Current attendance; the full in/out history is in attendance records.
    checked_in_at: Mapped[dt.datetime | None]
    checked_out_at: Mapped[dt.datetime | None]
    present: Mapped[bool] = mapped_column(default=False)
    deleted: Mapped[bool] = mapped_column(default=False)

    def __repr__(self) -> str:
        return f"<Attendee {self.id} {self.name!r} seat={self.seat} {self.role}>"


class SeatSession(Base):
    """One device holding a seat; its token is stored only as a SHA-256."""

    __tablename__ = "seat_sessions"
    __table_args__ = (UniqueConstraint("token_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    attendee_id: Mapped[int] = mapped_column(ForeignKey("attendees.id", ondelete="CASCADE"), index=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    user_agent: Mapped[str] = mapped_column(String(300), default="")
    address: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
    revoked_at: Mapped[dt.datetime | None]
    last_seen_at: Mapped[dt.datetime | None]

    def __repr__(self) -> str:
        return f"<SeatSession {self.id} attendee={self.attendee_id}>"
