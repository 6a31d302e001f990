"""Defects found by the fuzzing in packages owned by other developers: each fails today (strict xfail).

When one is fixed, its test passes, pytest reports XPASS(strict) as a failure: remove the marker (and the
entry in test_socket_fuzz.KNOWN) then.
"""

from __future__ import annotations

import logging

import pytest


def test_vote_with_two_arguments_is_invalid(room):
    t = room.tablet("attendee")
    ack = t.emit("vote", {"poll_id": 1, "choices": [0]}, {"again": True}, callback=True)
    assert ack["ok"] is False and ack["error"]["code"] == "invalid", ack


def test_out_of_range_poll_id_does_not_fail_the_batch(room, caplog):
    t = room.tablet("attendee")
    with caplog.at_level(logging.ERROR, logger="meeting_server.voting"):
        ack = t.emit("vote", {"poll_id": 2**64, "choices": [0]}, callback=True)
    assert ack["ok"] is False and ack["error"]["code"] in ("not_found", "out_of_range", "invalid"), ack
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records]
