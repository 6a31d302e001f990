"""Who may do what with polls: one line per rule."""

from __future__ import annotations

import pytest

from tests.voting.conftest import close_poll, make_poll, open_poll


class Caller:
    """Calls a route as any role, each time on a fresh poll in the state the route needs."""

    def __init__(self, room, other_organizer):
        from tests.conftest import Api

        self.room = room
        self.apis = {
            "organizer": room.org,
            "other_organizer": other_organizer,
            "anon": Api(room.app.test_client()),
        }
        for role in ("chair", "presenter", "secretary", "attendee", "observer"):
            self.apis[role] = room.join(role)
        self.open_id: int | None = None

    def fresh(self, state: str) -> int:
        """A poll that is a draft, open (any other open poll is cancelled first) or closed and unpublished."""
        if self.open_id is not None:
            self.room.org.post(f"/api/v1/polls/{self.open_id}/cancel")
            self.open_id = None
        pid = make_poll(self.room, kind="motion", publish_on_close=False)["id"]
        if state in ("open", "closed"):
            open_poll(self.room, pid)
            self.open_id = pid
        if state == "closed":
            close_poll(self.room, pid)
            self.open_id = None
        return pid

    def status(self, who: str, method: str, url: str, pid: int, body=None) -> int:
        r = getattr(self.apis[who], method.lower())(
            url.format(poll=pid), **({"json": body} if body is not None else {})
        )
        if method == "POST" and url.endswith("/open") and r.status_code == 200:
            self.open_id = pid
        return r.status_code


ALL = ("organizer", "chair", "presenter", "secretary", "attendee", "observer", "other_organizer", "anon")
CHAIRS = {"organizer", "chair"}
SEATS = {"chair", "presenter", "secretary", "attendee", "observer"}

# method, url, the poll's state, body, who may, the status they get (past the permission check)
CASES = [
    ("POST", "/api/v1/polls/{poll}/open", "draft", {}, CHAIRS, 200),
    ("POST", "/api/v1/polls/{poll}/close", "open", {}, CHAIRS, 200),
    ("POST", "/api/v1/polls/{poll}/publish", "closed", {}, CHAIRS, 200),
    ("POST", "/api/v1/polls/{poll}/cancel", "open", {}, CHAIRS, 200),
    ("POST", "/api/v1/polls/{poll}/dismiss", "closed", {}, CHAIRS, 200),
    ("POST", "/api/v1/polls/{poll}/revote", "closed", {}, CHAIRS, 201),
    ("PATCH", "/api/v1/polls/{poll}", "draft", {"title": "新 New"}, {"organizer"}, 200),
    ("DELETE", "/api/v1/polls/{poll}", "draft", None, {"organizer"}, 200),
    ("GET", "/api/v1/polls/{poll}/results.json", "closed", None, CHAIRS, 200),
    ("GET", "/api/v1/polls/{poll}/results.csv", "closed", None, CHAIRS, 200),
    ("GET", "/api/v1/polls/{poll}", "closed", None, {"organizer"} | SEATS, 200),
    ("GET", "/api/v1/polls/{poll}/receipts/AAAA-AAAA-AAAA-AAAA", "closed", None, {"organizer"} | SEATS, 404),
    (
        "POST",
        "/api/v1/polls/{poll}/proxy-votes",
        "open",
        {"attendee_id": 999999, "choices": [0], "reason": "x"},
        {"organizer", "secretary"},
        404,
    ),  # allowed; then: no such attendee
    ("POST", "/api/v1/polls/{poll}/votes", "open", {"choices": [0]}, {"chair", "presenter", "attendee"}, 409),
    (
        "POST",
        "/api/v1/meetings/{meeting}/polls",
        "draft",
        {"title": "x", "kind": "motion"},
        {"organizer"},
        201,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]} {c[1]}")
def test_permission(room, other_organizer, case):
    method, url, state, body, allowed, ok = case
    caller = Caller(room, other_organizer)
    url = url.replace("{meeting}", str(room.meeting["id"]))
    shared = caller.fresh(state)  # refused calls change nothing, so they share one poll
    got = {
        who: caller.status(who, method, url, caller.fresh(state) if who in allowed else shared, body)
        for who in ALL
    }
    want = {who: ok if who in allowed else (401 if who == "anon" else 403) for who in ALL}
    assert got == want


@pytest.fixture
def polls(room):
    closed = make_poll(room, kind="motion", publish_on_close=False)
    open_poll(room, closed["id"])
    close_poll(room, closed["id"])
    return {"closed": closed["id"]}


def test_tablets_see_no_unpublished_tally(room, polls):
    for role in ("presenter", "secretary", "attendee", "observer"):
        assert "tally" not in room.join(role).get(f"/api/v1/polls/{polls['closed']}").get_json()
    assert room.join("chair").get(f"/api/v1/polls/{polls['closed']}").get_json()["tally"] == [0, 0, 0]
    listed = room.join("attendee").get(f"/api/v1/meetings/{room.meeting['id']}/polls").get_json()["polls"]
    assert all("tally" not in p for p in listed)


def test_another_meeting_cannot_see_the_poll(room, polls, organizer):
    from tests.conftest import add_attendee, create_meeting

    other = create_meeting(organizer)
    a = add_attendee(organizer, other["id"], "外人 Outsider")
    c = room.app.test_client()
    token = c.post("/api/v1/join", json={"token": a["join_token"]}).get_json()["session_token"]
    from tests.conftest import Api

    assert Api(c, token).get(f"/api/v1/polls/{polls['closed']}").status_code == 404
