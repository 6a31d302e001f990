"""The append-only, hash-chained audit log of each meeting."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, String, UniqueConstraint, event, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from . import chain
from .db import Base, iso, utcnow
from .identity import Actor


class AuditEntry(Base):
    __tablename__ = "audit_entries"
    __table_args__ = (UniqueConstraint("meeting_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="RESTRICT"), index=True)
    #: Position in the meeting's chain, from 1.
    seq: Mapped[int]
    at: Mapped[dt.datetime]
    actor: Mapped[dict]
    command: Mapped[str] = mapped_column(String(80))
    data: Mapped[dict]
    #: Hash of the previous entry (chain.GENESIS for the first).
    prev: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    def as_record(self) -> dict[str, Any]:
        return {
            "meeting_id": self.meeting_id,
            "seq": self.seq,
            "at": iso(self.at),
            "actor": self.actor,
            "command": self.command,
            "data": self.data,
            "prev": self.prev,
            "hash": self.hash,
        }

    def __repr__(self) -> str:
        return f"<AuditEntry m{self.meeting_id} #{self.seq} {self.command}>"


@event.listens_for(AuditEntry, "before_update")
def _refuse_update(mapper, connection, target):  # pragma: no cover - guard
    raise RuntimeError("audit entries are append-only")


@event.listens_for(AuditEntry, "before_delete")
def _refuse_delete(mapper, connection, target):  # pragma: no cover - guard
    raise RuntimeError("audit entries are append-only")


def append(s: Session, meeting: Any, actor: Actor | dict, command: str, data: dict[str, Any]) -> AuditEntry:
    """Append one entry; the caller holds the meeting row (locked for writes)."""
    seq = (meeting.audit_seq or 0) + 1
    record = {
        "meeting_id": meeting.id,
        "seq": seq,
        "at": iso(utcnow()),
        "actor": actor.audit_label() if isinstance(actor, Actor) else actor,
        "command": command,
        "data": data,
        "prev": meeting.audit_head or chain.GENESIS,
    }
    # Round-trip through canonical JSON so the stored data hashes the same when read back.
    import json

    record = json.loads(chain.canonical_json(record))
    h = chain.entry_hash(record)
    entry = AuditEntry(
        meeting_id=meeting.id,
        seq=seq,
        at=dt.datetime.fromisoformat(record["at"].replace("Z", "+00:00")),
        actor=record["actor"],
        command=command,
        data=record["data"],
        prev=record["prev"],
        hash=h,
    )
    s.add(entry)
    meeting.audit_seq = seq
    meeting.audit_head = h
    return entry


def entries(s: Session, meeting_id: int) -> list[AuditEntry]:
    return list(s.scalars(select(AuditEntry).where(AuditEntry.meeting_id == meeting_id).order_by(AuditEntry.seq)))
