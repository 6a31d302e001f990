"""Life cycle (countdown, cancel, revote, change of vote), kinds over the wire, rules at close."""

from __future__ import annotations

import datetime as dt
import time

from tests.voting.conftest import ballot_id, close_poll, events, make_poll, open_poll, tablet, vote


def _wait_for(client, name: str, timeout: float = 5.0) -> list:
    got: list = []
    deadline = time.monotonic() + timeout
    while not got and time.monotonic() < deadline:
        got = events(client, name)
        if not got:
            time.sleep(0.05)
    return got


def _set_closes_at(poll_id: int, when: dt.datetime) -> None:
    from meeting_server.core import db
    from meeting_server.voting.models import Poll

    with db.transaction() as s:
        s.get(Poll, poll_id).closes_at = when


def test_countdown_closes_by_server_time(hall):
    p = make_poll(hall.room, kind="motion", secret=True)
    opened = open_poll(hall.room, p["id"], duration_s=1)
    assert opened["duration_s"] == 1 and opened["closes_at"] and 0 < opened["closes_in_s"] <= 1
    assert vote(hall.tablets[0], p["id"], [0])["ok"]
    hall.drain()
    # the background countdown closes it; nothing here touches the database meanwhile
    polls = _wait_for(hall.tablets[1], "poll")
    assert polls and polls[-1]["status"] == "closed" and polls[-1]["tally"] == [1, 0, 0]
    from meeting_server.core import audit, db

    with db.reader() as s:
        last = audit.entries(s, hall.mid)[-1]
    assert (
        last.command == "poll.close" and last.actor["kind"] == "system" and last.actor["name"] == "countdown"
    )


def test_late_vote_is_refused_and_closes_the_poll(hall):
    p = make_poll(hall.room, kind="motion")
    open_poll(hall.room, p["id"], duration_s=600)
    _set_closes_at(p["id"], dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
    hall.drain()
    assert vote(hall.tablets[0], p["id"], [0])["error"]["code"] == "poll_not_open"
    assert [x["status"] for x in events(hall.tablets[1], "poll")] == ["closed"]
    assert hall.org.get(f"/api/v1/polls/{p['id']}").get_json()["voted"] == 0


def test_restart_sweep_closes_expired_polls(hall):
    from meeting_server.voting import timers

    p = make_poll(hall.room, kind="motion")
    open_poll(hall.room, p["id"], duration_s=600)
    assert vote(hall.tablets[0], p["id"], [1])["ok"]
    _set_closes_at(p["id"], dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5))
    assert timers.sweep() == 1
    got = hall.org.get(f"/api/v1/polls/{p['id']}").get_json()
    assert got["status"] == "closed" and got["tally"] == [0, 1, 0]
    assert timers.sweep() == 0


def test_one_open_poll_at_a_time_and_cancel(hall):
    a, b = make_poll(hall.room, kind="motion"), make_poll(hall.room, kind="motion")
    open_poll(hall.room, a["id"])
    r = hall.org.post(f"/api/v1/polls/{b['id']}/open")
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "another_poll_open"
    assert vote(hall.tablets[0], a["id"], [0])["ok"]
    hall.drain()
    r = hall.org.post(f"/api/v1/polls/{a['id']}/cancel", json={"reason": "程序错误 wrong text"})
    assert r.status_code == 200 and r.get_json()["status"] == "cancelled"
    assert [x["status"] for x in events(hall.tablets[2], "poll")] == ["cancelled"]
    assert vote(hall.tablets[1], a["id"], [0])["error"]["code"] == "poll_not_open"
    assert hall.org.post(f"/api/v1/polls/{a['id']}/close").get_json()["error"]["code"] == "poll_not_open"
    assert (
        hall.org.post(f"/api/v1/polls/{a['id']}/cancel").get_json()["error"]["code"] == "poll_not_cancellable"
    )
    open_poll(hall.room, b["id"])
    assert hall.org.post(f"/api/v1/polls/{b['id']}/open").get_json()["error"]["code"] == "poll_not_draft"


