"""Seats online/offline, what each tablet shows, last seen; devices per seat, revoking, single-device rule."""

from __future__ import annotations

import pytest

from tests.conftest import need
from tests.live.conftest import ROLES, STAFF, ack, client_for, drain, got

STATUS_KEYS = {
    "attendee_id",
    "seat",
    "name",
    "online",
    "devices",
    "following",
    "document_id",
    "page",
    "battery",
    "charging",
    "last_seen",
}


def _sessions(room, role: str) -> list[dict]:
    mid, aid = room.meeting["id"], room.seats[role]["id"]
    r = room.org.get(f"/api/v1/meetings/{mid}/attendees/{aid}/sessions")
    assert r.status_code == 200
    return r.get_json()["sessions"]


def test_connect_and_disconnect_reach_the_staff_only(room, everyone):
    tablet = client_for(room, "attendee", fresh=True)
    aid = room.seats["attendee"]["id"]
    got_now = everyone.received()
    for role in ROLES:
        evs = [p for n, p in got_now[role] if n == "seat.status"]
        if role in STAFF:
            assert len(evs) == 1 and set(evs[0]) == STATUS_KEYS, role
            assert evs[0]["attendee_id"] == aid and evs[0]["online"] and evs[0]["devices"] == 2, role
            assert evs[0]["seat"] == "S04"
        else:
            assert got_now[role] == [], role
    tablet.disconnect()
    got_now = everyone.received()
    assert [p["devices"] for n, p in got_now["secretary"]] == [1]
    assert got_now["secretary"][0][1]["online"] is True
    everyone["attendee"].disconnect()
    got_now = everyone.received()
    assert got_now["organizer"] == [("seat.status", got_now["organizer"][0][1])]
    assert got_now["organizer"][0][1]["online"] is False and got_now["organizer"][0][1]["devices"] == 0
    assert got_now["observer"] == []


def test_tablet_reports_reach_the_console_when_something_changed(room, everyone):
    t = everyone["attendee"]
    report = {"following": False, "document_id": 7, "page": 3, "battery": 0.42, "charging": False}
    assert ack(t, "seat.status", report) == {"ok": True}
    evs = everyone.received()
    for role in ROLES:
        if role in STAFF:
            assert len(evs[role]) == 1, role
            st = evs[role][0][1]
            assert {k: st[k] for k in report} == report and st["online"] and st["last_seen"], role
        else:
            assert evs[role] == [], role
    ack(t, "seat.status", report)  # nothing new: nothing sent
    assert everyone.received()["organizer"] == []
    ack(t, "seat.status", {**report, "following": True})
    assert [p["following"] for n, p in everyone.received()["chair"]] == [True]


def test_console_state_has_every_seat_and_tablets_have_none(room, everyone):
    ack(everyone["attendee"], "seat.status", {"following": True, "battery": 0.9})
    ack(everyone["attendee"], "checkin")
    console = client_for(room, "organizer", fresh=True)
    state = got(console)[0][1]
    seats = {s["role"]: s for s in state["seats"]}
    assert set(seats) == {"chair", "presenter", "secretary", "attendee", "observer"}
    a = seats["attendee"]
    assert a["online"] and a["devices"] == 1 and a["following"] is True and a["battery"] == 0.9
    assert a["checked_in"] is True and a["late"] is False and a["left_early"] is False
    assert a["seat"] == "S04" and a["last_seen"]
    assert ack(console, "seats.status")["seats"] == state["seats"]
    assert "seats" in ack(everyone["secretary"], "state.get")["state"]
    assert "seats" not in ack(everyone["attendee"], "state.get")["state"]
    assert "seats" not in ack(everyone["observer"], "state.get")["state"]


def test_offline_seat_keeps_its_last_seen(room, everyone):
    everyone["observer"].disconnect()
    seats = {s["role"]: s for s in ack(everyone["organizer"], "seats.status")["seats"]}
    assert seats["observer"]["online"] is False and seats["observer"]["last_seen"]


def test_last_seen_is_written_in_batches(room, everyone):
    from meeting_server.live import presence

    assert all(s["last_seen_at"] is None for s in _sessions(room, "chair"))
    presence.current.heartbeat()
    assert presence.current.flush_last_seen() >= 5
    sessions = _sessions(room, "chair")
    assert len(sessions) == 1 and sessions[0]["last_seen_at"] and sessions[0]["online"] is True
    assert presence.current.flush_last_seen() == 0  # nothing pending


def test_release_disconnects_every_device_of_the_seat(room, everyone):
    second = client_for(room, "attendee", fresh=True)
    drain(second)
    mid, aid = room.meeting["id"], room.seats["attendee"]["id"]
    r = room.org.post(f"/api/v1/meetings/{mid}/attendees/{aid}/release")
    assert r.status_code == 200 and r.get_json()["revoked"] == 2
    assert not everyone["attendee"].is_connected() and not second.is_connected()
    assert everyone["chair"].is_connected()
    offline = [p for n, p in got(everyone["organizer"]) if n == "seat.status"]
    assert offline[-1]["online"] is False


