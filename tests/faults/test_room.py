"""Faults in the live room, against a real `meeting-server serve` and real Socket.IO tablets (clients/eio.py).

* SIGKILL while a vote is under way: every acknowledged ballot survives, the others can be sent again,
  nobody votes twice, the tally counts each ballot once.
* 1,000 tablets lose the access point at once (every TCP connection reset) while the presenter moves on,
  then reconnect at once: the server stays up and every tablet is back in step (the `state` it gets on
  connect shows the presenter's latest page), then follows the next page live.

Loopback only; every process is stopped by pid; every loop is bounded.
"""

from __future__ import annotations

import asyncio
import os
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import uuid

import pytest

from clients.eio import SioClient
from tests.conftest import make_pdf
from tests.live.server import ORG_PASSWORD, ORG_USER, LiveServer

pytestmark = pytest.mark.integration

QUIET = frozenset(
    {
        "attendance",
        "seat.checkin",
        "poll.progress",
        "poll",
        "seat.joined",
        "seat.status",
        "meeting",
        "speakers",
        "documents.changed",
        "document",
    }
)


def _csv(n: int, role: str = "代表") -> bytes:
    return "\n".join(["姓名,座位,角色"] + [f"代表{i:04d},{i:04d},{role}" for i in range(1, n + 1)]).encode()


def _room(srv: LiveServer, n: int, title: str) -> tuple[str, int, list[str]]:
    from clients import api

    token = srv.login(ORG_USER, ORG_PASSWORD)
    mid = srv.ok("POST", "/api/v1/meetings", {"title": title}, token, 201)["id"]
    status, body = srv.upload(f"/api/v1/meetings/{mid}/attendees/import", "list.csv", _csv(n), token)
    assert status == 201 and body["imported"] == n, body
    srv.ok("POST", f"/api/v1/meetings/{mid}/start", None, token)
    joined = api.join_many(srv.url, [a["join_token"] for a in body["attendees"]], threads=8)
    return token, mid, [j["session_token"] for j in joined]


async def _connect(
    url: str, auths: list[dict], on_event=None, concurrency: int = 1000, retry_until: float = 0
):
    """Connect every client (`concurrency` at a time); with `retry_until`, retry failures until then."""
    sem = asyncio.Semaphore(concurrency)
    clients = [SioClient(on_event or (lambda *a: None), ignore=QUIET, tag=i) for i in range(len(auths))]

    async def one(i: int):
        async with sem:
            while True:
                # A tablet waits for its handshake as long as it may (until `retry_until`): giving up
                # after a fixed 30 s and starting over, as this did, throws away the server's work on
                # the abandoned handshake and, on a loaded machine, made the storm feed itself.
                wait = max(30.0, retry_until - time.monotonic())
                try:
                    await clients[i].connect(url, auth=auths[i], timeout=wait)
                    return
                except (OSError, TimeoutError, ConnectionError):
                    if time.monotonic() > retry_until:
                        raise
                    clients[i] = SioClient(on_event or (lambda *a: None), ignore=QUIET, tag=i)
                    await asyncio.sleep(0.2 + (i % 10) * 0.05)  # a tablet's reconnect backoff

    await asyncio.gather(*(one(i) for i in range(len(auths))))
    return clients


async def _close_all(clients) -> None:
    await asyncio.gather(*(c.disconnect(timeout=1) for c in clients), return_exceptions=True)


# -- SIGKILL during a vote -------------------------------------------------------------------------

N_VOTERS = 60


