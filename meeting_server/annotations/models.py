from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..core.db import Base, utcnow

# The watermark cache table is defined beside the documents it belongs to; importing it here
# puts it on the metadata that `meeting_server.models` (and Alembic) collect, since
# documents/models.py belongs to another developer. TODO(lead): import it there instead.
from ..documents.watermarks import WatermarkedPage  # noqa: F401


class Annotation(Base):
    """One seat's pen stroke, highlight, text or sticky note on one page of one document version.

    Coordinates are PDF points of the displayed page (origin top-left, rotation applied),
    so they do not depend on a screen. Deleting (the eraser) keeps a tombstone, so a stale
    resend of a save cannot bring an erased stroke back.
    """

    __tablename__ = "annotations"
    __table_args__ = (
        UniqueConstraint("attendee_id", "client_id"),
        Index("ix_annotations_document_attendee", "document_id", "attendee_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    attendee_id: Mapped[int] = mapped_column(ForeignKey("attendees.id", ondelete="CASCADE"))
    #: The id the tablet made up (unique per seat): saves are upserts by it.
    client_id: Mapped[str] = mapped_column(String(64))
    #: The document version it is attached to (moves forward when the document is replaced).
    version: Mapped[int]
    #: The version it was drawn on.
    drawn_version: Mapped[int]
    page: Mapped[int]
    #: pen | highlighter | highlight | text | note ("" for a tombstone of an unknown id)
    kind: Mapped[str] = mapped_column(String(20))
    #: points / strokes / rect / color / width / text / font_size, as saved.
    data: Mapped[dict]
    #: private | room | presenter
    shared: Mapped[str] = mapped_column(String(10), default="private")
    #: Its page does not exist in the current version; kept, never dropped.
    orphaned: Mapped[bool] = mapped_column(default=False)
    #: The client's revision counter: a save or delete with a lower one is stale and ignored.
    rev: Mapped[int] = mapped_column(default=0)
    deleted_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        state = " deleted" if self.deleted_at else (" orphaned" if self.orphaned else "")
        return f"<Annotation {self.client_id!r} a{self.attendee_id} d{self.document_id} v{self.version} p{self.page} {self.kind}{state}>"


class AnnotationShow(Base):
    """What the presenter currently shows everyone: one seat's shared annotations (one per meeting)."""

    __tablename__ = "annotation_shows"

    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    attendee_id: Mapped[int] = mapped_column(ForeignKey("attendees.id", ondelete="CASCADE"))
    #: Client ids of the shown annotations.
    ids: Mapped[list]
    #: Who showed them (audit label).
    shown_by: Mapped[dict]
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<AnnotationShow m{self.meeting_id} d{self.document_id} a{self.attendee_id} {len(self.ids)}>"


class AnnotationExport(Base):
    """An annotated PDF (one seat, one document) or a zip (every seat of a meeting) being built."""

    __tablename__ = "annotation_exports"

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    #: null: every document and seat of the meeting (a zip).
    document_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    #: Whose annotations (null with document_id null).
    attendee_id: Mapped[int | None] = mapped_column(ForeignKey("attendees.id", ondelete="CASCADE"))
    #: The seat that asked (only it may fetch the file); null when an organizer asked.
    requester_attendee_id: Mapped[int | None] = mapped_column(ForeignKey("attendees.id", ondelete="CASCADE"))
    #: queued | running | ready | failed
    status: Mapped[str] = mapped_column(String(10), default="queued")
    sha256: Mapped[str | None] = mapped_column(String(64))
    size: Mapped[int | None]
    filename: Mapped[str] = mapped_column(String(300), default="")
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None]

    def __repr__(self) -> str:
        return f"<AnnotationExport {self.id} m{self.meeting_id} d{self.document_id} a{self.attendee_id} {self.status}>"