def test_revoke_one_session_keeps_the_other_device(room, everyone):
    second = client_for(room, "attendee", fresh=True)
    drain(second)
    mid, aid = room.meeting["id"], room.seats["attendee"]["id"]
    first_session = _sessions(room, "attendee")[0]["id"]
    r = room.org.post(f"/api/v1/meetings/{mid}/attendees/{aid}/sessions/{first_session}/revoke")
    assert r.status_code == 200 and r.get_json()["revoked_at"]
    assert not everyone["attendee"].is_connected()
    assert second.is_connected()
    assert got(second) == [("session.revoked", {"attendee_id": aid, "session_id": first_session})]
    other = room.seats["chair"]["id"]
    r = room.org.post(f"/api/v1/meetings/{mid}/attendees/{other}/sessions/{first_session}/revoke")
    assert r.status_code == 404


def test_single_device_rule_and_organizer_allowed_takeover(room, everyone):
    mid, aid = room.meeting["id"], room.seats["attendee"]["id"]
    assert room.org.patch(f"/api/v1/meetings/{mid}", json={"single_device": True}).status_code == 200
    c = room.app.test_client()
    token = room.seats["attendee"]["join_token"]
    r = c.post("/api/v1/join", json={"token": token})
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "seat_in_use"
    r = c.post("/api/v1/join", json={"token": token, "takeover": True})
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "takeover_not_allowed"
    r = room.org.post(f"/api/v1/meetings/{mid}/attendees/{aid}/allow-takeover")
    assert r.status_code == 200 and r.get_json()["expires_at"]
    r = c.post("/api/v1/join", json={"token": token, "takeover": True})
    assert r.status_code == 200
    assert not everyone["attendee"].is_connected()  # the old device is out
    sessions = _sessions(room, "attendee")
    assert [s["revoked_at"] is None for s in sessions] == [False, True]
    # the permission was good for one take-over
    r = c.post("/api/v1/join", json={"token": token, "takeover": True})
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "takeover_not_allowed"


def test_revoked_tablet_cannot_reconnect(room):
    t = client_for(room, "attendee")
    mid, aid = room.meeting["id"], room.seats["attendee"]["id"]
    room.org.post(f"/api/v1/meetings/{mid}/attendees/{aid}/reissue")
    assert not t.is_connected()
    from meeting_server.extensions import socketio

    sess = _sessions(room, "attendee")
    assert all(s["revoked_at"] for s in sess)
    again = socketio.test_client(room.app, auth={"token": "seat_not-a-real-token"})
    assert not again.is_connected()


# -- several processes: the Redis mirror ----------------------------------------------
def _redis_url() -> str:
    return "redis://127.0.0.1:6379/15"


def _redis_ok() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(_redis_url(), socket_timeout=1).ping())
    except Exception:
        return False


@pytest.fixture
def two_processes():
    need(_redis_ok(), "Redis is not reachable at 127.0.0.1:6379")
    import redis

    from meeting_server.live.presence import Presence

    a, b = Presence(_redis_url()), Presence(_redis_url())
    yield a, b
    r = redis.Redis.from_url(_redis_url())
    for key in r.scan_iter("ms:*"):
        r.delete(key)


def _actor(aid: int, session: int, mid: int = 900001):
    from meeting_server.core.identity import Actor

    return Actor("seat", aid, f"座位{aid}", "attendee", mid, session)


def test_presence_is_shared_across_processes(two_processes):
    a, b = two_processes
    mid = 900001
    st = a.connect("sid-a", _actor(1, 11), {"name": "张伟", "seat": "A1"})
    assert st["online"] and st["devices"] == 1
    st = b.connect("sid-b", _actor(1, 12), {"name": "张伟", "seat": "A1"})
    assert st["devices"] == 2  # the other process's device counts
    b.report("sid-b", {"following": False, "page": 9, "battery": 0.5})
    a.heartbeat()
    snap = a.snapshot(mid)
    assert snap[1]["devices"] == 2 and snap[1]["page"] == 9 and snap[1]["battery"] == 0.5
    # the device on process B goes: the seat is still online through A
    st = b.disconnect("sid-b")
    assert st["online"] and st["devices"] == 1
    st = a.disconnect("sid-a")
    assert st["online"] is False and st["devices"] == 0


def test_a_crashed_process_stops_counting(two_processes):
    a, b = two_processes
    mid = 900001
    from meeting_server.core.identity import Actor

    a.connect("sid-console", Actor("user", 1, "秘书处", "admin", mid, 1))  # A refreshes meetings it serves
    b.connect("sid-b", _actor(2, 21), {"name": "李娜", "seat": "B2"})
    a.heartbeat()
    assert a.snapshot(mid)[2]["online"] is True
    b.mirror.forget_process()  # what an expired heartbeat looks like
    a.heartbeat()
    assert a.snapshot(mid).get(2, {"online": False})["online"] is False
    st = a.connect("sid-a", _actor(2, 22))
    assert st["devices"] == 1


def test_merge_prefers_the_newest_report():
    from meeting_server.live.presence import merge

    local = {
        "attendee_id": 1,
        "online": True,
        "devices": 1,
        "page": 1,
        "following": True,
        "battery": None,
        "charging": None,
        "document_id": 1,
        "last_seen": "2026-01-01T10:00:00Z",
    }
    remote = [
        {
            "devices": 1,
            "page": 4,
            "following": False,
            "battery": 0.3,
            "charging": True,
            "document_id": 2,
            "last_seen": "2026-01-01T10:00:05Z",
            "reported": "2026-01-01T10:00:05Z",
        }
    ]
    out = merge(local, remote)
    assert out["devices"] == 2 and out["page"] == 4 and out["following"] is False
    assert out["last_seen"] == "2026-01-01T10:00:05Z"
