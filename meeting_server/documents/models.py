from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..core.db import Base, utcnow


class Document(Base):
    __tablename__ = "documents"

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    agenda_item_id: Mapped[int | None] = mapped_column(ForeignKey("agenda_items.id", ondelete="SET NULL"))
    title: Mapped[str] = mapped_column(String(300))
    position: Mapped[int] = mapped_column(default=0)
    #: Bumped when the organizer replaces the file; the id stays.
    version: Mapped[int] = mapped_column(default=1)
    #: processing | ready | failed
    status: Mapped[str] = mapped_column(String(20), default="processing")
    error: Mapped[str | None] = mapped_column(Text)
    page_count: Mapped[int | None]
    pages_done: Mapped[int] = mapped_column(default=0)
    filename: Mapped[str] = mapped_column(String(300), default="")
    #: Detected from content: pdf, docx, pptx, xlsx, png, jpeg, …
    kind: Mapped[str] = mapped_column(String(20), default="pdf")
    original_sha256: Mapped[str] = mapped_column(String(64))
    original_size: Mapped[int] = mapped_column(default=0)
    #: The PDF the pages were rendered from (the original for PDFs).
    pdf_sha256: Mapped[str | None] = mapped_column(String(64))
    #: Confidentiality: {"roles": [...], "attendees": [...]} limits who sees it; null: everyone.
    audience: Mapped[dict | None]
    confidential: Mapped[bool] = mapped_column(default=False)
    withdrawn_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    #: The render job that owns this version now, and when it last showed life (a lease).
    render_claim: Mapped[str | None] = mapped_column(String(40))
    render_heartbeat: Mapped[dt.datetime | None]

    def __repr__(self) -> str:
        return f"<Document {self.id} v{self.version} {self.title!r} {self.status}>"


class DocumentPage(Base):
    """One rendered page of one version; the images live in blob storage by SHA-256."""

    __tablename__ = "document_pages"
    __table_args__ = (UniqueConstraint("document_id", "version", "n"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), index=True)
    version: Mapped[int]
    n: Mapped[int]
    width: Mapped[int]
    height: Mapped[int]
    image_sha256: Mapped[str] = mapped_column(String(64))
    thumb_sha256: Mapped[str] = mapped_column(String(64))
    #: Page size in PDF points, for annotation coordinates.
    pdf_width: Mapped[float] = mapped_column(default=0.0)
    pdf_height: Mapped[float] = mapped_column(default=0.0)

    def __repr__(self) -> str:
        return f"<DocumentPage d{self.document_id} v{self.version} p{self.n}>"