def test_revote_is_a_new_round_keeping_the_first(hall):
    p = make_poll(hall.room, options=["甲 A", "乙 B", "丙 C"], kind="election", seats=1)
    open_poll(hall.room, p["id"])
    for t, c in zip(hall.tablets[:4], [0, 0, 1, 1], strict=True):
        assert vote(t, p["id"], [c])["ok"]
    first = close_poll(hall.room, p["id"])
    assert first["result"]["outcome"]["result"] == "tie" and first["result"]["outcome"]["tied"] == [0, 1]
    ack = hall.room.tablet("chair").emit("poll.revote", {"poll_id": p["id"]}, callback=True)
    assert ack["ok"] and ack["round"] == 2 and ack["previous_id"] == p["id"] and ack["status"] == "draft"
    assert ack["options"] == p["options"] and ack["kind"] == "election" and ack["seats"] == 1
    open_poll(hall.room, ack["id"])
    for t, c in zip(hall.tablets, [0, 0, 1, 1, 0], strict=True):
        assert vote(t, ack["id"], [c])["ok"]
    second = close_poll(hall.room, ack["id"])
    assert second["result"]["outcome"]["result"] == "elected" and second["result"]["outcome"]["winners"] == [
        0
    ]
    assert second["result"]["outcome"]["text"]["zh"] == "当选：甲 A"
    kept = hall.org.get(f"/api/v1/polls/{p['id']}").get_json()
    assert kept["tally"] == [2, 2, 0] and kept["status"] == "closed"
    r = hall.org.post(f"/api/v1/polls/{ack['id']}/open")
    assert r.status_code == 409


def test_last_press_wins_named(hall):
    p = make_poll(hall.room, kind="motion", allow_change=True)
    open_poll(hall.room, p["id"])
    t = hall.tablets[0]
    b1, b2 = ballot_id(), ballot_id()
    r1 = vote(t, p["id"], [0], ballot_id=b1)
    assert (
        vote(t, p["id"], [1], ballot_id=b2)["error"]["code"] == "already_voted"
    )  # must name the ballot it replaces
    r2 = vote(t, p["id"], [1], ballot_id=b2, previous_ballot_id=b1)
    assert r2["ok"] and r2["receipt"] != r1["receipt"]
    # a late resend of the first ballot cannot undo the change
    assert vote(t, p["id"], [0], ballot_id=b1)["error"]["code"] == "already_voted"
    assert vote(t, p["id"], [1], ballot_id=b2)["receipt"] == r2["receipt"]
    closed = close_poll(hall.room, p["id"])
    assert closed["tally"] == [0, 1, 0] and closed["voted"] == 1


def test_last_press_wins_secret(hall):
    p = make_poll(hall.room, kind="motion", secret=True, allow_change=True)
    open_poll(hall.room, p["id"])
    t = hall.tablets[0]
    r1 = vote(t, p["id"], [0])  # no ballot_id: the server picks one and says which
    assert r1["ok"] and r1["ballot_id"]
    assert vote(t, p["id"], [2], previous_ballot_id="not-mine")["error"]["code"] == "already_voted"
    r2 = vote(t, p["id"], [2], previous_ballot_id=r1["ballot_id"])
    assert r2["ok"]
    assert hall.org.get(f"/api/v1/polls/{p['id']}/receipts/{r1['receipt']}").status_code == 404
    assert hall.org.get(f"/api/v1/polls/{p['id']}/receipts/{r2['receipt']}").get_json()["found"] is True
    closed = close_poll(hall.room, p["id"])
    assert closed["tally"] == [0, 0, 1] and closed["voted"] == 1 and closed["result"]["ballots"] == 1


