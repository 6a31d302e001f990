"""The permission matrix: every command (HTTP route or Socket.IO event) against every principal.

`EXPECTED` is written by hand, independently of the `roles=` each command declares: a command added to
the registry without its row here fails `test_every_command_has_a_row`, and a row that disagrees with
the declaration fails its one line in `test_authorize`. The lines call the pipeline's own
`resolve` + `authorize` (the payload is validated first in the pipeline, so authorization is tested
here on its own), the meeting at stake being meeting A. `test_http_*` and `test_socket_*` then send
real requests per principal through the HTTP and Socket.IO layers.

Principals: anonymous; another meeting's tablet (B's chair); A's observer, attendee, secretary,
presenter and chair; the organizer of another meeting (B's); an admin; A's organizer.
"""

from __future__ import annotations

import json

import pytest

from tests.security.world import MARKER, PRINCIPALS, SEAT_ROLES, http_path, payload_for

ALL = frozenset(PRINCIPALS)
SEATS = frozenset(SEAT_ROLES)
ORG = frozenset({"organizer", "admin"})
USERS = frozenset({"organizer", "admin", "other_organizer"})
EVERYONE = ORG | SEATS
STAFF = ORG | {"chair", "presenter", "secretary"}
PRESENTING = ORG | {"chair", "presenter"}
CHAIRING = ORG | {"chair"}
CLERKS = ORG | {"secretary"}
ANNOUNCERS = ORG | {"chair", "secretary"}
VOTERS = frozenset({"attendee", "chair", "presenter"})
ADMIN = frozenset({"admin"})

#: command -> the principals that may run it on meeting A (or, for account commands, at all).
EXPECTED: dict[str, frozenset[str]] = {
    # accounts
    "auth.login": ALL,
    "auth.logout": USERS,
    "auth.me": USERS,
    "users.create": ADMIN,
    "users.list": ADMIN,
    "keys.get": ALL,
    "join": ALL,
    # meetings
    "meetings.create": USERS,
    "meetings.list": USERS,
    "meetings.get": ORG,
    "meetings.update": ORG,
    "meetings.delete": ORG,
    "meetings.start": CHAIRING,
    "meetings.end": CHAIRING,
    # roster
    "attendees.create": ORG,
    "attendees.import": ORG,
    "attendees.list": ORG,
    "attendees.get": ORG,
    "attendees.update": ORG,
    "attendees.delete": ORG,
    "attendees.qr_png": ORG,
    "attendees.qr_svg": ORG,
    "attendees.cards": ORG,
    "attendees.reissue": ORG,
    "attendees.release": ORG,
    "attendees.allow_takeover": ORG,
    "attendees.sessions": ORG,
    "attendees.revoke_session": ORG,
    # agenda
    "agenda.create": ORG,
    "agenda.update": ORG,
    "agenda.delete": ORG,
    "agenda.reorder": ORG,
    "agenda.list": EVERYONE,
    "agenda.activate": PRESENTING,
    # documents
    "documents.upload": ORG,
    "documents.replace": ORG,
    "documents.update": ORG,
    "documents.delete": ORG,
    "documents.withdraw": ORG,
    "documents.get": EVERYONE,
    "documents.list": EVERYONE,
    "documents.page": EVERYONE,
    "documents.thumb": EVERYONE,
    "documents.original": EVERYONE,
    # live room
    "state.get": EVERYONE,
    "seats.status": STAFF,
    "seat.status": SEATS,
    "present": PRESENTING,
    "view": PRESENTING,
    "follow.lock": PRESENTING,
    "pointer": PRESENTING,
    "ink": PRESENTING,
    "ink.clear": PRESENTING,
    # attendance
    "checkin": SEATS,
    "checkout": SEATS,
    "checkin.proxy": CLERKS,
    "checkout.proxy": CLERKS,
    "attendance.list": STAFF,
    "quorum.set": CHAIRING,
    # speakers, service calls, announcements
    "speaker.request": SEATS,
    "speaker.withdraw": SEATS,
    "speaker.add": CHAIRING,
    "speaker.order": CHAIRING,
    "speaker.grant": CHAIRING,
    "speaker.end": CHAIRING,
    "speaker.extend": CHAIRING,
    "speaker.remove": CHAIRING,
    "service.call": SEATS,
    "service.cancel": SEATS,
    "service.close": CLERKS,
    "service.list": CLERKS,
    "announce": ANNOUNCERS,
    "announce.clear": ANNOUNCERS,
    "nameplate": ANNOUNCERS,
    # voting
    "polls.create": ORG,
    "polls.update": ORG,
    "polls.delete": ORG,
    "polls.get": EVERYONE,
    "polls.list": EVERYONE,
    "polls.receipt": EVERYONE,
    "polls.results_csv": CHAIRING,
    "polls.results_json": CHAIRING,
    "poll.open": CHAIRING,
    "poll.close": CHAIRING,
    "poll.cancel": CHAIRING,
    "poll.dismiss": CHAIRING,
    "poll.publish": CHAIRING,
    "poll.revote": CHAIRING,
    "poll.vote_for": CLERKS,
    "vote": VOTERS,
    # annotations
    "annotation.save": SEATS,
    "annotation.delete": SEATS,
    "annotation.share": SEATS,
    "annotation.show": PRESENTING,
    "annotation.hide": PRESENTING,
    "annotations.list": EVERYONE,
    "annotations.shared": EVERYONE,
    "annotations.export": EVERYONE,
    "annotations.export_meeting": ORG,
    "annotations.export_status": EVERYONE,
    "annotations.export_file": EVERYONE,
    # minutes and records
    "minutes.get": STAFF,
    "minutes.revisions": STAFF,
    "minutes.save": CLERKS,
    "minutes.submit": CLERKS,
    "minutes.reopen": CHAIRING,
    "minutes.approve": CHAIRING,
    "minutes.pdf": ANNOUNCERS,
    "audit.list": ORG,
    "audit.verify": ORG,
    "archive.get": ORG,
    "archive.status": ORG,
}

