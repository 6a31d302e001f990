from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..core.db import Base, utcnow


class Minutes(Base):
    """The minutes of one meeting: their status and approval history (the text is per agenda item)."""

    __tablename__ = "minutes"

    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), primary_key=True)
    #: draft -> submitted -> approved -> locked (the archive was sealed)
    status: Mapped[str] = mapped_column(String(20), default="draft")
    #: Counts every save of any item: a cheap "something changed" marker.
    saves: Mapped[int] = mapped_column(default=0)
    #: [{"action": drafted|submitted|rejected|approved|locked, "who", "role", "at", "note"?}, …] in order.
    history: Mapped[list] = mapped_column(default=list)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<Minutes m{self.meeting_id} {self.status}>"


class MinutesItem(Base):
    """The current notes and decisions of one agenda item (0: general notes of the meeting)."""

    __tablename__ = "minutes_items"
    __table_args__ = (UniqueConstraint("meeting_id", "agenda_item_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    #: The agenda item (no foreign key: notes outlive a deleted item); 0 for the general notes.
    agenda_item_id: Mapped[int]
    #: The agenda item's title when last saved (printed if the item was deleted since).
    title: Mapped[str] = mapped_column(String(300), default="")
    #: The number of the latest revision of this item, from 1.
    revision: Mapped[int] = mapped_column(default=0)
    #: Markdown.
    notes: Mapped[str] = mapped_column(Text, default="")
    decisions: Mapped[list] = mapped_column(default=list)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[dict] = mapped_column(default=dict)

    def __repr__(self) -> str:
        return f"<MinutesItem m{self.meeting_id} item={self.agenda_item_id} r{self.revision}>"


class MinutesRevision(Base):
    """Every save, kept: nothing a secretary typed is ever overwritten."""

    __tablename__ = "minutes_revisions"
    __table_args__ = (
        UniqueConstraint("meeting_id", "agenda_item_id", "revision"),
        UniqueConstraint("meeting_id", "client_revision_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    agenda_item_id: Mapped[int]
    revision: Mapped[int]
    #: The revision the editor started from (the save is refused unless it is still the latest).
    base_revision: Mapped[int]
    #: Made by the client; a resend with the same id is answered from this row (idempotent).
    client_revision_id: Mapped[str | None] = mapped_column(String(64))
    notes: Mapped[str] = mapped_column(Text, default="")
    decisions: Mapped[list] = mapped_column(default=list)
    author: Mapped[dict] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<MinutesRevision m{self.meeting_id} item={self.agenda_item_id} r{self.revision}>"


class MinutesPdf(Base):
    """A rendered (and signed) minutes PDF, cached by a hash of everything printed in it."""

    __tablename__ = "minutes_pdfs"
    __table_args__ = (UniqueConstraint("meeting_id", "lang", "input_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    lang: Mapped[str] = mapped_column(String(8))
    #: SHA-256 of the canonical JSON of the minutes data, language, organization, seal and certificate.
    input_hash: Mapped[str] = mapped_column(String(64))
    #: A cheap key of the meeting's recorded state (audit head and a few counters) when this PDF was last
    #: asked for: a repeated request is answered without assembling the data (see `service.state_key`).
    state_key: Mapped[str | None] = mapped_column(String(64), index=True)
    #: queued | building | ready | failed
    status: Mapped[str] = mapped_column(String(20), default="queued")
    #: The PDF in blob storage.
    sha256: Mapped[str | None] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(default=0)
    pages: Mapped[int] = mapped_column(default=0)
    #: Printed as a draft (not yet approved).
    draft: Mapped[bool] = mapped_column(default=True)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]

    def __repr__(self) -> str:
        return f"<MinutesPdf m{self.meeting_id} {self.lang} {self.status}>"
