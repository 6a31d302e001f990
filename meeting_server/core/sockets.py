"""Socket.IO side of the pipeline: authenticate at connect, one handler per command."""

from __future__ import annotations

import logging
from typing import Any

from flask import request

from . import db
from .commands import Command, ack_error, execute, registry, unavailable
from .errors import AppError, Invalid, NotFound, Unauthorized
from .identity import Actor

log = logging.getLogger(__name__)

#: sid -> the identity authenticated at connect (per process).
connections: dict[str, Actor] = {}


def authenticate(auth: Any) -> Actor:
    """Resolve the connect payload to an actor bound to one meeting, or raise."""
    from ..auth.service import actor_for_token
    from ..meetings.models import Meeting

    if not isinstance(auth, dict) or not isinstance(auth.get("token"), str):
        raise Unauthorized("connect with auth = {token: …}", code="bad_token")
    with db.reader() as s:
        actor = actor_for_token(s, auth["token"])
        if actor.is_user:
            mid = auth.get("meeting_id")
            try:
                mid = int(mid)
            except (TypeError, ValueError):
                raise Unauthorized(
                    "an organizer connects with auth = {token, meeting_id}", code="meeting_required"
                ) from None
            m = s.get(Meeting, mid)
            if m is None or m.deleted_at is not None:
                raise NotFound("no such meeting")
            if not (actor.is_admin or m.owner_id == actor.id):
                raise Unauthorized("this meeting belongs to another organizer", code="forbidden")
            actor = Actor("user", actor.id, actor.name, actor.role, mid, actor.session_id)
        elif not actor.is_seat:
            raise Unauthorized("unknown credentials", code="bad_token")
    return actor


def _handler(cmd: Command):
    def handle(*args: Any) -> dict[str, Any]:
        actor = connections.get(request.sid)
        if actor is None:
            return ack_error(Unauthorized("not connected to a meeting", code="unauthorized"))
        if len(args) > 1:
            return ack_error(Invalid("send one payload object with the event", code="invalid"))
        data = args[0] if args else None
        try:
            result = execute(cmd, actor, data if data is not None else {}, {}, sid=request.sid)
        except Exception as e:  # every failure becomes an error ack, never a dropped callback
            return ack_error(e)
        if isinstance(result, dict):
            return {"ok": True, **result}
        return {"ok": True}

    handle.__name__ = "on_" + cmd.name.replace(".", "_")
    return handle


def _unknown(event: Any, *args: Any) -> dict[str, Any]:
    """Any event nobody handles: an error ack, so a client waiting for one is not left hanging."""
    return ack_error(Invalid(f"unknown event {str(event)[:80]!r}", code="unknown_event"))


def _failed(e: Exception) -> dict[str, Any]:
    """Whatever a handler raises becomes an error ack (or a refused connection), never a lost callback."""
    if getattr(request, "event", {}).get("message") == "connect":
        err = e if isinstance(e, AppError) else unavailable(e)
        if err is None:
            log.error("connect failed", exc_info=e)
            err = AppError(
                "the server could not accept this connection; try again", code="internal", status=500
            )
        raise refuse(err)
    return ack_error(e)


def register(socketio) -> None:
    for cmd in registry.commands.values():
        if cmd.socket:
            socketio.on_event(cmd.name, _handler(cmd))
    socketio.on_event("*", _unknown)
    socketio.on_error_default(_failed)
    _guard_event_names(socketio.server)
    install_direct_send(socketio.server.eio)
    install_timer_pings(socketio.server.eio)
    if socketio.server.eio.async_mode == "eventlet":  # (importing eventlet elsewhere only warns)
        from . import wsconn

        wsconn.install(socketio.server.eio)


def _guard_event_names(server) -> None:
    """An event name that is not a string (a dict, a list), or is "*", reaches `_unknown` instead of crashing.

    python-socketio looks the name up in a dict of handlers: an unhashable name raises TypeError in the
    event's green thread and the client's callback is never answered. The Socket.IO protocol says the
    name is a string; anything else is named by its repr (which never equals a real event name).
    """
    inner = server._handle_event_internal

    def handle(srv, sid, eio_sid, data, namespace, id):
        if data and (not isinstance(data[0], str) or data[0] == "*"):
            # "*" itself would be dispatched to the catch-all as if it were its name (its arguments
            # shifted by one: the payload in place of the sid); quoted, it is an unknown event.
            data = [repr(data[0])[:80], *data[1:]]
        return inner(srv, sid, eio_sid, data, namespace, id)

    server._handle_event_internal = handle


def refuse(e: AppError) -> Exception:
    """The exception a connect handler raises to refuse: clients get `{message, data: {code, message}}`.

    It must be python-socketio's class: the built-in ConnectionRefusedError is answered with a generic
    "Connection refused by server" and the code is lost (a tablet could not tell a revoked seat from a
    network problem, and would retry for ever).
    """
    from socketio.exceptions import ConnectionRefusedError as Refused

    err = e.to_dict()["error"]
    return Refused(err["message"], err)


# -- direct websocket writes (eventlet) ------------------------------------------------------------
#: Frames written straight to a tablet's socket / handed to its Engine.IO writer (this process).
send_stats = {"direct": 0, "queued": 0}


def _ws_frame(text: str) -> bytes:
    """One unmasked, final RFC 6455 text frame (what a server sends; the same bytes for every client)."""
    data = text.encode("utf-8")
    n = len(data)
    if n <= 125:
        head = bytes((0x81, n))
    elif n <= 0xFFFF:
        head = bytes((0x81, 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x81, 127)) + n.to_bytes(8, "big")
    return head + data


