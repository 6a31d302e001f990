"""The contract's voting events, exactly, per recipient (Flask-SocketIO test clients)."""

from __future__ import annotations

import pytest

from tests.voting.conftest import ballot_id, close_poll, events, make_poll, open_poll, tablet, vote


def _inbox(client) -> dict[str, list]:
    """The voting events received so far, by name (other domains' events are not looked at)."""
    out: dict[str, list] = {}
    for e in client.get_received():
        if e["name"].startswith("poll"):
            out.setdefault(e["name"], []).append(e["args"][0] if e["args"] else None)
    return out


@pytest.fixture
def seats(hall):
    """Tablets of chair, presenter, secretary, observer (all checked in) and an organizer console."""
    room = hall.room
    out = {role: tablet(room, room.seats[role]) for role in ("chair", "presenter", "secretary", "observer")}
    out["console"] = room.console()
    out["member"] = hall.tablets[0]
    for c in out.values():
        c.get_received()
    hall.drain()
    return out


def test_open_vote_close_publish_on_close(hall, seats):
    p = make_poll(hall.room, kind="motion", secret=True)
    for c in seats.values():
        c.get_received()  # the new draft went to the staff only
    ack = seats["chair"].emit("poll.open", {"poll_id": p["id"]}, callback=True)
    assert ack["ok"] and ack["status"] == "open"
    # 5 members + chair + presenter checked in: 7 voters present
    for name, c in seats.items():
        box = _inbox(c)
        assert list(box) == ["poll"], (name, box)
        poll = box["poll"][0]
        assert poll["id"] == p["id"] and poll["status"] == "open" and poll["title"] == p["title"]
        assert poll["options"] == p["options"] and poll["voted"] == 0 and poll["eligible"] == 7
        assert "tally" not in poll and "result" not in poll
    ack = vote(seats["member"], p["id"], [0], ballot_id=ballot_id())
    assert ack["ok"] is True and isinstance(ack["receipt"], str) and len(ack["receipt"]) == 19
    for name, c in seats.items():
        assert _inbox(c) == {"poll.progress": [{"id": p["id"], "voted": 1, "eligible": 7}]}, name
    for t in hall.tablets[1:]:
        t.get_received()
    for t, choice in zip(hall.tablets[1:], [0, 1, 2, 0], strict=True):
        assert vote(t, p["id"], [choice])["ok"]
    assert vote(seats["chair"], p["id"], [1])["ok"] and vote(seats["presenter"], p["id"], [0])["ok"]
    for c in seats.values():
        box = _inbox(c)
        assert set(box) == {"poll.progress"} and all("tally" not in x for x in box["poll.progress"])
    ack = seats["chair"].emit("poll.close", {"poll_id": p["id"]}, callback=True)
    assert ack["ok"] and ack["tally"] == [4, 2, 1]
    for name, c in seats.items():
        box = _inbox(c)
        assert list(box) == ["poll", "poll.result"], (name, box)
        assert box["poll"][0]["status"] == "closed" and box["poll"][0]["voted"] == 7
        res = box["poll.result"][0]
        assert res["id"] == p["id"] and res["tally"] == [4, 2, 1] and res["outcome"]["result"] == "adopted"
        assert res["outcome"]["text"] == {"zh": "通过", "en": "adopted"}
        assert res["outcome"]["rule_text"]["zh"].startswith("赞成票超过实投票数")


def test_result_held_back_until_published(hall, seats):
    p = make_poll(hall.room, options=["甲 A", "乙 B"], publish_on_close=False)
    open_poll(hall.room, p["id"])
    assert vote(seats["member"], p["id"], [1])["ok"]
    for c in seats.values():
        c.get_received()
    close_poll(hall.room, p["id"])
    for name in ("chair", "console"):
        box = _inbox(seats[name])
        assert list(box) == ["poll", "poll.result"] and box["poll.result"][0]["tally"] == [0, 1], name
        assert box["poll.result"][0]["published"] is False
    for name in ("member", "presenter", "secretary", "observer"):
        box = _inbox(seats[name])
        assert list(box) == ["poll"] and "tally" not in box["poll"][0], name
    member = hall.room.join("attendee")
    assert "tally" not in member.get(f"/api/v1/polls/{p['id']}").get_json()
    assert hall.org.get(f"/api/v1/polls/{p['id']}").get_json()["tally"] == [0, 1]
    ack = seats["chair"].emit("poll.publish", {"poll_id": p["id"]}, callback=True)
    assert ack["ok"] and ack["published"] is True
    for name, c in seats.items():
        box = _inbox(c)
        assert list(box) == ["poll", "poll.result"] and box["poll.result"][0]["tally"] == [0, 1], name
    assert member.get(f"/api/v1/polls/{p['id']}").get_json()["tally"] == [0, 1]
    # publishing twice changes nothing and sends nothing
    assert seats["chair"].emit("poll.publish", {"poll_id": p["id"]}, callback=True)["ok"]
    assert all(_inbox(c) == {} for c in seats.values())


