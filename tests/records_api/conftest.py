"""Fixtures of the records tests: a whole meeting run through the API, its archive and minutes."""

from __future__ import annotations

import contextlib
import math
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Api, Room, add_attendee, create_meeting, login, make_pdf, make_user, test_settings

TITLE = "第十四届常务委员会第三次会议"
#: Who sits in the meeting: (name, role, seat).
PEOPLE = [
    ("王建国", "chair", "A01"),
    ("李秀英", "secretary", "A02"),
    ("张伟", "presenter", "A03"),
    ("刘洋", "attendee", "A04"),
    ("陈静", "attendee", "A05"),
    ("Anna Schmidt", "attendee", "A06"),
    ("赵敏", "observer", "B01"),
]


def _signature(seed: int) -> dict:
    """What a tablet's signing pad sends: cursive strokes of [x, y, ms] in 0..1 of a 600 x 200 pad."""
    strokes, x = [], 0.06
    for k in range(2 + seed % 2):
        width, loops = 0.18 + 0.03 * ((seed + k) % 3), 2 + (seed + k) % 3
        stroke = []
        for j in range(60):
            t = j / 59
            a = 2 * math.pi * loops * t
            px = x + width * t + 0.035 * math.sin(a)
            py = 0.5 - 0.28 * math.cos(a) * (0.6 + 0.4 * math.sin(math.pi * t)) + 0.08 * (t - 0.5)
            stroke.append([round(min(max(px, 0), 1), 4), round(min(max(py, 0), 1), 4), 12 * j])
        strokes.append(stroke)
        x += width + 0.07
    return {"width": 600, "height": 200, "strokes": strokes}


#: Who signs with a finger at check-in (the others check in without a signature).
SIGNATURES = {"王建国": _signature(1), "李秀英": _signature(2), "刘洋": _signature(3)}


def ack(client, event: str, payload: Any = None) -> dict:
    return client.emit(event, {} if payload is None else payload, callback=True)


def ok(client, event: str, payload: Any = None) -> dict:
    a = ack(client, event, payload)
    assert a["ok"] is True, f"{event}: {a}"
    return a


@contextlib.contextmanager
def fast_voting():
    """The voting domain batches ballots in a short window; tests want every ack at once."""
    with pytest.MonkeyPatch.context() as mp:
        try:
            from meeting_server.voting import batcher, progress
        except ImportError:
            yield
            return
        mp.setattr(progress, "INTERVAL_S", 0)
        mp.setattr(batcher, "WINDOW_S", 0)
        progress.reset()
        try:
            yield
        finally:
            progress.reset()


@dataclass
class Held:
    """A meeting held through the API, with what the tests check the records against."""

    room: Room
    mid: int
    agenda: list[int]
    names: list[str]
    polls: dict[str, dict] = field(default_factory=dict)
    tallies: dict[str, list] = field(default_factory=dict)
    annotations: int = 0
    tablets: dict[str, Any] = field(default_factory=dict)

    @property
    def org(self) -> Api:
        return self.room.org


def hold_meeting(room_factory, *, approve: bool = True, language: str = "zh") -> Held:
    """Setup, check-ins, page flips, two polls (one secret), annotations, minutes, end, approval."""
    room, mid = room_factory(language)
    org = room.org
    agenda = []
    for title, minutes in (("审议2025年预算执行情况报告", 30), ("关于城市更新条例（草案）的说明", 20)):
        r = org.post(f"/api/v1/meetings/{mid}/agenda", json={"title": title, "duration_minutes": minutes})
        assert r.status_code == 201, r.get_json()
        agenda.append(r.get_json()["id"])
    r = org.upload(
        f"/api/v1/meetings/{mid}/documents", make_pdf(4, "预算报告"), "预算报告.pdf", title="预算执行报告"
    )
    assert r.status_code in (201, 202), r.get_json()
    doc = org.get(f"/api/v1/documents/{r.get_json()['id']}").get_json()
    assert doc["status"] == "ready", doc
    held = Held(room, mid, agenda, [p[0] for p in PEOPLE])
    t = held.tablets
    for name, _role, _seat in PEOPLE:
        if name != "陈静":
            t[name] = room_tablet(room, name)
    for name in t:
        if name not in ("Anna Schmidt",):
            signature = SIGNATURES.get(name)
            a = ok(t[name], "checkin", {"signature": signature} if signature else None)
            assert a["signed"] is (signature is not None), a
    ok(t["王建国"], "meetings.start")
    ok(t["Anna Schmidt"], "checkin")  # late
    for page in (1, 2, 3):
        ok(t["张伟"], "present", {"document_id": doc["id"], "page": page})
    for k, name in enumerate(("刘洋", "Anna Schmidt")):
        for i in range(3):
            pts = [[80 + 10 * i, 120 + j * 5] for j in range(20)]
            ok(
                t[name],
                "annotation.save",
                {
                    "document_id": doc["id"],
                    "id": f"s{k}-{i}",
                    "page": 1 + i % 2,
                    "kind": "pen",
                    "points": pts,
                    "color": "#d01010",
                },
            )
            held.annotations += 1
    ok(t["刘洋"], "annotation.share", {"document_id": doc["id"], "to": "room", "ids": ["s0-0"]})
    sec = t["李秀英"]
    ok(
        sec,
        "minutes.save",
        {
            "agenda_item_id": agenda[0],
            "base_revision": 0,
            "client_revision_id": "r1",
            "notes": "## 审议意见\n- 预算执行**总体良好**\n- 建议加强绩效评价",
            "decisions": ["原则同意2025年预算执行情况报告"],
        },
    )
    with fast_voting():
        voters = ["王建国", "张伟", "刘洋", "Anna Schmidt"]
        motion = org.post(
            f"/api/v1/meetings/{mid}/polls",
            json={"title": "关于批准预算执行报告的决议", "kind": "motion", "agenda_item_id": agenda[0]},
        ).get_json()
        secret = org.post(
            f"/api/v1/meetings/{mid}/polls",
            json={"title": "推选监督小组组长", "options": ["刘洋", "张伟", "陈静"], "secret": True},
        ).get_json()
        for poll, choices in ((motion, [[0], [0], [1], [0]]), (secret, [[0], [0], [1], [2]])):
            ok(t["王建国"], "poll.open", {"poll_id": poll["id"]})
            for name, c in zip(voters, choices, strict=True):
                ok(t[name], "vote", {"poll_id": poll["id"], "choices": c, "ballot_id": str(uuid.uuid4())})
            ok(t["王建国"], "poll.close", {"poll_id": poll["id"]})
        held.polls = {"motion": motion, "secret": secret}
        for key, poll in held.polls.items():
            held.tallies[key] = org.get(f"/api/v1/polls/{poll['id']}").get_json()["tally"]
    ok(t["刘洋"], "checkout")  # left early
    ok(t["王建国"], "meetings.end")
    ok(
        sec,
        "minutes.save",
        {
            "agenda_item_id": agenda[1],
            "base_revision": 0,
            "client_revision_id": "r2",
            "notes": "张伟同志作说明。会议认为草案**基本成熟**。",
            "decisions": ["草案提请下次会议审议"],
        },
    )
    ok(
        sec,
        "minutes.save",
        {
            "agenda_item_id": 0,
            "base_revision": 0,
            "client_revision_id": "r3",
            "notes": "会议于下午五时结束。",
        },
    )
    if approve:
        ok(sec, "minutes.submit")
        ok(t["王建国"], "minutes.approve")
    return held