#: What a refusal may look like, per principal: a status, or "own" (the command can only act on the
#: caller's own meeting, so meeting A is out of its reach by construction).
REFUSALS = {
    "anonymous": {401},
    "other_tablet": {404, "own"},
    "other_organizer": {403, "own"},
    **{p: {403, 404} for p in (*SEAT_ROLES, "admin", "organizer")},
}

CASES = [(name, p) for name in sorted(EXPECTED) for p in PRINCIPALS]


def _registry():
    from meeting_server.core.commands import registry

    return registry


def test_every_command_has_a_row(world):
    names = set(_registry().commands)
    assert names - set(EXPECTED) == set(), "commands without a row in EXPECTED: add one"
    assert set(EXPECTED) - names == set(), "rows for commands that no longer exist: remove them"


def outcome(world, name: str, principal: str):
    """resolve + authorize, as the pipeline runs them, for `principal` acting on meeting A's objects."""
    from meeting_server.core import db
    from meeting_server.core.commands import authorize, resolve, validate
    from meeting_server.core.errors import AppError

    cmd = _registry().get(name)
    actor = world.actor(principal, socket=cmd.http is None)
    params = {k: v for k, v in world.a.items() if cmd.http and f"{k}>" in cmd.http[1]}
    payload = validate(cmd, payload_for(cmd, world.a))
    with db.reader() as s:
        try:
            meeting, _ = resolve(cmd, s, actor, params, payload)
            if meeting is not None and meeting.id != world.a["meeting_id"]:
                return "own"
            authorize(cmd, actor, meeting, s)
        except AppError as e:
            return e.status
        finally:
            s.rollback()
    return "ok"


@pytest.mark.parametrize(("name", "principal"), CASES, ids=[f"{n}-{p}" for n, p in CASES])
def test_authorize(world, name, principal):
    got = outcome(world, name, principal)
    if principal in EXPECTED[name]:
        assert got == "ok", f"{principal} may run {name}, but the pipeline answers {got}"
    else:
        assert got in REFUSALS[principal], f"{principal} must not run {name} on meeting A; got {got}"


# -- over HTTP ---------------------------------------------------------------------------------


def _http(world, principal: str, cmd, ids: dict):
    api = world.api[principal]
    path = http_path(cmd, ids)
    method = cmd.http[0]
    payload = payload_for(cmd, ids)
    if cmd.multipart:
        return api.upload(path, world.pdf, "x.pdf", **{k: v for k, v in payload.items() if v is not None})
    if method in ("GET", "DELETE"):
        query = {k: v for k, v in payload.items() if v is not None}
        return getattr(api, method.lower())(path, query_string=query)
    return getattr(api, method.lower())(path, json=payload)


def _own(world, principal: str) -> dict:
    """A's ids, with `attendee_id` the principal's own seat (a seat may read its own things only)."""
    ids = dict(world.a)
    if principal in SEAT_ROLES:
        ids["attendee_id"] = world.a["seat_ids"][principal]
    return ids


