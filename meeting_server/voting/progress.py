"""Live `poll.progress {id, voted, eligible}`, coalesced: at most one per poll every INTERVAL_S (0.5 s).

The first vote after a quiet spell is announced at once (as its own task,
after the acks); votes during the following interval are folded into one
trailing announcement at its end. The
numbers are read from the database when sent, so a coalesced message is never
stale and never carries anything but counts.

With several server processes (Redis configured), the interval holds for all of
them together: an announcement goes to the whole room (every process sends it to
its own tablets), so before announcing a process claims the poll's slot in Redis
(`SET key NX PX interval`); if another process holds it, it waits for the slot
to expire and then announces (reading the counts afresh). During a burst through
three processes the room then gets one announcement per interval instead of one
per process, and every commit is still followed by an announcement that counts it.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from ..core import db, rooms

log = logging.getLogger(__name__)

#: Seconds between two announcements of one poll (0: announce every change at once).
INTERVAL_S = 0.5

_lock = threading.Lock()
_last: dict[int, float] = {}
_pending: set[int] = set()
#: Redis client shared by the server processes (None: one process, nothing to share).
_redis = None
#: A process waits for another's slot at most this many times before announcing anyway.
MAX_WAITS = 20


def configure(redis_url: str | None) -> None:
    """Coalesce across the server processes that share `redis_url` (called by `voting.init_app`)."""
    global _redis
    if not redis_url:
        _redis = None
        return
    import redis

    _redis = redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)


def slot_key(poll_id: int, meeting_id: int) -> str:
    return f"ms:poll-progress:{meeting_id}:{poll_id}"


def claim(poll_id: int, meeting_id: int) -> float:
    """0 if this process may announce `poll_id` now (it then holds the slot for INTERVAL_S), else how
    long another process still holds it (seconds). Without Redis, or if Redis fails: 0."""
    r = _redis
    if r is None:
        return 0.0
    try:
        key = slot_key(poll_id, meeting_id)
        if r.set(key, os.getpid(), nx=True, px=max(1, int(INTERVAL_S * 1000))):
            return 0.0
        ttl = r.pttl(key)
    except Exception:  # progress is a courtesy: announce as a lone process would
        log.warning("poll.progress: Redis unavailable, announcing without it", exc_info=True)
        return 0.0
    return ttl / 1000 if ttl and ttl > 0 else 0.005


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
    for _ in range(MAX_WAITS):  # bounded: then announce anyway
        held = claim(poll_id, meeting_id)
        if not held:
            break
        socketio.sleep(held)  # another process announced within the interval: after its slot
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
