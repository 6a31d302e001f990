"""Background progress for the embedded setup.

A worker process without Redis cannot emit to Socket.IO clients, so the
server reads document progress from the database (the truth) once a second
and tells the organizers what changed. With Redis the worker emits itself.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import or_, select

from ..core import db
from ..core.db import utcnow

log = logging.getLogger(__name__)


def start(app) -> None:
    """Background tasks of `serve`: seat presence (heartbeat, last seen) always; document progress without Redis."""
    from ..extensions import socketio
    from . import presence

    socketio.start_background_task(presence.loop, socketio)
    if app.config["SETTINGS"].redis_url:
        return
    socketio.start_background_task(_loop)


def _loop() -> None:
    from ..extensions import socketio

    seen: dict[int, tuple] = {}
    since = utcnow() - dt.timedelta(seconds=5)
    while True:
        socketio.sleep(1.0)
        try:
            since = poll_once(seen, since, socketio.emit)
        except Exception:  # never let the watcher die; the database may be briefly unavailable
            log.warning("document progress watcher failed", exc_info=True)


def poll_once(seen: dict[int, tuple], since: dt.datetime, emit) -> dt.datetime:
    from ..documents.models import Document
    from ..documents.service import audience_rooms, document_json

    now = utcnow()
    with db.reader() as s:
        rows = list(
            s.scalars(
                select(Document).where(or_(Document.status == "processing", Document.updated_at >= since))
            )
        )
        out = []
        for d in rows:
            key = (d.version, d.status, d.pages_done, d.page_count)
            if seen.get(d.id) != key:
                seen[d.id] = key
                # Only the document's audience may learn of it (confidential documents).
                out.append((document_json(d), audience_rooms(s, d, group="staff"), audience_rooms(s, d)))
    for doc, staff_rooms, all_rooms in out:
        for room in staff_rooms:
            emit("document", doc, to=room)
        if doc["status"] == "ready":
            for room in all_rooms:
                emit("documents.changed", {"document_id": doc["id"], "version": doc["version"]}, to=room)
    return now - dt.timedelta(seconds=2)
