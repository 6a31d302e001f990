"""Polls: creation and their public view. Counting lives beside this (ballots)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..core.db import iso
from .models import Poll

#: Other parts (ballots) fill in counts, by name: fn(session, poll) -> {"voted", "eligible", "tally"?}.
progress_providers: dict = {}


def list_polls(s: Session, meeting_id: int) -> list[Poll]:
    return list(s.scalars(select(Poll).where(Poll.meeting_id == meeting_id).order_by(Poll.id)))


def counts(s: Session | None, p: Poll) -> dict[str, Any]:
    out: dict[str, Any] = {"voted": 0, "eligible": 0}
    if s is not None:
        for fn in progress_providers.values():
            out.update(fn(s, p))
    return out


def poll_json(p: Poll, *, s: Session | None = None, reveal: bool = False) -> dict[str, Any]:
    """A poll as clients see it; the tally only when `reveal` and the poll is closed."""
    out = {
        "id": p.id,
        "meeting_id": p.meeting_id,
        "agenda_item_id": p.agenda_item_id,
        "title": p.title,
        "kind": p.kind,
        "options": p.options,
        "secret": p.secret,
        "max_choices": p.max_choices,
        "min_choices": p.min_choices,
        "publish_on_close": p.publish_on_close,
        "rule": p.rule,
        "status": p.status,
        "created_at": iso(p.created_at),
        "opened_at": iso(p.opened_at),
        "closed_at": iso(p.closed_at),
        "published_at": iso(p.published_at),
    }
    c = counts(s, p)
    tally = c.pop("tally", None)
    out.update(c)
    if p.status == "closed" and (reveal or p.published_at is not None) and tally is not None:
        out["tally"] = tally
    return out


def open_poll_json(s: Session, meeting_id: int, attendee=None, actor=None) -> dict[str, Any] | None:
    p = s.scalar(select(Poll).where(Poll.meeting_id == meeting_id, Poll.status == "open").order_by(Poll.id.desc()))
    return poll_json(p, s=s) if p is not None else None
