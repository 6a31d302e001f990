"""Memory per connection of a bare Socket.IO server on eventlet (no app), with and without our cuts.

    .venv/bin/python -W ignore tests/bench/bench_memory_bare.py [--n 400] [--small 0|1] [--wsconn 0|1]
        [--tracemalloc]

Starts python-socketio on eventlet in this process (only `install_direct_send`, and with `--small 1`
the two cuts `meeting-server serve` makes: `cli._small_buffer_protocol` and `install_timer_pings`;
`--wsconn 1` adds the third, core/wsconn.py's websockets without parked green threads),
connects `--n` raw websockets from a child process on loopback (each sends the Socket.IO CONNECT and
is then held open), and prints VmRSS growth per connection; with `--tracemalloc`, also the traced
Python allocations per connection and the top lines (tracemalloc's own overhead inflates VmRSS, so
take the RSS figure from a run without it). The child is stopped by pid at the end; every wait is
bounded. Figures: docs/benchmarks.md, "Memory per tablet".
"""

from __future__ import annotations

import eventlet

eventlet.monkey_patch()

import argparse  # noqa: E402
import base64  # noqa: E402
import gc  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def rss_kb() -> int:
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1])
    return 0


def client(port: int, n: int, hold_s: float = 120.0) -> None:
    """N raw websockets (loopback), each sends CONNECT, then all are held open until killed (bounded)."""
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        s.sendall(
            (
                f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\nUser-Agent: bench\r\n\r\n"
            ).encode()
        )
        time.sleep(0.002)
        s.recv(65536)
        msg = b"40"
        s.sendall(bytes([0x81, 0x80 | len(msg)]) + b"\0\0\0\0" + msg)  # masked text frame: CONNECT
        socks.append(s)
    time.sleep(hold_s)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=400)
    p.add_argument("--small", type=int, choices=(0, 1), default=1)
    p.add_argument("--wsconn", type=int, choices=(0, 1), default=0, help="core/wsconn.py's websockets")
    p.add_argument("--tracemalloc", action="store_true")
    p.add_argument("--client", nargs=2, type=int, metavar=("PORT", "N"), help=argparse.SUPPRESS)
    o = p.parse_args()
    if o.client:
        client(*o.client)
        return 0

    import eventlet.wsgi
    import socketio

    from meeting_server.cli import _small_buffer_protocol
    from meeting_server.core import wsconn
    from meeting_server.core.sockets import install_direct_send, install_timer_pings

    sio = socketio.Server(async_mode="eventlet", ping_interval=20, ping_timeout=20)
    install_direct_send(sio.eio)
    if o.small:
        install_timer_pings(sio.eio)
    if o.wsconn:
        assert wsconn.install(sio.eio)

    @sio.on("connect")
    def _connect(sid, environ, auth):
        sio.enter_room(sid, "meeting:1")

    sock = eventlet.listen(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    kw = {"protocol": _small_buffer_protocol()} if o.small else {}
    eventlet.spawn(
        eventlet.wsgi.server, sock, socketio.WSGIApp(sio), log_output=False, max_size=100_000, **kw
    )
    eventlet.sleep(0.5)
    gc.collect()
    if o.tracemalloc:
        tracemalloc.start(25)
    r1, s1 = rss_kb(), (tracemalloc.take_snapshot() if o.tracemalloc else None)
    cl = subprocess.Popen([sys.executable, __file__, "--client", str(port), str(o.n)])
    try:
        deadline = time.monotonic() + 120
        while sum(1 for s in sio.eio.sockets.values() if s.upgraded) < o.n:
            if time.monotonic() > deadline or cl.poll() is not None:
                print(f"only {len(sio.eio.sockets)} of {o.n} connected", file=sys.stderr)
                return 1
            eventlet.sleep(0.2)
        eventlet.sleep(1)
        gc.collect()
        r2 = rss_kb()
        print(
            f"small={o.small} wsconn={o.wsconn} n={o.n} rss/conn {(r2 - r1) / o.n:.1f} KB load {os.getloadavg()}"
        )
        if s1 is not None:
            s2 = tracemalloc.take_snapshot()
            tot = sum(d.size_diff for d in s2.compare_to(s1, "traceback"))
            print(f"tracemalloc/conn {tot / o.n / 1024:.1f} KB (its overhead inflates rss)")
            for d in s2.compare_to(s1, "lineno")[:25]:
                print(f"{d.size_diff / o.n:8.0f} B/conn  {d.count_diff / o.n:5.1f}/conn  {d.traceback[0]}")
    finally:
        cl.kill()
        cl.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
