from tests.conftest import make_pdf


def test_upload_pdf_renders_pages(room_with_doc):
    room = room_with_doc
    doc = room.document
    assert doc["page_count"] == 5 and doc["status"] == "ready" and doc["version"] == 1
    assert [p["n"] for p in doc["pages"]] == [1, 2, 3, 4, 5]
    r = room.org.get(f"/api/v1/documents/{doc['id']}/pages/1?v=1")
    assert r.status_code == 200 and r.mimetype == "image/jpeg"
    assert "immutable" in r.headers["Cache-Control"]
    etag = r.headers["ETag"]
    r2 = room.org.get(f"/api/v1/documents/{doc['id']}/pages/1", headers={"If-None-Match": etag})
    assert r2.status_code == 304
    t = room.org.get(f"/api/v1/documents/{doc['id']}/thumbs/1")
    assert t.status_code == 200 and len(t.data) < len(r.data)
    assert room.org.get(f"/api/v1/documents/{doc['id']}/pages/6").status_code == 404


def test_tablet_reads_pages(room_with_doc):
    room = room_with_doc
    tablet = room.join("attendee")
    assert tablet.get(f"/api/v1/documents/{room.document['id']}/pages/2").status_code == 200


def test_bad_files_are_refused_and_nothing_kept(room, settings):
    mid = room.meeting["id"]
    blobs_before = sorted(p.name for p in (settings.data_dir / "blobs").rglob("*") if p.is_file())
    cases = {
        "empty.pdf": (b"", 422, "empty_file"),
        "page.pdf": (b"<html><body>hello</body></html>", None, None),
        "trunc.pdf": (make_pdf(3)[:200], 422, None),
    }
    for name, (data, status, code) in cases.items():
        r = room.org.upload(f"/api/v1/meetings/{mid}/documents", data, name)
        assert r.status_code in (415, 422) if status is None else r.status_code == status, (name, r.get_json())
        if code:
            assert r.get_json()["error"]["code"] == code
    assert sorted(p.name for p in (settings.data_dir / "blobs").rglob("*") if p.is_file()) == blobs_before
    assert room.org.get(f"/api/v1/meetings/{mid}/documents").get_json()["documents"] == []


def test_replace_bumps_version(room_with_doc):
    room = room_with_doc
    did = room.document["id"]
    r = room.org.upload(f"/api/v1/documents/{did}/replace", make_pdf(2), "v2.pdf")
    assert r.status_code == 202
    doc = room.org.get(f"/api/v1/documents/{did}").get_json()
    assert doc["version"] == 2 and doc["page_count"] == 2 and doc["status"] == "ready"


def test_progress_pushed_to_organizer_console(room):
    console = room.console()
    console.get_received()
    r = room.org.upload(f"/api/v1/meetings/{room.meeting['id']}/documents", make_pdf(3), "p.pdf")
    assert r.status_code == 202
    got = [e["args"][0] for e in console.get_received() if e["name"] == "document"]
    assert got and got[-1]["status"] == "ready" and got[-1]["pages_done"] == 3
    assert any(g["status"] == "processing" for g in got)
    tablet = room.tablet("attendee")
    assert not [e for e in tablet.get_received() if e["name"] == "document"]
