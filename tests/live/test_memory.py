"""Per-tablet memory cuts (docs/benchmarks.md, "Memory per tablet"), on a real eventlet server.

A small Engine.IO server runs in a child process (eventlet monkey-patches what it imports, so
never in the test process) with the same HttpProtocol and ping timers `meeting-server serve`
uses; the test talks Engine.IO over a real websocket to it.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time

import pytest
from websockets.sync.client import connect

pytestmark = pytest.mark.integration

SERVER = r"""
import eventlet
eventlet.monkey_patch()
import gc, sys
import engineio, eventlet.wsgi, greenlet
from meeting_server.cli import _small_buffer_protocol
from meeting_server.core.sockets import install_timer_pings

eio = engineio.Server(async_mode="eventlet", ping_interval=0.3, ping_timeout=1.5)
install_timer_pings(eio)
proto = _small_buffer_protocol()

def started_greenlets():
    return sum(1 for o in gc.get_objects() if isinstance(o, greenlet.greenlet) and o and not o.dead)

@eio.on("message")
def message(sid, data):
    if data == "count":
        eio.send(sid, "%d %d %d" % (started_greenlets(), proto.rbufsize, proto.wbufsize))

sock = eventlet.listen(("127.0.0.1", 0))
print(sock.getsockname()[1], flush=True)
eventlet.wsgi.server(sock, engineio.WSGIApp(eio), log_output=False, protocol=proto)
"""


def _server(timer_ping: bool):
    env = {**os.environ, "MEETING_TIMER_PING": "1" if timer_ping else "0"}
    p = subprocess.Popen(
        [sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True, env=env, cwd=os.getcwd()
    )
    try:
        port = int(p.stdout.readline())
    except ValueError:
        _stop(p)
        raise
    return p, port


def _stop(p) -> None:
    if p.poll() is None:
        p.kill()
    p.wait(5)
    p.stdout.close()


@contextlib.contextmanager
def _open(port):
    url = f"ws://127.0.0.1:{port}/engine.io/?EIO=4&transport=websocket"
    with connect(url, open_timeout=5) as ws:
        assert ws.recv(timeout=5).startswith("0{")
        yield ws


def _count(ws) -> list[int]:
    ws.send("4count")
    while True:  # pings may come first
        msg = ws.recv(timeout=5)
        if msg.startswith("4"):
            return [int(x) for x in msg[1:].split()]
        assert msg == "2"
        ws.send("3")


@pytest.mark.parametrize("timer_ping", [True, False])
def test_pings_keep_coming_and_a_silent_client_is_dropped(timer_ping):
    p, port = _server(timer_ping)
    try:
        with _open(port) as ws:
            t0 = time.monotonic()
            for _ in range(3):  # ping, pong, and the next ping is scheduled again
                assert ws.recv(timeout=5) == "2"
                ws.send("3")
            assert time.monotonic() - t0 >= 0.8  # three intervals of 0.3 s, not a burst
        with _open(port) as silent:  # never answers: closed after interval + timeout
            assert silent.recv(timeout=5) == "2"
            deadline = time.monotonic() + 10
            closed = False
            while time.monotonic() < deadline and not closed:
                try:
                    silent.recv(timeout=deadline - time.monotonic())
                except Exception:  # ConnectionClosed (or a timeout, which fails below)
                    closed = True
            assert closed
    finally:
        _stop(p)


def test_timer_pings_hold_one_green_thread_less_per_socket_and_buffers_are_small():
    counts = {}
    for timer_ping in (True, False):
        p, port = _server(timer_ping)
        try:
            with contextlib.ExitStack() as stack:
                socks = [stack.enter_context(_open(port)) for _ in range(5)]
                counts[timer_ping] = _count(socks[0])
        finally:
            _stop(p)
    (with_timer, rbuf, wbuf), (without, _, _) = counts[True], counts[False]
    assert without - with_timer == 5  # one parked ping task per connected socket, gone
    assert rbuf <= 2048 and wbuf <= 4096
