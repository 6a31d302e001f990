"""Group commit (core/group.py): a burst of check-ins shares one transaction, each with its own answer.

Threads stand in for the socket handlers of tablets pressing "check in" together; each calls the
pipeline as a socket event does (`execute` with a sid). What must hold: one transaction for the
burst, every answer exactly what it is alone, a refused command refused alone, one audit entry per
check-in and a chain that verifies, and if the group's commit fails, each command is run again alone
with nothing lost and nothing written twice.
"""

from __future__ import annotations

import contextlib
import threading

import pytest
from sqlalchemy.exc import OperationalError

from meeting_server.core import commands, db, group
from meeting_server.core.sockets import authenticate

ROLES = ("chair", "presenter", "secretary", "attendee", "observer")


@pytest.fixture
def burst(app, room, monkeypatch):
    """Start the meeting; returns `fire(roles)`: every role's tablet sends `checkin` at the same moment."""
    assert room.org.post(f"/api/v1/meetings/{room.meeting['id']}/start").status_code == 200
    with app.app_context():
        actors = {r: authenticate({"token": room.join(r).token}) for r in ROLES}
    # A wide window: every thread has queued before the first leader writes (the test is about
    # grouping, not about how short the window is).
    monkeypatch.setattr(group, "WINDOW_S", 0.5)

    def fire(roles=ROLES) -> dict[str, object]:
        out: dict[str, object] = {}
        gate = threading.Barrier(len(roles))

        def one(role: str) -> None:
            with app.app_context():
                gate.wait(10)
                try:
                    out[role] = commands.execute(
                        commands.registry.get("checkin"), actors[role], {}, sid=f"sid-{role}"
                    )
                except Exception as e:  # the error a tablet's ack would carry
                    out[role] = e

        threads = [threading.Thread(target=one, args=(r,)) for r in roles]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not any(t.is_alive() for t in threads)
        return out

    return fire


def _present(room) -> int:
    r = room.org.get(f"/api/v1/meetings/{room.meeting['id']}/attendance")
    assert r.status_code == 200
    return sum(1 for a in r.get_json()["attendees"] if a["checked_in"])


def _audit(room) -> list[str]:
    mid = room.meeting["id"]
    assert room.org.get(f"/api/v1/meetings/{mid}/audit/verify").get_json()["ok"] is True
    entries = room.org.get(f"/api/v1/meetings/{mid}/audit").get_json()["entries"]
    return [e["command"] for e in entries]


def test_a_burst_of_checkins_is_one_transaction_with_an_answer_each(room, burst):
    before = (group.current.groups, group.current.commands)
    out = burst()
    assert all(isinstance(v, dict) and v["checked_in_at"] for v in out.values()), out
    assert (group.current.groups - before[0], group.current.commands - before[1]) == (1, len(ROLES))
    assert _present(room) == len(ROLES)
    assert _audit(room).count("checkin") == len(ROLES)
    again = burst()  # idempotent, as alone: same times, nothing written
    assert {r: v["checked_in_at"] for r, v in again.items()} == {
        r: v["checked_in_at"] for r, v in out.items()
    }
    assert _audit(room).count("checkin") == len(ROLES)


def test_a_refused_checkin_does_not_fail_the_others(room, burst):
    mid, seat = room.meeting["id"], room.seats["observer"]
    r = room.org.post(f"/api/v1/meetings/{mid}/attendees/{seat['id']}/release")  # every device logged out
    assert r.status_code == 200 and r.get_json()["revoked"] == 1, r.get_json()
    before = group.current.groups
    out = burst()
    assert type(out["observer"]).__name__ == "Unauthorized", out["observer"]
    assert all(isinstance(out[r], dict) for r in ROLES if r != "observer"), out
    assert group.current.groups - before == 1
    assert _present(room) == len(ROLES) - 1
    assert _audit(room).count("checkin") == len(ROLES) - 1


def test_a_failing_command_rolls_back_to_its_savepoint_only(room, burst, monkeypatch):
    real = commands.apply

    def apply(s, cmd, actor, *a, **kw):
        if actor.role == "secretary":
            ctx, result = real(s, cmd, actor, *a, **kw)  # written, then the step after it breaks
            raise RuntimeError("a bug in one command")
        return real(s, cmd, actor, *a, **kw)

    monkeypatch.setattr(commands, "apply", apply)
    out = burst()
    assert isinstance(out["secretary"], RuntimeError)
    assert all(isinstance(out[r], dict) for r in ROLES if r != "secretary"), out
    assert _present(room) == len(ROLES) - 1  # the secretary's check-in was rolled back with its savepoint
    assert _audit(room).count("checkin") == len(ROLES) - 1


def test_when_the_group_cannot_commit_each_runs_alone(room, burst, monkeypatch):
    real = db.transaction
    calls = []

    @contextlib.contextmanager
    def flaky():
        calls.append(1)
        with real() as s:
            yield s
            if len(calls) == 1:  # the group's own transaction: its commit fails (rolled back)
                raise OperationalError("COMMIT", {}, Exception("disk I/O error"))

    monkeypatch.setattr(db, "transaction", flaky)
    out = burst()
    assert all(isinstance(v, dict) and v["checked_in_at"] for v in out.values()), out
    assert len(calls) == 1 + len(ROLES)  # the group once, then each alone
    assert _present(room) == len(ROLES)
    assert _audit(room).count("checkin") == len(ROLES)  # nothing written twice


def test_off_switch_runs_each_alone(app, room, monkeypatch):
    assert room.org.post(f"/api/v1/meetings/{room.meeting['id']}/start").status_code == 200
    monkeypatch.setenv("MEETING_GROUP_COMMIT", "0")
    before = group.current.groups
    for role in ROLES:  # one after another (the test database is one SQLite connection)
        with app.app_context():
            actor = authenticate({"token": room.join(role).token})
            out = commands.execute(commands.registry.get("checkin"), actor, {}, sid=f"sid-{role}")
        assert out["checked_in_at"]
    assert group.current.groups == before
    assert _present(room) == len(ROLES)
