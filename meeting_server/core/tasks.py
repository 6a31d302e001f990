"""Background work through Huey: SQLite-backed by default, Redis when configured.

CPU-heavy jobs (rendering, conversion, archives) run in `meeting-server
worker` processes, never on the server's event loop. In tests the queue runs
jobs inline (`tasks_immediate`).
"""

from __future__ import annotations

import importlib
import logging
import os
from typing import Any

from huey import RedisHuey, SqliteHuey

from ..config import Settings

log = logging.getLogger(__name__)

#: Every background job: name -> "module:function". Each takes plain ids.
JOBS = {
    "render_document": "meeting_server.documents.jobs:render_document",
    "watermark_pages": "meeting_server.documents.watermarks:watermark_pages",
    "export_annotations": "meeting_server.annotations.jobs:export_annotations",
    "build_minutes": "meeting_server.archive.jobs:build_minutes",
    "build_archive": "meeting_server.archive.jobs:build_archive",
}

#: The Socket.IO message-queue channel: Flask-SocketIO's default, which `create_app` keeps.
SOCKETIO_CHANNEL = "flask-socketio"

huey: Any = None
settings: Settings | None = None
_tasks: dict[str, Any] = {}
_ready_pid: int | None = None
_emitter: Any = None


def configure(s: Settings) -> Any:
    global huey, settings, _ready_pid, _emitter
    settings = s
    _ready_pid = None
    _emitter = None
    if s.redis_url:
        huey = RedisHuey("meeting-server", url=s.redis_url, immediate=s.tasks_immediate)
    else:
        huey = SqliteHuey(
            "meeting-server", filename=str(s.data_dir / "tasks.sqlite"), immediate=s.tasks_immediate
        )
    _tasks.clear()
    for name, target in JOBS.items():
        module, func = target.split(":")
        fn = getattr(importlib.import_module(module), func)
        _tasks[name] = huey.task(retries=2, retry_delay=2, name=name)(fn)
    return huey


def enqueue(name: str, *args: Any) -> None:
    _tasks[name](*args)


def enqueue_in(delay: float, name: str, *args: Any) -> None:
    """Run a job once `delay` seconds have passed (the consumer's scheduler starts it)."""
    _tasks[name].schedule(args=args, delay=delay)


def ensure_worker_ready() -> None:
    """In a worker process: configure database and storage once per process (after fork)."""
    global _ready_pid
    from . import db, storage

    if settings is None:
        raise RuntimeError("tasks not configured")
    if settings.tasks_immediate or _ready_pid == os.getpid():
        return
    db.engine = None  # an engine inherited through fork must not be reused
    db.configure(settings.database_url)
    storage.configure(settings.data_dir)
    _ready_pid = os.getpid()


def notify(event: str, data: Any, to: str) -> None:
    """Tell connected clients about background progress.

    Inline jobs emit directly; worker processes emit through Redis when it is
    configured; otherwise the server's progress watcher reads the database.
    """
    global _emitter
    if settings is None:
        return
    try:
        if settings.tasks_immediate:
            from ..extensions import socketio

            socketio.emit(event, data, to=to)
        elif settings.redis_url:
            if _emitter is None:
                import socketio as sio

                # The channel Flask-SocketIO's servers listen on (python-socketio's own default is
                # "socketio": a worker emitting there is heard by nobody).
                _emitter = sio.RedisManager(settings.redis_url, channel=SOCKETIO_CHANNEL, write_only=True)
            _emitter.emit(event, data, room=to, namespace="/")
    except Exception:  # progress is advisory; the database stays the truth
        log.warning("could not send %s", event, exc_info=True)
