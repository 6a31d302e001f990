"""The minutes editor: revisions, conflicts, idempotent resends, draft -> submitted -> approved -> locked."""

from __future__ import annotations

from tests.conftest import events
from tests.records_api.conftest import ack, ok


def _item(room) -> int:
    r = room.org.post(f"/api/v1/meetings/{room.meeting['id']}/agenda", json={"title": "审议报告"})
    assert r.status_code == 201
    return r.get_json()["id"]


def test_every_save_is_a_revision_and_others_see_it(room):
    item = _item(room)
    sec, chair = room.tablet("secretary"), room.tablet("chair")
    chair.get_received()
    a = ok(sec, "minutes.save", {"agenda_item_id": item, "notes": "第一稿", "base_revision": 0})
    assert a["revision"] == 1 and a["item"]["notes"] == "第一稿" and not a["duplicate"]
    ok(
        sec,
        "minutes.save",
        {"agenda_item_id": item, "notes": "第二稿", "decisions": [" 同意 ", ""], "base_revision": 1},
    )
    saved = events(chair, "minutes.saved")
    assert [s["item"]["revision"] for s in saved] == [1, 2]
    assert saved[-1]["item"]["decisions"] == ["同意"]
    assert not events(sec, "minutes.saved")  # not echoed to the saving client
    body = room.org.get(f"/api/v1/meetings/{room.meeting['id']}/minutes/items").get_json()
    row = next(i for i in body["items"] if i["agenda_item_id"] == item)
    assert (
        row["notes"] == "第二稿" and row["revision"] == 2 and body["status"] == "draft" and body["editable"]
    )
    revs = room.org.get(
        f"/api/v1/meetings/{room.meeting['id']}/minutes/revisions?agenda_item_id={item}"
    ).get_json()
    assert [(r["revision"], r["notes"]) for r in revs["revisions"]] == [(2, "第二稿"), (1, "第一稿")]


def test_a_stale_save_gets_the_latest_and_loses_nothing(room):
    item = _item(room)
    mid = room.meeting["id"]
    ok(
        room.tablet("secretary"),
        "minutes.save",
        {"agenda_item_id": item, "notes": "秘书的稿", "base_revision": 0},
    )
    r = room.org.post(
        f"/api/v1/meetings/{mid}/minutes/items",
        json={"agenda_item_id": item, "notes": "组织者的稿", "base_revision": 0},
    )
    assert r.status_code == 409
    err = r.get_json()["error"]
    assert err["code"] == "revision_conflict" and err["details"]["latest"]["notes"] == "秘书的稿"
    assert err["details"]["latest"]["revision"] == 1
    a = ack(
        room.tablet("secretary"), "minutes.save", {"agenda_item_id": item, "notes": "旧", "base_revision": 0}
    )
    assert a["ok"] is False and a["error"]["code"] == "revision_conflict"
    assert a["error"]["details"]["latest"]["notes"] == "秘书的稿"
    # merged, then saved on top of the latest
    r = room.org.post(
        f"/api/v1/meetings/{mid}/minutes/items",
        json={"agenda_item_id": item, "notes": "秘书的稿\n组织者补充", "base_revision": 1},
    )
    assert r.status_code == 200 and r.get_json()["revision"] == 2


def test_a_resend_after_a_timeout_is_answered_once(room):
    item = _item(room)
    mid = room.meeting["id"]
    sec = room.tablet("secretary")
    body = {"agenda_item_id": item, "notes": "断线前保存", "base_revision": 0, "client_revision_id": "c-1"}
    first = ok(sec, "minutes.save", body)
    reconnected = room.tablet("secretary")  # (joining is itself on the record)
    seq = room.org.get(f"/api/v1/meetings/{mid}/audit").get_json()["head"]["seq"]
    again = ok(reconnected, "minutes.save", body)  # the reconnected tablet resends
    assert again["duplicate"] is True and again["revision"] == first["revision"] == 1
    assert room.org.get(f"/api/v1/meetings/{mid}/audit").get_json()["head"]["seq"] == seq
    revs = room.org.get(f"/api/v1/meetings/{mid}/minutes/revisions").get_json()["revisions"]
    assert len(revs) == 1
    # the same id for another item is a client bug, not a silent success
    other = _item(room)
    a = ack(sec, "minutes.save", {**body, "agenda_item_id": other})
    assert a["error"]["code"] == "duplicate_id"


