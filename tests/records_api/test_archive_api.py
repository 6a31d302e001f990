"""The archive and minutes routes: 409 before the end, 202 while building, cached by the audit head, keys."""

from __future__ import annotations

import datetime as dt
import io
import zipfile

import pytest

from meeting_server.archive.verify import verify_archive
from meeting_server.core import tasks
from tests.conftest import events
from tests.records_api.conftest import ok


@pytest.fixture
def no_worker(monkeypatch):
    """Jobs are queued but nobody runs them (a busy or absent worker); returns the queue."""
    queued: list[tuple] = []
    monkeypatch.setattr(tasks, "enqueue", lambda name, *args: queued.append((name, *args)))
    return queued


def _end(room) -> int:
    mid = room.meeting["id"]
    assert room.org.post(f"/api/v1/meetings/{mid}/start").status_code == 200
    assert room.org.post(f"/api/v1/meetings/{mid}/end").status_code == 200
    return mid


def test_no_archive_before_the_end(room):
    mid = room.meeting["id"]
    for _ in ("draft", "live"):
        r = room.org.get(f"/api/v1/meetings/{mid}/archive")
        assert r.status_code == 409 and r.get_json()["error"]["code"] == "meeting_not_ended"
        room.org.post(f"/api/v1/meetings/{mid}/start")


def test_202_with_progress_while_the_worker_builds(room, no_worker, tmp_path):
    mid = _end(room)
    r = room.org.get(f"/api/v1/meetings/{mid}/archive?wait=0")
    assert r.status_code == 202 and r.headers["Retry-After"]
    body = r.get_json()
    assert body["status"] == "building" and 0 <= body["progress"] < 1 and body["build"]["state"] == "queued"
    assert no_worker == [("build_archive", body["build"]["id"])]
    again = room.org.get(f"/api/v1/meetings/{mid}/archive?wait=0")
    assert again.status_code == 202 and len(no_worker) == 1  # asking again does not queue twice
    status = room.org.get(f"/api/v1/meetings/{mid}/archive/status").get_json()
    assert status["status"] == "building" and status["meeting_status"] == "ended"
    # the worker runs the job; the organizers hear its progress
    console = room.console()
    console.get_received()
    from meeting_server.archive import jobs

    jobs.build_archive(body["build"]["id"])
    progress = events(console, "archive.progress")
    assert progress[-1]["status"] == "ready" and progress[-1]["progress"] == 1.0
    assert any(0 < p["progress"] < 1 for p in progress)
    r = room.org.get(f"/api/v1/meetings/{mid}/archive")
    assert r.status_code == 200 and r.mimetype == "application/zip"
    path = tmp_path / "a.zip"
    path.write_bytes(r.data)
    assert verify_archive(path).ok


def test_cached_until_something_changes(room):
    mid = _end(room)
    org = room.org
    first = org.get(f"/api/v1/meetings/{mid}/archive")
    assert first.status_code == 200
    assert org.get(f"/api/v1/meetings/{mid}/archive").headers["ETag"] == first.headers["ETag"]
    assert (
        org.get(
            f"/api/v1/meetings/{mid}/archive", headers={"If-None-Match": first.headers["ETag"]}
        ).status_code
        == 304
    )
    ok(room.console(), "minutes.save", {"notes": "会后补记", "base_revision": 0})
    second = org.get(f"/api/v1/meetings/{mid}/archive")
    assert second.status_code == 200 and second.headers["ETag"] != first.headers["ETag"]
    assert second.headers["X-Audit-Head"] != first.headers["X-Audit-Head"]
    with zipfile.ZipFile(io.BytesIO(second.data)) as zf:
        assert "会后补记" in zf.read("minutes.json").decode()


def test_a_failed_build_is_reported_and_retried_on_request(room, monkeypatch):
    from meeting_server.archive import service

    mid = _end(room)
    monkeypatch.setattr(service, "_vote_files", lambda *a: 1 / 0)
    r = room.org.get(f"/api/v1/meetings/{mid}/archive")
    assert r.status_code == 422 and r.get_json()["error"]["code"] == "archive_failed"
    assert "ZeroDivisionError" in r.get_json()["error"]["message"]
    monkeypatch.undo()
    assert room.org.get(f"/api/v1/meetings/{mid}/archive").status_code == 422  # not retried by itself
    assert room.org.get(f"/api/v1/meetings/{mid}/archive?retry=true").status_code == 200


