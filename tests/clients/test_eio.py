"""clients.eio against a real python-socketio server, and a short loadgen run against the Node reference.

The python-socketio server runs in a subprocess (threading mode, Werkzeug with
simple-websocket) on a free loopback port, with a short pingInterval so ping/pong
is exercised within a second. Everything started here is stopped by pid.
"""

from __future__ import annotations

import asyncio
import json
import os
import selectors
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clients.eio import ConnectError, Disconnected, SioClient, require_loopback
from clients.loadgen import Flip, _map_seqs, analyse_flips, pct

ROOT = Path(__file__).resolve().parents[2]
NODE_REF = ROOT / "clients" / "node_ref"

SERVER = r"""
import sys
import socketio
from werkzeug.serving import make_server

sio = socketio.Server(async_mode="threading", ping_interval=0.3, ping_timeout=1)

@sio.event
def connect(sid, environ, auth):
    if not isinstance(auth, dict) or auth.get("token") != "good":
        raise socketio.exceptions.ConnectionRefusedError("unauthorized")
    sio.enter_room(sid, "meeting")
    sio.emit("state", {"sid": sid}, to=sid)

@sio.on("echo")
def echo(sid, data):
    return {"ok": True, "echo": data}

@sio.on("two")
def two(sid, data):
    return 1, 2

@sio.on("present")
def present(sid, data):
    sio.emit("page", data, to="meeting")
    sio.emit("attendance", {"present": 1}, to="meeting")
    return {"ok": True}

@sio.on("kick")
def kick(sid, data):
    sio.disconnect(sid)

srv = make_server("127.0.0.1", 0, socketio.WSGIApp(sio), threaded=True)
print(srv.server_port, flush=True)
srv.serve_forever()
"""


def _first_line(proc: subprocess.Popen, timeout: float) -> str:
    """Read the first stdout line of ``proc`` within ``timeout`` seconds."""
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            raise TimeoutError(f"no output from pid {proc.pid} in {timeout} s")
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"pid {proc.pid} exited with {proc.wait(5)} before printing its address")
    return line.decode().strip()


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()


@pytest.fixture(scope="module")
def sio_url():
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT
    )
    try:
        port = int(_first_line(proc, 20))
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(proc)


def run(coro, timeout: float = 15.0):
    async def bounded():
        async with asyncio.timeout(timeout):
            return await coro

    return asyncio.run(bounded())


# -- pure helpers ---------------------------------------------------------------------


def test_require_loopback():
    for ok in ("http://127.0.0.1:1", "http://127.8.9.10:80/x", "http://localhost:5000", "http://[::1]:8000"):
        require_loopback(ok)
    for bad in ("http://10.0.0.1:80", "http://192.168.1.2", "http://example.com", "http://[2001:db8::1]:80"):
        with pytest.raises(ValueError, match="non-loopback"):
            require_loopback(bad)


def test_connect_refuses_remote_hosts_before_any_traffic():
    with pytest.raises(ValueError, match="non-loopback"):
        run(SioClient().connect("http://192.0.2.1:80", {"token": "x"}))


def test_analyse_flips_counts_missed_out_of_order_and_duplicates():
    flips = [Flip(k, k + 1, t_send=float(k)) for k in range(3)]
    seq_map = _map_seqs(flips, [(10, 1, 0.1), (11, 2, 1.1), (12, 3, 2.1)])
    assert {s: f.k for s, f in seq_map.items()} == {10: 0, 11: 1, 12: 2}
    tablets = [
        [(10, 0.01, 0.02), (11, 1.02, 1.03), (12, 2.03, 2.04)],  # all, in order
        [(12, 2.05, 2.06), (10, 2.07, 2.08), (10, 2.08, 2.09)],  # 10 late (out of order) and twice; 11 missed
    ]
    r = analyse_flips(flips, seq_map, tablets)
    assert (r["expected"], r["received"], r["missed"]) == (6, 5, 1)
    assert (r["out_of_order"], r["duplicates"], r["unknown"]) == (1, 1, 0)
    assert r["max_ms"] == pytest.approx(2070.0)
    assert pct([1.0, 2.0, 3.0, 4.0], 50) == 2.0 and pct([], 99) is None


