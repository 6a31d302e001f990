"""Who is online at which seat, and what each tablet shows: memory first, shared when scaled out.

Each server process keeps its own connections in memory (sid -> device,
attendee -> seat). That is all a single process needs, and it costs no
database or network round trip on the hot path.

With several processes (`MEETING_REDIS_URL`), each also mirrors its seats
into Redis: a set of seen attendees per meeting and one small hash per seat
(field = process id, value = that process's view of the seat). A process
refreshes a heartbeat key every few seconds; a crashed process's entries are
ignored once its heartbeat expires. Redis is only read off the request path
(disconnects and the background refresh), never inside a database
transaction: on SQLite a green thread that yields while holding the write
lock stalls the whole process.

The database keeps `seat_sessions.last_seen_at`, written in batches by the
background loop (one UPDATE per batch), so a restarted server and the
organizer's device list know when each tablet was last there.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from ..core.db import iso, utcnow

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 10
HEARTBEAT_TTL = 30
LAST_SEEN_SECONDS = 30
_BATCH = 500


@dataclass
class Device:
    sid: str
    session_id: int | None
    connected_at: float = field(default_factory=time.time)


@dataclass
class Seat:
    attendee_id: int
    meeting_id: int
    name: str = ""
    seat: str | None = None
    role: str = ""
    devices: dict[str, Device] = field(default_factory=dict)
    following: bool | None = None
    document_id: int | None = None
    page: int | None = None
    battery: float | None = None
    charging: bool | None = None
    last_seen: Any = None  # datetime (UTC)

    def status(self, remote: list[dict] | None = None) -> dict[str, Any]:
        out = {
            "attendee_id": self.attendee_id,
            "seat": self.seat,
            "name": self.name,
            "online": bool(self.devices),
            "devices": len(self.devices),
            "following": self.following,
            "document_id": self.document_id,
            "page": self.page,
            "battery": self.battery,
            "charging": self.charging,
            "last_seen": iso(self.last_seen),
        }
        return merge(out, remote or [])


def merge(local: dict[str, Any], remote: list[dict[str, Any]]) -> dict[str, Any]:
    """Combine this process's view of a seat with other processes' views (the newest report wins)."""
    if not remote:
        return local
    out = dict(local)
    devices = out.get("devices") or 0
    newest = out if out.get("online") else None
    for r in remote:
        devices += r.get("devices") or 0
        if (r.get("last_seen") or "") > (out.get("last_seen") or ""):
            out["last_seen"] = r.get("last_seen")
        if r.get("devices") and (
            newest is None or (r.get("reported") or "") > (newest.get("reported") or "")
        ):
            newest = r
    if newest is not None and newest is not out:
        for k in ("following", "document_id", "page", "battery", "charging"):
            out[k] = newest.get(k)
    out["devices"] = devices
    out["online"] = devices > 0
    return out


class RedisMirror:
    """Shares each process's seats through Redis (several server processes behind nginx)."""

    def __init__(self, url: str, proc: str):
        import redis

        self.r = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2, decode_responses=True)
        self.proc = proc
        #: meeting_id -> attendee_id -> [other processes' views]; refreshed by the background loop.
        self.remote: dict[int, dict[int, list[dict]]] = {}

    @staticmethod
    def seats_key(mid: int) -> str:
        return f"ms:presence:{mid}"

    @staticmethod
    def seat_key(mid: int, aid: int) -> str:
        return f"ms:presence:{mid}:{aid}"

    @staticmethod
    def proc_key(proc: str) -> str:
        return f"ms:proc:{proc}"

    def put(self, seat: Seat, reported: str | None) -> None:
        view = seat.status()
        view["reported"] = reported
        p = self.r.pipeline(transaction=False)
        p.sadd(self.seats_key(seat.meeting_id), seat.attendee_id)
        if seat.devices:
            p.hset(self.seat_key(seat.meeting_id, seat.attendee_id), self.proc, json.dumps(view))
        else:
            p.hdel(self.seat_key(seat.meeting_id, seat.attendee_id), self.proc)
        p.set(self.proc_key(self.proc), "1", ex=HEARTBEAT_TTL)
        p.execute()

    def others(self, mid: int, aid: int) -> list[dict]:
        """Other live processes' views of one seat (a fresh read)."""
        views = self.r.hgetall(self.seat_key(mid, aid))
        views.pop(self.proc, None)
        return self._alive(views)

    def _alive(self, views: dict[str, str]) -> list[dict]:
        if not views:
            return []
        procs = list(views)
        alive = self.r.mget([self.proc_key(p) for p in procs])
        return [json.loads(views[p]) for p, ok in zip(procs, alive, strict=True) if ok]

    def heartbeat(self, meetings: set[int]) -> None:
        self.r.set(self.proc_key(self.proc), "1", ex=HEARTBEAT_TTL)
        for mid in meetings:
            aids = [int(a) for a in self.r.smembers(self.seats_key(mid))]
            p = self.r.pipeline(transaction=False)
            for aid in aids:
                p.hgetall(self.seat_key(mid, aid))
            views = p.execute() if aids else []
            procs = {proc for v in views for proc in v if proc != self.proc}
            procs_l = sorted(procs)
            alive = (
                dict(zip(procs_l, self.r.mget([self.proc_key(x) for x in procs_l]), strict=True))
                if procs_l
                else {}
            )
            out: dict[int, list[dict]] = {}
            for aid, v in zip(aids, views, strict=True):
                lst = [json.loads(val) for proc, val in v.items() if proc != self.proc and alive.get(proc)]
                if lst:
                    out[aid] = lst
            self.remote[mid] = out

    def forget_process(self) -> None:
        self.r.delete(self.proc_key(self.proc))


