"""Presenter control: page, view, agenda item, follow lock; pointer and ink on the fast path."""

from __future__ import annotations

import pytest

from tests.live.conftest import ROLES, ack, client_for, got

CURRENT_KEYS = {"document_id", "page", "seq", "view", "agenda_item_id", "follow_lock"}


def _audit_commands(room) -> list[str]:
    from meeting_server.core import audit, db

    with db.reader() as s:
        return [e.command for e in audit.entries(s, room.meeting["id"])]


def test_present_reaches_everyone_with_the_whole_current_block(room_with_doc, everyone_doc):
    d = room_with_doc.document["id"]
    a = ack(everyone_doc["presenter"], "present", {"document_id": d, "page": 3})
    assert a == {"ok": True, "seq": 1}
    expected = {
        "document_id": d,
        "page": 3,
        "seq": 1,
        "view": None,
        "agenda_item_id": None,
        "follow_lock": False,
    }
    assert everyone_doc.received() == {role: [("page", expected)] for role in ROLES}
    a = ack(
        everyone_doc["chair"], "present", {"document_id": d, "page": 4, "view": {"zoom": 2, "x": 0.5, "y": 0}}
    )
    assert a["seq"] == 2
    for role, evs in everyone_doc.received().items():
        assert evs == [
            ("page", {**expected, "page": 4, "seq": 2, "view": {"zoom": 2.0, "x": 0.5, "y": 0.0}})
        ], role


def test_present_refuses_pages_and_documents_that_do_not_exist(room_with_doc, everyone_doc):
    d = room_with_doc.document["id"]
    a = ack(everyone_doc["presenter"], "present", {"document_id": d, "page": 6})
    assert a["error"]["code"] == "no_such_page"
    a = ack(everyone_doc["presenter"], "present", {"document_id": d + 100, "page": 1})
    assert a["error"]["code"] == "not_found"
    assert everyone_doc.received() == {role: [] for role in ROLES}


def test_view_follows_the_page_and_is_not_audited(room_with_doc, everyone_doc):
    d = room_with_doc.document["id"]
    assert ack(everyone_doc["presenter"], "view", {"zoom": 2})["error"]["code"] == "nothing_presented"
    ack(everyone_doc["presenter"], "present", {"document_id": d, "page": 2})
    everyone_doc.received()
    a = ack(everyone_doc["presenter"], "view", {"zoom": 1.5, "x": 0.1, "y": 0.6})
    assert a == {"ok": True, "seq": 2}
    view = {"zoom": 1.5, "x": 0.1, "y": 0.6}
    for role, evs in everyone_doc.received().items():
        assert evs == [
            (
                "view",
                {
                    "document_id": d,
                    "page": 2,
                    "seq": 2,
                    "view": view,
                    "agenda_item_id": None,
                    "follow_lock": False,
                },
            )
        ], role
    assert _audit_commands(room_with_doc).count("view") == 0
    assert _audit_commands(room_with_doc).count("present") == 1


def test_agenda_activate_over_socket_and_http(room, everyone):
    mid = room.meeting["id"]
    item = room.org.post(f"/api/v1/meetings/{mid}/agenda", json={"title": "预算 Budget"}).get_json()
    everyone.received()
    a = ack(everyone["chair"], "agenda.activate", {"item_id": item["id"]})
    assert a["ok"] and a["agenda_item_id"] == item["id"] and a["seq"] == 1
    for role, evs in everyone.received().items():
        assert [n for n, _ in evs] == ["agenda.current"], role
        assert evs[0][1]["agenda_item_id"] == item["id"] and set(evs[0][1]) == CURRENT_KEYS
    r = room.org.post(f"/api/v1/meetings/{mid}/agenda/activate", json={"item_id": None})
    assert r.status_code == 200 and r.get_json()["agenda_item_id"] is None and r.get_json()["seq"] == 2
    assert all(evs == [("agenda.current", r.get_json())] for evs in everyone.received().values())
    # a presenter's tablet token works over HTTP too; an attendee's does not
    r = room.join("presenter").post(f"/api/v1/meetings/{mid}/agenda/activate", json={"item_id": item["id"]})
    assert r.status_code == 200
    r = room.join("attendee").post(f"/api/v1/meetings/{mid}/agenda/activate", json={"item_id": item["id"]})
    assert r.status_code == 403
    assert (
        ack(everyone["chair"], "agenda.activate", {"item_id": item["id"] + 99})["error"]["code"]
        == "not_found"
    )


