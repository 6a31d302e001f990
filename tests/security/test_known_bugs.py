"""Defects the fuzzing found in packages owned by other developers, pinned by tests.

Each test here was a strict xfail naming its owner until the fix landed; then the marker goes (and the
entry in test_socket_fuzz.KNOWN). Fixed so far: both `vote` input defects (voting, fdda0c5); the render
lease that blocked an immediate re-render and the unsupervised worker of `serve` (d56be2a: now
tests/faults/test_render_recovery.py and tests/faults/test_kill.py::test_worker_killed_mid_render_is_retried_or_fails,
without markers). None open.
"""

from __future__ import annotations

import logging


def test_vote_with_two_arguments_is_invalid(room):
    t = room.tablet("attendee")
    ack = t.emit("vote", {"poll_id": 1, "choices": [0]}, {"again": True}, callback=True)
    assert ack["ok"] is False and ack["error"]["code"] == "invalid", ack


def test_out_of_range_poll_id_does_not_fail_the_batch(room, caplog):
    t = room.tablet("attendee")
    with caplog.at_level(logging.ERROR, logger="meeting_server.voting"):
        ack = t.emit("vote", {"poll_id": 2**64, "choices": [0]}, callback=True)
    assert ack["ok"] is False and ack["error"]["code"] in ("not_found", "out_of_range", "invalid"), ack
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [
        r.getMessage() for r in caplog.records
    ]