class Presence:
    def __init__(self, redis_url: str | None = None):
        self.proc = uuid.uuid4().hex[:12]
        self.devices: dict[str, Seat] = {}  # sid -> seat
        self.seats: dict[int, Seat] = {}  # attendee_id -> seat
        #: sid -> meeting id of every connection (organizers too): where to refresh remote views.
        self.meetings_of: dict[str, int] = {}
        #: seat session id -> when it was last seen, not yet written to the database.
        self.dirty: dict[int, Any] = {}
        self.mirror: RedisMirror | None = None
        if redis_url:
            try:
                self.mirror = RedisMirror(redis_url, self.proc)
            except Exception:  # presence is advisory; the room works without it
                log.warning("presence: Redis unavailable, keeping presence per process", exc_info=True)

    # -- connections ------------------------------------------------------
    def connect(self, sid: str, actor, me: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """Record a new connection; for a seat, return its new status for the staff."""
        self.meetings_of[sid] = actor.meeting_id
        if not actor.is_seat:
            return None
        seat = self.seats.get(actor.id)
        if seat is None:
            seat = self.seats[actor.id] = Seat(actor.id, actor.meeting_id)
        me = me or {}
        seat.name = me.get("name") or actor.name
        seat.seat = me.get("seat")
        seat.role = actor.role
        seat.devices[sid] = Device(sid, actor.session_id)
        seat.last_seen = utcnow()
        self.devices[sid] = seat
        if actor.session_id:
            self.dirty[actor.session_id] = seat.last_seen
        return self._publish(seat, None)

    def disconnect(self, sid: str) -> dict[str, Any] | None:
        """Forget a connection; for a seat, return its new status for the staff."""
        self.meetings_of.pop(sid, None)
        seat = self.devices.pop(sid, None)
        if seat is None:
            return None
        dev = seat.devices.pop(sid, None)
        seat.last_seen = utcnow()
        if dev is not None and dev.session_id:
            self.dirty[dev.session_id] = seat.last_seen
        return self._publish(seat, None)

    def report(self, sid: str, values: dict[str, Any]) -> dict[str, Any] | None:
        """A tablet's own report; returns the seat's status when anything the console shows changed."""
        seat = self.devices.get(sid)
        if seat is None:
            return None
        seat.last_seen = utcnow()
        changed = False
        for k, v in values.items():
            if getattr(seat, k) != v:
                setattr(seat, k, v)
                changed = True
        dev = seat.devices.get(sid)
        if dev is not None and dev.session_id:
            self.dirty[dev.session_id] = seat.last_seen
        if not changed:
            return None
        return self._publish(seat, iso(seat.last_seen))

    def _publish(self, seat: Seat, reported: str | None) -> dict[str, Any]:
        remote: list[dict] = []
        if self.mirror is not None:
            try:
                self.mirror.put(seat, reported)
                remote = self.mirror.others(seat.meeting_id, seat.attendee_id)
            except Exception:
                log.warning("presence: Redis update failed", exc_info=True)
        return seat.status(remote)

    # -- reading ----------------------------------------------------------
    def sids_of(self, attendee_id: int, session_id: int | None = None) -> list[str]:
        seat = self.seats.get(attendee_id)
        if seat is None:
            return []
        return [sid for sid, d in seat.devices.items() if session_id is None or d.session_id == session_id]

    def session_online(self, session_id: int) -> bool:
        return any(d.session_id == session_id for s in self.seats.values() for d in s.devices.values())

    def snapshot(self, meeting_id: int) -> dict[int, dict[str, Any]]:
        """attendee_id -> status, for every seat this process (or, scaled out, any live process) knows."""
        remote = self.mirror.remote.get(meeting_id, {}) if self.mirror is not None else {}
        out = {aid: s.status(remote.get(aid)) for aid, s in self.seats.items() if s.meeting_id == meeting_id}
        for aid, views in remote.items():
            if aid not in out:
                out[aid] = merge(
                    {"attendee_id": aid, "online": False, "devices": 0, "last_seen": None}, views
                )
        return out

    # -- background -------------------------------------------------------
    def heartbeat(self) -> None:
        """Refresh the shared view and mark every connected session as seen (for the next flush)."""
        now = utcnow()
        for seat in self.seats.values():
            for d in seat.devices.values():
                if d.session_id:
                    self.dirty[d.session_id] = now
        if self.mirror is not None:
            try:
                self.mirror.heartbeat(set(self.meetings_of.values()))
            except Exception:
                log.warning("presence: Redis heartbeat failed", exc_info=True)

    def flush_last_seen(self) -> int:
        """Write pending `last_seen_at` values in a few short transactions; returns how many."""
        if not self.dirty:
            return 0
        from sqlalchemy import bindparam

        from ..core import db
        from ..roster.models import SeatSession

        pending, self.dirty = self.dirty, {}
        rows = [{"sid_": k, "seen": v} for k, v in pending.items()]
        table = SeatSession.__table__
        stmt = table.update().where(table.c.id == bindparam("sid_")).values(last_seen_at=bindparam("seen"))
        for i in range(0, len(rows), _BATCH):
            with db.transaction() as s:
                s.connection().execute(stmt, rows[i : i + _BATCH])
        return len(rows)


#: The process's presence registry; replaced by `configure` for each app.
current = Presence()


def configure(redis_url: str | None) -> Presence:
    global current
    current = Presence(redis_url)
    return current


def loop(socketio) -> None:
    """Background task of `serve`: heartbeat often, write last-seen times now and then."""
    last_flush = time.monotonic()
    while True:
        socketio.sleep(HEARTBEAT_SECONDS)
        try:
            current.heartbeat()
            if time.monotonic() - last_flush >= LAST_SEEN_SECONDS:
                last_flush = time.monotonic()
                current.flush_last_seen()
        except Exception:  # never let the loop die; the database may be briefly unavailable
            log.warning("presence loop failed", exc_info=True)