def room_tablet(room: Room, name: str):
    from meeting_server.extensions import socketio

    r = room.app.test_client().post("/api/v1/join", json={"token": room.seats[name]["join_token"]})
    assert r.status_code == 200, r.get_json()
    c = socketio.test_client(room.app, auth={"token": r.get_json()["session_token"]})
    assert c.is_connected()
    return c


def make_room(app, org: Api, language: str = "zh") -> tuple[Room, int]:
    m = create_meeting(
        org,
        title=TITLE,
        location="市人大常委会第一会议室",
        language=language,
        starts_at="2026-03-01T01:30:00Z",
    )
    seats = {name: add_attendee(org, m["id"], name, role, seat) for name, role, seat in PEOPLE}
    return Room(app, org, m, seats), m["id"]


@pytest.fixture(scope="session")
def _key_files(tmp_path_factory) -> Path:
    """One archive key and organization certificate for the whole session (RSA key generation is slow)."""
    from meeting_server.archive.keys import load_or_create_keys

    base = tmp_path_factory.mktemp("keys")
    load_or_create_keys(base, "示例单位 Example Organization")
    return base / "keys"


@pytest.fixture
def settings(tmp_path, _key_files):
    """The shared settings, with this session's keys already in the data dir."""
    import shutil

    s = test_settings(tmp_path)
    shutil.copytree(_key_files, s.data_dir / "keys", ignore=shutil.ignore_patterns(".lock"))
    return s


@pytest.fixture
def held_factory(app, organizer):
    def factory(**kw) -> Held:
        return hold_meeting(lambda lang: make_room(app, organizer, lang), **kw)

    return factory


@pytest.fixture(scope="module")
def sealed(tmp_path_factory):
    """One whole meeting, held once per module on its own app: the sealed archive and minutes on disk."""
    from meeting_server import create_app
    from meeting_server.auth.ratelimit import limiter
    from meeting_server.core import db
    from meeting_server.core.db import Base

    tmp = tmp_path_factory.mktemp("sealed")
    app = create_app(test_settings(tmp))
    engine = db.engine
    Base.metadata.create_all(engine)
    limiter.reset()
    try:
        make_user(app, "org1", "organizer")
        org = login(app.test_client(), "org1")
        held = hold_meeting(lambda lang: make_room(app, org, lang))
        archive = org.get(f"/api/v1/meetings/{held.mid}/archive")
        assert archive.status_code == 200, archive.get_data()[:500]
        zip_path = tmp / "archive.zip"
        zip_path.write_bytes(archive.data)
        minutes_en = org.get(f"/api/v1/meetings/{held.mid}/minutes?lang=en")
        assert minutes_en.status_code == 200
        keys = app.test_client().get("/api/v1/keys").get_json()
        meeting = org.get(f"/api/v1/meetings/{held.mid}").get_json()
        audit = org.get(f"/api/v1/meetings/{held.mid}/audit?limit=5000").get_json()
        yield {
            "zip": zip_path,
            "held": held,
            "keys": keys,
            "meeting": meeting,
            "audit": audit,
            "minutes_en": minutes_en.data,
            "etag": archive.headers.get("ETag"),
            "dir": Path(tmp),
        }
    finally:
        _quiesce()
        engine.dispose()


def _quiesce(limit: float = 3.0) -> None:
    """Let background tasks that still read the database (the attendance domain's trailing
    `attendance` broadcast, a thread in tests) finish before the engine is disposed: SQLite
    crashes the process when a connection is closed under a running query. Bounded."""
    try:
        from meeting_server.attendance import broadcast
    except ImportError:
        return
    pending = getattr(broadcast, "_pending", None)
    if pending is None:
        return
    deadline = time.monotonic() + limit
    while pending and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # the task reads the counts just after it leaves `_pending`