def install_direct_send(eio) -> bool:
    """Write Engine.IO packets straight to an idle websocket instead of waking its writer green thread.

    python-engineio (4.15.1, `engineio/socket.py`) gives each websocket a queue and a writer green
    thread: every frame sent is a `queue.put`, a hub timer, two green thread switches and an encode
    per recipient. A page flip to 1,000 tablets is 1,000 of those. Here a packet is framed once (a
    server's websocket frames are unmasked: the same bytes for every client; python-socketio's
    broadcast already reuses one packet object for all recipients) and written with one non-blocking
    `send` when that is provably in order:

    - the socket is an upgraded websocket, not closing, not in the middle of an upgrade;
    - its queue is empty (nothing older is waiting for the writer), and
    - the websocket's own send lock is free (the writer is not in the middle of a frame; it takes
      the same lock, and between taking packets off the queue and sending them it never yields).

    Anything else (a busy or slow socket, a full kernel buffer, binary data, TLS, another async
    mode) takes python-engineio's normal path. A frame the kernel takes only in part is finished by
    a green thread that holds the send lock until it is out, so the writer cannot interleave.
    Returns whether it was installed (eventlet only; `MEETING_DIRECT_SEND=0` turns it off, for
    before/after benchmarks).
    """
    import os

    if os.environ.get("MEETING_DIRECT_SEND", "1") == "0":
        return False
    if getattr(eio, "async_mode", None) != "eventlet" or getattr(eio, "_direct_send", False):
        return False
    import eventlet
    from eventlet.greenio.base import GreenSocket
    from eventlet.websocket import RFC6455WebSocket

    base_ws = eio._async["websocket"]

    class RecordingWebSocketWSGI(base_ws):
        """The driver's websocket app, keeping the websocket on its Engine.IO socket while it runs."""

        def __init__(self, handler, server):
            owner = getattr(handler, "__self__", None)

            def handle(ws):
                if owner is not None and isinstance(ws, RFC6455WebSocket) and not ws.client:
                    owner.direct_ws = ws
                try:
                    return handler(ws)
                finally:
                    if owner is not None:
                        owner.direct_ws = None

            super().__init__(handle, server)

    eio._async = {**eio._async, "websocket": RecordingWebSocketWSGI}
    slow = eio.send_packet
    sockets = eio.sockets
    last: list[Any] = [None, b""]  # the last packet framed, and its frame

    def finish(ws, rest: bytes) -> None:
        try:
            ws.socket.sendall(rest)
        except OSError:
            pass  # the reader sees the broken connection and closes the socket
        finally:
            ws._sendlock.release()

    def send_packet(sid, pkt) -> None:
        s = sockets.get(sid)
        ws = getattr(s, "direct_ws", None)
        if ws is None and getattr(s, "wsconn", None) is not None and not s.closed:
            send_stats["direct"] += 1  # core/wsconn.py: its Socket.send writes the frame itself
            return s.send(pkt)
        if (
            ws is None
            or pkt.binary
            or s.closed
            or s.closing
            or s.upgrading
            or not s.upgraded
            or ws.websocket_closed
            or s.queue.qsize()
            or type(ws.socket) is not GreenSocket
            or not ws._sendlock.acquire(blocking=False)
        ):
            send_stats["queued"] += 1
            return slow(sid, pkt)
        if last[0] is pkt:
            frame = last[1]
        else:
            frame = _ws_frame(pkt.encode())
            last[0], last[1] = pkt, frame
        try:
            n = ws.socket.fd.send(frame)
        except (BlockingIOError, InterruptedError):
            n = 0
        except OSError:
            ws._sendlock.release()
            send_stats["queued"] += 1
            return slow(sid, pkt)  # let Engine.IO find out the connection is gone
        if n == len(frame):
            ws._sendlock.release()
            send_stats["direct"] += 1
            return None
        if n == 0:
            ws._sendlock.release()
            send_stats["queued"] += 1
            return slow(sid, pkt)
        send_stats["direct"] += 1
        eventlet.spawn_n(finish, ws, frame[n:])  # keeps the lock until the rest is out
        return None

    eio.send_packet = send_packet
    eio._direct_send = True
    return True


def install_timer_pings(eio) -> bool:
    """Send each Engine.IO ping from a hub timer instead of a green thread that sleeps for it.

    python-engineio (4.15.1, `Socket.schedule_ping`) starts a background task per socket after
    every pong: `sleep(ping_interval)`, then send a PING. With eventlet each of those is a started
    green thread parked for 25 s, holding its own saved C stack and Python frame chunk: a few KB
    per tablet, all the time (docs/benchmarks.md, "Memory per tablet"). `eventlet.spawn_after`
    keeps only a timer and a green thread that is not started until it fires, then does the same
    thing the task did after its sleep (same checks, same packet), so pings and the ping timeout
    behave as before. Eventlet only; `MEETING_TIMER_PING=0` turns it off, for before/after
    benchmarks. Returns whether it was installed.
    """
    import os

    if os.environ.get("MEETING_TIMER_PING", "1") == "0":
        return False
    if getattr(eio, "async_mode", None) != "eventlet" or getattr(eio, "_timer_pings", False):
        return False
    import time

    import eventlet
    from engineio import packet
    from engineio.socket import Socket

    start = eio.start_background_task

    def ping_now(s) -> None:  # the body of Socket._send_ping after its sleep
        if not s.closing and not s.closed:
            s.last_ping = time.time()
            s.send(packet.Packet(packet.PING))

    def start_background_task(target, *args, **kwargs):
        owner = getattr(target, "__self__", None)
        if (
            isinstance(owner, Socket)
            and getattr(target, "__func__", None) is Socket._send_ping
            and not args
            and not kwargs
        ):
            return eventlet.spawn_after(eio.ping_interval, ping_now, owner)
        return start(target, *args, **kwargs)

    eio.start_background_task = start_background_task
    eio._timer_pings = True
    return True