def _expected_status(cmd, principal: str) -> set[int]:
    if principal == "anonymous":
        return {401}
    if principal == "other_tablet":
        return {404}
    if principal in SEAT_ROLES:
        # A seat acts inside its meeting (403); account-level routes do not exist for it (404).
        return {403} if (cmd.resource or cmd.socket) else {404}
    return {403}


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_http_refusals(world, principal):
    """Every HTTP route this principal may not use answers 401/403/404 with a JSON error and nothing of A."""
    from tests.security.world import snapshot

    before = snapshot()
    wrong = []
    tried = 0
    for cmd in sorted(_registry().commands.values(), key=lambda c: c.name):
        if not cmd.http or principal in EXPECTED[cmd.name]:
            continue
        tried += 1
        r = _http(world, principal, cmd, world.a)
        body = r.get_data(as_text=True)
        ok_body = r.is_json and set(r.get_json()) == {"error"}
        if r.status_code not in _expected_status(cmd, principal) or not ok_body or MARKER in body:
            wrong.append((cmd.name, r.status_code, body[:200]))
    assert not wrong, wrong
    assert snapshot() == before, "a refused request changed the database"
    print(f"{principal}: {tried} routes refused")


@pytest.mark.parametrize("principal", [p for p in PRINCIPALS if p in EVERYONE or p == "other_organizer"])
def test_http_reads_allowed(world, principal):
    """Every read-only GET this principal may use answers without 401/403 and without a 5xx."""
    wrong = []
    for cmd in sorted(_registry().commands.values(), key=lambda c: c.name):
        if not cmd.http or cmd.http[0] != "GET" or cmd.write or principal not in EXPECTED[cmd.name]:
            continue
        if cmd.name in ("archive.get", "minutes.pdf"):
            continue  # build a PDF or a zip (seconds each): reached in tests/records_api
        r = _http(world, principal, cmd, _own(world, principal))
        if r.status_code in (401, 403) or r.status_code >= 500:
            wrong.append((cmd.name, r.status_code, r.get_data(as_text=True)[:200]))
    assert not wrong, wrong


# -- over Socket.IO ----------------------------------------------------------------------------


def socket_events() -> list[str]:
    """Every event the Socket.IO server handles (the pipeline's, the fast path's, `vote`)."""
    from meeting_server.extensions import socketio

    return sorted(e for e in socketio.server.handlers["/"] if e not in ("connect", "disconnect", "*"))


def test_socket_events_are_commands(world):
    names = set(_registry().commands)
    assert set(socket_events()) <= names, "a Socket.IO handler that is not a declared command"


@pytest.mark.parametrize("principal", ["anonymous", "other_organizer"])
def test_socket_connect_refused(world, principal):
    """No token, or an organizer of another meeting: the connection to meeting A is refused."""
    from meeting_server.extensions import socketio

    auth = {"token": world.tokens[principal], "meeting_id": world.a["meeting_id"]}
    c = socketio.test_client(world.app, auth=auth if world.tokens[principal] else None)
    assert not c.is_connected()


@pytest.mark.parametrize("principal", ["other_tablet", *SEAT_ROLES, "admin", "organizer"])
def test_socket_refusals(world, principal):
    """Every event this principal may not send is answered `forbidden` (A's own) or `not_found` (B's tablet)."""
    from tests.security.world import snapshot

    c = world.socket(principal)
    c.get_received()
    before = snapshot()
    wrong, tried = [], 0
    for name in socket_events():
        cmd = _registry().get(name)
        if principal in EXPECTED[name]:
            continue
        if principal == "other_tablet" and (
            cmd.resource in (None, "meeting") or outcome(world, name, principal) == "own"
        ):
            # A socket command without a resource id acts on the connection's own meeting B:
            # it cannot reach A at all (see test_cross_meeting.py).
            continue
        tried += 1
        ack = c.emit(name, payload_for(cmd, world.a), callback=True)
        want = "not_found" if principal == "other_tablet" else "forbidden"
        if not isinstance(ack, dict) or ack.get("ok") is not False or ack["error"]["code"] != want:
            wrong.append((name, ack))
        elif MARKER in json.dumps(ack, ensure_ascii=False):
            wrong.append((name, "leaks A", ack))
    assert not wrong, wrong
    assert snapshot() == before, "a refused event changed the database"
    assert tried or principal == "organizer"


@pytest.mark.parametrize("principal", [*SEAT_ROLES, "admin", "organizer"])
def test_socket_reads_allowed(world, principal):
    """Every read-only event this principal may send is answered without `forbidden`/`unauthorized`."""
    c = world.socket(principal)
    wrong = []
    for name in socket_events():
        cmd = _registry().get(name)
        if cmd.write or principal not in EXPECTED[name]:
            continue
        ack = c.emit(name, payload_for(cmd, _own(world, principal)), callback=True)
        if not isinstance(ack, dict) or (
            not ack.get("ok") and ack["error"]["code"] in ("forbidden", "unauthorized")
        ):
            wrong.append((name, ack))
    assert not wrong, wrong
