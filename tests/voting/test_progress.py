"""`poll.progress` coalesced across server processes through Redis (a real Redis at MEETING_TEST_REDIS)."""

from __future__ import annotations

import os
import random
import threading
import time

import pytest

from tests.conftest import need

REDIS_URL = os.environ.get("MEETING_TEST_REDIS", "redis://127.0.0.1:6379")


@pytest.fixture
def shared(app, monkeypatch):
    """progress configured with a real Redis, as in a server process of a cluster; keys removed afterwards."""
    import redis

    from meeting_server.voting import progress

    r = redis.Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        r.ping()
    except Exception:
        need(False, f"Redis is not reachable at {REDIS_URL} (set MEETING_TEST_REDIS)")
    progress.configure(REDIS_URL)
    monkeypatch.setattr(progress, "INTERVAL_S", 0.3)
    poll_id, meeting_id = random.randrange(10**12, 10**13), random.randrange(10**12, 10**13)
    try:
        yield r, progress, poll_id, meeting_id
    finally:
        r.delete(progress.slot_key(poll_id, meeting_id))
        progress.configure(None)
        progress.reset()


def test_one_process_holds_the_slot_for_the_interval(shared):
    r, progress, poll_id, mid = shared
    assert progress.claim(poll_id, mid) == 0  # free: ours now
    held = progress.claim(poll_id, mid)  # another process asking within the interval
    assert 0 < held <= progress.INTERVAL_S
    assert r.pttl(progress.slot_key(poll_id, mid)) > 0
    deadline = time.monotonic() + 5
    while progress.claim(poll_id, mid) != 0 and time.monotonic() < deadline:  # bounded: Redis expires it
        time.sleep(0.05)
    assert r.get(progress.slot_key(poll_id, mid)) == str(os.getpid()).encode()


def test_a_touch_while_another_process_holds_the_slot_announces_after_it(shared, monkeypatch):
    """The other process announced a moment ago: ours waits for its slot, then announces (fresh counts)."""
    r, progress, poll_id, mid = shared
    key = progress.slot_key(poll_id, mid)
    assert r.set(key, "other-process", nx=True, px=300)
    seen: list = []
    done = threading.Event()

    def announce(p, m):
        seen.append((p, m, r.get(key)))  # who holds the slot when we announce
        done.set()

    monkeypatch.setattr(progress, "announce", announce)
    progress.touch(poll_id, mid)
    assert done.wait(10)
    assert seen == [(poll_id, mid, str(os.getpid()).encode())]


def test_without_redis_nothing_is_claimed(app):
    from meeting_server.voting import progress

    progress.configure(None)
    assert progress.claim(1, 1) == 0 and progress.claim(1, 1) == 0
