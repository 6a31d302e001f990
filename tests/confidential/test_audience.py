"""Audience rules across every route and event that could leak a confidential document.

Outside the audience: 404 (never 403) everywhere, absent from every list, and no event names it.
"""

from __future__ import annotations

import pytest

from tests.annotations.helpers import got, image, ok, pen, refused
from tests.confidential.conftest import ALLOWED, OUTSIDE

#: Every route about one document; each must answer 404 outside the audience.
ROUTES = [
    ("GET", "/api/v1/documents/{id}"),
    ("GET", "/api/v1/documents/{id}/pages/1"),
    ("GET", "/api/v1/documents/{id}/thumbs/1"),
    ("GET", "/api/v1/documents/{id}/original"),
    ("GET", "/api/v1/documents/{id}/annotations"),
    ("GET", "/api/v1/documents/{id}/annotations/shared"),
    ("POST", "/api/v1/documents/{id}/annotations/export"),
]


def assert_hidden(api, method: str, url: str) -> None:
    r = api.get(url) if method == "GET" else api.post(url)
    assert r.status_code == 404, f"{method} {url}: {r.status_code} {r.get_data(as_text=True)[:200]}"
    assert r.get_json()["error"]["code"] == "not_found"


def mentions(payload, doc_id: int, title: str) -> bool:
    """Whether an event payload names the document (by id field or title)."""
    text = repr(payload)
    return any(s in text for s in (title, f"'document_id': {doc_id}", f"'document_ids': [{doc_id}"))


@pytest.mark.parametrize("role", OUTSIDE)
def test_every_route_is_404_outside_the_audience(conf, role):
    api = conf.room.join(role)
    for method, path in ROUTES:
        assert_hidden(api, method, conf.url(path))


def test_inside_the_audience_pages_but_never_the_original(conf):
    for role in ALLOWED:
        api = conf.room.join(role)
        assert api.get(conf.url("/api/v1/documents/{id}")).status_code == 200
        assert image(api, conf.url("/api/v1/documents/{id}/pages/1")).status_code == 200
        assert image(api, conf.url("/api/v1/documents/{id}/thumbs/1")).status_code == 200
        assert api.get(conf.url("/api/v1/documents/{id}/annotations")).status_code == 200
        for r in (
            api.get(conf.url("/api/v1/documents/{id}/original")),
            api.post(conf.url("/api/v1/documents/{id}/annotations/export")),
        ):
            assert r.status_code == 403 and r.get_json()["error"]["code"] == "view_only"
    org = conf.room.org
    assert org.get(conf.url("/api/v1/documents/{id}/original")).status_code == 200
    assert org.get(conf.url("/api/v1/documents/{id}/pages/1")).status_code == 200


def test_lists_and_state_leave_it_out(conf):
    room = conf.room
    ok(room.console(), "present", {"document_id": conf.doc_id, "page": 2})
    for role in OUTSIDE + ALLOWED:
        listed = room.join(role).get(conf.url("/api/v1/meetings/{mid}/documents")).get_json()["documents"]
        snap = got(room.tablet(role), "state")[0]
        item = next(i for i in snap["agenda"] if i["id"] == conf.item_id)
        seen = {
            "list": conf.doc_id in [d["id"] for d in listed],
            "state": conf.doc_id in [d["id"] for d in snap["documents"]],
            "agenda": conf.doc_id in item["document_ids"],
            "current": snap["current"]["document_id"] == conf.doc_id,
        }
        expected = role in ALLOWED
        assert seen == dict.fromkeys(seen, expected), (role, seen)
        assert conf.public_id in [d["id"] for d in listed]
        if not expected:
            assert snap["current"]["page"] is None and conf.doc["title"] not in repr(snap)


def test_agenda_route_leaves_it_out(conf):
    items = conf.room.join("observer").get(conf.url("/api/v1/meetings/{mid}/agenda")).get_json()["items"]
    assert all(conf.doc_id not in i["document_ids"] for i in items)


def test_annotation_commands_are_not_found_outside(conf):
    d = conf.doc_id
    for role in OUTSIDE:
        t = conf.room.tablet(role)
        refused(t, "annotation.save", pen(d, "x"), "not_found")
        refused(t, "annotation.delete", {"document_id": d, "ids": ["x"]}, "not_found")
        refused(t, "annotation.share", {"document_id": d, "to": "room", "page": 1}, "not_found")
    aid = conf.room.seats["attendee"]["id"]
    refused(
        conf.room.tablet("presenter"),
        "annotation.show",
        {"document_id": d, "attendee_id": aid, "ids": ["x"]},
        "not_found",
    )


