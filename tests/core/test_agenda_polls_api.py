import pytest

from tests.conftest import add_attendee, create_meeting


@pytest.fixture
def meeting(organizer):
    return create_meeting(organizer)


def test_agenda_crud_and_reorder(organizer, meeting):
    base = f"/api/v1/meetings/{meeting['id']}/agenda"
    ids = [organizer.post(base, json={"title": f"议题{i}", "duration_minutes": 10 * i}).get_json()["id"] for i in range(1, 4)]
    items = organizer.get(base).get_json()["items"]
    assert [i["position"] for i in items] == [1, 2, 3]
    r = organizer.post(f"{base}/reorder", json={"order": [ids[2], ids[0], ids[1]]})
    assert [i["id"] for i in r.get_json()["items"]] == [ids[2], ids[0], ids[1]]
    assert organizer.post(f"{base}/reorder", json={"order": [ids[0]]}).status_code == 400
    r = organizer.post(base, json={"title": "插入 Inserted", "position": 1})
    assert r.get_json()["position"] == 1
    p = add_attendee(organizer, meeting["id"], "李晓梅", "presenter")
    r = organizer.patch(f"{base}/{ids[1]}", json={"presenter_id": p["id"], "duration_minutes": 5})
    assert r.status_code == 200 and r.get_json()["presenter_id"] == p["id"]
    assert organizer.patch(f"{base}/{ids[1]}", json={"presenter_id": 999999}).status_code == 400
    assert organizer.delete(f"{base}/{ids[0]}").status_code == 200
    assert [i["position"] for i in organizer.get(base).get_json()["items"]] == [1, 2, 3]
    assert organizer.delete(f"{base}/999999").status_code == 404
    assert organizer.post(base, json={"title": "x", "duration_minutes": -1}).status_code == 400


def test_agenda_item_of_other_meeting(organizer, meeting):
    other = create_meeting(organizer)
    item = organizer.post(f"/api/v1/meetings/{other['id']}/agenda", json={"title": "x"}).get_json()
    assert organizer.patch(f"/api/v1/meetings/{meeting['id']}/agenda/{item['id']}", json={"title": "y"}).status_code == 404


def test_poll_create_and_read(organizer, meeting):
    base = f"/api/v1/meetings/{meeting['id']}/polls"
    r = organizer.post(base, json={"title": "是否通过 Adopt?", "options": ["赞成", "反对", "弃权"], "secret": True})
    assert r.status_code == 201
    poll = r.get_json()
    assert poll["status"] == "draft" and poll["secret"] is True and poll["voted"] == 0 and "tally" not in poll
    got = organizer.get(f"/api/v1/polls/{poll['id']}").get_json()
    assert got["title"] == "是否通过 Adopt?" and "eligible" in got
    assert organizer.post(base, json={"title": "x", "options": ["only one"]}).status_code == 400
    assert organizer.post(base, json={"title": "x", "options": ["a", "a"]}).status_code == 400
    assert organizer.post(base, json={"title": "x", "options": ["a", "b"], "max_choices": 3}).status_code == 400
    motion = organizer.post(base, json={"title": "议案", "kind": "motion"}).get_json()
    assert len(motion["options"]) == 3
    assert organizer.patch(f"/api/v1/polls/{poll['id']}", json={"title": "改 Edited"}).get_json()["title"] == "改 Edited"
    assert organizer.delete(f"/api/v1/polls/{poll['id']}").status_code == 200
    assert organizer.get(f"/api/v1/polls/{poll['id']}").status_code == 404
