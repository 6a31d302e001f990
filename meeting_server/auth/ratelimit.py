"""Login throttling per account and per client address (in memory, per process)."""

from __future__ import annotations

import time
from collections import defaultdict, deque

from flask import has_request_context, request

from ..core.errors import RateLimited


class LoginLimiter:
    def __init__(self, max_failures: int = 10, window_s: float = 300.0):
        self.max_failures = max_failures
        self.window_s = window_s
        self.failures: dict[str, deque[float]] = defaultdict(deque)

    def _keys(self, username: str) -> list[str]:
        keys = [f"user:{username.lower()}"]
        if has_request_context():
            keys.append(f"addr:{request.remote_addr}")
        return keys

    def _recent(self, key: str) -> deque[float]:
        q = self.failures[key]
        cutoff = time.monotonic() - self.window_s
        while q and q[0] < cutoff:
            q.popleft()
        return q

    def check(self, username: str) -> None:
        for key in self._keys(username):
            q = self._recent(key)
            if len(q) >= self.max_failures:
                wait = int(q[0] + self.window_s - time.monotonic()) + 1
                raise RateLimited(f"too many failed logins; try again in {wait} s", retry_after=wait)

    def fail(self, username: str) -> None:
        now = time.monotonic()
        for key in self._keys(username):
            self.failures[key].append(now)

    def success(self, username: str) -> None:
        self.failures.pop(f"user:{username.lower()}", None)

    def reset(self) -> None:
        self.failures.clear()


limiter = LoginLimiter()
