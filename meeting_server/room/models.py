from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..core.db import Base, utcnow


class SpeakerRequest(Base):
    """A request to speak: waiting in the queue, speaking, then done (or withdrawn/removed)."""

    __tablename__ = "speaker_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    attendee_id: Mapped[int] = mapped_column(ForeignKey("attendees.id", ondelete="CASCADE"), index=True)
    agenda_item_id: Mapped[int | None] = mapped_column(ForeignKey("agenda_items.id", ondelete="SET NULL"))
    #: waiting | speaking | done | withdrawn | removed
    status: Mapped[str] = mapped_column(String(12), default="waiting")
    #: Order in the queue (the chair reorders); ties by id.
    position: Mapped[int] = mapped_column(default=0)
    note: Mapped[str] = mapped_column(String(200), default="")
    #: self (from the seat) | chair (put on the list by the chair or an organizer)
    added_by: Mapped[str] = mapped_column(String(10), default="self")
    requested_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime | None]
    #: The speech timer: when the granted time runs out (server time); null: no limit.
    ends_at: Mapped[dt.datetime | None]
    ended_at: Mapped[dt.datetime | None]

    def __repr__(self) -> str:
        return f"<SpeakerRequest {self.id} attendee={self.attendee_id} {self.status}>"


class ServiceCall(Base):
    """A seat asks the room staff for water, tea, paper, a pen, a technician or something else."""

    __tablename__ = "service_calls"

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    attendee_id: Mapped[int] = mapped_column(ForeignKey("attendees.id", ondelete="CASCADE"), index=True)
    #: The seat number when the call was made (what the staff walk to).
    seat: Mapped[str | None] = mapped_column(String(40))
    #: water | tea | paper | pen | technician | other
    kind: Mapped[str] = mapped_column(String(20))
    note: Mapped[str] = mapped_column(String(200), default="")
    #: open | closed | cancelled
    status: Mapped[str] = mapped_column(String(10), default="open")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[dt.datetime | None]
    closed_by: Mapped[str | None] = mapped_column(String(120))

    def __repr__(self) -> str:
        return f"<ServiceCall {self.id} seat={self.seat} {self.kind} {self.status}>"


class Announcement(Base):
    """A message from the staff to the whole room or to one seat."""

    __tablename__ = "announcements"

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    #: Null: the whole room; else the one seat it is for.
    attendee_id: Mapped[int | None] = mapped_column(ForeignKey("attendees.id", ondelete="CASCADE"))
    text: Mapped[str] = mapped_column(Text)
    #: info | urgent
    level: Mapped[str] = mapped_column(String(10), default="info")
    by: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    cleared_at: Mapped[dt.datetime | None]

    def __repr__(self) -> str:
        return f"<Announcement {self.id} to={self.attendee_id or 'room'}>"
