"""Room state that is not a column of the meeting: per-kind sequences, nameplate, seat take-over grants."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, Session, mapped_column

from ..core.db import Base, utcnow


class RoomState(Base):
    """One row per meeting, created on first use.

    Every kind of live news has its own growing sequence, so a client keeps
    the highest it has seen per kind and drops older ones that arrive late
    (events of one meeting are handled concurrently; emits may overtake).
    """

    __tablename__ = "room_states"

    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), primary_key=True)
    #: Bumped with each `attendance` broadcast.
    attendance_seq: Mapped[int] = mapped_column(default=0)
    #: Bumped with each `speakers` broadcast.
    speakers_seq: Mapped[int] = mapped_column(default=0)
    #: Bumped with each `nameplate` broadcast.
    nameplate_seq: Mapped[int] = mapped_column(default=0)
    #: Nameplate mode for the whole room.
    nameplate_all: Mapped[bool] = mapped_column(default=False)
    #: Per-seat overrides of the room-wide nameplate mode: {"<attendee_id>": true|false}.
    nameplate_seats: Mapped[dict] = mapped_column(default=dict)

    def __repr__(self) -> str:
        return f"<RoomState m{self.meeting_id}>"


class TakeoverGrant(Base):
    """The organizer lets the next device that asks take a single-device seat over (once, for a while)."""

    __tablename__ = "seat_takeover_grants"

    id: Mapped[int] = mapped_column(primary_key=True)
    attendee_id: Mapped[int] = mapped_column(ForeignKey("attendees.id", ondelete="CASCADE"), index=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    granted_by: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
    #: Set when a device used it; a grant is good for one take-over.
    used_at: Mapped[dt.datetime | None]

    def __repr__(self) -> str:
        return f"<TakeoverGrant {self.id} attendee={self.attendee_id}>"


def room_state(s: Session, meeting_id: int) -> RoomState:
    """The meeting's room state, created on first use (callers hold the meeting row for writes)."""
    rs = s.get(RoomState, meeting_id)
    if rs is None:
        rs = RoomState(
            meeting_id=meeting_id,
            attendance_seq=0,
            speakers_seq=0,
            nameplate_seq=0,
            nameplate_all=False,
            nameplate_seats={},
        )
        s.add(rs)
        s.flush()
    return rs


def peek_room_state(s: Session, meeting_id: int) -> RoomState | None:
    """For readers: the row if it exists (never creates one)."""
    return s.get(RoomState, meeting_id)