def test_seq_mapping_prefers_the_ack():
    flips = [Flip(0, 1, t_send=0.0, seq=7), Flip(1, 1, t_send=1.0, seq=8)]
    # the presenter saw them in the other order: the ack's seq wins
    assert {s: f.k for s, f in _map_seqs(flips, [(8, 1, 0.5), (7, 1, 1.5)]).items()} == {7: 0, 8: 1}


# -- against python-socketio ----------------------------------------------------------


@pytest.mark.integration
def test_connect_with_auth_gets_state_before_anything_else(sio_url):
    async def main():
        seen = []
        c = SioClient(lambda c, name, data, t: seen.append((name, data, t, c.rx_t)))
        await c.connect(sio_url, {"token": "good"}, timeout=5)
        try:
            assert c.connected and c.sid and c.eio_sid
            deadline = time.monotonic() + 5
            while not seen and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            assert seen, "no event within 5 s of the CONNECT ack"
            name, data, t, rx = seen[0]
            assert name == "state" and data == {"sid": c.sid}
            assert 0 < t <= time.perf_counter()
            # the kernel receive stamp, on the same clock, comes (just) before the parse
            assert t - 1.0 < rx <= t + 1e-3
        finally:
            await c.disconnect()
        assert not c.connected

    run(main())


@pytest.mark.integration
def test_receive_stamps_survive_a_stale_clock_calibration(sio_url, monkeypatch):
    """The flake of the test above: the wall clock stepped after `calibrate_clock()` ran at import,
    and receive stamps converted with the stale offset came out seconds off. Simulate a 5 s step."""
    import clients.eio as eio

    monkeypatch.setattr(eio, "_real_minus_perf_ns", eio._real_minus_perf_ns + 5_000_000_000)

    async def main():
        seen = []
        c = SioClient(lambda c, name, data, t: seen.append((t, c.rx_t)))
        await c.connect(sio_url, {"token": "good"}, timeout=5)
        try:
            deadline = time.monotonic() + 5
            while not seen and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            assert seen, "no event within 5 s of the CONNECT ack"
            t, rx = seen[0]
            assert t - 1.0 < rx <= t
        finally:
            await c.disconnect()

    run(main())


@pytest.mark.integration
def test_refused_auth_raises_connect_error(sio_url):
    async def main():
        for auth in ({"token": "bad"}, None):
            c = SioClient()
            with pytest.raises(ConnectError) as info:
                await c.connect(sio_url, auth, timeout=5)
            assert "unauthorized" in str(info.value)
            assert not c.connected

    run(main())


@pytest.mark.integration
def test_emit_with_ack_matches_each_ack_to_its_call(sio_url):
    async def main():
        c = SioClient()
        await c.connect(sio_url, {"token": "good"}, timeout=5)
        try:
            acks = await asyncio.gather(*(c.call("echo", {"n": i}, timeout=5) for i in range(20)))
            assert acks == [{"ok": True, "echo": {"n": i}} for i in range(20)]
            ack, t_sent, t_ack = await c.call_timed("echo", "中文 ✓", timeout=5)
            assert ack == {"ok": True, "echo": "中文 ✓"} and t_ack >= t_sent
            assert await c.call("two", {}, timeout=5) == [1, 2]
            big = "x" * 70_000  # a 64-bit length frame each way
            assert (await c.call("echo", big, timeout=5))["echo"] == big
            mid = "y" * 300  # a 16-bit length frame
            assert (await c.call("echo", mid, timeout=5))["echo"] == mid
        finally:
            await c.disconnect()

    run(main())


