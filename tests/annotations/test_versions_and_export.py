"""Annotations across document versions, restarts, and exports (real PDF annotations)."""

from __future__ import annotations

import io
import json
import zipfile

import pymupdf

from meeting_server.annotations import service
from meeting_server.core import db
from tests.annotations.helpers import got, ok, pen, seat_id
from tests.conftest import make_pdf


def _mine(room, doc_id: int) -> dict:
    rows = room.join("attendee").get(f"/api/v1/documents/{doc_id}/annotations").get_json()["annotations"]
    return {r["id"]: r for r in rows}


def _replace(room, doc_id: int, pages: int) -> dict:
    r = room.org.upload(f"/api/v1/documents/{doc_id}/replace", make_pdf(pages), f"v{pages}.pdf")
    assert r.status_code == 202, r.get_json()
    doc = room.org.get(f"/api/v1/documents/{doc_id}").get_json()
    assert doc["status"] == "ready", doc
    return doc


def test_replace_moves_annotations_and_keeps_orphans(room_with_doc, doc_id, att):
    ok(att, "annotation.save", pen(doc_id, "p1"))
    ok(att, "annotation.save", pen(doc_id, "p5", page=5))
    _replace(room_with_doc, doc_id, 2)
    rows = _mine(room_with_doc, doc_id)
    assert (rows["p1"]["version"], rows["p1"]["orphaned"]) == (2, False)
    assert (rows["p5"]["version"], rows["p5"]["orphaned"], rows["p5"]["drawn_version"]) == (2, True, 1)
    assert rows["p5"]["points"] == [[100, 200], [150, 250], [200, 220]]  # kept as drawn
    _replace(room_with_doc, doc_id, 6)  # the page is back: re-attached
    rows = _mine(room_with_doc, doc_id)
    assert (rows["p5"]["version"], rows["p5"]["orphaned"]) == (3, False)


def test_carry_over_when_the_new_version_becomes_ready(room_with_doc, doc_id, att):
    """The render job calls `on_version_ready` after `status="ready"` (lists also carry over lazily)."""
    from meeting_server.annotations.models import Annotation

    ok(att, "annotation.save", pen(doc_id, "p1"))
    ok(att, "annotation.save", pen(doc_id, "p4", page=4))
    att.get_received()
    _replace(room_with_doc, doc_id, 3)
    with db.reader() as s:  # no list was asked for: the job did it
        rows = {
            a.client_id: (a.version, a.orphaned) for a in s.query(Annotation).filter_by(document_id=doc_id)
        }
    assert rows == {"p1": (2, False), "p4": (2, True)}
    assert got(att, "annotation") == [{"document_id": doc_id, "version": 2, "reload": True}]
    service.on_version_ready(doc_id, 1)  # a stale call changes nothing and does not raise
    service.on_version_ready(doc_id, 2)  # nor does a repeated one
    assert got(att, "annotation") == []


def test_a_late_save_on_the_old_version_is_carried_over(room_with_doc, doc_id, att):
    _replace(room_with_doc, doc_id, 2)
    a = ok(att, "annotation.save", pen(doc_id, "old5", page=5, version=1))["annotation"]
    assert (a["version"], a["drawn_version"], a["orphaned"]) == (2, 1, True)
    a = ok(att, "annotation.save", pen(doc_id, "old1", page=1, version=1))["annotation"]
    assert (a["version"], a["orphaned"]) == (2, False)


def test_annotations_survive_reconnects(room_with_doc, doc_id, att):
    ok(att, "annotation.save", pen(doc_id, "s1"))
    att.disconnect()
    again = room_with_doc.tablet("attendee")
    assert got(again, "state")[0]["annotations"]["counts"] == {str(doc_id): 1}
    assert list(_mine(room_with_doc, doc_id)) == ["s1"]


def _export(api, url: str, body: dict | None = None):
    r = api.post(url, json=body or {})
    assert r.status_code == 202, r.get_json()
    e = r.get_json()
    status = api.get(e["status_url"]).get_json()  # tests run jobs inline, after the commit
    assert status["status"] == "ready", status
    f = api.get(status["file_url"])
    assert f.status_code == 200
    return f


