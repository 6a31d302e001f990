"""Check-in: self and proxy (代签), check-out and re-entry with history, late and early, counts and quorum."""

from __future__ import annotations

from tests.live.conftest import ROLES, STAFF, ack, client_for, got


def _start(room) -> None:
    assert room.org.post(f"/api/v1/meetings/{room.meeting['id']}/start").status_code == 200


def _report(room) -> dict:
    r = room.org.get(f"/api/v1/meetings/{room.meeting['id']}/attendance")
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def _person(room, role: str) -> dict:
    aid = room.seats[role]["id"]
    return next(a for a in _report(room)["attendees"] if a["attendee_id"] == aid)


def test_checkin_broadcasts_counts_to_all_and_the_seat_news_to_staff_and_seat(room, everyone):
    a = ack(everyone["attendee"], "checkin")
    assert a["ok"] and a["checked_in_at"] and a["entered_at"] == a["checked_in_at"]
    evs = everyone.received()
    quorum = {"rule": {"kind": "fraction", "value": 0.5}, "required": 2, "reached": False}
    counts = {"present": 1, "expected": 4, "seq": 1, "quorum": quorum}
    for role in ROLES:
        names = [n for n, _ in evs[role]]
        assert evs[role][0] == ("attendance", counts), role
        if role in STAFF or role == "attendee":
            assert names == ["attendance", "seat.checkin"], role
            news = evs[role][1][1]
            assert news["attendee_id"] == room.seats["attendee"]["id"] and news["checked_in"] is True
            assert news["method"] == "self" and news["at"] == a["checked_in_at"] and news["late"] is False
            assert news["seat"] == "S04"
        else:
            assert names == ["attendance"], role


def test_checkin_is_idempotent(room, everyone):
    first = ack(everyone["attendee"], "checkin")
    everyone.received()
    again = ack(everyone["attendee"], "checkin")
    assert again == first
    assert everyone.received() == {role: [] for role in ROLES}
    assert len(_person(room, "attendee")["records"]) == 1


def test_checkout_and_reentry_keep_the_history(room, everyone):
    t = everyone["attendee"]
    first = ack(t, "checkin")
    out = ack(t, "checkout")
    assert out["ok"] and out["checked_out_at"]
    evs = everyone.received()
    assert [p["present"] for n, p in evs["observer"] if n == "attendance"] == [1, 0]
    assert [p["checked_in"] for n, p in evs["attendee"] if n == "seat.checkin"] == [True, False]
    assert ack(t, "checkout") == out  # idempotent
    assert everyone.received()["chair"] == []
    back = ack(t, "checkin")
    assert back["checked_in_at"] == first["checked_in_at"] and back["entered_at"] > first["entered_at"]
    p = _person(room, "attendee")
    assert p["checked_in"] is True and p["checked_out_at"] is None
    recs = p["records"]
    assert [(r["in_at"] is not None, r["out_at"] is not None) for r in recs] == [(True, True), (True, False)]
    assert recs[0]["out_at"] == out["checked_out_at"] and recs[1]["in_at"] == back["entered_at"]
    assert recs[0]["early"] is False  # the meeting had not started: leaving is not leaving early


def test_late_arrival_and_early_leave(room, everyone):
    ack(everyone["chair"], "checkin")  # before the start: on time
    _start(room)
    everyone.received()
    ack(everyone["attendee"], "checkin")
    news = [p for n, p in got(everyone["secretary"]) if n == "seat.checkin"][0]
    assert news["late"] is True and news["left_early"] is False
    ack(everyone["chair"], "checkout")
    news = [p for n, p in got(everyone["secretary"]) if n == "seat.checkin"][0]
    assert news["left_early"] is True and news["late"] is False
    chair, attendee = _person(room, "chair"), _person(room, "attendee")
    assert (chair["late"], chair["left_early"]) == (False, True)
    assert (attendee["late"], attendee["left_early"]) == (True, False)
    ack(everyone["chair"], "checkin")  # back: no longer "left early", and re-entry is not "late"
    chair = _person(room, "chair")
    assert (chair["late"], chair["left_early"], chair["records"][1]["late"]) == (False, False, False)
    seats = {s["role"]: s for s in ack(everyone["organizer"], "seats.status")["seats"]}
    assert seats["attendee"]["late"] is True and seats["chair"]["left_early"] is False
    me = ack(everyone["attendee"], "state.get")["state"]["me"]
    assert me["late"] is True and me["checked_in"] is True


