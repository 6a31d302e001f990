"""Annotations: saving as the user draws, idempotent resends, limits, sharing, showing, state."""

from __future__ import annotations

from meeting_server.annotations import service
from tests.annotations.helpers import got, ok, pen, refused, seat_id


def test_save_then_list(room_with_doc, doc_id, att):
    a = ok(att, "annotation.save", pen(doc_id, "s1", color="#0000ff", width=3))
    assert a["applied"] is True
    ann = a["annotation"]
    assert ann["id"] == "s1" and ann["shared"] == "private" and ann["version"] == 1 and not ann["orphaned"]
    assert ann["points"] == [[100, 200], [150, 250], [200, 220]] and ann["color"] == "#0000ff"
    body = room_with_doc.join("attendee").get(f"/api/v1/documents/{doc_id}/annotations").get_json()
    assert [x["id"] for x in body["annotations"]] == ["s1"] and body["version"] == 1


def test_resend_is_an_idempotent_upsert(room_with_doc, doc_id, att):
    for _ in range(3):  # a queue resent after a Wi-Fi drop
        ok(att, "annotation.save", pen(doc_id, "s1"))
    ok(att, "annotation.save", pen(doc_id, "s1", points=[[10, 10], [20, 20]], rev=1))
    rows = (
        room_with_doc.join("attendee")
        .get(f"/api/v1/documents/{doc_id}/annotations")
        .get_json()["annotations"]
    )
    assert len(rows) == 1 and rows[0]["points"] == [[10, 10], [20, 20]] and rows[0]["rev"] == 1


def test_stale_save_does_not_resurrect_an_erased_stroke(room_with_doc, doc_id, att):
    ok(att, "annotation.save", pen(doc_id, "s1", rev=1))
    assert ok(att, "annotation.delete", {"document_id": doc_id, "ids": ["s1"], "rev": 2})["deleted"] == ["s1"]
    assert ok(att, "annotation.save", pen(doc_id, "s1", rev=1))["applied"] is False
    assert ok(att, "annotation.delete", {"document_id": doc_id, "ids": ["s1"], "rev": 2})["deleted"] == []
    seat = room_with_doc.join("attendee")
    assert seat.get(f"/api/v1/documents/{doc_id}/annotations").get_json()["annotations"] == []
    assert ok(att, "annotation.save", pen(doc_id, "s1", rev=3))["applied"] is True  # undo of the erase
    assert len(seat.get(f"/api/v1/documents/{doc_id}/annotations").get_json()["annotations"]) == 1


def test_delete_handled_before_its_save_leaves_a_tombstone(doc_id, att):
    ok(att, "annotation.delete", {"document_id": doc_id, "ids": ["late"]})
    assert ok(att, "annotation.save", pen(doc_id, "late"))["applied"] is False


def test_other_devices_of_the_seat_are_told(room_with_doc, doc_id, att):
    other = room_with_doc.tablet("attendee")
    stranger = room_with_doc.tablet("chair")
    for c in (other, stranger):
        c.get_received()
    ok(att, "annotation.save", pen(doc_id, "s1"))
    ok(att, "annotation.delete", {"document_id": doc_id, "ids": ["s1"]})
    assert [(len(e["saved"]), e["deleted"]) for e in got(other, "annotation")] == [(1, []), (0, ["s1"])]
    assert got(att, "annotation") == []  # not echoed to the sender
    assert got(stranger, "annotation") == []


def test_every_kind_is_accepted(doc_id, att):
    payloads = [
        pen(doc_id, "p"),
        {**pen(doc_id, "h"), "kind": "highlighter", "strokes": [[[50, 50], [90, 50]], [[50, 60], [90, 60]]]},
        {"document_id": doc_id, "id": "r", "page": 2, "kind": "highlight", "rect": [300, 120, 72, 100]},
        {
            "document_id": doc_id,
            "id": "t",
            "page": 2,
            "kind": "text",
            "points": [[80, 500]],
            "text": "意见 note",
        },
        {"document_id": doc_id, "id": "n", "page": 3, "kind": "note", "points": [[500, 60]], "text": "便笺"},
    ]
    for p in payloads:
        ok(att, "annotation.save", p)
    stored = ok(att, "annotation.save", payloads[2])["annotation"]
    assert stored["rect"] == [72, 100, 300, 120]  # normalized


BIG = [[float(i % 500), 100.0] for i in range(service.MAX_POINTS + 1)]