def test_follow_lock_is_broadcast_and_kept_for_reconnecting_tablets(room_with_doc, everyone_doc):
    a = ack(everyone_doc["organizer"], "follow.lock", {"locked": True})
    assert a == {"ok": True, "seq": 1}
    for role, evs in everyone_doc.received().items():
        assert [(n, p["follow_lock"], p["seq"]) for n, p in evs] == [("follow.lock", True, 1)], role
    fresh = client_for(room_with_doc, "attendee", fresh=True)
    state = got(fresh)[0][1]
    assert state["current"]["follow_lock"] is True and state["current"]["seq"] == 1


def test_current_seq_grows_across_every_kind_of_change(room_with_doc, everyone_doc):
    d = room_with_doc.document["id"]
    c = everyone_doc["presenter"]
    seqs = [
        ack(c, "present", {"document_id": d, "page": 1})["seq"],
        ack(c, "follow.lock", {"locked": True})["seq"],
        ack(c, "view", {"zoom": 3})["seq"],
        ack(c, "agenda.activate", {"item_id": None})["seq"],
        ack(c, "present", {"document_id": d, "page": 5})["seq"],
    ]
    assert seqs == [1, 2, 3, 4, 5]
    seen = [p["seq"] for n, p in got(everyone_doc["observer"])]
    assert seen == seqs
    state = ack(everyone_doc["observer"], "state.get")["state"]
    assert state["current"] == {
        "document_id": d,
        "page": 5,
        "seq": 5,
        "view": None,
        "agenda_item_id": None,
        "follow_lock": True,
    }


def test_present_is_refused_once_the_meeting_ended(room_with_doc, everyone_doc):
    mid = room_with_doc.meeting["id"]
    assert room_with_doc.org.post(f"/api/v1/meetings/{mid}/end").status_code == 200
    a = ack(everyone_doc["presenter"], "present", {"document_id": room_with_doc.document["id"], "page": 1})
    assert a["error"]["code"] == "meeting_ended"


# -- pointer and ink: the fast path ---------------------------------------------------
def test_pointer_reaches_everyone_but_the_sender(room, everyone):
    assert ack(everyone["presenter"], "pointer", {"x": 0.25, "y": 0.75, "page": 2}) == {"ok": True}
    ack(everyone["presenter"], "pointer", {"x": 0.3, "y": 0.7, "page": 2})
    pid = room.seats["presenter"]["id"]
    for role, evs in everyone.received().items():
        if role == "presenter":
            assert evs == []
            continue
        assert evs == [
            (
                "pointer",
                {
                    "x": 0.25,
                    "y": 0.75,
                    "visible": True,
                    "document_id": None,
                    "page": 2,
                    "by": f"seat:{pid}",
                    "n": 1,
                },
            ),
            (
                "pointer",
                {
                    "x": 0.3,
                    "y": 0.7,
                    "visible": True,
                    "document_id": None,
                    "page": 2,
                    "by": f"seat:{pid}",
                    "n": 2,
                },
            ),
        ], role


def test_fast_events_touch_no_database_and_write_no_audit(room, everyone, monkeypatch):
    from meeting_server.core import db

    def boom():
        raise AssertionError("the fast path opened a database session")

    monkeypatch.setattr(db, "transaction", boom)
    monkeypatch.setattr(db, "reader", boom)
    c = everyone["chair"]
    assert ack(c, "pointer", {"x": 0.5, "y": 0.5}) == {"ok": True}
    assert ack(c, "ink", {"stroke_id": "a", "points": [[0.1, 0.2]]}) == {"ok": True}
    assert ack(c, "ink.clear", {}) == {"ok": True}
    assert ack(everyone["attendee"], "seat.status", {"following": False, "page": 3}) == {"ok": True}
    monkeypatch.undo()
    assert not {"pointer", "ink", "ink.clear", "seat.status"} & set(_audit_commands(room))


