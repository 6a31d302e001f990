from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..core.db import Base, utcnow


class Meeting(Base):
    __tablename__ = "meetings"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    location: Mapped[str] = mapped_column(String(300), default="")
    starts_at: Mapped[dt.datetime | None]
    #: draft -> live -> ended -> archived
    status: Mapped[str] = mapped_column(String(20), default="draft")
    #: Language of generated documents: "zh" or "en".
    language: Mapped[str] = mapped_column(String(8), default="zh")
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime | None]
    ended_at: Mapped[dt.datetime | None]
    deleted_at: Mapped[dt.datetime | None]
    #: Quorum rule: {"kind": "count", "value": 10} or {"kind": "fraction", "value": 0.5}; null: none.
    quorum: Mapped[dict | None]
    #: Only one device may hold a seat at a time.
    single_device: Mapped[bool] = mapped_column(default=False)
    # What the room shows now; `page_seq` grows with every change so clients drop stale news.
    current_agenda_item_id: Mapped[int | None]
    current_document_id: Mapped[int | None]
    current_page: Mapped[int | None]
    page_seq: Mapped[int] = mapped_column(default=0)
    #: Presenter's view box (zoom/scroll), free-form, echoed to tablets.
    current_view: Mapped[dict | None]
    follow_lock: Mapped[bool] = mapped_column(default=False)
    #: Head of the audit hash chain and its length.
    audit_seq: Mapped[int] = mapped_column(default=0)
    audit_head: Mapped[str | None] = mapped_column(String(64))

    def __repr__(self) -> str:
        return f"<Meeting {self.id} {self.title!r} {self.status}>"