def test_vote_errors(hall, seats, room):
    p = make_poll(room, kind="motion")
    t = seats["member"]
    assert vote(t, p["id"], [0])["error"]["code"] == "poll_not_open"
    open_poll(room, p["id"])
    assert vote(seats["observer"], p["id"], [0])["error"]["code"] == "forbidden"
    assert vote(seats["secretary"], p["id"], [0])["error"]["code"] == "forbidden"
    assert (
        seats["console"].emit("vote", {"poll_id": p["id"], "choices": [0]}, callback=True)["error"]["code"]
        == "forbidden"
    )
    for bad in ([3], [0, 1], [], ["0"], [True], None, "x"):
        r = t.emit("vote", {"poll_id": p["id"], "choices": bad}, callback=True)
        assert r["ok"] is False and r["error"]["code"] == "invalid", bad
    assert t.emit("vote", {"choices": [0]}, callback=True)["error"]["code"] == "invalid"
    assert t.emit("vote", {"poll_id": 999999, "choices": [0]}, callback=True)["error"]["code"] == "not_found"
    late = tablet(room, room.seats["attendee"], checkin=False)
    assert vote(late, p["id"], [0])["error"]["code"] == "not_checked_in"
    bid = ballot_id()
    first = vote(t, p["id"], [1], ballot_id=bid)
    assert first["ok"]
    assert vote(t, p["id"], [1], ballot_id=bid) == {"ok": True, "receipt": first["receipt"], "resent": True}
    assert vote(t, p["id"], [0], ballot_id=bid)["error"]["code"] == "ballot_id_reused"
    assert vote(t, p["id"], [0], ballot_id=ballot_id())["error"]["code"] == "already_voted"
    assert vote(t, p["id"], [0])["error"]["code"] == "already_voted"
    closed = close_poll(room, p["id"])
    assert closed["voted"] == 1 and closed["tally"] == [0, 1, 0]
    assert vote(seats["chair"], p["id"], [0])["error"]["code"] == "poll_not_open"
    # a named poll still recognises the resend after close (nothing secret to protect)
    assert vote(t, p["id"], [1], ballot_id=bid)["receipt"] == first["receipt"]


def test_state_carries_the_open_poll_and_my_vote(hall, room):
    p = make_poll(room, kind="motion")
    open_poll(room, p["id"])
    ack = vote(hall.tablets[0], p["id"], [2], ballot_id=ballot_id())
    again = tablet(room, hall.members[0], checkin=False)
    state = again.emit("state.get", {}, callback=True)["state"]
    assert (
        state["poll"]["id"] == p["id"] and state["poll"]["status"] == "open" and state["poll"]["voted"] == 1
    )
    assert state["my_vote"] == {
        "poll_id": p["id"],
        "voted": True,
        "receipt": ack["receipt"],
        "choices": [2],
        "can_vote": True,
        "checked_in": True,
        "can_change": False,
    }
    other = hall.tablets[1].emit("state.get", {}, callback=True)["state"]
    assert other["my_vote"]["voted"] is False and other["poll_result"] is None
    close_poll(room, p["id"])
    state = again.emit("state.get", {}, callback=True)["state"]
    assert state["poll"] is None and state["my_vote"] is None
    assert state["poll_result"]["id"] == p["id"] and state["poll_result"]["tally"] == [0, 0, 1]
    # the chair takes the result off the screens
    hall.drain()
    assert room.org.post(f"/api/v1/polls/{p['id']}/dismiss").status_code == 200
    assert events(hall.tablets[1], "poll.dismissed") == [{"id": p["id"]}]
    assert again.emit("state.get", {}, callback=True)["state"]["poll_result"] is None


def test_secret_state_has_no_receipt(hall, room):
    p = make_poll(room, kind="motion", secret=True)
    open_poll(room, p["id"])
    assert vote(hall.tablets[0], p["id"], [0])["ok"]
    state = hall.tablets[0].emit("state.get", {}, callback=True)["state"]
    # the server cannot find a secret ballot from its voter: the tablet keeps its receipt itself
    assert state["my_vote"]["voted"] is True and state["my_vote"]["receipt"] is None
    assert "choices" not in state["my_vote"]