def test_minutes_pdf_202_then_ready(room, no_worker):
    mid = room.meeting["id"]
    r = room.org.get(f"/api/v1/meetings/{mid}/minutes?wait=0")
    assert r.status_code == 202 and r.get_json()["status"] == "building"
    assert no_worker and no_worker[0][0] == "build_minutes"
    from meeting_server.archive import jobs

    jobs.build_minutes(no_worker[0][1])
    r = room.org.get(f"/api/v1/meetings/{mid}/minutes?wait=0")
    assert r.status_code == 200 and r.data[:5] == b"%PDF-"
    assert len(no_worker) == 1


def test_keys_are_public(client, room):
    r = client.get("/api/v1/keys")
    assert r.status_code == 200
    body = r.get_json()
    assert body["algorithm"] == "Ed25519" and len(body["public_key_hex"]) == 64
    assert body["public_key_pem"].startswith("-----BEGIN PUBLIC KEY-----")
    assert len(body["certificate_sha256"]) == 64 and body["organization"]


def test_unknown_query_is_refused(room):
    r = room.org.get(f"/api/v1/meetings/{room.meeting['id']}/archive?bogus=1")
    assert r.status_code == 400


# --------------------------------------------------------------------------- permissions, one line each

ROLES = ("organizer", "other_organizer", "chair", "presenter", "secretary", "attendee", "observer")


def _client(room, role, other_organizer):
    if role == "organizer":
        return room.org
    if role == "other_organizer":
        return other_organizer
    return room.join(role)


HTTP = [
    ("GET", "/minutes", {"organizer", "chair", "secretary"}),
    ("GET", "/minutes/items", {"organizer", "chair", "presenter", "secretary"}),
    ("GET", "/minutes/revisions", {"organizer", "chair", "presenter", "secretary"}),
    ("POST", "/minutes/items", {"organizer", "secretary"}),
    ("GET", "/audit", {"organizer"}),
    ("GET", "/audit/verify", {"organizer"}),
    ("GET", "/archive/status", {"organizer"}),
]


@pytest.mark.parametrize("role", ROLES)
def test_permissions(room, other_organizer, role, no_worker):
    api = _client(room, role, other_organizer)
    base = f"/api/v1/meetings/{room.meeting['id']}"
    for method, path, allowed in HTTP:
        url = base + path + ("?wait=0" if path == "/minutes" else "")
        r = api.get(url) if method == "GET" else api.post(url, json={"notes": "x", "base_revision": 0})
        expected = (200, 202) if role in allowed else (403,)
        assert r.status_code in expected, (role, method, path, r.status_code, r.get_data()[:200])


SOCKET = [
    ("minutes.save", {"notes": "x", "base_revision": 0}, {"organizer", "secretary"}),
    ("minutes.get", {}, {"organizer", "chair", "presenter", "secretary"}),
    ("minutes.revisions", {}, {"organizer", "chair", "presenter", "secretary"}),
    ("minutes.submit", {}, {"organizer", "secretary"}),
    ("minutes.reopen", {}, {"organizer", "chair"}),
]


@pytest.mark.parametrize("role", [r for r in ROLES if r != "other_organizer"])
def test_socket_permissions(room, role):
    c = room.console() if role == "organizer" else room.tablet(role)
    for event, payload, allowed in SOCKET:
        a = c.emit(event, payload, callback=True)
        if role in allowed:
            assert a["ok"] or a["error"]["code"] not in ("forbidden", "unauthorized"), (role, event, a)
        else:
            assert a["ok"] is False and a["error"]["code"] == "forbidden", (role, event, a)


def test_who_approves(room):
    mid = room.meeting["id"]
    tablets = {r: room.tablet(r) for r in ("chair", "presenter", "secretary", "attendee", "observer")}
    ok(tablets["secretary"], "minutes.save", {"notes": "x", "base_revision": 0})
    ok(tablets["secretary"], "minutes.submit")
    room.org.post(f"/api/v1/meetings/{mid}/end")
    for role in ("presenter", "secretary", "attendee", "observer"):
        assert tablets[role].emit("minutes.approve", {}, callback=True)["error"]["code"] == "forbidden", role
    assert ok(room.console(), "minutes.approve")["status"] == "approved"  # an organizer may approve too


def test_archive_is_for_organizers_only(room, other_organizer, anon):
    chair = room.join("chair")
    mid = _end(room)
    url = f"/api/v1/meetings/{mid}/archive"
    assert anon.get(url).status_code == 401
    assert other_organizer.get(url).status_code == 403
    assert chair.get(url).status_code == 403
    assert room.org.get(url).status_code == 200


