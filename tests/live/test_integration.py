"""The live room against a real `meeting-server serve` with real Socket.IO clients."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.integration


def _flip(presenter, doc_id: int, page: int) -> int:
    a = presenter.call("present", {"document_id": doc_id, "page": page})
    assert a["ok"], a
    return a["seq"]


def _pages(t, since: int = 0) -> list[tuple[int, int]]:
    return [(p["seq"], p["page"]) for p in t.payloads("page", since)]


def test_fifty_tablets_follow_twenty_flips_none_missed_in_order(live_server):
    room = live_server.setup_room(tablets=50, pages=20)
    tablets = live_server.connect(room.tablet_tokens)
    presenter = live_server.tablet(room.presenter_token, "presenter")
    for t in tablets:
        t.wait_for(lambda t: t.last_state() is not None, what="state")
    marks = [t.mark() for t in tablets]
    seqs = []
    for page in range(1, 21):
        seqs.append(_flip(presenter, room.document_id, page))
        time.sleep(0.02)
    assert seqs == list(range(seqs[0], seqs[0] + 20))
    expected = list(zip(seqs, range(1, 21), strict=True))
    for t, m in zip(tablets, marks, strict=True):
        t.wait_for(lambda t, m=m: len(_pages(t, m)) >= 20, timeout=20, what="20 pages")
    for t, m in zip(tablets, marks, strict=True):
        assert _pages(t, m) == expected, t.name


def test_dropped_tablets_come_back_on_the_right_page_and_checkin(live_server):
    room = live_server.setup_room(tablets=12, pages=10)
    tablets = live_server.connect(room.tablet_tokens)
    presenter = live_server.tablet(room.presenter_token, "presenter")
    _flip(presenter, room.document_id, 2)
    for t in tablets[:6]:
        assert t.call("checkin")["ok"]
    dropped = tablets[3:9]  # three checked in, three not
    for t in dropped:
        t.disconnect()
    for page in (3, 4, 5):
        last = _flip(presenter, room.document_id, page)
    assert presenter.call("follow.lock", {"locked": True})["ok"]
    last += 1
    back = [live_server.tablet(t.auth["token"], t.name + "-again") for t in dropped]
    for i, t in enumerate(back):
        t.wait_for(lambda t: t.last_state() is not None, what="state")
        state = t.last_state()
        assert state["current"]["page"] == 5 and state["current"]["seq"] == last
        assert state["current"]["follow_lock"] is True
        assert state["me"]["checked_in"] is (i < 3), (i, state["me"])
        assert state["attendance"]["present"] == 6
    # the ones that stayed saw everything
    for t in tablets[:3] + tablets[9:]:
        t.wait_for(lambda t: any(p["seq"] == last for p in t.payloads("follow.lock")), what="follow.lock")
        assert [p for _, p in _pages(t)][-3:] == [3, 4, 5]


def _back(t, since: int) -> dict | None:
    """The `state` of the connection a tablet holds now, if it connected again after `since`."""
    with t.lock:
        evs = t.events[since:]
    drops = [i for i, (n, _, _) in enumerate(evs) if n == "(disconnect)"]
    after = evs[drops[-1] + 1 :] if drops else evs
    if not t.sio.connected or not any(n == "(connect)" for n, _, _ in after):
        return None
    states = [p for n, p, _ in after if n == "state"]  # it may come just before the connect packet
    return states[-1] if states else None


def _latest_seq(t, since: int) -> int:
    with t.lock:
        evs = t.events[since:]
    seqs = [p["current"]["seq"] for n, p, _ in evs if n == "state"]
    seqs += [p["seq"] for n, p, _ in evs if n in ("page", "view", "agenda.current", "follow.lock")]
    return max(seqs, default=-1)


def test_server_killed_and_restarted_tablets_back_in_step(live_server):
    room = live_server.setup_room(tablets=20, pages=10)
    tablets = live_server.connect(room.tablet_tokens)
    console = live_server.tablet(room.org_token, "console", meeting_id=room.meeting_id)
    presenter = live_server.tablet(room.presenter_token, "presenter")
    for t in tablets[:10]:
        assert t.call("checkin")["ok"]
    for page in (1, 2, 3, 7):
        seq = _flip(presenter, room.document_id, page)
    assert console.call("speaker.add", {"attendee_id": room.attendee_ids[0]})["ok"]
    everyone = [*tablets, console, presenter]
    marks = {id(t): t.mark() for t in everyone}
    live_server.kill()  # SIGKILL: no goodbye to anyone
    for t in everyone:
        t.wait_for(lambda t: not t.sio.connected, timeout=20, what="the drop")
    live_server.restart()
    for t in everyone:
        t.wait_for(lambda t, m=marks[id(t)]: _back(t, m) is not None, timeout=60, what="state after restart")
    for i, t in enumerate(tablets):
        state = _back(t, marks[id(t)])
        assert state["current"]["page"] == 7 and state["current"]["seq"] == seq, state["current"]
        assert state["me"]["checked_in"] is (i < 10)
        assert state["attendance"]["present"] == 10
        assert [s["attendee_id"] for s in state["speakers"]["queue"]] == [room.attendee_ids[0]]
    # the room goes on: seq continues from the database, everyone follows
    new_seq = _flip(presenter, room.document_id, 8)
    assert new_seq == seq + 1
    for t in tablets:
        t.wait_for(lambda t, m=marks[id(t)]: _latest_seq(t, m) == new_seq, what="page after restart")

    # the console sees every seat online again, and no ghost devices from half-made connections
    def all_online(c) -> bool:
        seats = c.call("seats.status")["seats"]
        return sum(s["online"] for s in seats) == 21 and all(s["devices"] == 1 for s in seats)

    console.wait_for(all_online, timeout=30, what="every seat online once")
