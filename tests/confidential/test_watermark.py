"""Per-seat watermarks on confidential page images, and the view log."""

from __future__ import annotations

import io

from PIL import Image, ImageChops

from meeting_server.core import audit, chain, db
from meeting_server.documents import render, watermarks
from meeting_server.documents.watermarks import WatermarkedPage
from tests.annotations.helpers import image

PAGE = "/api/v1/documents/{id}/pages/{n}"
THUMB = "/api/v1/documents/{id}/thumbs/{n}"


def _row(doc_id: int, attendee_id: int, n: int = 1, size: str = "page") -> WatermarkedPage:
    with db.reader() as s:
        return (
            s.query(WatermarkedPage)
            .filter_by(document_id=doc_id, n=n, size=size, attendee_id=attendee_id)
            .one()
        )


def _changed(a: bytes, b: bytes, threshold: int = 20) -> float:
    """Share of pixels whose gray level differs by more than `threshold` (above JPEG noise)."""
    ia, ib = (Image.open(io.BytesIO(x)).convert("L") for x in (a, b))
    mask = ImageChops.difference(ia, ib).point(lambda v: 255 if v > threshold else 0)
    return mask.histogram()[255] / (ia.width * ia.height)


def test_first_request_is_409_then_the_seats_own_copy(conf):
    api = conf.room.join("attendee")
    url = PAGE.format(id=conf.doc_id, n=1)
    r = api.get(url)
    assert r.status_code == 409 and r.headers["Retry-After"] == "1"
    assert r.get_json()["error"]["code"] == "page_not_ready"
    r = api.get(url)  # the worker (inline in tests) made it meanwhile
    assert r.status_code == 200 and r.mimetype == "image/jpeg"
    assert r.headers["Cache-Control"] == "private, no-store"
    plain = conf.room.org.get(url).data
    assert r.data != plain and r.headers["ETag"] != conf.room.org.get(url).headers["ETag"]


def test_the_watermark_carries_the_seats_name_seat_and_time(conf):
    aid = conf.room.seats["attendee"]["id"]
    served = image(conf.room.join("attendee"), PAGE.format(id=conf.doc_id, n=1)).data
    plain = conf.room.org.get(PAGE.format(id=conf.doc_id, n=1)).data
    at = _row(conf.doc_id, aid).requested_at
    lines = watermarks.lines_for("attendee-4", "S04", at)
    assert "attendee-4" in lines[0] and "S04" in lines[0] and at.strftime("%Y-%m-%d %H:%M") in lines[1]
    # The served image is exactly the plain page with these lines drawn in the known font.
    assert served == render.watermark(plain, lines, watermarks.OPACITY)
    # It changes a band of pixels (diagonal, tiled text), not the whole page ...
    assert 0.005 < _changed(served, plain) < 0.5
    # ... and another seat's name gives visibly different pixels: the name is in the image.
    other = render.watermark(plain, watermarks.lines_for("chair-1", "S01", at), watermarks.OPACITY)
    assert _changed(served, other) > 0.002


def test_each_seat_gets_a_different_copy_and_thumbnails_too(conf):
    url = PAGE.format(id=conf.doc_id, n=2)
    mine = image(conf.room.join("attendee"), url)
    theirs = image(conf.room.join("chair"), url)
    assert mine.status_code == theirs.status_code == 200 and mine.data != theirs.data
    thumb = image(conf.room.join("attendee"), THUMB.format(id=conf.doc_id, n=1))
    plain = conf.room.org.get(THUMB.format(id=conf.doc_id, n=1)).data
    assert thumb.status_code == 200 and thumb.data != plain and _changed(thumb.data, plain) > 0.005


def test_organizer_gets_the_plain_image_and_public_documents_are_not_watermarked(conf):
    from meeting_server.core import storage
    from meeting_server.documents.models import DocumentPage

    with db.reader() as s:
        sha = s.query(DocumentPage).filter_by(document_id=conf.doc_id, n=1).one().image_sha256
    assert conf.room.org.get(PAGE.format(id=conf.doc_id, n=1)).data == storage.get().read(sha)
    r = conf.room.join("attendee").get(PAGE.format(id=conf.public_id, n=1))
    assert r.status_code == 200 and "immutable" not in r.headers["Cache-Control"]


def test_the_next_pages_are_prepared_with_the_first(conf):
    api = conf.room.join("attendee")
    assert api.get(PAGE.format(id=conf.doc_id, n=1)).status_code == 409
    assert api.get(PAGE.format(id=conf.doc_id, n=3)).status_code == 200  # queued with page 1


def test_a_pending_copy_is_queued_once_and_again_when_stale(conf, monkeypatch):
    calls = []
    monkeypatch.setattr(watermarks, "enqueue", lambda *a: calls.append(a))
    api = conf.room.join("attendee")
    url = PAGE.format(id=conf.doc_id, n=2)
    for _ in range(3):
        assert api.get(url).status_code == 409
    assert [c[3:] for c in calls] == [("page", [2, 3])]
    with db.transaction() as s:
        for row in s.query(WatermarkedPage).filter_by(document_id=conf.doc_id):
            row.requested_at = row.requested_at - watermarks.STALE_AFTER * 2
    assert api.get(url).status_code == 409
    assert len(calls) == 2


def test_a_failing_watermark_never_falls_back_to_the_plain_image(conf, monkeypatch):
    def broken(*a, **kw):
        raise RuntimeError("font missing")

    monkeypatch.setattr(render, "watermark", broken)
    api = conf.room.join("attendee")
    for _ in range(3):
        assert api.get(PAGE.format(id=conf.doc_id, n=1)).status_code == 409


def test_first_view_of_each_page_is_audited_once(conf):
    room = conf.room
    api = room.join("attendee")
    image(api, PAGE.format(id=conf.doc_id, n=1))
    api.get(PAGE.format(id=conf.doc_id, n=1))
    image(api, THUMB.format(id=conf.doc_id, n=1))
    image(api, PAGE.format(id=conf.doc_id, n=2))
    image(room.join("attendee"), PAGE.format(id=conf.doc_id, n=1))  # a second device of the same seat
    room.org.get(PAGE.format(id=conf.doc_id, n=3))
    image(api, PAGE.format(id=conf.public_id, n=1))
    with db.reader() as s:
        entries = audit.entries(s, room.meeting["id"])
    views = [
        (e.actor["id"], e.data["document_id"], e.data["page"])
        for e in entries
        if e.command == "documents.page_viewed"
    ]
    aid = room.seats["attendee"]["id"]
    assert views == [(aid, conf.doc_id, 1), (aid, conf.doc_id, 2)]
    assert chain.verify_chain([e.as_record() for e in entries])[0] is True


def test_a_request_for_a_page_not_rendered_is_forgotten_by_the_job(conf):
    from meeting_server.core.db import utcnow

    aid = conf.room.seats["attendee"]["id"]
    with db.transaction() as s:
        s.add(
            WatermarkedPage(
                document_id=conf.doc_id, version=1, n=9, size="page", attendee_id=aid, requested_at=utcnow()
            )
        )
    watermarks.watermark_pages(conf.doc_id, 1, aid, "page", [9])
    with db.reader() as s:
        assert s.query(WatermarkedPage).filter_by(document_id=conf.doc_id, n=9).count() == 0
