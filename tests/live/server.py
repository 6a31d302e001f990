"""A real `meeting-server serve` with a meeting set up, and real Socket.IO tablets, for integration tests.

    from tests.live.server import live_server, LiveServer, Tablet   # noqa: F401  (the fixture too)

    def test_x(live_server):
        room = live_server.setup_room(tablets=10, pages=5)
        tablets = live_server.connect(room.tablet_tokens)
        ...

`LiveServer` builds on `tests.serverproc.ServerProcess` (every process stopped by pid, even on failure).
It picks a free loopback port and a temporary data dir, prepares the schema (the models' tables, stamped as
migrated: the migration may lag behind the models until the lead regenerates it) and an organizer account,
and can be killed (SIGKILL) and started again on the same port and data dir. `Tablet` is a
python-socketio client that records every event it receives (with the time), reconnects by itself, and
answers `call(event, data)` with the ack.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.serverproc import ServerProcess

ORG_USER, ORG_PASSWORD = "live-org", "live-password-123"


class Tablet:
    """One real Socket.IO client (websocket transport) that records what it receives."""

    def __init__(self, url: str, token: str, *, meeting_id: int | None = None, name: str = ""):
        import socketio

        self.url, self.name = url, name
        self.auth: dict[str, Any] = {"token": token}
        if meeting_id is not None:
            self.auth["meeting_id"] = meeting_id
        self.sio = socketio.Client(
            reconnection=True,
            reconnection_delay=0.3,
            reconnection_delay_max=1.5,
            randomization_factor=0.3,
            request_timeout=10,
        )
        self.lock = threading.Lock()
        #: (event, payload, perf_counter time); a "(connect)" marker at each (re)connection.
        self.events: list[tuple[str, Any, float]] = []
        self.sio.on("*", self._on_any)
        self.sio.on("connect", lambda: self._record("(connect)", None))
        self.sio.on("disconnect", lambda *a: self._record("(disconnect)", None))

    def _record(self, name: str, data: Any) -> None:
        with self.lock:
            self.events.append((name, data, time.perf_counter()))

    def _on_any(self, event: str, *args: Any) -> None:
        self._record(event, args[0] if args else None)

    def connect(self, timeout: float = 15) -> Tablet:
        self.sio.connect(self.url, auth=self.auth, transports=["websocket"], wait_timeout=timeout)
        return self

    def disconnect(self) -> None:
        if self.sio.connected:
            self.sio.disconnect()

    def call(self, event: str, data: Any = None, timeout: float = 15) -> dict:
        return self.sio.call(event, {} if data is None else data, timeout=timeout)

    def payloads(self, name: str, since: int = 0) -> list[Any]:
        with self.lock:
            return [p for n, p, _ in self.events[since:] if n == name]

    def mark(self) -> int:
        with self.lock:
            return len(self.events)

    def last_state(self, since: int = 0) -> dict | None:
        states = self.payloads("state", since)
        return states[-1] if states else None

    def wait_for(self, pred: Callable[[Tablet], bool], timeout: float = 20, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred(self):
                return
            time.sleep(0.02)
        raise AssertionError(f"{self.name}: timed out waiting for {what or pred}")


@dataclass
class LiveRoom:
    meeting_id: int
    org_token: str
    document_id: int
    presenter_token: str
    tablet_tokens: list[str]
    attendee_ids: list[int] = field(default_factory=list)


class LiveServer(ServerProcess):
    """`meeting-server serve` on a free loopback port, with the schema and an organizer account ready."""

    def __init__(self, data_dir: Path, *, worker: bool = False, **kw: Any):
        super().__init__(data_dir, worker=worker, **kw)
        self.tablets: list[Tablet] = []

    def prepare(self) -> LiveServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._create_schema()
        self.cli("create-user", ORG_USER, "--password", ORG_PASSWORD)
        return self

    def _create_schema(self) -> None:
        """The schema of the models, stamped as migrated (as the unit tests' `create_all`).

        While developers add models faster than the lead regenerates the migration, the migration lags
        behind the models; `serve` then finds the database at head and leaves it alone.
        """
        from alembic import command
        from sqlalchemy import create_engine

        from meeting_server import models  # noqa: F401
        from meeting_server.config import Settings
        from meeting_server.core import migrate
        from meeting_server.core.db import Base

        url = Settings.from_env({k: v for k, v in self.env.items() if k.startswith("MEETING_")}).database_url
        engine = create_engine(url)
        try:
            Base.metadata.create_all(engine)
        finally:
            engine.dispose()
        command.stamp(migrate.alembic_config(url), "head")

    def restart(self, timeout: float = 60) -> LiveServer:
        """Start again on the same port and data dir (after `kill()`)."""
        if getattr(self, "_log", None):
            self._log.close()
            self._log = None
        deadline = time.monotonic() + 20
        while True:  # the port may linger for a moment after SIGKILL
            try:
                self.start(timeout)
                return self
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)

    # -- setup over the REST contract -------------------------------------------------
    def ok(
        self, method: str, path: str, body: Any = None, token: str | None = None, status: int = 200
    ) -> Any:
        code, data = self.json(method, path, body, token)
        assert code == status, (method, path, code, data)
        return data

    def setup_room(self, tablets: int = 10, pages: int = 5) -> LiveRoom:
        from tests.conftest import make_pdf

        token = self.login(ORG_USER, ORG_PASSWORD)
        m = self.ok("POST", "/api/v1/meetings", {"title": "实时会议 Live meeting"}, token, 201)
        mid = m["id"]
        presenter = self.ok(
            "POST",
            f"/api/v1/meetings/{mid}/attendees",
            {"name": "主讲人 Presenter", "role": "presenter", "seat": "P1"},
            token,
            201,
        )
        status, doc = self.upload(f"/api/v1/meetings/{mid}/documents", "flip.pdf", make_pdf(pages), token)
        assert status == 202, doc
        att = [
            self.ok(
                "POST",
                f"/api/v1/meetings/{mid}/attendees",
                {"name": f"代表{i:03d}", "seat": f"{i:03d}"},
                token,
                201,
            )
            for i in range(1, tablets + 1)
        ]

        def join(join_token: str) -> str:
            return self.ok("POST", "/api/v1/join", {"token": join_token})["session_token"]

        with ThreadPoolExecutor(8) as ex:
            sessions = list(ex.map(join, [a["join_token"] for a in att]))
        return LiveRoom(
            mid, token, doc["id"], join(presenter["join_token"]), sessions, [a["id"] for a in att]
        )

    def tablet(self, token: str, name: str = "", **kw: Any) -> Tablet:
        t = Tablet(self.url, token, name=name, **kw)
        self.tablets.append(t)
        return t.connect()

    def connect(self, tokens: list[str], workers: int = 10) -> list[Tablet]:
        with ThreadPoolExecutor(workers) as ex:
            return list(ex.map(lambda it: self.tablet(it[1], f"tablet-{it[0]}"), enumerate(tokens)))

    def stop(self) -> None:
        for t in self.tablets:
            try:
                t.sio.reconnection = False
                t.disconnect()
            except Exception:  # the server may be gone; the client is dropped either way
                pass
        self.tablets.clear()
        super().stop()


@pytest.fixture
def live_server(tmp_path):
    """A prepared, started server; stopped (with every tablet it made) even when the test fails."""
    srv = LiveServer(tmp_path / "live-data")
    try:
        srv.prepare().start()
        yield srv
    finally:
        srv.stop()
