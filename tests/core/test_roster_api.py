import io

import pytest

from tests.conftest import add_attendee, create_meeting

CSV = "姓名,座位,角色,单位\n王建国,A01,主持人,办公室\n李晓梅,A02,参会人,财务处\nEmily Chen,A03,attendee,外事办\n"


@pytest.fixture
def meeting(organizer):
    return create_meeting(organizer)


def test_add_attendee_and_qr(organizer, meeting):
    a = add_attendee(organizer, meeting["id"], "张伟", "attendee", "B07")
    assert a["join_token"] and a["join_url"].endswith(a["join_token"]) and a["seat"] == "B07"
    r = organizer.get(f"/api/v1/meetings/{meeting['id']}/attendees/{a['id']}/qr.png")
    assert r.status_code == 200 and r.data[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    assert Image.open(io.BytesIO(r.data)).size[0] > 100
    r = organizer.get(f"/api/v1/meetings/{meeting['id']}/attendees/{a['id']}/qr.svg")
    assert r.status_code == 200 and b"<svg" in r.data


def test_seat_taken_and_validation(organizer, meeting):
    add_attendee(organizer, meeting["id"], "A", seat="1")
    r = organizer.post(f"/api/v1/meetings/{meeting['id']}/attendees", json={"name": "B", "seat": "1"})
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "seat_taken"
    assert organizer.post(f"/api/v1/meetings/{meeting['id']}/attendees", json={"name": ""}).status_code == 400
    assert organizer.post(f"/api/v1/meetings/{meeting['id']}/attendees", json={"name": "x", "role": "king"}).status_code == 400


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030"])
def test_csv_import_encodings(organizer, meeting, encoding):
    r = organizer.upload(f"/api/v1/meetings/{meeting['id']}/attendees/import", CSV.encode(encoding), "list.csv")
    assert r.status_code == 201, r.get_json()
    people = r.get_json()["attendees"]
    assert [p["name"] for p in people] == ["王建国", "李晓梅", "Emily Chen"]
    assert [p["role"] for p in people] == ["chair", "attendee", "attendee"]
    assert people[0]["organization"] == "办公室"


def test_csv_bad_row_imports_nothing(organizer, meeting):
    bad = CSV + "赵六,A04,国王,后勤\n"
    r = organizer.upload(f"/api/v1/meetings/{meeting['id']}/attendees/import", bad.encode("gbk"), "list.csv")
    assert r.status_code == 400
    err = r.get_json()["error"]
    assert err["code"] == "bad_csv" and err["details"]["row"] == 5 and "row 5" in err["message"]
    assert organizer.get(f"/api/v1/meetings/{meeting['id']}/attendees").get_json()["attendees"] == []
    dup = CSV + "赵六,A01,参会人,后勤\n"
    r = organizer.upload(f"/api/v1/meetings/{meeting['id']}/attendees/import", dup.encode(), "list.csv")
    assert r.status_code == 400 and r.get_json()["error"]["details"]["row"] == 5
    r = organizer.upload(f"/api/v1/meetings/{meeting['id']}/attendees/import", b"\xff\xfe\x00garbage\x81", "x.csv")
    assert r.status_code == 400


def test_edit_delete_reissue(app, organizer, meeting):
    a = add_attendee(organizer, meeting["id"], "张伟")
    base = f"/api/v1/meetings/{meeting['id']}/attendees/{a['id']}"
    r = organizer.patch(base, json={"role": "secretary", "seat": "C1"})
    assert r.status_code == 200 and r.get_json()["role"] == "secretary"
    joined = organizer.client.post("/api/v1/join", json={"token": a["join_token"]})
    assert joined.status_code == 200
    session = joined.get_json()["session_token"]
    r = organizer.post(f"{base}/reissue")
    assert r.status_code == 200 and r.get_json()["join_token"] != a["join_token"]
    # the old card and the old session are dead
    assert organizer.client.post("/api/v1/join", json={"token": a["join_token"]}).status_code == 401
    r = organizer.client.get(f"/api/v1/meetings/{meeting['id']}/agenda", headers={"Authorization": f"Bearer {session}"})
    assert r.status_code == 401
    assert organizer.delete(base).status_code == 200
    assert organizer.get(base).status_code == 404


def test_seat_cards_pdf(organizer, meeting):
    for i in range(10):
        add_attendee(organizer, meeting["id"], f"代表{i}", seat=f"{i + 1}")
    r = organizer.get(f"/api/v1/meetings/{meeting['id']}/seat-cards.pdf")
    assert r.status_code == 200 and r.mimetype == "application/pdf"
    import pymupdf

    doc = pymupdf.open(stream=r.data, filetype="pdf")
    assert doc.page_count == 2
    text = doc[0].get_text()
    assert "代表0" in text and "Seat" in text
    assert len(doc[0].get_images()) == 8


def test_join(organizer, meeting, client):
    a = add_attendee(organizer, meeting["id"], "张伟", seat="5")
    r = client.post("/api/v1/join", json={"token": a["join_token"]})
    assert r.status_code == 200
    body = r.get_json()
    assert body["meeting_id"] == meeting["id"]
    assert body["attendee"] == {"id": a["id"], "name": "张伟", "seat": "5", "role": "attendee"}
    assert body["session_token"].startswith("seat_")
    assert client.post("/api/v1/join", json={"token": "x" * 20}).status_code == 401
    assert client.post("/api/v1/join", json={}).status_code == 400
    sessions = organizer.get(f"/api/v1/meetings/{meeting['id']}/attendees/{a['id']}/sessions").get_json()["sessions"]
    assert len(sessions) == 1


def test_single_device_rule(organizer, client):
    m = create_meeting(organizer, single_device=True)
    a = add_attendee(organizer, m["id"], "张伟")
    assert client.post("/api/v1/join", json={"token": a["join_token"]}).status_code == 200
    r = client.post("/api/v1/join", json={"token": a["join_token"]})
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "seat_in_use"
    assert organizer.post(f"/api/v1/meetings/{m['id']}/attendees/{a['id']}/release").get_json()["revoked"] == 1
    assert client.post("/api/v1/join", json={"token": a["join_token"]}).status_code == 200


def test_tablet_cannot_manage(room):
    tablet = room.join("chair")
    mid = room.meeting["id"]
    assert tablet.get(f"/api/v1/meetings/{mid}/attendees").status_code == 403
    assert tablet.post(f"/api/v1/meetings/{mid}/attendees", json={"name": "x"}).status_code == 403
    assert tablet.get(f"/api/v1/meetings/{mid}/agenda").status_code == 200


def test_tablet_of_other_meeting_sees_nothing(room, organizer):
    other = create_meeting(organizer)
    a = add_attendee(organizer, other["id"], "外人")
    r = organizer.client.post("/api/v1/join", json={"token": a["join_token"]})
    from tests.conftest import Api

    outsider = Api(organizer.client, r.get_json()["session_token"])
    mid = room.meeting["id"]
    assert outsider.get(f"/api/v1/meetings/{mid}/agenda").status_code == 404
    assert outsider.get(f"/api/v1/meetings/{mid}/documents").status_code == 404