# --------------------------------------------------------------------------- retention


def test_retention_seals_then_deletes_with_a_tombstone(app, room_with_doc, tmp_path):
    from dataclasses import replace

    from meeting_server.archive.service import purge_expired
    from meeting_server.core import storage

    room = room_with_doc
    mid = _end(room)
    doc = room.document
    blob = storage.get().path(_original_sha(doc["id"]))
    assert blob.exists()
    settings = replace(app.config["SETTINGS"], materials_retention_days=30, archive_retention_days=365)
    ended = dt.datetime.now(dt.UTC)
    assert purge_expired(settings, now=ended + dt.timedelta(days=10), log_fn=lambda *_: None) == []
    done = purge_expired(settings, now=ended + dt.timedelta(days=31), log_fn=lambda *_: None)
    assert [d["action"] for d in done] == ["purge_materials"] and done[0]["blobs"] >= 1
    assert not blob.exists()
    meeting = room.org.get(f"/api/v1/meetings/{mid}").get_json()
    assert meeting["status"] == "archived" and meeting["documents"] == []
    commands = [e["command"] for e in room.org.get(f"/api/v1/meetings/{mid}/audit").get_json()["entries"]]
    assert commands[-2:] == ["archive.seal", "retention.materials_purged"]
    assert room.org.get(f"/api/v1/meetings/{mid}/audit/verify").get_json()["ok"]
    # the sealed archive still holds the materials, and still verifies
    r = room.org.get(f"/api/v1/meetings/{mid}/archive")
    assert r.status_code == 200
    (tmp_path / "a.zip").write_bytes(r.data)
    report = verify_archive(tmp_path / "a.zip")
    assert report.ok and any(f["path"].startswith("materials/") for f in report.manifest["files"])
    assert purge_expired(settings, now=ended + dt.timedelta(days=32), log_fn=lambda *_: None) == []  # once
    done = purge_expired(settings, now=ended + dt.timedelta(days=366), log_fn=lambda *_: None)
    assert [d["action"] for d in done] == ["delete_meeting"]
    assert room.org.get(f"/api/v1/meetings/{mid}").status_code == 404
    from meeting_server.archive.service import check_audit
    from meeting_server.core import db
    from meeting_server.core.audit import entries
    from meeting_server.meetings.models import Meeting

    with db.reader() as s:
        log = entries(s, mid)
        assert log[-1].command == "retention.meeting_deleted"  # the tombstone
        assert check_audit(s, s.get(Meeting, mid))["ok"]


def _original_sha(doc_id: int) -> str:
    from meeting_server.core import db
    from meeting_server.documents.models import Document

    with db.reader() as s:
        return s.get(Document, doc_id).original_sha256


def test_purge_command(tmp_path, monkeypatch, capsys):
    from meeting_server import cli

    monkeypatch.setenv("MEETING_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MEETING_DATABASE_URL", f"sqlite:///{tmp_path / 'm.sqlite'}")
    monkeypatch.setenv("MEETING_MATERIALS_RETENTION_DAYS", "30")
    assert cli.main(["purge", "--dry-run", "--now", "2030-01-01T00:00:00Z"]) == 0
    assert "0 meeting(s) would be affected" in capsys.readouterr().out
    assert cli.main(["purge", "--now", "yesterday"]) == 2


def test_settings_for_records():
    from meeting_server.config import Settings, SettingsError

    s = Settings.from_env(
        {
            "MEETING_MATERIALS_RETENTION_DAYS": "30",
            "MEETING_ARCHIVE_RETENTION_DAYS": "3650",
            "MEETING_TIMEZONE": "Europe/Berlin",
        }
    )
    assert (s.materials_retention_days, s.archive_retention_days, s.timezone) == (30, 3650, "Europe/Berlin")
    assert Settings.from_env({}).materials_retention_days == 0
    for bad in (
        {"MEETING_TIMEZONE": "Mars/Olympus"},
        {"MEETING_MATERIALS_RETENTION_DAYS": "-1"},
        {"MEETING_ARCHIVE_RETENTION_DAYS": "10", "MEETING_MATERIALS_RETENTION_DAYS": "30"},
        {"MEETING_ORG_CERT_FILE": "/nonexistent.pem"},
    ):
        with pytest.raises(SettingsError):
            Settings.from_env(bad)
