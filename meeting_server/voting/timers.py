"""Countdowns: a poll opened with `duration_s` is closed by server time.

Three things make sure an expired poll never stays open:
1. a background task per countdown (`arm`), sleeping until `closes_at`;
2. every vote checks `closes_at` itself (a late vote is refused even before the close runs);
3. building `state` and starting the server (`sweep`) close whatever a restart left expired.
Closing twice is harmless: the second attempt finds the poll closed and does nothing.
"""

from __future__ import annotations

import datetime as dt
import logging

from ..core import db
from ..core.db import utcnow
from ..core.identity import Actor

log = logging.getLogger(__name__)

#: Who closes a poll whose time ran out, in the audit log.
COUNTDOWN = Actor(kind="system", name="countdown", role="system")

#: Bumped by every app built (tests build many): a timer of an older app stands down.
_generation = 0


def new_generation() -> None:
    global _generation
    _generation += 1


def arm(poll_id: int, closes_at: dt.datetime) -> None:
    from ..extensions import socketio

    socketio.start_background_task(_run, poll_id, closes_at, _generation)


def close_soon(poll_id: int, delay: float = 0.05) -> None:
    """Close an expired poll from a background task, after the caller's transaction ends."""
    from ..extensions import socketio

    socketio.start_background_task(_run, poll_id, utcnow() + dt.timedelta(seconds=delay), _generation)


def _run(poll_id: int, closes_at: dt.datetime, generation: int) -> None:
    from ..extensions import socketio

    for _ in range(100_000):  # bounded: a day in 1 s steps, at most
        left = (closes_at - utcnow()).total_seconds()
        if left <= 0 or generation != _generation:
            break
        socketio.sleep(min(left, 1.0))
    if generation != _generation:
        return
    for attempt in range(3):
        try:
            auto_close(poll_id)
            return
        except Exception:  # the database may be busy for a moment; never let the task die silently
            log.warning("closing expired poll %s failed (attempt %d)", poll_id, attempt + 1, exc_info=True)
            socketio.sleep(0.5)


def auto_close(poll_id: int) -> bool:
    """Close `poll_id` if its countdown has run out; True if this call closed it."""
    from ..core import audit
    from ..core.commands import Ctx, registry
    from ..extensions import socketio
    from ..meetings.models import Meeting
    from .models import Poll
    from .schemas import PollRef
    from .service import is_expired

    cmd = registry.get("poll.close")
    with db.transaction() as s:
        p = s.get(Poll, poll_id)
        if p is None or not is_expired(p):
            return False
        meeting = s.get(Meeting, p.meeting_id, with_for_update=True)
        s.refresh(p)
        if not is_expired(p) or meeting.status == "archived":  # an archived meeting is never written to
            return False
        ctx = Ctx(s=s, actor=COUNTDOWN, command=cmd, meeting=meeting, obj=p)
        cmd.fn(ctx, PollRef(poll_id=poll_id))
        audit.append(s, meeting, COUNTDOWN, cmd.name, ctx.audit_data or {"poll_id": poll_id})
    for e in ctx.emits:
        socketio.emit(e.event, e.data, to=e.to)
    log.info("poll %s closed by its countdown", poll_id)
    return True


def sweep() -> int:
    """Close every expired poll and re-arm the running countdowns (server start); returns how many closed."""
    from sqlalchemy import select

    from .models import Poll

    with db.reader() as s:
        rows = [
            (p.id, p.closes_at)
            for p in s.scalars(select(Poll).where(Poll.status == "open", Poll.closes_at.is_not(None)))
        ]
    closed = 0
    now = utcnow()
    for poll_id, closes_at in rows:
        if closes_at <= now:
            closed += bool(auto_close(poll_id))
        else:
            arm(poll_id, closes_at)
    return closed
