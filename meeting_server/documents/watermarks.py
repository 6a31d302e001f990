"""Per-seat watermarked page images of confidential documents.

A seat never receives the plain image of a confidential page: it gets a copy with its
name, seat and the time burned in (``render.watermark``), made in a worker process and
kept per seat as a content-addressed blob, with one `WatermarkedPage` row per (document,
version, page, size, seat) pointing at it.

Rendering is on demand: the first request for a page that has no copy yet records the
request and queues `watermark_pages` for that page and the next few (every thumbnail at
once), and answers ``409 page_not_ready`` with ``Retry-After``; the retry gets the image.
The time in the watermark is the time of that first request. Pre-rendering every audience
seat when the document becomes ready was rejected: for 100 seats and 50 pages it is about
four minutes of one core spent mostly on pages nobody opens, and it would stamp the upload
time rather than the viewing time.

The first time a seat is served a page (full size; thumbnails are previews) the view goes
into the meeting's audit log; later requests of the same page write nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import ForeignKey, String, UniqueConstraint, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from ..core import db, storage, tasks
from ..core.db import Base, utcnow
from .models import Document, DocumentPage

log = logging.getLogger(__name__)

#: Pages queued together with the one asked for (a reader turns pages forward).
PREFETCH = 4
#: Seconds a client should wait before asking again.
RETRY_AFTER = 1
#: A request still pending after this long is queued again (its worker may have died).
STALE_AFTER = dt.timedelta(seconds=30)
OPACITY = 0.18
SIZES = ("page", "thumb")


class WatermarkedPage(Base):
    """One seat's watermarked copy of one page image (pending while `sha256` is null)."""

    __tablename__ = "watermarked_pages"
    __table_args__ = (UniqueConstraint("document_id", "version", "n", "size", "attendee_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), index=True)
    version: Mapped[int]
    n: Mapped[int]
    #: "page" or "thumb"
    size: Mapped[str] = mapped_column(String(10))
    attendee_id: Mapped[int] = mapped_column(ForeignKey("attendees.id", ondelete="CASCADE"), index=True)
    #: The watermarked JPEG in blob storage; null until the worker made it.
    sha256: Mapped[str | None] = mapped_column(String(64))
    #: When the seat first asked: the time printed in the watermark.
    requested_at: Mapped[dt.datetime]
    rendered_at: Mapped[dt.datetime | None]
    #: First time the image was served to the seat (the view is then in the audit log).
    served_at: Mapped[dt.datetime | None]

    def __repr__(self) -> str:
        state = self.sha256[:8] if self.sha256 else "pending"
        return f"<WatermarkedPage d{self.document_id} v{self.version} p{self.n} {self.size} a{self.attendee_id} {state}>"


def lines_for(name: str, seat: str | None, at: dt.datetime) -> list[str]:
    """The watermark text: who, which seat, when (UTC), and the marking."""
    when = at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return [f"{name}  座位 Seat {seat or '-'}", when, "机密 CONFIDENTIAL"]


def lookup(s: Session, d: Document, n: int, size: str, attendee_id: int) -> WatermarkedPage | None:
    return s.scalar(
        select(WatermarkedPage).where(
            WatermarkedPage.document_id == d.id,
            WatermarkedPage.version == d.version,
            WatermarkedPage.n == n,
            WatermarkedPage.size == size,
            WatermarkedPage.attendee_id == attendee_id,
        )
    )


def request(s: Session, d: Document, n: int, size: str, attendee_id: int) -> list[int]:
    """Record that a seat wants page `n` (and the pages after it); returns the pages to queue.

    A page already queued recently is not queued again, so a tablet retrying every second
    costs one indexed read per retry.
    """
    total = d.page_count or n
    wanted = (
        list(range(1, total + 1)) if size == "thumb" else list(range(n, min(total, n + PREFETCH - 1) + 1))
    )
    # Only pages already rendered (a document still rendering has some): the others are asked later.
    ready = set(
        s.scalars(
            select(DocumentPage.n).where(
                DocumentPage.document_id == d.id,
                DocumentPage.version == d.version,
                DocumentPage.n.in_(wanted),
            )
        )
    )
    wanted = [n] + [k for k in wanted if k != n and k in ready]
    rows = {
        r.n: r
        for r in s.scalars(
            select(WatermarkedPage).where(
                WatermarkedPage.document_id == d.id,
                WatermarkedPage.version == d.version,
                WatermarkedPage.size == size,
                WatermarkedPage.attendee_id == attendee_id,
                WatermarkedPage.n.in_(wanted),
            )
        )
    }
    now = utcnow()
    queue = []
    for k in wanted:
        row = rows.get(k)
        if row is None:
            try:
                with s.begin_nested():  # two devices of one seat may ask at the same moment
                    s.add(
                        WatermarkedPage(
                            document_id=d.id,
                            version=d.version,
                            n=k,
                            size=size,
                            attendee_id=attendee_id,
                            requested_at=now,
                        )
                    )
            except IntegrityError:
                continue
            queue.append(k)
        elif row.sha256 is None and now - row.requested_at > STALE_AFTER:
            row.requested_at = now
            queue.append(k)
    return queue


def enqueue(doc_id: int, version: int, attendee_id: int, size: str, pages: list[int]) -> None:
    tasks.enqueue("watermark_pages", doc_id, version, attendee_id, size, pages)


def log_first_view(s: Session, d: Document, row: WatermarkedPage, actor: Any) -> None:
    """Write the audit entry of a seat's first view of a page, once per (seat, version, page)."""
    if row.served_at is not None or row.size != "page":
        return
    from ..core import audit
    from ..meetings.models import Meeting

    # Page GETs are reads: lock the meeting row only now, to extend its audit chain.
    meeting = s.execute(
        select(Meeting)
        .where(Meeting.id == d.meeting_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()
    s.refresh(row)  # another device of the seat may have logged it while we waited
    if row.served_at is not None:
        return
    row.served_at = utcnow()
    audit.append(
        s,
        meeting,
        actor,
        "documents.page_viewed",
        {"document_id": d.id, "version": d.version, "page": row.n, "title": d.title},
    )


def watermark_pages(doc_id: int, version: int, attendee_id: int, size: str, pages: list[int]) -> None:
    """Background job: make one seat's watermarked copies of `pages` (in that order)."""
    from ..roster.models import Attendee
    from . import render

    tasks.ensure_worker_ready()
    with db.reader() as s:
        d = s.get(Document, doc_id)
        a = s.get(Attendee, attendee_id)
        if d is None or d.version != version or a is None:
            return
        name, seat = a.name, a.seat
        plain = {
            p.n: (p.image_sha256 if size == "page" else p.thumb_sha256)
            for p in s.scalars(
                select(DocumentPage).where(
                    DocumentPage.document_id == doc_id,
                    DocumentPage.version == version,
                    DocumentPage.n.in_(pages),
                )
            )
        }
        rows = {
            r.n: (r.id, r.requested_at)
            for r in s.scalars(
                select(WatermarkedPage).where(
                    WatermarkedPage.document_id == doc_id,
                    WatermarkedPage.version == version,
                    WatermarkedPage.size == size,
                    WatermarkedPage.attendee_id == attendee_id,
                    WatermarkedPage.n.in_(pages),
                    WatermarkedPage.sha256.is_(None),
                )
            )
        }
    missing = [rows[n][0] for n in pages if n in rows and n not in plain]
    if missing:  # not rendered (any more): forget the request, so the next one queues it again
        with db.transaction() as s:
            s.execute(delete(WatermarkedPage).where(WatermarkedPage.id.in_(missing)))
    store = storage.get()
    for n in pages:
        if n not in rows or n not in plain:
            continue  # done meanwhile, or not rendered
        row_id, at = rows[n]
        try:
            data = render.watermark(store.read(plain[n]), lines_for(name, seat, at), OPACITY)
        except Exception:  # one bad page must not stop the others; it is asked again later
            log.exception("watermarking page %s of document %s for seat %s failed", n, doc_id, attendee_id)
            continue
        sha = store.put_bytes(data)
        with db.transaction() as s:  # one short transaction per page: the first is served at once
            row = s.get(WatermarkedPage, row_id)
            if row is not None and row.sha256 is None:
                row.sha256 = sha
                row.rendered_at = utcnow()