def test_proxy_checkin_by_the_secretary_with_a_reason(room, everyone):
    aid = room.seats["attendee"]["id"]
    a = ack(
        everyone["secretary"],
        "checkin.proxy",
        {"attendee_id": aid, "reason": "平板没电 tablet battery empty"},
    )
    assert a["ok"] and a["changed"] is True and a["checked_in"] is True
    evs = everyone.received()
    assert [n for n, _ in evs["attendee"]] == ["attendance", "seat.checkin"]
    news = evs["attendee"][1][1]
    assert news["method"] == "proxy" and news["reason"] == "平板没电 tablet battery empty"
    assert news["by"] == "secretary-3"
    assert [n for n, _ in evs["observer"]] == ["attendance"]
    rec = _person(room, "attendee")["records"][0]
    assert (
        rec["in_method"] == "proxy"
        and rec["in_by"]["role"] == "secretary"
        and rec["in_reason"].startswith("平板")
    )
    assert _person(room, "attendee")["proxy"] is True
    # a second proxy check-in changes nothing
    a = ack(everyone["secretary"], "checkin.proxy", {"attendee_id": aid, "reason": "again"})
    assert a["changed"] is False
    assert everyone.received()["organizer"] == []
    # the tablet that reconnects shows it
    me = got(client_for(room, "attendee", fresh=True))[0][1]["me"]
    assert me["checked_in"] is True
    from meeting_server.core import audit, db

    with db.reader() as s:
        entries = [e for e in audit.entries(s, room.meeting["id"]) if e.command == "checkin.proxy"]
    assert len(entries) == 1 and entries[0].data["reason"] == "平板没电 tablet battery empty"


def test_proxy_over_http(room, everyone):
    mid, aid = room.meeting["id"], room.seats["observer"]["id"]
    r = room.org.post(
        f"/api/v1/meetings/{mid}/attendees/{aid}/checkin", json={"reason": "现场签到 signed on paper"}
    )
    assert r.status_code == 200 and r.get_json()["checked_in"] is True
    r = room.org.post(f"/api/v1/meetings/{mid}/attendees/{aid}/checkin", json={})
    assert r.status_code == 400  # the reason is required
    r = room.org.post(f"/api/v1/meetings/{mid}/attendees/{aid}/checkout", json={"reason": "离场 left"})
    assert r.status_code == 200 and r.get_json()["checked_in"] is False
    r = room.join("attendee").post(f"/api/v1/meetings/{mid}/attendees/{aid}/checkin", json={"reason": "x"})
    assert r.status_code == 403
    r = room.join("secretary").post(f"/api/v1/meetings/{mid}/attendees/{aid}/checkin", json={"reason": "x"})
    assert r.status_code == 200
    r = room.org.post(f"/api/v1/meetings/{mid + 1}/attendees/{aid}/checkin", json={"reason": "x"})
    assert r.status_code == 404


def test_observers_count_in_neither_number(room, everyone):
    ack(everyone["observer"], "checkin")
    counts = [p for n, p in got(everyone["attendee"]) if n == "attendance"][0]
    assert (counts["present"], counts["expected"]) == (0, 4)
    assert _person(room, "observer")["checked_in"] is True and _person(room, "observer")["counted"] is False


def test_quorum_fraction_count_and_none(room, everyone):
    for role in ("chair", "attendee"):
        ack(everyone[role], "checkin")
    last = [p for n, p in got(everyone["observer"]) if n == "attendance"][-1]
    assert last["quorum"] == {"rule": {"kind": "fraction", "value": 0.5}, "required": 2, "reached": True}
    a = ack(everyone["chair"], "quorum.set", {"rule": {"kind": "count", "value": 3}})
    assert a["attendance"]["quorum"] == {
        "rule": {"kind": "count", "value": 3.0},
        "required": 3,
        "reached": False,
    }
    assert [n for n, _ in got(everyone["observer"])] == ["attendance"]
    ack(everyone["presenter"], "checkin")
    last = [p for n, p in got(everyone["observer"]) if n == "attendance"][-1]
    assert last["present"] == 3 and last["quorum"]["reached"] is True
    a = ack(everyone["organizer"], "quorum.set", {"rule": None})
    assert "quorum" not in a["attendance"]
    assert (
        ack(everyone["chair"], "quorum.set", {"rule": {"kind": "fraction", "value": 2}})["error"]["code"]
        == "invalid"
    )
    seqs = [p["seq"] for n, p in got(everyone["attendee"]) if n == "attendance"]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


def test_state_attendance_matches(room, everyone):
    ack(everyone["attendee"], "checkin")
    state = ack(everyone["observer"], "state.get")["state"]
    assert state["attendance"]["present"] == 1 and state["attendance"]["seq"] == 1
    assert state["me"]["checked_in"] is False


def test_no_checkin_once_the_meeting_ended(room, everyone):
    assert room.org.post(f"/api/v1/meetings/{room.meeting['id']}/end").status_code == 200
    assert ack(everyone["attendee"], "checkin")["error"]["code"] == "meeting_ended"
    # reading stays possible
    assert _report(room)["attendance"]["present"] == 0


def test_attendance_report_needs_staff(room):
    mid = room.meeting["id"]
    assert room.join("attendee").get(f"/api/v1/meetings/{mid}/attendance").status_code == 403
    assert room.join("chair").get(f"/api/v1/meetings/{mid}/attendance").status_code == 200
