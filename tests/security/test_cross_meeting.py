"""Meeting B's people can neither read nor change anything of meeting A, whatever ids they send.

B's chair (a tablet) and B's organizer send every command there is, over HTTP and over Socket.IO,
naming A's meeting, seats, document, poll, agenda item, speaker request, service call, announcement
and export. Many of these commands are allowed to them in their own meeting, so they really run (on B):
this is what checks that each domain scopes the ids it is given, not only the pipeline. Afterwards:

* no answer carries any of A's text, and no route with A's id in its path answered 2xx;
* no row of the database that belongs to A (or points at A's seats, documents, polls, agenda items)
  was added, removed or changed;
* A's organizer console and A's tablet received no event at all.
"""

from __future__ import annotations

import json

import pytest

from tests.security.world import MARKER, http_path, payload_for, table_rows

#: Commands that end B's session or meeting: sent last, so the others still reach live code.
LAST = ("meetings.delete", "meetings.end", "attendees.release", "auth.logout")


def _order(names):
    return sorted(names, key=lambda n: (n in LAST, LAST.index(n) if n in LAST else 0, n))


def _a_ids(world) -> dict[str, set[str]]:
    """Column-name suffix -> the repr of every id of A it may hold."""
    from sqlalchemy import select

    from meeting_server.agenda.models import AgendaItem
    from meeting_server.core import db
    from meeting_server.documents.models import Document
    from meeting_server.roster.models import Attendee
    from meeting_server.voting.models import Poll

    mid = world.a["meeting_id"]
    with db.reader() as s:

        def ids(model):
            return {repr(i) for i in s.scalars(select(model.id).where(model.meeting_id == mid))}

        seats, docs, polls, items = ids(Attendee), ids(Document), ids(Poll), ids(AgendaItem)
    return {
        "meeting_id": {repr(mid)},
        "document_id": docs,
        "attendee_id": seats,
        "presenter_id": seats,
        "agenda_item_id": items,
        "poll_id": polls,
        "previous_id": polls,
    }


def _touches_a(row: tuple, a_ids: dict[str, set[str]]) -> bool:
    return any(col.endswith(suffix) and val in vals for col, val in row for suffix, vals in a_ids.items())


def _a_rows_changed(before, after, a_ids) -> list:
    out = []
    for table in before:
        for row in before[table] ^ after[table]:
            if _touches_a(row, a_ids):
                out.append((table, dict(row)))
    return out


@pytest.fixture
def a_listeners(world):
    """A's organizer console and A's attendee tablet, connected and drained."""
    from meeting_server.extensions import socketio

    mid = world.a["meeting_id"]
    console = socketio.test_client(world.app, auth={"token": world.tokens["organizer"], "meeting_id": mid})
    tablet = socketio.test_client(world.app, auth={"token": world.tokens["attendee"]})
    assert console.is_connected() and tablet.is_connected()
    console.get_received()
    tablet.get_received()
    yield console, tablet
    for c in (console, tablet):
        if c.is_connected():
            c.disconnect()


def _check_a_untouched(world, before, a_listeners, answers):
    after = table_rows()
    changed = _a_rows_changed(before, after, _a_ids(world))
    assert not changed, f"rows of meeting A changed: {changed[:5]}"
    heard = {
        name: [e["name"] for e in c.get_received()]
        for name, c in zip(("console", "tablet"), a_listeners, strict=True)
    }
    assert heard == {"console": [], "tablet": []}, f"A's clients received events caused by B: {heard}"
    leaks = [(name, text[:300]) for name, text in answers if MARKER in text]
    assert not leaks, f"answers to B carry A's data: {leaks[:5]}"


@pytest.mark.parametrize("principal", ["other_tablet", "other_organizer"])
def test_http_with_a_ids(world, a_listeners, principal):
    from meeting_server.core.commands import registry

    before = table_rows()
    answers, reached = [], []
    for name in _order(n for n in registry.commands if n != "auth.logout"):  # it only ends its own login
        cmd = registry.get(name)
        if not cmd.http:
            continue
        api = world.api[principal]
        path, method = http_path(cmd, world.a), cmd.http[0]
        payload = payload_for(cmd, world.a)
        if cmd.multipart:
            r = api.upload(path, world.pdf, "x.pdf", **{k: v for k, v in payload.items() if v is not None})
        elif method in ("GET", "DELETE"):
            r = getattr(api, method.lower())(
                path, query_string={k: v for k, v in payload.items() if v is not None}
            )
        else:
            r = getattr(api, method.lower())(path, json=payload)
        answers.append((name, r.get_data(as_text=True) if r.is_json else ""))
        if "<" in cmd.http[1] and r.status_code < 400:
            reached.append((name, r.status_code))  # a route naming A's object answered
        assert r.status_code < 500, (name, r.get_data(as_text=True)[:300])
    assert not reached, f"{principal} reached A's objects: {reached}"
    _check_a_untouched(world, before, a_listeners, answers)


@pytest.mark.parametrize("principal", ["other_tablet", "other_organizer"])
def test_socket_with_a_ids(world, a_listeners, principal):
    from meeting_server.core.commands import registry
    from tests.security.test_permission_matrix import socket_events

    c = world.socket(principal)
    before = table_rows()
    answers = []
    # `meetings.end` names no id (the meeting is the sender's own): it would only end B for the rest.
    for name in _order(e for e in socket_events() if e != "meetings.end"):
        cmd = registry.get(name)
        for payload in (
            payload_for(cmd, world.a),
            {**payload_for(cmd, world.a), "meeting_id": world.a["meeting_id"]},
        ):
            if not c.is_connected():
                c = world.socket(principal)
            ack = c.emit(name, payload, callback=True)
            assert isinstance(ack, dict) and isinstance(ack.get("ok"), bool), (name, ack)
            if ack["ok"] is False:
                assert ack["error"]["code"] != "internal", (name, payload, ack)
            answers.append((name, json.dumps(ack, ensure_ascii=False)))
    c.get_received()
    _check_a_untouched(world, before, a_listeners, answers)
