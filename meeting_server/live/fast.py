"""The fast path for hot, ephemeral room events (pointer, ink, seat status).

These are declared like every other command (`write=False`, name, roles,
schema: one registry, one protocol doc), but a Socket.IO event for one of them
never reaches the database pipeline: no transaction, no Flask request
context, no audit. The handler is bound straight on the python-socketio
server and does only what still matters for an event nobody stores:

- the sender must be connected (identity from `connect`),
- its role, as known at connect, must be allowed (a role change or a revoked
  session reaches these events when the tablet reconnects; revoking a seat
  also disconnects its sockets on this process),
- the payload must pass the command's schema,
- each sender has a token bucket per event; excess events are dropped,
  counted, and answered `rate_limited` (when the sender asked for an ack).

Command functions take `(ctx, payload)` with `ctx.actor`, `ctx.sid` and
`ctx.emit(event, data, to, skip_sid)`, so the same function also runs through
the normal pipeline (e.g. `commands.run` in a script).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from ..core.commands import ORGANIZER, ack_error, registry, validate
from ..core.errors import AppError, Forbidden, Invalid, RateLimited, Unauthorized

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limit:
    per_second: float
    burst: float


#: Fast commands and their per-sender limits. Every name here is a `write=False` command.
LIMITS: dict[str, Limit] = {
    "pointer": Limit(30, 30),
    "ink": Limit(30, 30),
    "ink.clear": Limit(5, 5),
    "seat.status": Limit(5, 10),
}

#: The rate limiter's clock (tests freeze it).
clock = time.monotonic
#: Dropped events per command name (rate limit), since the app was built.
dropped: Counter[str] = Counter()
#: (sid, name) -> [tokens, last refill time]
_buckets: dict[tuple[str, str], list[float]] = {}
#: Meetings with presenter ink drawn since the last page change (this process).
ink_dirty: set[int] = set()
#: Per sender ("seat:<id>" / "user:<id>"): the `n` of its last relayed pointer or ink event.
_counters: dict[str, int] = {}


def reset() -> None:
    dropped.clear()
    _buckets.clear()
    ink_dirty.clear()
    _counters.clear()


def next_n(by: str) -> int:
    """A growing number per sender, so receivers drop relayed events that arrive out of order."""
    n = _counters.get(by, 0) + 1
    _counters[by] = n
    return n


def allow(sid: str, name: str, now: float | None = None) -> bool:
    lim = LIMITS[name]
    now = clock() if now is None else now
    b = _buckets.get((sid, name))
    if b is None:
        b = _buckets[(sid, name)] = [lim.burst, now]
    tokens = min(lim.burst, b[0] + (now - b[1]) * lim.per_second)
    b[1] = now
    if tokens < 1:
        b[0] = tokens
        return False
    b[0] = tokens - 1
    return True


def forget(sid: str) -> None:
    for name in LIMITS:
        _buckets.pop((sid, name), None)


class FastCtx:
    """What a fast command gets: who sent it, from which socket, and an immediate emit."""

    __slots__ = ("actor", "sid", "server")

    def __init__(self, actor, sid: str, server):
        self.actor = actor
        self.sid = sid
        self.server = server

    def emit(self, event: str, data: Any, to: str | list[str] | None, skip_sid: str | None = None) -> None:
        if event not in registry.events:
            raise RuntimeError(f"event {event!r} is not declared by any domain")
        self.server.emit(event, data, to=to, skip_sid=skip_sid)


def _handler(name: str, server):
    cmd = registry.get(name)
    if cmd.write:
        raise RuntimeError(f"{name} writes; it cannot take the fast path")
    from ..core.sockets import connections

    def handle(sid: str, *args: Any) -> dict[str, Any]:
        actor = connections.get(sid)
        try:
            if actor is None:
                raise Unauthorized("not connected to a meeting", code="unauthorized")
            if len(args) > 1:
                raise Invalid("send one payload object with the event", code="invalid")
            data = args[0] if args else None
            if not allow(sid, name):
                dropped[name] += 1
                raise RateLimited(f"too many {name} events; slow down", code="rate_limited")
            payload = validate(cmd, data if data is not None else {})
            if actor.is_user:
                if ORGANIZER not in cmd.roles:
                    raise Forbidden("organizer accounts cannot do this")
            elif actor.role not in cmd.roles:
                raise Forbidden(f"the role {actor.role} may not do this")
            result = cmd.fn(FastCtx(actor, sid, server), payload)
        except AppError as e:
            return ack_error(e)
        except Exception as e:  # an ack, never a dropped callback
            return ack_error(e)
        return {"ok": True, **result} if isinstance(result, dict) else {"ok": True}

    handle.__name__ = "fast_" + name.replace(".", "_")
    return handle


def register(socketio) -> None:
    """Bind the fast handlers on the python-socketio server (replacing the pipeline's for these names)."""
    reset()
    for name in LIMITS:
        socketio.server.on(name, _handler(name, socketio.server))
