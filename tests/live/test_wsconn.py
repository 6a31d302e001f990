"""core/wsconn.py: Engine.IO websockets read from hub callbacks and written directly, on a real eventlet server.

The server runs in a child process (eventlet monkey-patches what it imports) with the HttpProtocol
`meeting-server serve` uses (or eventlet's own, for the fallback); the tests speak Engine.IO over real
websockets (the `websockets` client, or raw frames where a client library would refuse to send them).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

pytestmark = pytest.mark.integration

SERVER = r"""
import eventlet
eventlet.monkey_patch()
import gc, json, os, sys
import engineio, eventlet.wsgi, greenlet
from meeting_server.cli import _small_buffer_protocol
from meeting_server.core import wsconn
from meeting_server.core.sockets import install_direct_send, install_timer_pings

ping_interval, ping_timeout = map(float, os.environ["T_PING"].split(","))
eio = engineio.Server(async_mode="eventlet", ping_interval=ping_interval, ping_timeout=ping_timeout,
                      max_http_buffer_size=int(os.environ.get("T_MAX", "100000")))
install_direct_send(eio)
install_timer_pings(eio)
installed = wsconn.install(eio)
proto = _small_buffer_protocol() if os.environ.get("T_PROTO") == "small" else eventlet.wsgi.HttpProtocol
gone = []

def started_greenlets():
    return sum(1 for o in gc.get_objects() if isinstance(o, greenlet.greenlet) and o and not o.dead)

@eio.on("disconnect")
def disconnect(sid, reason):
    gone.append([sid, reason])

@eio.on("message")
def message(sid, data):
    if isinstance(data, bytes):
        eio.send(sid, data[::-1])
        return
    cmd, _, arg = data.partition(" ")
    if cmd == "count":
        eio.send(sid, json.dumps({"greenlets": started_greenlets(), "sockets": len(eio.sockets),
                                  "installed": installed,
                                  "hub": sum(1 for s in eio.sockets.values() if getattr(s, "wsconn", None))}))
    elif cmd == "burst":
        n, size = map(int, arg.split())
        for i in range(n):
            eio.send(sid, "%06d:" % i + "x" * size)
    elif cmd == "bin":
        eio.send(sid, bytes(range(256)) * int(arg or 1))
    elif cmd == "kick":
        eio.disconnect(sid)
    elif cmd == "gone":
        eio.send(sid, json.dumps(gone))
    elif cmd == "all":
        for s in list(eio.sockets):
            eio.send(s, "to all " + arg)
    else:
        eio.send(sid, "echo:" + data)