def test_sigkill_during_a_vote(tmp_path):
    srv = LiveServer(tmp_path / "vote-kill")
    try:
        srv.prepare().start()
        token, mid, sessions = _room(srv, N_VOTERS, "表决中断电 Vote under SIGKILL")
        poll = srv.ok(
            "POST",
            f"/api/v1/meetings/{mid}/polls",
            {"title": "无记名表决", "kind": "motion", "secret": True},
            token,
            201,
        )["id"]

        async def checkin():
            cs = await _connect(srv.url, [{"token": t} for t in sessions], concurrency=60)
            acks = await asyncio.gather(*(c.call("checkin", {}, timeout=30) for c in cs))
            assert all(a["ok"] for a in acks), acks
            await _close_all(cs)

        asyncio.run(checkin())
        srv.ok("POST", f"/api/v1/polls/{poll}/open", {}, token)
        ballots = [str(uuid.uuid4()) for _ in range(N_VOTERS)]
        body = [{"poll_id": poll, "choices": [i % 3], "ballot_id": ballots[i]} for i in range(N_VOTERS)]

        async def burst():
            cs = await _connect(srv.url, [{"token": t} for t in sessions], concurrency=60)
            acked: dict[int, str] = {}

            async def vote(i):
                await asyncio.sleep(
                    i * 0.01
                )  # pressed over 0.6 s: some ballots are still to come at the kill
                a = await cs[i].call("vote", body[i], timeout=30)
                assert a["ok"], a
                acked[i] = a["receipt"]

            tasks = [asyncio.ensure_future(vote(i)) for i in range(N_VOTERS)]
            deadline = time.monotonic() + 60
            while len(acked) < N_VOTERS // 3 and time.monotonic() < deadline:
                await asyncio.sleep(0.001)
            srv.kill()  # SIGKILL with votes in flight: some acked, some sent and not answered, some queued
            await asyncio.gather(*tasks, return_exceptions=True)
            await _close_all(cs)
            return acked

        acked = asyncio.run(burst())
        assert N_VOTERS // 3 <= len(acked) < N_VOTERS, len(acked)

        srv.restart()
        after = srv.ok("GET", f"/api/v1/polls/{poll}", None, token)
        assert after["voted"] >= len(acked)  # every acknowledged ballot survived

        async def resend():
            cs = await _connect(srv.url, [{"token": t} for t in sessions], concurrency=60)
            acks = await asyncio.gather(*(c.call("vote", body[i], timeout=30) for i, c in enumerate(cs)))
            await _close_all(cs)
            return acks

        acks = asyncio.run(resend())  # every tablet sends its ballot again, same ballot_id
        assert all(a["ok"] for a in acks), [a for a in acks if not a["ok"]][:5]
        for i, receipt in acked.items():
            assert acks[i]["receipt"] == receipt  # the same ballot, not a second one
        closed = srv.ok("POST", f"/api/v1/polls/{poll}/close", {}, token)
        assert closed["voted"] == N_VOTERS
        assert closed["tally"] == [len(range(k, N_VOTERS, 3)) for k in range(3)]
        listed = srv.ok("GET", f"/api/v1/polls/{poll}/results.json", None, token)["ballots"]
        assert sorted(b["receipt"] for b in listed) == sorted(a["receipt"] for a in acks)
        assert srv.ok("GET", f"/api/v1/meetings/{mid}/audit/verify", None, token)["ok"] is True
        print(
            f"\nSIGKILL after {len(acked)}/{N_VOTERS} acks; {after['voted']} ballots on disk after the restart; "
            f"all {N_VOTERS} counted once after resending"
        )
    except BaseException:
        print(srv.log())
        raise
    finally:
        srv.stop()


# -- 1,000 tablets reconnect at once ---------------------------------------------------------------

N_TABLETS = int(os.environ.get("MEETING_FAULT_TABLETS", "1000"))
#: The promise; checked as a hard limit only with MEETING_STRICT_TIMING=1 (timing belongs in benchmarks:
#: on a loaded 2-core CI machine the test asserts the tablets are back in step within BOUND_S).
TARGET_S = 10.0
BOUND_S = 120.0


def _raise_fd_limit() -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, 4 * N_TABLETS + 256))
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def test_1000_tablets_reconnect_at_once(tmp_path):
    _raise_fd_limit()
    srv = LiveServer(tmp_path / "reconnect")
    try:
        t = time.perf_counter()
        srv.prepare().start()
        token, mid, sessions = _room(srv, N_TABLETS, "断网重连 Access point failure")
        status, doc = srv.upload(f"/api/v1/meetings/{mid}/documents", "deck.pdf", make_pdf(6), token)
        assert status == 202, doc
        print(
            f"\nroom of {N_TABLETS} seats ready in {time.perf_counter() - t:.1f} s (load {os.getloadavg()})"
        )
        asyncio.run(_storm(srv, token, mid, doc["id"], sessions))
    except BaseException:
        print(srv.log())
        raise
    finally:
        srv.stop()