BAD = [
    ({"points": BIG}, "too_many_points"),
    ({"strokes": [[[1, 1]]] * (service.MAX_STROKES + 1), "points": None}, "too_many_strokes"),
    ({"kind": "note", "text": "字" * (service.MAX_TEXT + 1)}, "text_too_long"),
    ({"points": [[1200, 1600]]}, "out_of_page"),  # screen pixels instead of PDF points
    ({"points": [[float("nan"), 1]]}, "invalid"),
    ({"points": []}, "invalid"),
    ({"points": None}, "invalid"),
    ({"kind": "laser"}, "invalid"),
    ({"kind": "text", "text": "  "}, "invalid"),
    ({"kind": "highlight", "points": None, "rect": [10, 10, 10, 50]}, "invalid"),
    ({"color": "red"}, "invalid"),
    ({"width": 0}, "invalid"),
    ({"id": "bad id/"}, "invalid"),
    ({"page": 6}, "no_such_page"),
    ({"version": 2}, "no_such_version"),
    ({"extra": 1}, "invalid"),
]


def test_invalid_or_too_large_payloads_get_clear_errors(doc_id, att):
    for change, code in BAD:  # one room for all cases: the fixture is the slow part
        a = refused(att, "annotation.save", {**pen(doc_id, "x"), **change}, code)
        assert a["error"]["message"], change
    assert (
        "PDF points"
        in refused(att, "annotation.save", {**pen(doc_id, "x"), **BAD[3][0]}, "out_of_page")["error"][
            "message"
        ]
    )


def test_limit_per_page(monkeypatch, doc_id, att):
    monkeypatch.setattr(service, "MAX_PER_PAGE", 2)
    ok(att, "annotation.save", pen(doc_id, "a"))
    ok(att, "annotation.save", pen(doc_id, "b"))
    refused(att, "annotation.save", pen(doc_id, "c"), "too_many_annotations")
    ok(att, "annotation.save", pen(doc_id, "a", rev=1))  # editing an existing one is fine
    ok(att, "annotation.save", pen(doc_id, "c", page=2))


def test_id_is_per_document(room_with_doc, doc_id, att):
    from tests.conftest import make_pdf

    r = room_with_doc.org.upload(
        f"/api/v1/meetings/{room_with_doc.meeting['id']}/documents", make_pdf(1), "b.pdf"
    )
    ok(att, "annotation.save", pen(doc_id, "same"))
    refused(att, "annotation.save", pen(r.get_json()["id"], "same"), "id_conflict")


def test_only_seats_annotate_and_only_while_the_meeting_runs(room_with_doc, doc_id, att):
    console = room_with_doc.console()
    refused(console, "annotation.save", pen(doc_id, "o"), "forbidden")
    assert room_with_doc.org.post(f"/api/v1/meetings/{room_with_doc.meeting['id']}/end").status_code == 200
    refused(att, "annotation.save", pen(doc_id, "late"), "meeting_ended")


def test_organizer_lists_every_seat_and_a_seat_only_its_own(room_with_doc, doc_id, att):
    chair = room_with_doc.tablet("chair")
    ok(att, "annotation.save", pen(doc_id, "a1"))
    ok(chair, "annotation.save", pen(doc_id, "c1"))
    url = f"/api/v1/documents/{doc_id}/annotations"
    everyone = room_with_doc.org.get(url).get_json()["annotations"]
    assert {(x["id"], x["attendee"]["name"]) for x in everyone} == {("a1", "attendee-4"), ("c1", "chair-1")}
    one = room_with_doc.org.get(f"{url}?attendee_id={seat_id(room_with_doc, 'chair')}").get_json()[
        "annotations"
    ]
    assert [x["id"] for x in one] == ["c1"]
    seat = room_with_doc.join("attendee")
    assert [x["id"] for x in seat.get(url).get_json()["annotations"]] == ["a1"]
    assert seat.get(f"{url}?attendee_id={seat_id(room_with_doc, 'chair')}").status_code == 403
    assert seat.get(f"{url}?page=2").get_json()["annotations"] == []


