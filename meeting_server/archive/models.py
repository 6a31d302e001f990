from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..core.db import Base, utcnow


class ArchiveBuild(Base):
    """One archive zip of a meeting, built by the worker for one head of the audit chain.

    The audit head names the meeting's whole recorded state: a build stays valid
    (cached) until another audited write moves the head. The build that seals the
    meeting (minutes approved) is kept as the meeting's archive for good.
    """

    __tablename__ = "archive_builds"
    __table_args__ = (UniqueConstraint("meeting_id", "audit_head"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    #: The audit chain this archive holds: its length and last hash.
    audit_seq: Mapped[int]
    audit_head: Mapped[str] = mapped_column(String(64))
    #: queued | building | ready | failed | superseded | purged
    status: Mapped[str] = mapped_column(String(20), default="queued")
    #: 0..1, and what the worker is doing now.
    progress: Mapped[float] = mapped_column(default=0.0)
    step: Mapped[str] = mapped_column(String(120), default="")
    #: The zip in blob storage, its size and the SHA-256 of its manifest.json.
    sha256: Mapped[str | None] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(default=0)
    manifest_sha256: Mapped[str | None] = mapped_column(String(64))
    files: Mapped[int] = mapped_column(default=0)
    #: What the archive lacks and why (e.g. no annotation export), for the organizer.
    notes: Mapped[list] = mapped_column(default=list)
    error: Mapped[str | None] = mapped_column(Text)
    #: Seconds spent in each step ({"records": 0.1, "minutes": 1.2, …}).
    timings: Mapped[dict] = mapped_column(default=dict)
    #: This build is the meeting's sealed archive (the meeting is `archived`).
    sealed: Mapped[bool] = mapped_column(default=False)
    #: The job that owns the build, and when it last showed life (a lease against dead workers).
    claim: Mapped[str | None] = mapped_column(String(40))
    heartbeat: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]

    def __repr__(self) -> str:
        return f"<ArchiveBuild {self.id} m{self.meeting_id} #{self.audit_seq} {self.status}>"