sock = eventlet.listen(("127.0.0.1", 0))
print(sock.getsockname()[1], flush=True)
eventlet.wsgi.server(sock, engineio.WSGIApp(eio), log_output=False, protocol=proto, max_size=10000)
"""


@contextlib.contextmanager
def server(*args, **kwargs):
    with server_proc(*args, **kwargs) as (port, _pid):
        yield port


@contextlib.contextmanager
def server_proc(proto: str = "small", max_size: int = 100_000, wsconn: bool = True, ping: str = "2,5"):
    env = {
        **os.environ,
        "T_PROTO": proto,
        "T_MAX": str(max_size),
        "T_PING": ping,
        "MEETING_WSCONN": "1" if wsconn else "0",
        "PYTHONWARNINGS": "ignore",
    }
    p = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True, env=env)
    try:
        port = int(p.stdout.readline())
        yield port, p.pid
    finally:
        if p.poll() is None:
            p.kill()
        p.wait(5)
        p.stdout.close()


def _url(port: int, sid: str | None = None) -> str:
    u = f"ws://127.0.0.1:{port}/engine.io/?EIO=4&transport=websocket"
    return u + (f"&sid={sid}" if sid else "")


@contextlib.contextmanager
def opened(port: int):
    with connect(_url(port), open_timeout=5, max_size=None) as ws:
        assert ws.recv(timeout=5).startswith("0{")
        yield ws


def recv_msg(ws, timeout: float = 5.0):
    """The next MESSAGE (text without its "4", or bytes), answering pings on the way."""
    deadline = time.monotonic() + timeout
    while True:
        msg = ws.recv(timeout=max(0.01, deadline - time.monotonic()))
        if isinstance(msg, bytes):
            return msg
        if msg == "2":
            ws.send("3")
            continue
        if msg == "6":  # NOOP (after an upgrade from polling)
            continue
        assert msg.startswith("4"), msg
        return msg[1:]


def echo(ws, text: str):
    ws.send("4" + text)
    return recv_msg(ws)


def ask(ws, cmd: str):
    ws.send("4" + cmd)
    return json.loads(recv_msg(ws))


def wait_closed(ws, timeout: float = 8.0) -> list:
    """Read until the server closes the connection; returns what came (pings answered: no)."""
    got = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got.append(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
        except ConnectionClosed:
            return got
        except TimeoutError:
            break
    raise AssertionError(f"still open after {timeout} s, got {got[-5:]}")


def test_installed_and_no_green_thread_per_connection():
    counts = {}
    for wsconn in (True, False):
        with server(wsconn=wsconn) as port, contextlib.ExitStack() as stack:
            first = stack.enter_context(opened(port))
            base = ask(first, "count")
            socks = [stack.enter_context(opened(port)) for _ in range(10)]
            for ws in socks:  # every one answers
                assert echo(ws, "ping") == "echo:ping"
            counts[wsconn] = (base, ask(first, "count"))
    (b1, a1), (b0, a0) = counts[True], counts[False]
    assert b1["installed"] and not b0["installed"]
    assert a1["hub"] == 11 and a0["hub"] == 0
    assert a1["sockets"] == a0["sockets"] == 11
    # python-engineio: a reader and a writer per socket; here none (a spare for a running receiver)
    assert a0["greenlets"] - b0["greenlets"] == 20
    assert a1["greenlets"] - b1["greenlets"] <= 1


def test_messages_both_ways_in_order():
    with server() as port, opened(port) as ws:
        for i in range(300):
            ws.send(f"4m{i}")
        assert [recv_msg(ws) for _ in range(300)] == [f"echo:m{i}" for i in range(300)]
        # more than the kernel takes at once: the rest waits in the connection's buffer, in order
        ws.send("4burst 200 20000")
        got = [recv_msg(ws) for _ in range(200)]
        assert [int(m.split(":")[0]) for m in got] == list(range(200))
        assert all(len(m) == 7 + 20000 for m in got)
        assert echo(ws, "after") == "echo:after"


def test_binary_messages_both_ways():
    with server() as port, opened(port) as ws:
        data = os.urandom(5000)
        ws.send(data)
        assert recv_msg(ws) == data[::-1]
        ws.send("4bin 3")
        assert recv_msg(ws) == bytes(range(256)) * 3


def test_pings_keep_coming_and_a_silent_client_is_dropped():
    with server(ping="0.3,1.0") as port:
        with opened(port) as ws:
            for _ in range(4):
                assert ws.recv(timeout=5) == "2"
                ws.send("3")
            assert echo(ws, "still") == "echo:still"
        with opened(port) as silent:
            assert silent.recv(timeout=5) == "2"  # never answered
            wait_closed(silent)
        with opened(port) as watcher:
            gone = ask(watcher, "gone")
            assert any(reason == "ping timeout" for _sid, reason in gone)


def test_client_close_and_server_close():
    with server() as port:
        with opened(port) as watcher:
            with opened(port) as ws:
                ws.send("4hi")
                assert recv_msg(ws) == "echo:hi"
            # the client's close frame: disconnect reason "transport close"
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                gone = ask(watcher, "gone")
                if gone:
                    break
                time.sleep(0.05)
            assert [r for _, r in gone] == ["transport close"]
            with opened(port) as ws:  # the server disconnects: an Engine.IO CLOSE, then a close frame
                ws.send("4kick")
                got = wait_closed(ws)
                assert "1" in got
                assert ws.close_code == 1000
            assert [r for _, r in ask(watcher, "gone")][-1] == "server disconnect"
            # a connection dropped without a close frame (TCP reset)
            with opened(port) as ws:
                ws.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
                ws.socket.close()
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and len(ask(watcher, "gone")) < 3:
                time.sleep(0.05)
            assert [r for _, r in ask(watcher, "gone")][-1] == "transport close"
            assert ask(watcher, "count")["sockets"] == 1


def _raw_ws(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(
        (
            f"GET /engine.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(4096)
    assert buf.startswith(b"HTTP/1.1 101"), buf[:100]
    return s


def _masked(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    mask = os.urandom(4)
    n = len(payload)
    head = bytes((0x80 * fin | opcode,))
    if n < 126:
        head += bytes((0x80 | n,))
    elif n < 65536:
        head += bytes((0x80 | 126,)) + n.to_bytes(2, "big")
    else:
        head += bytes((0x80 | 127,)) + n.to_bytes(8, "big")
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def _close_code(s: socket.socket) -> int | None:
    """Read until EOF; the status of the close frame the server sent (None if none)."""
    data = b""
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        data += chunk
    i = data.find(b"\x88\x02")
    return int.from_bytes(data[i + 2 : i + 4], "big") if i >= 0 else None


@pytest.mark.parametrize(
    "frames, code",
    [
        ([_masked(1, b"4" + b"x" * 3000)], 1009),  # over max_http_buffer_size (2,000 here)
        ([_masked(1, b"4" + b"x" * 1500, fin=False), _masked(0, b"y" * 1500)], 1009),  # in fragments
        ([bytes((0x81, 2)) + b"4x"], 1002),  # not masked
        ([_masked(1, b"4\xff\xfe")], 1007),  # not UTF-8
        ([_masked(3, b"4x")], 1002),  # reserved opcode
        ([_masked(0, b"4x")], 1002),  # a continuation of nothing
    ],
)
def test_bad_frames_close_the_connection_and_others_go_on(frames, code):
    with server(max_size=2000) as port, opened(port) as other:
        s = _raw_ws(port)
        try:
            for f in frames:
                s.sendall(f)
            assert _close_code(s) == code
        finally:
            s.close()
        assert echo(other, "ok") == "echo:ok"
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and ask(other, "count")["sockets"] != 1:
            time.sleep(0.05)
        assert ask(other, "count")["sockets"] == 1


def test_fragments_ping_frames_and_a_message_right_behind_the_handshake():
    with server() as port:
        s = _raw_ws(port)
        try:
            s.sendall(
                _masked(1, b"4fr", fin=False)
                + _masked(9, b"hello")  # a ping between fragments is answered
                + _masked(0, b"ag", fin=False)
                + _masked(0, b"ment")
            )
            data = b""
            deadline = time.monotonic() + 5
            while b"echo:fragment" not in data and time.monotonic() < deadline:
                data += s.recv(65536)
            assert b"\x8a\x05hello" in data and b"echo:fragment" in data
        finally:
            s.close()


def test_upgrade_from_polling():
    with server() as port:
        base = f"http://127.0.0.1:{port}/engine.io/?EIO=4&transport=polling"
        with urllib.request.urlopen(base, timeout=5) as r:
            opened_pkt = r.read().decode()
        assert opened_pkt.startswith("0{")
        sid = json.loads(opened_pkt[1:])["sid"]
        req = urllib.request.Request(f"{base}&sid={sid}", data=b"4before", method="POST")
        urllib.request.urlopen(req, timeout=5).read()
        with urllib.request.urlopen(f"{base}&sid={sid}", timeout=5) as r:
            assert r.read().decode() == "4echo:before"
        with connect(_url(port, sid), open_timeout=5) as ws:
            ws.send("2probe")
            assert ws.recv(timeout=5) == "3probe"
            with urllib.request.urlopen(f"{base}&sid={sid}", timeout=5) as r:
                assert r.read().decode() == "6"  # the poll ends with a NOOP
            ws.send("5")
            ws.send("4after")
            assert recv_msg(ws) == "echo:after"
            assert ask(ws, "count")["hub"] == 1
        with connect(_url(port, ask_new_sid(port)), open_timeout=5) as ws:  # no probe: refused
            ws.send("4nope")
            wait_closed(ws)


def ask_new_sid(port: int) -> str:
    with urllib.request.urlopen(
        f"http://127.0.0.1:{port}/engine.io/?EIO=4&transport=polling", timeout=5
    ) as r:
        return json.loads(r.read().decode()[1:])["sid"]


def test_many_clients_get_a_broadcast():
    n = 300
    with server(ping="20,20") as port, contextlib.ExitStack() as stack:
        socks = [stack.enter_context(opened(port)) for _ in range(n)]
        info = ask(socks[0], "count")
        assert info["sockets"] == info["hub"] == n
        socks[0].send("4all flip")
        for ws in socks:
            assert recv_msg(ws) == "to all flip"


def test_another_wsgi_protocol_still_works():
    """eventlet's own HttpProtocol cannot hand the socket over: its green thread holds it, still no writer."""
    with server(proto="eventlet") as port, contextlib.ExitStack() as stack:
        first = stack.enter_context(opened(port))
        base = ask(first, "count")
        socks = [stack.enter_context(opened(port)) for _ in range(5)]
        for ws in socks:
            ws.send("4x")
            assert recv_msg(ws) == "echo:x"
        after = ask(first, "count")
        assert after["hub"] == 6
        assert after["greenlets"] - base["greenlets"] == 5  # one per connection, not two
        socks[0].close()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and ask(first, "count")["sockets"] != 5:
            time.sleep(0.05)
        assert ask(first, "count")["sockets"] == 5


