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


def _guard_event_names(server) -> None:
    """An event name that is not a string (a dict, a list) reaches `_unknown` instead of crashing.

    python-socketio looks the name up in a dict of handlers: an unhashable name raises TypeError in the
    event's green thread and the client's callback is never answered. The Socket.IO protocol says the
    name is a string; anything else is named by its repr (which never equals a real event name).
    """
    inner = server._handle_event_internal

    def handle(srv, sid, eio_sid, data, namespace, id):
        if data and not isinstance(data[0], str):
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