def test_unknown_agenda_item_and_bad_payloads(room):
    sec = room.tablet("secretary")
    assert (
        ack(sec, "minutes.save", {"agenda_item_id": 99999, "base_revision": 0})["error"]["code"]
        == "not_found"
    )
    assert ack(sec, "minutes.save", {"notes": "x"})["error"]["code"] == "invalid"
    assert ack(sec, "minutes.save", {"base_revision": -1})["error"]["code"] == "invalid"
    assert ack(sec, "minutes.save", {"base_revision": 0, "extra": 1})["error"]["code"] == "invalid"


def test_status_flow_and_the_approval_record(room):
    item = _item(room)
    mid = room.meeting["id"]
    org = room.org
    sec, chair = room.tablet("secretary"), room.tablet("chair")
    assert org.post(f"/api/v1/meetings/{mid}/start").status_code == 200
    ok(sec, "minutes.save", {"agenda_item_id": item, "notes": "会中记录", "base_revision": 0})
    ok(chair, "meetings.end")
    ok(
        sec, "minutes.save", {"agenda_item_id": item, "notes": "会后整理", "base_revision": 1}
    )  # allowed once ended
    assert ack(chair, "minutes.approve")["error"]["code"] == "minutes_draft"
    assert ok(sec, "minutes.submit")["status"] == "submitted"
    assert (
        ack(sec, "minutes.save", {"agenda_item_id": item, "base_revision": 2})["error"]["code"]
        == "minutes_submitted"
    )
    assert ok(chair, "minutes.reopen", {"note": "请补充表决情况"})["status"] == "draft"
    ok(sec, "minutes.save", {"agenda_item_id": item, "notes": "补充后", "base_revision": 2})
    ok(sec, "minutes.submit")
    chair.get_received()
    approved = ok(chair, "minutes.approve")
    assert approved["status"] == "approved"
    assert [h["action"] for h in approved["history"]] == [
        "drafted",
        "submitted",
        "rejected",
        "submitted",
        "approved",
    ]
    # approval builds the archive at once, which seals the meeting and locks the minutes
    assert org.get(f"/api/v1/meetings/{mid}").get_json()["status"] == "archived"
    assert org.get(f"/api/v1/meetings/{mid}/minutes/items").get_json()["status"] == "locked"
    assert (
        ack(sec, "minutes.save", {"agenda_item_id": item, "base_revision": 3})["error"]["code"]
        == "meeting_ended"
    )
    assert ack(chair, "minutes.reopen", {})["error"]["code"] == "meeting_ended"
    entries = org.get(f"/api/v1/meetings/{mid}/audit").get_json()["entries"]
    approval = next(e for e in entries if e["command"] == "minutes.approve")
    assert approval["actor"]["name"] == "chair-1" and approval["actor"]["role"] == "chair" and approval["at"]
    assert len(approval["data"]["content_sha256"]) == 64
    assert entries[-1]["command"] == "archive.seal"


def test_approval_waits_for_the_end_of_the_meeting(room):
    sec, chair = room.tablet("secretary"), room.tablet("chair")
    ok(sec, "minutes.save", {"notes": "x", "base_revision": 0})
    ok(sec, "minutes.submit")
    assert ack(chair, "minutes.approve")["error"]["code"] == "meeting_not_ended"


def test_minutes_pdf_follows_the_text(room):
    mid = room.meeting["id"]
    org = room.org
    first = org.get(f"/api/v1/meetings/{mid}/minutes")
    assert first.status_code == 200 and first.mimetype == "application/pdf"
    assert first.headers["X-Minutes-Status"] == "draft"
    etag = first.headers["ETag"]
    again = org.get(f"/api/v1/meetings/{mid}/minutes", headers={"If-None-Match": etag})
    assert again.status_code == 304
    ok(room.tablet("secretary"), "minutes.save", {"notes": "新增内容", "base_revision": 0})
    changed = org.get(f"/api/v1/meetings/{mid}/minutes")
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
