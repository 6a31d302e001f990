"""Room services: speaker queue and timer, service calls, announcements, nameplates; all in `state` again."""

from __future__ import annotations

import datetime as dt

from tests.live.conftest import ROLES, STAFF, ack, client_for, got

SERVICE_AUDIENCE = {"organizer", "secretary"}


def _ts(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00"))


def _only(evs: list, name: str) -> list:
    return [p for n, p in evs if n == name]


# -- speakers -------------------------------------------------------------------------
def test_request_to_speak_reaches_everyone_with_the_queue(room, everyone):
    a = ack(everyone["attendee"], "speaker.request", {"note": "关于第三项"})
    assert a["ok"] and a["status"] == "waiting"
    evs = everyone.received()
    for role in ROLES:
        assert [n for n, _ in evs[role]] == ["speakers"], role
    msg = evs["observer"][0][1]
    assert msg["seq"] == 1 and msg["current"] is None and msg["server_time"]
    assert [(q["id"], q["name"], q["seat"], q["note"], q["status"]) for q in msg["queue"]] == [
        (a["request_id"], "attendee-4", "S04", "关于第三项", "waiting")
    ]
    assert all(evs[r][0][1]["queue"] == msg["queue"] for r in ROLES)
    # asking again changes nothing
    assert ack(everyone["attendee"], "speaker.request")["request_id"] == a["request_id"]
    assert everyone.received() == {r: [] for r in ROLES}


def test_chair_orders_grants_extends_and_ends(room, everyone):
    r1 = ack(everyone["attendee"], "speaker.request")["request_id"]
    r2 = ack(everyone["observer"], "speaker.request")["request_id"]
    r3 = ack(everyone["chair"], "speaker.add", {"attendee_id": room.seats["secretary"]["id"]})["request_id"]
    ack(everyone["chair"], "speaker.order", {"order": [r3, r1, r2]})
    assert [q["id"] for q in _only(got(everyone["attendee"]), "speakers")[-1]["queue"]] == [r3, r1, r2]
    assert ack(everyone["chair"], "speaker.order", {"order": [r1, r2]})["error"]["code"] == "invalid"
    g = ack(everyone["chair"], "speaker.grant", {"duration_seconds": 120})
    assert g["request_id"] == r3
    msg = _only(got(everyone["presenter"]), "speakers")[-1]
    cur = msg["current"]
    assert cur["id"] == r3 and cur["status"] == "speaking" and cur["duration_seconds"] == 120
    assert _ts(cur["ends_at"]) - _ts(cur["started_at"]) == dt.timedelta(seconds=120)
    assert [q["id"] for q in msg["queue"]] == [r1, r2]
    ext = ack(everyone["organizer"], "speaker.extend", {"seconds": 60})
    assert _ts(ext["ends_at"]) - _ts(cur["ends_at"]) == dt.timedelta(seconds=60)
    # granting the next one ends the current speech
    g2 = ack(everyone["chair"], "speaker.grant", {"request_id": r2, "duration_seconds": 0})
    msg = _only(got(everyone["observer"]), "speakers")[-1]
    assert msg["current"]["id"] == r2 and msg["current"]["ends_at"] is None and g2["ends_at"] is None
    assert [q["id"] for q in msg["queue"]] == [r1]
    assert ack(everyone["chair"], "speaker.grant", {"request_id": r2})["error"]["code"] == "not_waiting"
    ack(everyone["chair"], "speaker.end")
    assert ack(everyone["chair"], "speaker.end")["error"]["code"] == "no_speaker"
    ack(everyone["chair"], "speaker.remove", {"request_id": r1})
    msg = _only(got(everyone["attendee"]), "speakers")[-1]
    assert msg["queue"] == [] and msg["current"] is None
    assert ack(everyone["chair"], "speaker.grant")["error"]["code"] == "queue_empty"
    seqs = [p["seq"] for p in _only(got(everyone["organizer"]), "speakers")]
    assert seqs == sorted(seqs)


def test_withdraw_and_finish_own_speech(room, everyone):
    ack(everyone["attendee"], "speaker.request")
    w = ack(everyone["attendee"], "speaker.withdraw")
    assert w["status"] == "withdrawn"
    assert ack(everyone["attendee"], "speaker.withdraw") == {"ok": True, "request_id": None}
    ack(everyone["attendee"], "speaker.request")
    ack(everyone["chair"], "speaker.grant")
    done = ack(everyone["attendee"], "speaker.withdraw")
    assert done["status"] == "done"
    assert _only(got(everyone["observer"]), "speakers")[-1]["current"] is None


def test_reconnecting_tablet_gets_the_queue_and_the_timer(room, everyone):
    ack(everyone["attendee"], "speaker.request")
    ack(everyone["observer"], "speaker.request")
    ack(everyone["chair"], "speaker.grant", {"duration_seconds": 300})
    live = _only(got(everyone["secretary"]), "speakers")[-1]
    state = got(client_for(room, "presenter", fresh=True))[0][1]
    sp = state["speakers"]
    assert sp["seq"] == live["seq"] and sp["current"] == live["current"] and sp["queue"] == live["queue"]
    assert state["server_time"] and sp["current"]["ends_at"]


def test_the_end_of_the_meeting_ends_the_speech_and_the_requests(room, everyone):
    ack(everyone["attendee"], "speaker.request")
    ack(everyone["chair"], "speaker.grant")
    everyone.received()
    assert room.org.post(f"/api/v1/meetings/{room.meeting['id']}/end").status_code == 200
    msg = _only(got(everyone["observer"]), "speakers")[-1]
    assert msg["current"] is None
    assert ack(everyone["attendee"], "speaker.request")["error"]["code"] == "meeting_ended"


# -- service calls ----------------------------------------------------------------------
def test_service_call_reaches_secretaries_organizers_and_the_seat_only(room, everyone):
    a = ack(everyone["attendee"], "service.call", {"kind": "water", "note": "温水"})
    call = a["call"]
    assert (
        call["seat"] == "S04"
        and call["kind"] == "water"
        and call["status"] == "open"
        and call["name"] == "attendee-4"
    )
    evs = everyone.received()
    for role in ROLES:
        expected = [("service.call", call)] if role in SERVICE_AUDIENCE | {"attendee"} else []
        assert evs[role] == expected, role
    # the same kind again: the open call, nothing sent
    assert ack(everyone["attendee"], "service.call", {"kind": "water"})["call"]["id"] == call["id"]
    assert everyone.received()["secretary"] == []
    closed = ack(everyone["secretary"], "service.close", {"call_id": call["id"]})["call"]
    assert closed["status"] == "closed" and closed["closed_by"] == "secretary-3" and closed["closed_at"]
    evs = everyone.received()
    for role in ROLES:
        expected = [("service.call", closed)] if role in SERVICE_AUDIENCE | {"attendee"} else []
        assert evs[role] == expected, role
    assert (
        ack(everyone["secretary"], "service.close", {"call_id": call["id"]})["error"]["code"]
        == "call_not_open"
    )


def test_open_calls_are_in_state_and_the_list(room, everyone):
    c1 = ack(everyone["attendee"], "service.call", {"kind": "tea"})["call"]
    c2 = ack(everyone["observer"], "service.call", {"kind": "technician", "note": "话筒坏了"})["call"]
    assert got(client_for(room, "attendee", fresh=True))[0][1]["service_calls"] == [c1]
    assert got(client_for(room, "chair", fresh=True))[0][1]["service_calls"] == []
    assert got(client_for(room, "secretary", fresh=True))[0][1]["service_calls"] == [c1, c2]
    ack(everyone["organizer"], "service.close", {"call_id": c1["id"]})
    r = room.org.get(f"/api/v1/meetings/{room.meeting['id']}/service-calls")
    assert [c["id"] for c in r.get_json()["calls"]] == [c2["id"]]
    r = room.org.get(f"/api/v1/meetings/{room.meeting['id']}/service-calls?status=all")
    assert [c["status"] for c in r.get_json()["calls"]] == ["closed", "open"]
    assert (
        room.join("attendee").get(f"/api/v1/meetings/{room.meeting['id']}/service-calls").status_code == 403
    )


# -- announcements ----------------------------------------------------------------------
def test_announcement_to_the_room(room, everyone):
    a = ack(everyone["secretary"], "announce", {"text": "会议将于10:30继续", "level": "urgent"})
    msg = a["announcement"]
    assert msg["attendee_id"] is None and msg["level"] == "urgent" and msg["by"] == "secretary-3"
    assert everyone.received() == {r: [("announcement", msg)] for r in ROLES}
    assert got(client_for(room, "observer", fresh=True))[0][1]["announcement"] == msg
    ack(everyone["chair"], "announce.clear", {"announcement_id": msg["id"]})
    cleared = ("announcement.cleared", {"id": msg["id"], "attendee_id": None})
    assert everyone.received("seat.joined", "seat.status") == {r: [cleared] for r in ROLES}
    assert got(client_for(room, "observer", fresh=True))[0][1]["announcement"] is None


def test_announcement_to_one_seat_reaches_it_and_the_staff_only(room, everyone):
    aid = room.seats["attendee"]["id"]
    msg = ack(
        everyone["organizer"], "announce", {"text": "请到前台 Please come to the desk", "attendee_id": aid}
    )["announcement"]
    evs = everyone.received()
    for role in ROLES:
        assert evs[role] == ([("announcement", msg)] if role in STAFF | {"attendee"} else []), role
    assert got(client_for(room, "attendee", fresh=True))[0][1]["announcement"] == msg
    assert got(client_for(room, "observer", fresh=True))[0][1]["announcement"] is None
    other = ack(everyone["organizer"], "announce", {"text": "x", "attendee_id": aid + 1000})
    assert other["error"]["code"] == "not_found"


# -- nameplates --------------------------------------------------------------------------
def test_nameplate_for_the_room_and_one_seat(room, everyone):
    a = ack(everyone["secretary"], "nameplate", {"on": True})
    assert a == {"ok": True, "seq": 1}
    assert everyone.received() == {
        r: [("nameplate", {"on": True, "attendee_id": None, "seq": 1})] for r in ROLES
    }
    aid = room.seats["observer"]["id"]
    ack(everyone["chair"], "nameplate", {"on": False, "attendee_id": aid})
    evs = everyone.received()
    for role in ROLES:
        expected = (
            [("nameplate", {"on": False, "attendee_id": aid, "seq": 2})]
            if role in STAFF | {"observer"}
            else []
        )
        assert evs[role] == expected, role
    # reconnecting tablets show what they should
    assert got(client_for(room, "attendee", fresh=True))[0][1]["nameplate"] == {
        "on": True,
        "room": True,
        "seq": 2,
    }
    assert got(client_for(room, "observer", fresh=True))[0][1]["nameplate"] == {
        "on": False,
        "room": True,
        "seq": 2,
    }
    staff = got(client_for(room, "organizer", fresh=True))[0][1]["nameplate"]
    assert staff["seats"] == {str(aid): False}
    # a room-wide switch resets the per-seat settings
    ack(everyone["secretary"], "nameplate", {"on": True})
    assert got(client_for(room, "observer", fresh=True))[0][1]["nameplate"]["on"] is True
