"""Live `poll.progress {id, voted, eligible}`, coalesced: at most one per poll every INTERVAL_S (0.5 s).

The first vote after a quiet spell is announced at once (as its own task,
after the acks); votes during the following interval are folded into one
trailing announcement at its end. The
numbers are read from the database when sent, so a coalesced message is never
stale and never carries anything but counts.
"""

from __future__ import annotations

import logging
import threading
import time

from ..core import db, rooms

log = logging.getLogger(__name__)

#: Seconds between two announcements of one poll (0: announce every change at once).
INTERVAL_S = 0.5

_lock = threading.Lock()
_last: dict[int, float] = {}
_pending: set[int] = set()


def touch(poll_id: int, meeting_id: int) -> None:
    """Votes were committed in `poll_id`: announce soon, at most once per INTERVAL_S.

    The announcement runs as its own task, after the acks already released (a
    broadcast queued first would make every ack wait behind it).
    """
    if INTERVAL_S <= 0:  # (tests) every change at once, in order
        announce(poll_id, meeting_id)
        return
    now = time.monotonic()
    with _lock:
        if poll_id in _pending:
            return
        _pending.add(poll_id)
        wait = max(0.0, _last.get(poll_id, float("-inf")) + INTERVAL_S - now)
    from ..extensions import socketio

    socketio.start_background_task(_later, poll_id, meeting_id, wait)


def _later(poll_id: int, meeting_id: int, wait: float) -> None:
    from ..extensions import socketio

    socketio.sleep(wait)
    with _lock:
        _pending.discard(poll_id)
        _last[poll_id] = time.monotonic()
    announce(poll_id, meeting_id)


def announce(poll_id: int, meeting_id: int) -> None:
    from ..extensions import socketio
    from .models import Poll
    from .service import counts

    try:
        with db.reader() as s:
            p = s.get(Poll, poll_id)
            if p is None or p.status != "open" or p.meeting_id != meeting_id:
                return
            c = counts(s, p)
        socketio.emit("poll.progress", {"id": poll_id, **c}, to=rooms.meeting(meeting_id))
    except Exception:  # progress is a courtesy; a failure must not reach the voter's ack
        log.warning("poll.progress for poll %s failed", poll_id, exc_info=True)


def reset() -> None:
    with _lock:
        _last.clear()
        _pending.clear()