def test_vote_by_hand(hall, room):
    named = make_poll(room, kind="motion")
    open_poll(room, named["id"])
    member = hall.members[3]
    sec = tablet(room, room.seats["secretary"])
    ack = sec.emit(
        "poll.vote_for",
        {
            "poll_id": named["id"],
            "attendee_id": member["id"],
            "choices": [1],
            "reason": "平板故障，举手表决 tablet broken, show of hands",
        },
        callback=True,
    )
    assert ack["ok"] and ack["receipt"] and ack["attendee_id"] == member["id"]
    assert vote(hall.tablets[3], named["id"], [0])["error"]["code"] == "already_voted"
    assert (
        sec.emit(
            "poll.vote_for",
            {"poll_id": named["id"], "attendee_id": member["id"], "choices": [1]},
            callback=True,
        )["error"]["code"]
        == "invalid"
    )  # a reason is required
    r = room.org.post(
        f"/api/v1/polls/{named['id']}/proxy-votes",
        json={"attendee_id": room.seats["observer"]["id"], "choices": [0], "reason": "x"},
    )
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "not_a_voter"
    r = room.org.post(
        f"/api/v1/polls/{named['id']}/proxy-votes",
        json={"attendee_id": room.seats["attendee"]["id"], "choices": [0], "reason": "x"},
    )
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "not_checked_in"
    closed = close_poll(room, named["id"])
    assert closed["tally"] == [0, 1, 0]
    rows = room.org.get(f"/api/v1/polls/{named['id']}/results.json").get_json()["ballots"]
    assert rows == [
        {
            "attendee_id": member["id"],
            "name": member["name"],
            "seat": member["seat"],
            "choices": [1],
            "labels": "反对 No",
            "weight": 1.0,
            "receipt": ack["receipt"],
            "recorded_by": "secretary-3",
            "reason": "平板故障，举手表决 tablet broken, show of hands",
        }
    ]
    from meeting_server.core import audit, db

    with db.reader() as s:
        entry = next(e for e in audit.entries(s, hall.mid) if e.command == "poll.vote_for")
    assert entry.data["reason"].startswith("平板故障") and entry.data["attendee_id"] == member["id"]
    secret = make_poll(room, kind="motion", secret=True)
    open_poll(room, secret["id"])
    r = room.org.post(
        f"/api/v1/polls/{secret['id']}/proxy-votes",
        json={"attendee_id": member["id"], "choices": [0], "reason": "x"},
    )
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "poll_is_secret"


def test_weighted_named_poll(hall_factory):
    hall = hall_factory(3, weights=[1, 2.5, 0.5])
    p = make_poll(
        hall.room, kind="motion", weighted=True, rule={"base": "present", "fraction": [1, 2], "strict": True}
    )
    open_poll(hall.room, p["id"])
    for t, c in zip(hall.tablets, [1, 0, 1], strict=True):
        assert vote(t, p["id"], [c])["ok"]
    res = close_poll(hall.room, p["id"])["result"]
    assert res["tally"] == [1, 2, 0] and res["weighted_tally"] == [2.5, 1.5, 0]
    # present: the three members (weight 4) and nobody else checked in
    assert res["snapshot"]["present_weight"] == 4.0 and res["outcome"]["result"] == "adopted"
    r = hall.org.post(
        f"/api/v1/meetings/{hall.mid}/polls",
        json={"title": "x", "kind": "motion", "secret": True, "weighted": True},
    )
    assert r.status_code == 400 and "weighted" in r.get_json()["error"]["message"]


def test_rules_use_the_attendance_at_close(hall_factory):
    hall = hall_factory(6, checkin=False)
    for t in hall.tablets[:3]:
        assert t.emit("checkin", {}, callback=True)["ok"]
    p = make_poll(
        hall.room,
        kind="motion",
        rule={"base": "members", "fraction": [1, 2], "strict": True, "quorum": {"kind": "count", "value": 3}},
    )
    open_poll(hall.room, p["id"])
    for t in hall.tablets[:3]:
        assert vote(t, p["id"], [0])["ok"]
    res = close_poll(hall.room, p["id"])["result"]
    # voting members: 6 + chair + presenter + attendee = 9; 3 yes is not more than half of 9
    assert res["snapshot"]["members"] == 9 and res["snapshot"]["present"] == 3
    assert res["outcome"]["result"] == "rejected" and res["outcome"]["quorum"] == {
        "required": 3,
        "present": 3,
        "reached": True,
    }
    q = make_poll(hall.room, kind="motion", rule={"quorum": {"kind": "fraction", "value": 0.5}})
    open_poll(hall.room, q["id"])
    assert vote(hall.tablets[0], q["id"], [0])["ok"]
    res = close_poll(hall.room, q["id"])["result"]
    assert res["outcome"]["result"] == "no_quorum" and res["outcome"]["quorum"]["required"] == 5
    assert res["outcome"]["text"]["en"] == "no quorum: the vote is not valid"


