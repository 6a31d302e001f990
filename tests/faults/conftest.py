"""Fixtures of the fault tests: real `meeting-server serve` processes, killed and started again.

Every process started here is stopped by pid (its process group) in the fixture's teardown.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.live.server import ORG_PASSWORD, ORG_USER, LiveServer


class FaultServer(LiveServer):
    """A LiveServer with a worker, the organizer's token, and ways to hurt it."""

    token: str = ""

    def start(self, timeout: float = 60) -> FaultServer:
        try:
            return super().start(timeout)
        except RuntimeError:  # e.g. the port still held after a SIGKILL: `restart` tries again
            if getattr(self, "_log", None):
                self._log.close()
                self._log = None
            if self.proc is not None and self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(10)
            raise

    def login_org(self) -> str:
        self.token = self.login(ORG_USER, ORG_PASSWORD)
        return self.token

    def db_file(self) -> Path:
        return self.data_dir / "meeting.sqlite"

    def sql(self, statement: str, *args: Any) -> list[tuple]:
        """Run SQL on the (stopped or running) server's SQLite file, as an operator would."""
        con = sqlite3.connect(self.db_file(), timeout=15)
        try:
            rows = con.execute(statement, args).fetchall()
            con.commit()
            return rows
        finally:
            con.close()

    def children(self, pid: int | None = None) -> list[int]:
        pid = pid or self.proc.pid
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
        return [int(x) for x in out.split()]

    def worker_pid(self) -> int:
        """The `meeting-server worker` process that `serve` started (the Huey consumer)."""
        for pid in self.children():
            if b"worker" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
        raise AssertionError("no worker process")

    def wait(self, check: Callable[[], Any], timeout: float, what: str, step: float = 0.1) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = check()
            if got:
                return got
            time.sleep(step)
        raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{self.log()}")

    def document(self, doc_id: int) -> dict:
        return self.ok("GET", f"/api/v1/documents/{doc_id}", None, self.token)


def kill_tree(pid: int) -> None:
    """SIGKILL a process and its children (not its process group: the server survives a worker kill)."""
    pids = [pid]
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    pids += [int(x) for x in out.split()]
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture(scope="module")
def fault_server_once(tmp_path_factory):
    """One prepared server per module (preparing costs seconds); each test gets it running."""
    srv = FaultServer(tmp_path_factory.mktemp("faults") / "fault-data", worker=True)
    try:
        srv.prepare().start()
        srv.login_org()
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def fault_server(fault_server_once):
    srv = fault_server_once
    if srv.proc is None or srv.proc.poll() is not None:
        srv.restart()
    yield srv