def test_no_socket_left_open():
    """Websockets ended every way, and plain HTTP requests: the server's open files come back to where they were."""
    with server_proc() as (port, pid):

        def fds() -> int:
            return len(os.listdir(f"/proc/{pid}/fd"))

        with opened(port) as ws:  # warm up (the hub's epoll fd, imports)
            assert echo(ws, "w") == "echo:w"
        time.sleep(0.2)
        before = fds()
        for _ in range(5):
            with opened(port) as ws:  # client close frame
                assert echo(ws, "a") == "echo:a"
            with opened(port) as ws:  # server close
                ws.send("4kick")
                wait_closed(ws)
            s = _raw_ws(port)  # bad frame
            s.sendall(bytes((0x81, 2)) + b"4x")
            assert _close_code(s) == 1002
            s.close()
            s = _raw_ws(port)  # dropped without a close frame
            s.close()
            with urllib.request.urlopen(  # plain HTTP (polling open)
                f"http://127.0.0.1:{port}/engine.io/?EIO=4&transport=polling", timeout=5
            ) as r:
                assert r.read().startswith(b"0{")
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline and fds() > before:
            time.sleep(0.1)
        assert fds() == before


def test_a_client_that_stops_reading_is_dropped_not_buffered_without_limit():
    """wsconn.OUTBOX_MAX: more than 8 MiB waiting for a client that reads nothing drops that client."""
    with server() as port, opened(port) as watcher:
        s = _raw_ws(port)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the kernel holds little for it
            s.sendall(_masked(1, b"4burst 300 50000"))  # 15 MB to a client that never reads again
            deadline = time.monotonic() + 15
            gone = []
            while time.monotonic() < deadline and not gone:
                gone = ask(watcher, "gone")
                time.sleep(0.05)
            assert [r for _, r in gone] == ["transport close"], gone
            assert echo(watcher, "still here") == "echo:still here"  # the others go on
            assert ask(watcher, "count")["sockets"] == 1
        finally:
            s.close()