def test_seat_exports_its_annotated_copy_with_real_pdf_annotations(room_with_doc, doc_id, att):
    room = room_with_doc
    stroke = [[100, 200], [150, 250], [200, 220]]
    ok(att, "annotation.save", pen(doc_id, "ink", points=stroke, color="#0000ff", width=3))
    ok(
        att,
        "annotation.save",
        {"document_id": doc_id, "id": "hl", "page": 2, "kind": "highlight", "rect": [72, 90, 300, 110]},
    )
    ok(
        att,
        "annotation.save",
        {
            "document_id": doc_id,
            "id": "tx",
            "page": 2,
            "kind": "text",
            "points": [[80, 500]],
            "text": "同意 Agree",
        },
    )
    ok(
        att,
        "annotation.save",
        {"document_id": doc_id, "id": "nt", "page": 3, "kind": "note", "points": [[500, 60]], "text": "问"},
    )
    ok(
        room.tablet("chair"), "annotation.save", pen(doc_id, "other", page=1)
    )  # another seat's: not in this copy

    f = _export(room.join("attendee"), f"/api/v1/documents/{doc_id}/annotations/export")
    assert f.mimetype == "application/pdf" and "attachment" in f.headers["Content-Disposition"]
    with pymupdf.open(stream=f.data, filetype="pdf") as pdf:
        assert pdf.page_count == 5
        pages = list(pdf)  # annotations stay bound only while their page object lives
        p1 = list(pages[0].annots())
        assert [a.type[1] for a in p1] == ["Ink"]
        ink = p1[0]
        assert ink.info["title"] == "attendee-4 (S04)"
        (vertices,) = ink.vertices
        assert len(vertices) == 3
        for (x, y), (ex, ey) in zip(vertices, stroke, strict=True):
            assert abs(x - ex) < 0.01 and abs(y - ey) < 0.01
        assert list(ink.colors["stroke"]) == [0.0, 0.0, 1.0] and ink.border["width"] == 3
        assert sorted(a.type[1] for a in pages[1].annots()) == ["FreeText", "Highlight"]
        assert [(a.type[1], a.info["content"]) for a in pages[2].annots()] == [("Text", "问")]


def test_export_permissions(room_with_doc, doc_id, att):
    room = room_with_doc
    ok(att, "annotation.save", pen(doc_id, "ink"))
    seat = room.join("attendee")
    e = seat.post(f"/api/v1/documents/{doc_id}/annotations/export").get_json()
    other = room.join("chair")
    assert other.get(e["status_url"]).status_code == 404
    assert other.get(f"{e['status_url']}/file").status_code == 404
    assert room.org.get(f"{e['status_url']}/file").status_code == 200
    url = f"/api/v1/documents/{doc_id}/annotations/export"
    assert seat.post(url, json={"attendee_id": seat_id(room, "chair")}).status_code == 403
    assert room.org.post(url).get_json()["error"]["code"] == "attendee_required"
    f = _export(room.org, url, {"attendee_id": seat_id(room, "attendee")})
    assert f.mimetype == "application/pdf"
    assert seat.get(f"/api/v1/annotation-exports/{e['id'] + 1}").status_code == 404  # the organizer's


def test_organizer_exports_every_seat_for_the_archive(room_with_doc, doc_id, att):
    from meeting_server.archive.bundle import check_name

    room = room_with_doc
    ok(att, "annotation.save", pen(doc_id, "a-ink"))
    ok(room.tablet("chair"), "annotation.save", pen(doc_id, "c-ink", page=2))
    ok(att, "annotation.save", pen(doc_id, "a-p5", page=5))
    _replace(room, doc_id, 2)  # a-p5 is orphaned: in the JSON, not in a PDF

    f = _export(room.org, f"/api/v1/meetings/{room.meeting['id']}/annotations/export")
    assert f.mimetype == "application/zip"
    with zipfile.ZipFile(io.BytesIO(f.data)) as zf:
        names = sorted(zf.namelist())
        body = json.loads(zf.read("annotations/annotations.json"))
        pdfs = {n: zf.read(n) for n in names if n.endswith(".pdf")}
    assert len(pdfs) == 2 and all(check_name(n) == n for n in names)
    assert {a["id"]: a["orphaned"] for a in body["annotations"]} == {
        "a-ink": False,
        "c-ink": False,
        "a-p5": True,
    }
    assert body["errors"] == [] and body["documents"][0]["version"] == 2
    for data in pdfs.values():
        with pymupdf.open(stream=data, filetype="pdf") as pdf:
            assert sum(1 for p in pdf for _ in p.annots()) == 1

    with db.reader() as s:  # what the archive builder calls
        files = service.export_all(s, room.meeting["id"])
    assert sorted(files) == names


def test_export_all_of_a_meeting_without_annotations(room_with_doc):
    with db.reader() as s:
        files = service.export_all(s, room_with_doc.meeting["id"])
    assert list(files) == ["annotations/annotations.json"]
    assert json.loads(files["annotations/annotations.json"])["annotations"] == []