def test_private_by_default_then_shared(room_with_doc, doc_id, att):
    room = room_with_doc
    chair, presenter, secretary = (room.tablet(r) for r in ("chair", "presenter", "secretary"))
    for c in (chair, presenter, secretary):
        c.get_received()
    ok(att, "annotation.save", pen(doc_id, "a1"))
    ok(att, "annotation.save", pen(doc_id, "a2", page=2))
    shared_url = f"/api/v1/documents/{doc_id}/annotations/shared"
    assert room.join("chair").get(shared_url).get_json()["annotations"] == []
    assert all(got(c, "annotation.shared") == [] for c in (chair, presenter, secretary))

    assert ok(att, "annotation.share", {"document_id": doc_id, "to": "presenter", "page": 2})["changed"] == [
        "a2"
    ]
    assert [e["annotations"][0]["id"] for e in got(presenter, "annotation.shared")] == ["a2"]
    assert got(secretary, "annotation.shared") == []
    assert [x["id"] for x in room.join("presenter").get(shared_url).get_json()["annotations"]] == ["a2"]
    assert room.join("secretary").get(shared_url).get_json()["annotations"] == []

    ok(att, "annotation.share", {"document_id": doc_id, "to": "room", "ids": ["a1"]})
    ev = got(secretary, "annotation.shared")
    assert ev[0]["attendee"]["name"] == "attendee-4" and ev[0]["annotations"][0]["id"] == "a1"
    assert [x["id"] for x in room.join("secretary").get(shared_url).get_json()["annotations"]] == ["a1"]
    assert {x["id"] for x in room.org.get(shared_url).get_json()["annotations"]} == {"a1", "a2"}

    ok(att, "annotation.save", pen(doc_id, "a1", points=[[1, 1]], rev=1))  # edits reach the room
    assert got(chair, "annotation.shared")[-1]["annotations"][0]["points"] == [[1, 1]]
    ok(att, "annotation.share", {"document_id": doc_id, "to": "private", "ids": ["a1"]})
    assert got(secretary, "annotation.unshared") == [
        {"document_id": doc_id, "attendee_id": seat_id(room, "attendee"), "ids": ["a1"]}
    ]
    assert room.join("secretary").get(shared_url).get_json()["annotations"] == []
    refused(
        att, "annotation.share", {"document_id": doc_id, "to": "room", "ids": ["nope"]}, "no_such_annotation"
    )
    refused(att, "annotation.share", {"document_id": doc_id, "to": "room"}, "invalid")


def test_presenter_shows_a_seats_shared_annotation_to_everyone(room_with_doc, doc_id, att):
    room = room_with_doc
    presenter, observer = room.tablet("presenter"), room.tablet("observer")
    ok(att, "annotation.save", pen(doc_id, "a1"))
    ok(att, "annotation.save", pen(doc_id, "secret"))
    aid = seat_id(room, "attendee")
    show = {"document_id": doc_id, "attendee_id": aid, "ids": ["a1"]}
    refused(presenter, "annotation.show", show, "no_such_annotation")  # still private
    ok(att, "annotation.share", {"document_id": doc_id, "to": "presenter", "ids": ["a1"]})
    refused(att, "annotation.show", show, "forbidden")
    refused(presenter, "annotation.show", {**show, "ids": ["secret"]}, "no_such_annotation")
    observer.get_received()
    ok(presenter, "annotation.show", show)
    ev = got(observer, "annotation.shown")
    assert ev[0]["attendee"]["id"] == aid and [x["id"] for x in ev[0]["annotations"]] == ["a1"]
    assert ev[0]["shown_by"]["role"] == "presenter"

    late = room.tablet("secretary")  # connects afterwards: the snapshot has it
    snap = got(late, "state")[0]["annotations"]["shown"]
    assert snap["attendee"]["id"] == aid and snap["annotations"][0]["id"] == "a1"

    ok(att, "annotation.delete", {"document_id": doc_id, "ids": ["a1"]})  # the author erases it
    assert got(observer, "annotation.shown")[-1]["annotations"] == []
    ok(presenter, "annotation.hide")
    assert got(observer, "annotation.shown")[-1]["document_id"] is None
    assert got(room.tablet("chair"), "state")[0]["annotations"]["shown"] is None


def test_state_counts_this_seats_annotations(room_with_doc, doc_id, att):
    ok(att, "annotation.save", pen(doc_id, "a1"))
    ok(att, "annotation.save", pen(doc_id, "a2", page=3))
    ok(att, "annotation.save", pen(doc_id, "a3"))
    ok(att, "annotation.delete", {"document_id": doc_id, "ids": ["a3"]})
    snap = got(room_with_doc.tablet("attendee"), "state")[0]
    assert snap["annotations"]["counts"] == {str(doc_id): 2}
    assert got(room_with_doc.tablet("chair"), "state")[0]["annotations"]["counts"] == {}


def test_audit_log_records_sharing_but_not_private_drawing(room_with_doc, doc_id, att):
    from meeting_server.core import audit, db

    ok(att, "annotation.save", pen(doc_id, "a1"))
    ok(att, "annotation.share", {"document_id": doc_id, "to": "room", "ids": ["a1"]})
    with db.reader() as s:
        cmds = [e.command for e in audit.entries(s, room_with_doc.meeting["id"])]
    assert "annotation.share" in cmds and "annotation.save" not in cmds
