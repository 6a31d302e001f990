"""Shared fixtures: an app on in-memory SQLite, API clients per role, tablets."""

from __future__ import annotations

import io
import itertools
import os
from dataclasses import dataclass
from typing import Any

import pytest

from meeting_server.config import Settings

_counter = itertools.count(1)


def ci() -> bool:
    return os.environ.get("CI") == "true"


def need(condition: bool, what: str) -> None:
    """Skip a test whose system dependency is missing, except under CI, where it must fail."""
    if condition:
        return
    if ci():
        pytest.fail(f"CI=true but {what}")
    pytest.skip(what)


def make_settings(tmp_path, **kw: Any) -> Settings:
    base = dict(
        data_dir=tmp_path / "data",
        database_url="sqlite://",
        secret_key="test-secret-key-0123456789",
        async_mode="threading",
        tasks_immediate=True,
        testing=True,
        password_hash_method="pbkdf2:sha256:1000",
    )
    base.update(kw)
    return Settings(**base)


test_settings = make_settings  # the old name; never collected as a test
test_settings.__test__ = False  # type: ignore[attr-defined]


@pytest.fixture(autouse=True, scope="session")
def attendance_per_change():
    """In-process tests see one `attendance` broadcast per change (`MIN_INTERVAL = 0`).

    The server folds check-in storms (meeting_server/attendance/broadcast.py): a folded change is sent
    by a trailing broadcast on a background thread, which in an in-process test would read the test's
    database (one shared SQLite connection) while the test writes to it. Session-scoped, so it holds
    for module-scoped fixtures too (they run before function-scoped ones);
    tests/live/test_attendance_coalescing.py sets its own interval to test the folding; real server
    processes (tests/serverproc.py) keep the default.
    """
    from meeting_server.attendance import broadcast

    saved = broadcast.MIN_INTERVAL
    broadcast.MIN_INTERVAL = 0.0
    yield
    broadcast.MIN_INTERVAL = saved


@pytest.fixture(autouse=True)
def attendance_fold_state():
    """The fold state is keyed by meeting id, and every test's database starts again at meeting 1."""
    from meeting_server.attendance import broadcast

    broadcast.reset()
    yield
    broadcast.reset()


