def test_healthz(client):
    r = client.get("/healthz")
    assert r.status_code == 200 and r.get_json() == {"status": "ok"}


def test_meeting_flow(room):
    r = room.org.get(f"/api/v1/meetings/{room.meeting['id']}")
    assert r.status_code == 200
    body = r.get_json()
    assert body["status"] == "draft"
    assert len(body["attendees"]) == 5