def test_kinds_over_the_wire(hall):
    pid = make_poll(
        hall.room,
        title="评分 Jury",
        kind="rating",
        options=["方案一 Plan 1", "方案二 Plan 2"],
        scale={"min": 0, "max": 10, "drop_extremes": True},
    )["id"]
    open_poll(hall.room, pid)
    for t, scores in zip(hall.tablets, [[10, 2], [7, 3], [8, None], [9, 4], [0, 5]], strict=True):
        assert vote(t, pid, scores)["ok"], scores
    assert vote(tablet(hall.room, hall.room.seats["chair"]), pid, [11, 0])["error"]["code"] == "invalid"
    res = close_poll(hall.room, pid)["result"]
    assert res["tally"] == [34, 14]
    assert res["scores"][0]["trimmed_mean"] == 8 and res["scores"][1]["trimmed_mean"] == 3.5
    assert res["outcome"]["ranking"] == [0, 1] and res["outcome"]["result"] == "ranked"
    pid = make_poll(
        hall.room,
        options=["甲", "乙", "丙", "丁"],
        kind="multiple",
        max_choices=2,
        min_choices=0,
        rule={"base": "cast", "fraction": [1, 2], "strict": False},
    )["id"]
    open_poll(hall.room, pid)
    for t, ch in zip(hall.tablets, [[0, 1], [0], [], [0, 2], [1, 0]], strict=True):
        assert vote(t, pid, ch)["ok"], ch
    assert vote(tablet(hall.room, hall.room.seats["chair"]), pid, [0, 1, 2])["error"]["code"] == "invalid"
    res = close_poll(hall.room, pid)["result"]
    # blank ballots are left out of the base: at least half of 4 ballots
    assert res["tally"] == [4, 2, 1, 0] and res["blank"] == 1 and res["outcome"]["passed_options"] == [0, 1]


def test_bad_poll_setups(room):
    url = f"/api/v1/meetings/{room.meeting['id']}/polls"
    for body in (
        {"title": "x", "options": ["a"]},
        {"title": "x", "options": ["a", "a"]},
        {"title": "x", "kind": "election", "options": ["a", "b"], "seats": 2},
        {"title": "x", "kind": "election", "options": ["a", "b", "c"], "seats": 1, "max_choices": 2},
        {"title": "x", "kind": "single", "options": ["a", "b"], "max_choices": 2},
        {"title": "x", "kind": "rating", "options": ["a"], "scale": {"min": 5, "max": 5}},
        {"title": "x", "kind": "rating", "options": ["a"], "rule": {"base": "cast"}},
        {"title": "x", "kind": "motion", "rule": {"fraction": [3, 2]}},
        {"title": "x", "kind": "motion", "rule": {"quorum": {"kind": "fraction", "value": 1.5}}},
        {"title": "x", "kind": "motion", "duration_s": 0},
        {"title": "x", "options": ["a", "b"], "scale": {"min": 0, "max": 3}},
    ):
        r = room.org.post(url, json=body)
        assert r.status_code == 400 and r.get_json()["error"]["code"] == "invalid", body
    p = make_poll(room, kind="motion")
    r = room.org.patch(
        f"/api/v1/polls/{p['id']}", json={"kind": "election", "options": ["a", "b", "c"], "seats": 2}
    )
    assert r.status_code == 200 and r.get_json()["seats"] == 2 and r.get_json()["max_choices"] == 2
    r = room.org.patch(f"/api/v1/polls/{p['id']}", json={"seats": 3})
    assert r.status_code == 400


def test_update_errors_say_what_is_wrong(room):
    p = make_poll(room, kind="election", options=["a", "b", "c"], seats=1)
    r = room.org.patch(f"/api/v1/polls/{p['id']}", json={"seats": 3})
    assert r.status_code == 400 and "more candidates than seats" in r.get_json()["error"]["message"]