@pytest.fixture
def settings(tmp_path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def app(settings):
    from meeting_server import create_app
    from meeting_server.auth.ratelimit import limiter
    from meeting_server.core import db
    from meeting_server.core.db import Base

    app = create_app(settings)
    Base.metadata.create_all(db.engine)
    limiter.reset()
    yield app
    db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@dataclass
class Api:
    """An HTTP client that sends one bearer token."""

    client: Any
    token: str | None = None
    user: dict | None = None

    def _headers(self, extra: dict | None = None) -> dict:
        h = dict(extra or {})
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        return h

    def get(self, url: str, **kw):
        r = self.client.get(url, headers=self._headers(kw.pop("headers", None)), **kw)
        r.get_data()  # read the body, then release files behind send_file
        r.close()
        return r

    def post(self, url: str, json: Any = None, **kw):
        if "data" in kw:
            return self.client.post(url, headers=self._headers(kw.pop("headers", None)), **kw)
        return self.client.post(url, json=json if json is not None else {}, headers=self._headers(kw.pop("headers", None)), **kw)

    def patch(self, url: str, json: Any = None, **kw):
        return self.client.patch(url, json=json or {}, headers=self._headers(kw.pop("headers", None)), **kw)

    def delete(self, url: str, **kw):
        return self.client.delete(url, headers=self._headers(kw.pop("headers", None)), **kw)

    def upload(self, url: str, data: bytes, filename: str = "file.pdf", **fields: Any):
        form = {"file": (io.BytesIO(data), filename), **{k: str(v) for k, v in fields.items()}}
        return self.client.post(url, data=form, content_type="multipart/form-data", headers=self._headers())


def make_user(app, username: str, role: str = "organizer", password: str = "password-123") -> None:
    from meeting_server.auth.service import create_user
    from meeting_server.core import db

    with db.transaction() as s:
        create_user(s, username, password, role=role)


def login(client, username: str, password: str = "password-123") -> Api:
    r = client.post("/api/v1/auth/login", json={"username": username, "password": password})
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    return Api(client, body["token"], body["user"])


@pytest.fixture
def admin(app, client) -> Api:
    make_user(app, "admin", "admin")
    return login(client, "admin")


@pytest.fixture
def organizer(app, client) -> Api:
    make_user(app, "org1", "organizer")
    return login(client, "org1")


@pytest.fixture
def other_organizer(app) -> Api:
    make_user(app, "org2", "organizer")
    return login(app.test_client(), "org2")


@pytest.fixture
def anon(client) -> Api:
    return Api(client)


def make_pdf(pages: int = 3, text: str = "测试 Test page") -> bytes:
    import pymupdf

    doc = pymupdf.open()
    font = pymupdf.Font("cjk")
    for i in range(pages):
        page = doc.new_page(width=595, height=842)
        page.insert_font(fontname="cjk", fontbuffer=font.buffer)
        page.insert_text((72, 100), f"{text} {i + 1}", fontname="cjk", fontsize=24)
        page.draw_rect(pymupdf.Rect(72, 200, 300, 400), color=(0, 0, 1), fill=(0.8, 0.8, 1))
    doc.subset_fonts()
    return doc.tobytes()


@dataclass
class Room:
    """A meeting with one seat per role, ready for tests of the live room."""

    app: Any
    org: Api
    meeting: dict
    seats: dict[str, dict]  # role -> attendee json (with join_token)
    document: dict | None = None

    def join(self, role: str) -> Api:
        c = self.app.test_client()
        r = c.post("/api/v1/join", json={"token": self.seats[role]["join_token"]})
        assert r.status_code == 200, r.get_json()
        return Api(c, r.get_json()["session_token"])

    def tablet(self, role: str):
        """A Socket.IO test client holding the seat of `role`."""
        from meeting_server.extensions import socketio

        api = self.join(role)
        return socketio.test_client(self.app, auth={"token": api.token})

    def console(self):
        from meeting_server.extensions import socketio

        return socketio.test_client(self.app, auth={"token": self.org.token, "meeting_id": self.meeting["id"]})


def create_meeting(org: Api, **kw) -> dict:
    body = {"title": kw.pop("title", f"会议 Meeting {next(_counter)}"), **kw}
    r = org.post("/api/v1/meetings", json=body)
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def add_attendee(org: Api, meeting_id: int, name: str, role: str = "attendee", seat: str | None = None) -> dict:
    body = {"name": name, "role": role}
    if seat:
        body["seat"] = seat
    r = org.post(f"/api/v1/meetings/{meeting_id}/attendees", json=body)
    assert r.status_code == 201, r.get_json()
    return r.get_json()


@pytest.fixture
def room(app, organizer) -> Room:
    m = create_meeting(organizer, quorum={"kind": "fraction", "value": 0.5})
    seats = {}
    for i, role in enumerate(("chair", "presenter", "secretary", "attendee", "observer"), start=1):
        seats[role] = add_attendee(organizer, m["id"], f"{role}-{i}", role, f"S{i:02d}")
    return Room(app, organizer, m, seats)


@pytest.fixture
def room_with_doc(room) -> Room:
    r = room.org.upload(f"/api/v1/meetings/{room.meeting['id']}/documents", make_pdf(5), "agenda.pdf", title="材料 Paper")
    assert r.status_code == 202, r.get_json()
    doc = room.org.get(f"/api/v1/documents/{r.get_json()['id']}").get_json()
    assert doc["status"] == "ready", doc
    room.document = doc
    return room


def events(sio_client, name: str) -> list[Any]:
    """The payloads of every `name` event received so far (and forget them)."""
    return [e["args"][0] if e["args"] else None for e in sio_client.get_received() if e["name"] == name]