@pytest.mark.integration
def test_broadcast_reaches_every_client_and_ignored_events_are_only_counted(sio_url):
    async def main():
        got: list[tuple[int, str, object]] = []
        clients = [
            SioClient(lambda c, name, data, t: got.append((c.tag, name, data)), ignore={"attendance"}, tag=i)
            for i in range(3)
        ]
        for c in clients:
            await c.connect(sio_url, {"token": "good"}, timeout=5)
        try:
            assert await clients[0].call("present", {"document_id": 1, "page": 2, "seq": 5}, timeout=5) == {
                "ok": True
            }
            deadline = time.monotonic() + 5
            while sum(1 for g in got if g[1] == "page") < 3 and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            pages = sorted(g[0] for g in got if g[1] == "page")
            assert pages == [0, 1, 2]
            assert all(g[2] == {"document_id": 1, "page": 2, "seq": 5} for g in got if g[1] == "page")
            while sum(c.ignored for c in clients) < 3 and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            assert [c.ignored for c in clients] == [1, 1, 1]
            assert not any(g[1] == "attendance" for g in got)
        finally:
            await asyncio.gather(*(c.disconnect() for c in clients))

    run(main())


@pytest.mark.integration
def test_pings_are_answered_and_the_connection_survives(sio_url):
    async def main():
        c = SioClient()
        await c.connect(sio_url, {"token": "good"}, timeout=5)
        try:
            await asyncio.sleep(1.6)  # > pingInterval + pingTimeout: an unanswered ping would have dropped us
            assert c.connected and c.pings >= 3
            assert (await c.call("echo", 1, timeout=5))["echo"] == 1
        finally:
            await c.disconnect()

    run(main())


@pytest.mark.integration
def test_server_disconnect_closes_the_client_and_fails_pending_calls(sio_url):
    async def main():
        c = SioClient()
        await c.connect(sio_url, {"token": "good"}, timeout=5)
        await c.emit("kick", {})
        await asyncio.wait_for(c.wait_closed(), 5)
        assert not c.connected
        with pytest.raises(Disconnected):
            await c.call("echo", 1, timeout=1)

    run(main())


# -- loadgen against the Node reference -------------------------------------------------


def _need_node() -> str:
    node = shutil.which("node")
    if node is None:
        msg = "node is not on PATH: the Node reference server (clients/node_ref) cannot run"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {msg}")
        pytest.skip(msg)
    if not (NODE_REF / "node_modules" / "socket.io").is_dir():
        npm = shutil.which("npm")
        result = None
        if npm:
            result = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_REF, capture_output=True, timeout=300
            )
        if result is None or result.returncode != 0:
            msg = "clients/node_ref has no node_modules and `npm ci` failed"
            if os.environ.get("CI") == "true":
                pytest.fail(f"CI=true but {msg}: {result.stderr[-2000:] if result else 'no npm'}")
            pytest.skip(msg)
    return node


@pytest.mark.integration
def test_loadgen_short_run_against_node_reference():
    node = _need_node()
    server = subprocess.Popen(
        [node, "server.js", "--host", "127.0.0.1", "--port", "0"],
        cwd=NODE_REF,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = json.loads(_first_line(server, 20))["listening"]
        cmd = [sys.executable, "-m", "clients.loadgen", "--url", url, "--target", "node", "--tablets", "20"]
        cmd += ["--flips", "5", "--interval", "0.05", "--vote", "--server-pid", str(server.pid), "--json"]
        cmd += ["--timeout", "60", "--quiet", "0.5"]
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, timeout=90)
        assert done.returncode == 0, done.stderr.decode()[-3000:]
        r = json.loads(done.stdout.decode().strip().splitlines()[-1])
    finally:
        _stop(server)
    assert r["connect"]["connected"] == 20 and r["connect"]["state"] == 20
    assert r["checkin"]["ok"] == 20 and r["checkin"]["attendance_events"] == 20 * 20
    f = r["flips"]
    assert (f["acked"], f["expected"], f["missed"], f["out_of_order"], f["duplicates"]) == (5, 100, 0, 0, 0)
    assert f["p50_ms"] is not None and f["max_ms"] >= f["p99_ms"] >= f["p50_ms"]
    v = r["vote"]
    assert (v["acks"], v["receipts"], v["unique_receipts"], v["errors"]) == (20, 20, 20, {})
    assert v["second_vote"] == {"already_voted": 10} and v["resend_same_receipt"] == "10/10"
    assert v["server_voted"] == 20 and v["server_tally"] == v["expected_tally"] == [7, 7, 6]
    assert v["count_exact"] is True
    assert r["server_rss_kb"]["before"] > 0 and r["server_rss_kb"]["connected"] > 0
