"""Sessions: tokens expire and can be revoked (also for a socket that stays connected), login is throttled."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from tests.conftest import make_user


def _expire(model) -> None:
    from meeting_server.core import db
    from meeting_server.core.db import utcnow

    with db.transaction() as s:
        s.execute(update(model).values(expires_at=utcnow()))


# -- tablets -----------------------------------------------------------------------------------


def test_seat_token_revoked_refuses_http_and_socket(room):
    tablet = room.tablet("attendee")
    api = room.join("attendee")  # a second device of the same seat
    mid, aid = room.meeting["id"], room.seats["attendee"]["id"]
    assert api.get(f"/api/v1/meetings/{mid}/documents").status_code == 200
    assert tablet.emit("checkin", {}, callback=True)["ok"]
    assert room.org.post(f"/api/v1/meetings/{mid}/attendees/{aid}/release").status_code == 200
    r = api.get(f"/api/v1/meetings/{mid}/documents")
    assert r.status_code == 401 and r.get_json()["error"]["code"] == "bad_token"
    if tablet.is_connected():  # kicked on this process; elsewhere the next command is refused
        ack = tablet.emit("checkout", {}, callback=True)
        assert ack["ok"] is False and ack["error"]["code"] == "unauthorized", ack


def test_seat_token_expired_refuses_http_and_socket(room):
    from meeting_server.roster.models import SeatSession

    tablet = room.tablet("attendee")
    api = room.join("attendee")
    assert tablet.emit("checkin", {}, callback=True)["ok"]
    _expire(SeatSession)
    r = api.get(f"/api/v1/meetings/{room.meeting['id']}/documents")
    assert r.status_code == 401 and r.get_json()["error"]["code"] == "bad_token"
    ack = tablet.emit("checkout", {}, callback=True)  # the socket outlived its token
    assert ack["ok"] is False and ack["error"]["code"] == "unauthorized", ack
    from meeting_server.extensions import socketio

    assert not socketio.test_client(room.app, auth={"token": api.token}).is_connected()


# -- organizers --------------------------------------------------------------------------------


def test_logout_ends_the_console_too(room):
    console = room.console()
    assert console.emit("announce", {"text": "开会"}, callback=True)["ok"]
    assert room.org.post("/api/v1/auth/logout").status_code == 200
    assert room.org.get("/api/v1/auth/me").status_code == 401
    ack = console.emit("announce", {"text": "再开会"}, callback=True)
    assert ack["ok"] is False and ack["error"]["code"] == "bad_token", ack


def test_expired_login_ends_the_console_too(room):
    from meeting_server.auth.models import ApiToken

    console = room.console()
    _expire(ApiToken)
    ack = console.emit("announce", {"text": "开会"}, callback=True)
    assert ack["ok"] is False and ack["error"]["code"] == "bad_token", ack


def test_disabled_account_and_demoted_admin(app, admin, organizer):
    from meeting_server.auth.models import User
    from meeting_server.core import db
    from meeting_server.extensions import socketio
    from tests.conftest import create_meeting

    m = create_meeting(organizer)
    console = socketio.test_client(app, auth={"token": admin.token, "meeting_id": m["id"]})
    assert console.emit("announce", {"text": "管理员"}, callback=True)["ok"]
    with db.transaction() as s:  # no longer an admin: the meeting is not theirs
        s.execute(update(User).where(User.username == "admin").values(role="organizer"))
    ack = console.emit("announce", {"text": "管理员"}, callback=True)
    assert ack["ok"] is False and ack["error"]["code"] == "forbidden", ack
    assert admin.get("/api/v1/users").status_code == 403
    with db.transaction() as s:
        s.execute(update(User).where(User.username == "org1").values(disabled=True))
    assert organizer.get("/api/v1/meetings").status_code == 401


# -- login throttling --------------------------------------------------------------------------


def _login(client, username, password, addr):
    return client.post(
        "/api/v1/auth/login",
        json={"username": username, "password": password},
        environ_base={"REMOTE_ADDR": addr},
    )


def test_login_rate_limited_per_address(app, client):
    make_user(app, "victim")
    for i in range(10):  # a different (unknown) account each time: only the address repeats
        assert _login(client, f"guess{i}", "wrong-password", "192.0.2.7").status_code == 401
    r = _login(client, "victim", "password-123", "192.0.2.7")
    assert r.status_code == 429 and r.get_json()["error"]["code"] == "rate_limited"
    assert int(r.headers["Retry-After"]) > 0
    assert _login(client, "victim", "password-123", "192.0.2.8").status_code == 200  # another address


def test_login_rate_limited_per_account_across_addresses(app, client):
    make_user(app, "target")
    for i in range(10):
        assert _login(client, "target", "wrong-password", f"198.51.100.{i}").status_code == 401
    r = _login(client, "target", "password-123", "198.51.100.99")
    assert r.status_code == 429 and r.headers["Retry-After"]


def test_other_accounts_unaffected_by_one_locked_account(app, client):
    make_user(app, "target")
    make_user(app, "bystander")
    for i in range(10):
        _login(client, "target", "wrong-password", f"198.51.100.{i}")
    assert _login(client, "bystander", "password-123", "198.51.100.50").status_code == 200


@pytest.mark.parametrize("body", [{"username": "x" * 81, "password": "p"}, {"username": "u"}, [], "x"])
def test_login_bad_body_is_400_not_throttled(client, body):
    from meeting_server.auth.ratelimit import limiter

    r = client.post("/api/v1/auth/login", json=body)
    assert r.status_code == 400
    assert not limiter.failures