def test_fast_commands_are_declared_as_not_writing(app):
    from meeting_server.core.commands import registry
    from meeting_server.live import fast

    for name in fast.LIMITS:
        assert registry.get(name).write is False


def test_ink_is_relayed_and_cleared_on_the_next_page(room_with_doc, everyone_doc):
    d = room_with_doc.document["id"]
    p = everyone_doc["presenter"]
    ack(p, "present", {"document_id": d, "page": 1})
    everyone_doc.received()
    stroke = {
        "stroke_id": "k1",
        "points": [[0.1, 0.1], [0.2, 0.25]],
        "color": "#00ff00",
        "width": 4,
        "page": 1,
    }
    assert ack(p, "ink", stroke)["ok"]
    by = f"seat:{room_with_doc.seats['presenter']['id']}"
    full = {**stroke, "done": False, "document_id": None, "width": 4.0, "by": by, "n": 1}
    for role, evs in everyone_doc.received().items():
        assert evs == ([] if role == "presenter" else [("ink", full)]), role
    ack(p, "present", {"document_id": d, "page": 2})
    for role, evs in everyone_doc.received().items():
        assert [n for n, _ in evs] == ["page", "ink.clear"], role
        assert evs[1][1] == {"reason": "page", "seq": 2}
    # no ink since: the next page carries no extra message
    ack(p, "present", {"document_id": d, "page": 3})
    assert all([n for n, _ in evs] == ["page"] for evs in everyone_doc.received().values())


def test_presenter_clears_one_stroke(room, everyone):
    ack(everyone["organizer"], "ink.clear", {"stroke_id": "k9"})
    uid = room.org.user["id"]
    for role, evs in everyone.received().items():
        expected = (
            []
            if role == "organizer"
            else [("ink.clear", {"reason": "presenter", "by": f"user:{uid}", "stroke_id": "k9"})]
        )
        assert evs == expected, role


def test_pointer_is_rate_limited_per_sender(room, everyone, monkeypatch):
    from meeting_server.live import fast

    monkeypatch.setattr(fast, "clock", lambda: 1000.0)  # frozen: no refill while the test runs
    c = everyone["presenter"]
    acks = [ack(c, "pointer", {"x": 0.5, "y": 0.5}) for _ in range(40)]
    assert [a["ok"] for a in acks] == [True] * 30 + [False] * 10  # a burst of 30, then dropped
    assert all(a["error"]["code"] == "rate_limited" for a in acks[30:])
    assert fast.dropped["pointer"] == 10
    # another sender has its own bucket
    assert ack(everyone["chair"], "pointer", {"x": 0.5, "y": 0.5})["ok"]
    assert len(named_pointer(everyone["attendee"])) == 31
    # time passes: the bucket refills at 30/s
    monkeypatch.setattr(fast, "clock", lambda: 1000.5)
    assert ack(c, "pointer", {"x": 0.5, "y": 0.5})["ok"]


def named_pointer(client) -> list:
    return [p for n, p in got(client) if n == "pointer"]


def test_token_bucket_refills():
    from meeting_server.live import fast

    fast.reset()
    t = 1000.0
    assert all(fast.allow("sid", "ink", t) for _ in range(30))
    assert not fast.allow("sid", "ink", t)
    assert not fast.allow("sid", "ink", t + 0.01)
    assert fast.allow("sid", "ink", t + 0.1)  # 30/s: three tokens back after 100 ms
    fast.forget("sid")
    assert all(fast.allow("sid", "ink", t + 0.1) for _ in range(30))


@pytest.mark.parametrize("event", ["pointer", "ink", "seat.status"])
def test_fast_path_without_connection_is_unauthorized(app, event):
    from meeting_server.extensions import socketio

    handler = socketio.server.handlers["/"][event]
    a = handler("no-such-sid", {})
    assert a == {"ok": False, "error": {"code": "unauthorized", "message": "not connected to a meeting"}}


def test_fast_path_takes_one_payload(room, everyone):
    c = everyone["presenter"]
    a = c.emit("pointer", {"x": 0.5, "y": 0.5}, {"x": 1}, callback=True)
    assert a["ok"] is False and a["error"]["code"] == "invalid"
    a = c.emit("pointer", callback=True)  # no payload at all: validated like {}
    assert a["ok"] is False and a["error"]["code"] == "invalid"