async def _storm(srv, token: str, mid: int, doc_id: int, sessions: list[str]) -> None:
    seen = [0] * len(sessions)  # the newest `seq` each tablet knows (from `state` or `page`)
    back = [0.0] * len(sessions)  # when it knew the target seq
    target = [None]

    def on_event(c, name, data, t):
        seq = None
        if name == "state":
            seq = (data.get("current") or {}).get("seq")
        elif name == "page":
            seq = data.get("seq")
        if seq is not None and seq > seen[c.tag]:
            seen[c.tag] = seq
            if target[0] is not None and seq >= target[0] and not back[c.tag]:
                back[c.tag] = time.perf_counter()

    console = SioClient(lambda *a: None, ignore=QUIET)
    await console.connect(srv.url, auth={"token": token, "meeting_id": mid}, timeout=30)

    async def present(page: int) -> int:
        a = await console.call("present", {"document_id": doc_id, "page": page}, timeout=30)
        assert a["ok"], a
        return a["seq"]

    t = time.perf_counter()
    tablets = await _connect(
        srv.url,
        [{"token": t} for t in sessions],
        on_event,
        concurrency=100,
        retry_until=time.monotonic() + 180,
    )
    first = time.perf_counter() - t
    s1 = await present(2)
    await _until(lambda: min(seen) >= s1, 60, "every tablet to follow page 2")

    # The access point fails: every connection is reset at once, from the tablets' side.
    for c in tablets:
        if c._sock is not None:
            c._sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c._abort()
    await present(3)
    target[0] = await present(4)  # the presenter moved on while the room was offline

    prof = _profile(srv)  # MEETING_PROFILE_STORM=<file>: py-spy on the server during the storm
    try:
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        srv_cpu0 = _proc_cpu(srv.proc.pid)
        t0 = time.perf_counter()
        again = await _connect(
            srv.url,
            [{"token": t} for t in sessions],
            on_event,
            concurrency=len(sessions),
            retry_until=time.monotonic() + BOUND_S,
        )
        await _until(lambda: all(back), BOUND_S, "every tablet to be back in step")
        worst = max(back) - t0
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        srv_cpu = _proc_cpu(srv.proc.pid) - srv_cpu0
    finally:
        _stop_profile(prof)
    status, _, _ = srv.request("GET", "/healthz")
    assert status == 200
    s5 = await present(5)  # and they follow live again
    await _until(lambda: min(seen) >= s5, 30, "every tablet to follow page 5")
    print(
        f"\n{len(sessions)} tablets reset at once: all back in step {worst:.2f} s after they started to "
        f"reconnect (median {sorted(b - t0 for b in back)[len(back) // 2]:.2f} s); the first connection of "
        f"all took {first:.1f} s; CPU during the storm: server {srv_cpu:.1f} s, clients "
        f"{cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime:.1f} s (load {os.getloadavg()})"
    )
    if os.environ.get("MEETING_STRICT_TIMING") == "1":
        assert worst <= TARGET_S, worst
    await _close_all([console, *again])


def _proc_cpu(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _profile(srv):
    """With MEETING_PROFILE_STORM=<out file>: `py-spy record --format raw` on the server, stopped by pid."""
    out = os.environ.get("MEETING_PROFILE_STORM")
    if not out:
        return None
    exe = shutil.which("py-spy") or os.path.join(os.path.dirname(sys.executable), "py-spy")
    proc = subprocess.Popen(
        [
            exe,
            "record",
            "--format",
            "raw",
            "--nonblocking",
            "--rate",
            "100",
            "-o",
            out,
            "-p",
            str(srv.proc.pid),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.5)  # attached before the storm starts
    return proc


def _stop_profile(proc) -> None:
    if proc is None:
        return
    proc.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


async def _until(pred, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)