def test_annotation_events_stay_in_the_audience(conf):
    room, d = conf.room, conf.doc_id
    att, chair = room.tablet("attendee"), room.tablet("chair")
    outside = [room.tablet(r) for r in OUTSIDE]
    for c in [att, chair, *outside]:
        c.get_received()
    ok(att, "annotation.save", pen(d, "a1"))
    ok(att, "annotation.share", {"document_id": d, "to": "room", "ids": ["a1"]})
    ok(
        chair,
        "annotation.show",
        {"document_id": d, "attendee_id": room.seats["attendee"]["id"], "ids": ["a1"]},
    )
    ok(att, "annotation.share", {"document_id": d, "to": "private", "ids": ["a1"]})
    ok(chair, "annotation.hide")
    assert got(chair, "annotation.shared") and got(att, "annotation.shown")
    for c in outside:
        assert [e["name"] for e in c.get_received()] == []
    shared_url = conf.url("/api/v1/documents/{id}/annotations/shared")
    assert room.org.get(shared_url).status_code == 200


def test_document_events_stay_in_the_audience(conf):
    room = conf.room
    inside = {r: room.tablet(r) for r in ALLOWED}
    outside = {r: room.tablet(r) for r in OUTSIDE}
    for c in [*inside.values(), *outside.values()]:
        c.get_received()
    assert room.org.patch(conf.url("/api/v1/documents/{id}"), json={"title": "机密 v2"}).status_code == 200
    for c in inside.values():
        assert got(c, "documents.changed") == [{"document_id": conf.doc_id}]
    for r, c in outside.items():
        assert [e for e in c.get_received() if mentions(e["args"], conf.doc_id, "机密")] == [], r


def test_a_seat_leaving_the_audience_is_told_to_purge(conf):
    room = conf.room
    att, observer = room.tablet("attendee"), room.tablet("observer")
    att.get_received(), observer.get_received()
    r = room.org.patch(conf.url("/api/v1/documents/{id}"), json={"audience": {"roles": ["chair"]}})
    assert r.status_code == 200
    assert got(att, "documents.withdrawn") == [{"document_ids": [conf.doc_id], "reason": "audience_changed"}]
    assert observer.get_received() == []
    assert room.join("attendee").get(conf.url("/api/v1/documents/{id}")).status_code == 404


def test_audience_names_only_attendees_of_this_meeting(conf, organizer):
    from tests.conftest import add_attendee, create_meeting

    other = add_attendee(organizer, create_meeting(organizer)["id"], "外人 Stranger")
    r = conf.room.org.patch(
        conf.url("/api/v1/documents/{id}"), json={"audience": {"attendees": [other["id"]]}}
    )
    assert (
        r.status_code == 400
        and r.get_json()["error"]["details"]["fields"][0]["field"] == "audience.attendees"
    )


def test_page_event_hides_the_document_outside_the_audience(conf):
    from meeting_server.core import db
    from meeting_server.documents import service

    room = conf.room
    msg = {"document_id": conf.doc_id, "page": 2, "seq": 7, "view": {"zoom": 2}}
    with db.reader() as s:
        targets = service.page_event_targets(s, room.meeting["id"], conf.doc_id, msg)
        public = service.page_event_targets(
            s, room.meeting["id"], conf.public_id, {**msg, "document_id": conf.public_id}
        )
    (allowed_rooms, full), (other_rooms, neutral) = targets
    seat_room = {r: f"a{room.seats[r]['id']}" for r in ALLOWED + OUTSIDE}
    assert full == msg and neutral == {"document_id": None, "page": None, "seq": 7, "view": None}
    assert sorted(allowed_rooms) == sorted([f"m{room.meeting['id']}:org", *(seat_room[r] for r in ALLOWED)])
    assert sorted(other_rooms) == sorted(seat_room[r] for r in OUTSIDE)
    assert public == [([f"m{room.meeting['id']}"], {**msg, "document_id": conf.public_id})]


def test_presenting_it_tells_outsiders_nothing(conf):
    room = conf.room
    inside, outside = room.tablet("attendee"), room.tablet("observer")
    inside.get_received(), outside.get_received()
    ok(room.console(), "present", {"document_id": conf.doc_id, "page": 2})
    assert got(inside, "page")[0]["document_id"] == conf.doc_id
    (page,) = got(outside, "page")
    assert page["document_id"] is None and page["page"] is None and page["seq"]
    refused(room.tablet("presenter"), "present", {"document_id": conf.doc_id, "page": 1}, "not_found")


def test_render_progress_stays_in_the_audience(conf):
    room = conf.room
    secretary = room.tablet("secretary")
    secretary.get_received()
    from tests.conftest import make_pdf

    assert (
        room.org.upload(conf.url("/api/v1/documents/{id}/replace"), make_pdf(2), "v2.pdf").status_code == 202
    )
    assert [e for e in secretary.get_received() if mentions(e["args"], conf.doc_id, "机密")] == []
