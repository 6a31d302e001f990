"""`serve` supervises its embedded worker: a dead worker is started again, with a growing back-off.

These drive `cli.WorkerSupervisor` with real short-lived processes; the whole-server case (the worker
SIGKILLed mid-render, the render taken over) is tests/faults/test_kill.py.
"""

from __future__ import annotations

import sys
import time

import pytest

from meeting_server import cli

DIES = [sys.executable, "-c", "import sys; sys.exit(3)"]
RUNS = [sys.executable, "-c", "import time; time.sleep(60)"]


@pytest.fixture
def supervisors():
    made: list[cli.WorkerSupervisor] = []

    def make(argv):
        s = cli.WorkerSupervisor(argv)
        made.append(s)
        return s

    try:
        yield make
    finally:
        for s in made:
            s.stop()


def _dead(s: cli.WorkerSupervisor) -> None:
    s.proc.wait(30)


def test_back_off_grows_while_the_worker_keeps_dying_and_resets_once_it_ran(supervisors):
    s = supervisors(DIES)
    delays = []
    for _ in range(len(cli.WORKER_BACKOFF) + 1):
        _dead(s)
        delays.append(s.check(s.started_at + 0.1))  # died 0.1 s after it started
        s.spawn()
    assert delays == [*cli.WORKER_BACKOFF, cli.WORKER_BACKOFF[-1]]
    _dead(s)
    assert s.check(s.started_at + cli.WORKER_STABLE) == cli.WORKER_BACKOFF[0]  # it had run long enough


def test_a_running_worker_is_left_alone_and_stopped_with_the_server(supervisors):
    s = supervisors(RUNS)
    assert s.check(time.monotonic()) is None
    proc = s.proc
    s.stop()
    assert proc.poll() is not None
    assert s.check(time.monotonic()) is None  # stopping: never started again


def test_watch_starts_a_new_worker_after_a_death(supervisors):
    s = supervisors(DIES)
    first = s.proc
    asked = []

    def sleep(seconds):
        asked.append(seconds)
        time.sleep(min(seconds, 0.05))

    deadline = time.monotonic() + 20
    while s.restarts < 2 and time.monotonic() < deadline:
        s.watch(sleep, rounds=1)
    assert s.restarts >= 2 and s.proc is not first
    assert cli.WORKER_BACKOFF[1] in asked  # the second death in a row waited longer than the first
