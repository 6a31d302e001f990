"""Who may send each live-room event: one line per event, every role checked (organizer console and each seat)."""

from __future__ import annotations

import pytest

from tests.live.conftest import (
    CHAIRS,
    PRESENTERS,
    ROLES,
    SEAT_ROLES,
    STAFF,
    ack,
    assert_allowed,
    assert_refused,
    check_role,
    client_for,
)

EVERYONE = set(ROLES)
SEATS = set(SEAT_ROLES)
PROXY = {"organizer", "secretary"}
ANNOUNCERS = {"organizer", "chair", "secretary"}
SERVICE_STAFF = {"organizer", "secretary"}


def _doc(room) -> dict:
    return {"document_id": room.document["id"], "page": 2}


def _attendee(room) -> dict:
    return {"attendee_id": room.seats["attendee"]["id"]}


def _org(room):
    return client_for(room, "organizer")


def _waiting(room) -> dict:
    """The attendee waits to speak, nobody speaks: a fresh request id (for grant, order, remove)."""
    c = _org(room)
    ack(c, "speaker.end")  # 409 no_speaker when nobody speaks: fine
    return {"request_id": ack(c, "speaker.add", _attendee(room))["request_id"]}


def _speaking(room) -> None:
    c = _org(room)
    if ack(c, "speaker.add", _attendee(room))["status"] == "waiting":
        assert ack(c, "speaker.grant", {})["ok"]


def _open_call(room) -> dict:
    a = ack(client_for(room, "attendee"), "service.call", {"kind": "tea"})
    return {"call_id": a["call"]["id"]}


def _announcement(room) -> dict:
    a = ack(client_for(room, "organizer"), "announce", {"text": "休会十分钟"})
    return {"announcement_id": a["announcement"]["id"]}


# event, payload (or fn(room) -> payload, run before each role's attempt), who may send it
TABLE = [
    ("state.get", {}, EVERYONE),
    ("seats.status", {}, STAFF),
    ("present", _doc, PRESENTERS),
    ("view", lambda r: (ack(_org(r), "present", _doc(r)), {"zoom": 2, "x": 0.25, "y": 0.5})[1], PRESENTERS),
    ("agenda.activate", {"item_id": None}, PRESENTERS),
    ("follow.lock", {"locked": True}, PRESENTERS),
    ("pointer", {"x": 0.5, "y": 0.5}, PRESENTERS),
    ("ink", {"stroke_id": "s1", "points": [[0.1, 0.1], [0.2, 0.2]]}, PRESENTERS),
    ("ink.clear", {}, PRESENTERS),
    ("seat.status", {"following": True, "document_id": 1, "page": 1, "battery": 0.8}, SEATS),
    ("checkin", {}, SEATS),
    ("checkout", {}, SEATS),
    ("checkin.proxy", lambda r: {**_attendee(r), "reason": "平板故障 tablet broken"}, PROXY),
    ("checkout.proxy", _attendee, PROXY),
    ("attendance.list", {}, STAFF),
    ("quorum.set", {"rule": {"kind": "count", "value": 2}}, CHAIRS),
    ("speaker.request", {"note": "关于预算"}, SEATS),
    ("speaker.withdraw", {}, SEATS),
    ("speaker.add", _attendee, CHAIRS),
    ("speaker.order", lambda r: (_waiting(r), {"order": _queue(r)})[1], CHAIRS),
    ("speaker.grant", lambda r: {**_waiting(r), "duration_seconds": 60}, CHAIRS),
    ("speaker.end", lambda r: (_speaking(r), {})[1], CHAIRS),
    ("speaker.extend", lambda r: (_speaking(r), {"seconds": 30})[1], CHAIRS),
    ("speaker.remove", _waiting, CHAIRS),
    ("service.call", {"kind": "water"}, SEATS),
    ("service.close", _open_call, SERVICE_STAFF),
    ("service.list", {}, SERVICE_STAFF),
    ("announce", {"text": "请关闭手机 Please silence phones"}, ANNOUNCERS),
    ("announce.clear", _announcement, ANNOUNCERS),
    ("nameplate", {"on": True}, ANNOUNCERS),
]


NEEDS_DOC = {"present", "view"}
#: Tested on their own below: who may send them depends on more than the role.
SPECIAL = {"service.cancel"}


def _queue(room) -> list[int]:
    return [s["id"] for s in ack(_org(room), "state.get")["state"]["speakers"]["queue"]]


@pytest.mark.parametrize("event,payload,allowed", TABLE, ids=[t[0] for t in TABLE])
def test_who_may_send(request, event, payload, allowed):
    room = request.getfixturevalue("room_with_doc" if event in NEEDS_DOC else "room")
    for role in ROLES:
        data = payload(room) if callable(payload) else payload
        check_role(room, role, event, data, allowed)


def test_every_socket_command_of_the_live_room_is_in_the_table(app):
    from meeting_server.core.commands import registry

    mine = {"live", "attendance", "room"}
    names = {c.name for c in registry.commands.values() if c.socket and c.fn.__module__.split(".")[1] in mine}
    assert names == {t[0] for t in TABLE} | SPECIAL


def test_only_the_calling_seat_cancels_its_call(room):
    call = _open_call(room)
    for role in ("chair", "presenter", "secretary", "observer"):
        assert_refused(room, role, "service.cancel", call, code="not_found")
    assert_refused(room, "organizer", "service.cancel", call)
    assert_allowed(room, "attendee", "service.cancel", call)
    assert_refused(room, "attendee", "service.cancel", call, code="call_not_open")


def test_a_tablet_of_another_meeting_cannot_act_here(room_with_doc, organizer):
    from tests.conftest import add_attendee, create_meeting

    other = create_meeting(organizer)
    stranger = add_attendee(organizer, other["id"], "外人 Stranger", "chair")
    from meeting_server.extensions import socketio

    token = (
        room_with_doc.app.test_client()
        .post("/api/v1/join", json={"token": stranger["join_token"]})
        .get_json()
    )
    c = socketio.test_client(room_with_doc.app, auth={"token": token["session_token"]})
    # its commands act on its own meeting only; ids of this meeting are unknown there
    a = ack(c, "present", _doc(room_with_doc))
    assert a["ok"] is False and a["error"]["code"] == "not_found"
    a = ack(c, "checkin.proxy", {**_attendee(room_with_doc), "reason": "x"})
    assert a["ok"] is False and a["error"]["code"] == "not_found"


def test_not_connected_and_bad_payloads(room_with_doc):
    assert_refused(room_with_doc, "presenter", "pointer", {"x": 2, "y": 0}, code="invalid")
    assert_refused(
        room_with_doc, "presenter", "ink", {"stroke_id": "a b", "points": [[0, 0]]}, code="invalid"
    )
    assert_refused(room_with_doc, "presenter", "ink", {"stroke_id": "a", "points": []}, code="invalid")
    assert_refused(room_with_doc, "attendee", "seat.status", {"following": "yes"}, code="invalid")
    assert_refused(room_with_doc, "attendee", "service.call", {"kind": "coffee"}, code="invalid")
    assert_refused(room_with_doc, "secretary", "checkin.proxy", _attendee(room_with_doc), code="invalid")
    assert_allowed(room_with_doc, "presenter", "pointer", {"x": 0, "y": 1, "visible": False})
