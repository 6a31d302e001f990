"""Defects found by the fuzzing in packages owned by other developers: each fails today (strict xfail).

When one is fixed, its test passes, pytest reports XPASS(strict) as a failure: remove the marker (and the
entry in test_socket_fuzz.KNOWN) then.
"""

from __future__ import annotations

import logging

import pytest


@pytest.mark.xfail(strict=True, reason=(
    "voting/batcher.py (voting developer): on_vote(data=None) takes one argument; a client emitting "
    "`vote` with two arguments raises TypeError in the handler, answered `internal` (logged as a server "
    "error) instead of `invalid` like every other event (core/sockets.py and live/fast.py accept *args)."))
def test_vote_with_two_arguments_is_invalid(room):
    t = room.tablet("attendee")
    ack = t.emit("vote", {"poll_id": 1, "choices": [0]}, {"again": True}, callback=True)
    assert ack["ok"] is False and ack["error"]["code"] == "invalid", ack


@pytest.mark.xfail(strict=True, reason=(
    "voting/batcher.py (voting developer): a `vote` whose poll_id does not fit in 64 bits passes the "
    "schema (int, no bound) and makes the whole batch's SELECT ... IN (...) raise OverflowError: the batch "
    "fails ('a batch of N votes failed to commit') and every ballot in it is retried alone. One tablet can "
    "so turn a 1,000-ballot burst into 1,000 single transactions. Bound the id in voting/schemas.py "
    "(le=2**63-1) or check ids before the batch query."))
def test_out_of_range_poll_id_does_not_fail_the_batch(room, caplog):
    t = room.tablet("attendee")
    with caplog.at_level(logging.ERROR, logger="meeting_server.voting"):
        ack = t.emit("vote", {"poll_id": 2**64, "choices": [0]}, callback=True)
    assert ack["ok"] is False and ack["error"]["code"] in ("not_found", "out_of_range", "invalid"), ack
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records]
