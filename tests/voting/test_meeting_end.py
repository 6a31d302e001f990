"""Ending the meeting closes the open poll; the voting quorum counts voting members only."""

from __future__ import annotations

import pytest

from tests.voting.conftest import make_poll, open_poll, tablet, vote


@pytest.mark.parametrize("publish", [True, False])
def test_ending_the_meeting_closes_the_open_poll(hall, publish):
    from meeting_server.core import audit, db

    room = hall.room
    p = make_poll(room, kind="motion", secret=True, publish_on_close=publish)
    open_poll(room, p["id"])
    for i, t in enumerate(hall.tablets[:3]):
        assert vote(t, p["id"], [i % 2])["ok"]
    chair = tablet(room, room.seats["chair"])
    hall.drain()
    r = room.org.post(f"/api/v1/meetings/{hall.mid}/end")
    assert r.status_code == 200 and r.get_json()["status"] == "ended", r.get_json()

    got = room.org.get(f"/api/v1/polls/{p['id']}").get_json()
    assert got["status"] == "closed" and got["result"]["tally"] == [2, 1, 0]
    # counted against the attendance of the moment the meeting ended: 5 members + chair checked in
    assert got["result"]["snapshot"]["present"] == 6 and got["result"]["snapshot"]["voted"] == 3

    names = [e["name"] for e in hall.tablets[4].get_received()]
    # the room learns the poll closed before it learns the meeting ended
    assert "poll" in names and "meeting" in names and names.index("poll") < names.index("meeting")
    assert ("poll.result" in names) is publish
    chair_names = [e["name"] for e in chair.get_received()]
    assert "poll.result" in chair_names  # the chair gets the result either way

    with db.reader() as s:
        commands = [(e.command, e.data.get("reason")) for e in audit.entries(s, hall.mid)]
    i = commands.index(("poll.close", "meeting_ended"))
    assert commands[i + 1][0] == "meetings.end"
    # nothing more can be cast: the meeting has ended
    assert vote(hall.tablets[4], p["id"], [0])["error"]["code"] == "meeting_ended"


def test_ending_without_an_open_poll_changes_no_poll(hall):
    room = hall.room
    p = make_poll(room, kind="motion")  # a draft stays a draft
    r = room.org.post(f"/api/v1/meetings/{hall.mid}/end")
    assert r.status_code == 200
    assert room.org.get(f"/api/v1/polls/{p['id']}").get_json()["status"] == "draft"


def test_voting_quorum_counts_voting_members_only(hall_factory):
    """Secretary and observer seats are present but neither vote nor count toward a poll's quorum."""
    hall = hall_factory(2)
    room = hall.room
    r = room.org.post(f"/api/v1/meetings/{hall.mid}/quorum", json={"rule": {"kind": "count", "value": 3}})
    assert r.status_code == 200, r.get_json()
    tablet(room, room.seats["secretary"])  # checked in
    tablet(room, room.seats["observer"])  # checked in
    p = make_poll(room, kind="motion", rule={"quorum": "meeting"})
    open_poll(room, p["id"])
    for t in hall.tablets:
        assert vote(t, p["id"], [0])["ok"]
    res = room.org.post(f"/api/v1/polls/{p['id']}/close").get_json()["result"]
    # voting members: 2 + attendee + chair + presenter; present: the two members who checked in
    assert res["snapshot"]["members"] == 5 and res["snapshot"]["present"] == 2
    assert res["outcome"]["quorum"] == {"required": 3, "present": 2, "reached": False}
    assert res["outcome"]["result"] == "no_quorum"
