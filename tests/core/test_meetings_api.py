from tests.conftest import create_meeting


def test_create_get_update_delete(organizer):
    m = create_meeting(organizer, title="常务会议 Standing committee", location="一号会议室", starts_at="2026-12-10T02:00:00Z")
    assert m["status"] == "draft" and m["starts_at"] == "2026-12-10T02:00:00Z"
    assert m["agenda"] == [] and m["attendees"] == [] and m["documents"] == []
    r = organizer.patch(f"/api/v1/meetings/{m['id']}", json={"location": "二号会议室", "quorum": {"kind": "count", "value": 3}})
    assert r.status_code == 200 and r.get_json()["location"] == "二号会议室"
    assert [x["id"] for x in organizer.get("/api/v1/meetings").get_json()["meetings"]] == [m["id"]]
    assert organizer.delete(f"/api/v1/meetings/{m['id']}").status_code == 200
    assert organizer.get(f"/api/v1/meetings/{m['id']}").status_code == 404


def test_validation(organizer):
    assert organizer.post("/api/v1/meetings", json={}).status_code == 400
    assert organizer.post("/api/v1/meetings", json={"title": "x", "bogus": 1}).status_code == 400
    assert organizer.post("/api/v1/meetings", json={"title": "x" * 301}).status_code == 400
    assert organizer.post("/api/v1/meetings", json={"title": "x", "starts_at": "tomorrow"}).status_code == 400
    assert organizer.post("/api/v1/meetings", json={"title": "x", "quorum": {"kind": "fraction", "value": 2}}).status_code == 400
    assert organizer.post("/api/v1/meetings", json=["title"]).status_code == 400


def test_lifecycle(organizer):
    m = create_meeting(organizer)
    mid = m["id"]
    r = organizer.post(f"/api/v1/meetings/{mid}/start")
    assert r.status_code == 200 and r.get_json()["status"] == "live"
    assert organizer.delete(f"/api/v1/meetings/{mid}").status_code == 409
    r = organizer.post(f"/api/v1/meetings/{mid}/end")
    assert r.status_code == 200 and r.get_json()["status"] == "ended"
    r = organizer.patch(f"/api/v1/meetings/{mid}", json={"title": "late edit"})
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "meeting_ended"
    r = organizer.post(f"/api/v1/meetings/{mid}/agenda", json={"title": "late"})
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "meeting_ended"
    assert organizer.post(f"/api/v1/meetings/{mid}/end").status_code == 409


def test_ownership(organizer, other_organizer, admin):
    m = create_meeting(organizer)
    url = f"/api/v1/meetings/{m['id']}"
    assert other_organizer.get(url).status_code == 403
    assert other_organizer.patch(url, json={"title": "mine"}).status_code == 403
    assert other_organizer.post(f"{url}/attendees", json={"name": "x"}).status_code == 403
    assert other_organizer.get("/api/v1/meetings").get_json()["meetings"] == []
    assert admin.get(url).status_code == 200
    assert admin.patch(url, json={"title": "admin edit"}).status_code == 200


def test_unknown_meeting(organizer):
    assert organizer.get("/api/v1/meetings/999999").status_code == 404
    assert organizer.post("/api/v1/meetings/999999/start").status_code == 404


def test_audit_chain_grows(organizer):
    from meeting_server.core import audit, chain, db

    m = create_meeting(organizer)
    organizer.patch(f"/api/v1/meetings/{m['id']}", json={"location": "x"})
    organizer.post(f"/api/v1/meetings/{m['id']}/agenda", json={"title": "议题一"})
    with db.reader() as s:
        entries = [e.as_record() for e in audit.entries(s, m["id"])]
    assert [e["command"] for e in entries] == ["meetings.create", "meetings.update", "agenda.create"]
    ok, _, _ = chain.verify_chain(entries)
    assert ok
    entries[1]["data"]["location"] = "y"
    assert chain.verify_chain(entries)[0] is False
