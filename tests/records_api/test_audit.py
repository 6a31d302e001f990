"""The audit log over HTTP, and proof that editing any stored entry breaks the chain."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from meeting_server.core import db
from meeting_server.core.chain import canonical_json, verify_chain
from tests.records_api.conftest import ok


def _setup(room) -> int:
    mid = room.meeting["id"]
    org = room.org
    assert org.post(f"/api/v1/meetings/{mid}/agenda", json={"title": "议程一"}).status_code == 201
    assert org.post(f"/api/v1/meetings/{mid}/start").status_code == 200
    t = room.tablet("attendee")
    ok(t, "checkin")
    ok(room.tablet("secretary"), "minutes.save", {"notes": "记录", "base_revision": 0})
    return mid


def test_audit_log_pages_and_jsonl(room):
    mid = _setup(room)
    org = room.org
    first = org.get(f"/api/v1/meetings/{mid}/audit?limit=3").get_json()
    assert [e["seq"] for e in first["entries"]] == [1, 2, 3]
    assert first["entries"][0]["command"] == "meetings.create"
    rest = org.get(f"/api/v1/meetings/{mid}/audit?after={first['next_after']}").get_json()
    entries = first["entries"] + rest["entries"]
    assert rest["next_after"] is None
    assert entries[-1]["hash"] == rest["head"]["hash"] and len(entries) == rest["head"]["seq"]
    assert verify_chain(entries)[0]
    commands = [e["command"] for e in entries]
    assert {"attendees.create", "agenda.create", "meetings.start", "checkin", "minutes.save"} <= set(commands)
    save = entries[commands.index("minutes.save")]
    assert save["actor"]["role"] == "secretary" and len(save["data"]["text_sha256"]) == 64
    assert "notes" not in save["data"]  # the text is in the revisions; the log binds its hash
    r = org.get(f"/api/v1/meetings/{mid}/audit?format=jsonl")
    assert r.mimetype == "application/x-ndjson"
    lines = r.data.splitlines()
    assert lines == [canonical_json(e) for e in entries]
    assert r.headers["X-Audit-Head"] == entries[-1]["hash"]


def test_reads_do_not_enter_the_log(room):
    mid = _setup(room)
    org = room.org
    seq = org.get(f"/api/v1/meetings/{mid}/audit").get_json()["head"]["seq"]
    org.get(f"/api/v1/meetings/{mid}")
    org.get(f"/api/v1/meetings/{mid}/minutes/items")
    org.get(f"/api/v1/meetings/{mid}/audit/verify")
    ok(room.console(), "state.get")
    assert org.get(f"/api/v1/meetings/{mid}/audit").get_json()["head"]["seq"] == seq


def test_verify_reports_an_intact_chain(room):
    mid = _setup(room)
    body = room.org.get(f"/api/v1/meetings/{mid}/audit/verify").get_json()
    assert body["ok"] and body["failure"] is None and body["entries"] >= 8


#: Direct edits of one stored row (bypassing the application), each must break the chain at that row.
EDITS = {
    "data": "UPDATE audit_entries SET data = :v WHERE meeting_id = :m AND seq = 3",
    "actor": "UPDATE audit_entries SET actor = :v WHERE meeting_id = :m AND seq = 3",
    "command": "UPDATE audit_entries SET command = 'meetings.delete' WHERE meeting_id = :m AND seq = 3",
    "at": "UPDATE audit_entries SET at = '2020-01-01 00:00:00' WHERE meeting_id = :m AND seq = 3",
    "prev": "UPDATE audit_entries SET prev = :h WHERE meeting_id = :m AND seq = 3",
    "hash": "UPDATE audit_entries SET hash = :h WHERE meeting_id = :m AND seq = 3",
    "seq": "UPDATE audit_entries SET seq = 1000 WHERE meeting_id = :m AND seq = 3",
    "delete": "DELETE FROM audit_entries WHERE meeting_id = :m AND seq = 3",
}


@pytest.mark.parametrize("what", list(EDITS))
def test_an_edited_row_breaks_the_chain_there(room, what):
    mid = _setup(room)
    with db.transaction() as s:
        s.execute(text(EDITS[what]), {"m": mid, "v": json.dumps({"name": "篡改"}), "h": "f" * 64})
    body = room.org.get(f"/api/v1/meetings/{mid}/audit/verify").get_json()
    assert body["ok"] is False
    assert body["failure"]["seq"] == 3, body


def test_a_broken_log_is_never_sealed(room):
    """The archive build refuses a chain that does not verify, naming the entry."""
    mid = _setup(room)
    with db.transaction() as s:
        s.execute(text(EDITS["data"]), {"m": mid, "v": json.dumps({"name": "篡改"}), "h": "f" * 64})
    assert room.org.post(f"/api/v1/meetings/{mid}/end").status_code == 200
    r = room.org.get(f"/api/v1/meetings/{mid}/archive")
    assert r.status_code == 422 and r.get_json()["error"]["code"] == "archive_failed"
    assert "entry 3" in r.get_json()["error"]["message"]


def test_a_removed_or_rewritten_tail_is_caught(room):
    """Deleting the last entries keeps a valid chain: the head the meeting row records catches it."""
    mid = _setup(room)
    seq = room.org.get(f"/api/v1/meetings/{mid}/audit").get_json()["head"]["seq"]
    with db.transaction() as s:
        s.execute(text("DELETE FROM audit_entries WHERE meeting_id = :m AND seq = :q"), {"m": mid, "q": seq})
    body = room.org.get(f"/api/v1/meetings/{mid}/audit/verify").get_json()
    assert body["ok"] is False and body["failure"]["seq"] == seq - 1
    assert "the meeting records" in body["failure"]["message"]


def test_the_application_cannot_edit_an_entry(room):
    from meeting_server.core.audit import AuditEntry

    _setup(room)
    with pytest.raises(RuntimeError, match="append-only"), db.transaction() as s:
        e = s.query(AuditEntry).first()
        e.command = "x"
        s.flush()
