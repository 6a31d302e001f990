"""`attendance` after check-ins: at most one broadcast per meeting every `MIN_INTERVAL` seconds.

The contract: after a check-in (or check-out) everyone in the meeting receives `attendance` with
counts that include it. Sent once per change, a hall of N tablets checking in at once costs N²
frames (a million for 1,000 tablets). Here the first change after a quiet spell is broadcast at
once, as part of its command (after the commit, in order with the command's other events); changes
within `MIN_INTERVAL` of the last broadcast are folded into one trailing broadcast of the latest
counts, read from the database after their commits, when the interval is over. Every change is
followed by a broadcast whose counts include it; `seq` (one step per change) still grows, so a
client that sees seq jump by more than one simply missed nothing it needed.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

log = logging.getLogger(__name__)

#: Least time between two `attendance` broadcasts of one meeting from this process (seconds).
MIN_INTERVAL = 0.2

clock = time.monotonic
_lock = threading.Lock()
#: meeting id -> clock() of its last broadcast (or of the one being sent).
_last: dict[int, float] = {}
#: meetings with a trailing broadcast scheduled
_pending: set[int] = set()
#: broadcasts sent now / trailing, changes folded (this process)
stats = {"immediate": 0, "trailing": 0, "folded": 0}


def reset() -> None:
    with _lock:
        _last.clear()
        _pending.clear()
        for k in stats:
            stats[k] = 0


def changed(ctx: Any, counts: dict[str, Any]) -> None:
    """Called in the transaction of a change with its counts: broadcast now, or fold into the next."""
    from ..core import rooms

    mid = ctx.meeting.id
    now = clock()
    with _lock:
        due = mid not in _pending and now - _last.get(mid, -1e9) >= MIN_INTERVAL
        if due:
            _last[mid] = now
            stats["immediate"] += 1
    if due:
        ctx.emit("attendance", counts, to=rooms.meeting(mid))
    else:
        ctx.later(lambda: _schedule(mid))


def _schedule(mid: int) -> None:
    """After the commit of a folded change: make sure a trailing broadcast is coming."""
    from ..extensions import socketio

    with _lock:
        stats["folded"] += 1
        if mid in _pending:
            return  # the scheduled one reads the counts after this commit: it includes this change
        _pending.add(mid)
        wait = max(0.0, _last.get(mid, -1e9) + MIN_INTERVAL - clock())
    socketio.start_background_task(_trailing, mid, wait)


def _trailing(mid: int, wait: float) -> None:
    from ..core import db, rooms
    from ..extensions import socketio
    from ..meetings.models import Meeting
    from . import service

    try:
        if wait > 0:
            socketio.sleep(wait)
        with _lock:
            # From here on, a change committing later schedules its own broadcast; every change that
            # committed before is in the counts read below.
            _pending.discard(mid)
            _last[mid] = clock()
            stats["trailing"] += 1
        with db.reader() as s:
            m = s.get(Meeting, mid)
            counts = service.counts(s, m) if m is not None else None
        if counts is not None:
            socketio.emit("attendance", counts, to=rooms.meeting(mid))
    except Exception:  # the next change broadcasts again; a reconnecting client reads `state`
        with _lock:
            _pending.discard(mid)
        log.exception("trailing attendance broadcast of meeting %s failed", mid)
