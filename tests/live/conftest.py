"""Helpers for tests of the live room: one client per role, acks, permission checks in one line."""

from __future__ import annotations

from typing import Any

import pytest

from tests.live.server import live_server  # noqa: F401  (the real-server fixture, for test_integration)

#: Every kind of client in a meeting: the organizer's console and a tablet per seat role.
ROLES = ("organizer", "chair", "presenter", "secretary", "attendee", "observer")
SEAT_ROLES = ROLES[1:]
PRESENTERS = {"organizer", "chair", "presenter"}
CHAIRS = {"organizer", "chair"}
STAFF = {"organizer", "chair", "presenter", "secretary"}


def client_for(room, role: str, fresh: bool = False):
    """A connected Socket.IO test client: the organizer's console, or a tablet holding the role's seat.

    One client per role and room is kept and reused (connecting costs a join and a `state`); `fresh`
    connects a new device.
    """
    cache = room.__dict__.setdefault("_clients", {})
    c = cache.get(role)
    if fresh or c is None or not c.is_connected():
        c = room.console() if role == "organizer" else room.tablet(role)
        assert c.is_connected(), f"{role} could not connect"
        if not fresh:
            cache[role] = c
    return c


def ack(client, event: str, payload: Any = None) -> dict:
    return client.emit(event, {} if payload is None else payload, callback=True)


def assert_allowed(room, role: str, event: str, payload: Any = None) -> dict:
    a = ack(client_for(room, role), event, payload)
    assert a["ok"] is True, f"{role} {event}: {a}"
    return a


def assert_refused(room, role: str, event: str, payload: Any = None, code: str = "forbidden") -> dict:
    a = ack(client_for(room, role), event, payload)
    assert a["ok"] is False and a["error"]["code"] == code, f"{role} {event}: expected {code}, got {a}"
    return a


def check_role(room, role: str, event: str, payload: Any, allowed: set[str]) -> dict:
    """The one-line permission test: allowed roles get ok, every other role gets `forbidden`."""
    if role in allowed:
        return assert_allowed(room, role, event, payload)
    return assert_refused(room, role, event, payload)


def drain(*clients) -> None:
    for c in clients:
        c.get_received()


def got(client, *ignore: str) -> list[tuple[str, Any]]:
    """(event, payload) received since the last call, in order, minus the `ignore`d names."""
    if client.is_connected():
        evs = client.get_received()
    else:  # what it got before it was disconnected
        evs, client.queue = client.queue, []
    return [(e["name"], e["args"][0] if e["args"] else None) for e in evs if e["name"] not in ignore]


def named(client, name: str) -> list[Any]:
    return [e["args"][0] if e["args"] else None for e in client.get_received() if e["name"] == name]


class Everyone(dict):
    """role -> connected client, every role of the room at once; `received()` drains them all."""

    def received(self, *ignore: str) -> dict[str, list[tuple[str, Any]]]:
        return {role: got(c, *ignore) for role, c in self.items()}

    def names(self, *ignore: str) -> dict[str, list[str]]:
        return {role: [n for n, _ in evs] for role, evs in self.received(*ignore).items()}


@pytest.fixture
def everyone(room) -> Everyone:
    e = Everyone((role, client_for(room, role)) for role in ROLES)
    drain(*e.values())
    return e


@pytest.fixture
def everyone_doc(room_with_doc) -> Everyone:
    e = Everyone((role, client_for(room_with_doc, role)) for role in ROLES)
    drain(*e.values())
    return e
