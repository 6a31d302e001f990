"""Engine.IO websockets on eventlet without a parked green thread per connection.

python-engineio (4.15.1, `Socket._websocket_handler`) keeps two green threads per websocket for as
long as it is open: eventlet's WSGI handler, blocked reading frames, and a writer that waits on the
socket's queue. Each holds a saved C stack and a Python frame chunk: most of what a connected tablet
costs (docs/benchmarks.md, "Memory per tablet"). Here, after the handshake, nothing waits per
connection:

- reading: the socket's fd is registered with the eventlet hub; the hub's callback reads what is
  there (non-blocking), parses RFC 6455 frames and hands each Engine.IO packet on. A PONG is handled
  right there (it only schedules the next ping timer); everything else goes, in arrival order, to a
  green thread started for it and ended when the connection's inbox is empty (python-socketio runs
  Socket.IO CONNECT and events from there, as it ran them from the reader before). Reading pauses
  while INBOX_MAX packets wait, as the old reader did not read while the app was busy.
- writing: `Socket.send` writes the frame at once with a non-blocking `send`; what the kernel does
  not take waits in a per-connection buffer, flushed by a hub WRITE callback, and anything sent
  meanwhile goes behind it (order kept). A client that leaves more than OUTBOX_MAX bytes unread is
  dropped.
- the WSGI handler green thread returns once the connection is set up: `meeting-server serve`'s
  HttpProtocol (cli.py) hands the socket over through `environ["meeting.detach"]` and does not close
  it. Under another WSGI server (no such key) that green thread waits until the connection ends
  (still no writer green thread).

Engine.IO semantics kept: the upgrade from polling (probe, NOOP to end the poll, UPGRADE), ping and
ping timeout (python-engineio's own ping timers / service task; `Socket.check_ping_timeout` on each
send), CLOSE packets both ways, binary messages, `max_http_buffer_size` per message (close 1009),
disconnect callbacks with the same reasons (client close and connection loss: TRANSPORT_CLOSE), and
a closed socket ends with an Engine.IO CLOSE where it used to, a websocket close frame and a
shutdown, as the old writer's `ws.close()` did.

`install(eio)` swaps the driver's websocket class; anything it does not handle (no eventlet socket,
a TLS socket, a legacy pre-RFC 6455 handshake) falls back to python-engineio's own path.
`MEETING_WSCONN=0` turns it off, for before/after benchmarks.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import logging
import os
import socket as _socket
from typing import Any

import eventlet
import eventlet.event
import eventlet.queue
from engineio import exceptions as eio_exceptions
from engineio import packet as eio_packet
from engineio.socket import Socket
from eventlet import hubs, wsgi
from eventlet.greenio.base import GreenSocket

log = logging.getLogger(__name__)

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#: Bytes one recv takes at most (the hub callback reads what is there, in chunks of this).
RECV_SIZE = 65536
#: Packets waiting for the app before reading pauses.
INBOX_MAX = 64
#: Unsent bytes a client may leave before it is dropped (a tablet that stopped reading).
OUTBOX_MAX = 8 * 1024 * 1024
#: After our close frame: seconds we wait for the client's before closing the fd anyway.
CLOSE_WAIT = 5.0

_LOST = object()  # inbox marker: the connection ended (EOF, error, close frame)
_PLAIN_GREEN_SOCKET = GreenSocket


class _Fail(Exception):
    """A protocol violation: close the websocket with this status code."""

    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


def frame(data: bytes, opcode: int) -> bytes:
    """One unmasked, final RFC 6455 frame (a server's frames: the same bytes for every client)."""
    n = len(data)
    if n <= 125:
        head = bytes((0x80 | opcode, n))
    elif n <= 0xFFFF:
        head = bytes((0x80 | opcode, 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 127)) + n.to_bytes(8, "big")
    return head + data


def _unmask(data: bytes, mask: bytes) -> bytes:
    n = len(data)
    if not n:
        return b""
    m = int.from_bytes((mask * (n // 4 + 1))[:n], "little")
    return (int.from_bytes(data, "little") ^ m).to_bytes(n, "little")


#: The last packet framed and its frame: a broadcast is one packet object for all recipients.
_last: list[Any] = [None, b""]


def packet_frame(pkt) -> bytes:
    if _last[0] is pkt:
        return _last[1]
    data = pkt.encode()
    f = frame(data, 2) if isinstance(data, bytes | bytearray) else frame(data.encode("utf-8"), 1)
    _last[0], _last[1] = pkt, f
    return f


class HubSocket(Socket):
    """An Engine.IO socket whose websocket is a `Conn`: sends are written, not queued."""

    def send(self, pkt):
        if not self.check_ping_timeout():
            return
        self.wsconn.write(packet_frame(pkt))

    def close(self, wait=True, abort=False, reason=None):
        # python-engineio's close, with "queue.put(None)" (the writer flushes, then ws.close()) done
        # by the connection itself; nothing to wait for: what was sent is written or buffered.
        if not self.closed and not self.closing:
            self.closing = True
            self.server._trigger_event(
                "disconnect", self.sid, reason or self.server.reason.SERVER_DISCONNECT, run_async=False
            )
            if not abort:
                self.send(eio_packet.Packet(eio_packet.CLOSE))
            self.closed = True
            self.wsconn.end()


class Conn:
    """One websocket: frames in from hub callbacks, frames out by direct writes."""

    __slots__ = (
        "s",
        "gsock",
        "sock",
        "fileno",
        "max_size",
        "rbuf",
        "frags",
        "frag_op",
        "frag_len",
        "ready",
        "inbox",
        "rl",
        "wl",
        "out",
        "out_size",
        "ending",
        "sent_close",
        "peer_gone",
        "released",
        "timer",
        "done",
    )

    def __init__(self, s: Socket, gsock, max_size: int):
        self.s = s
        self.gsock = gsock  # eventlet's GreenSocket: kept, as its __del__ closes the socket
        self.sock = sock = gsock.fd  # the raw, non-blocking socket
        self.fileno = sock.fileno()
        self.max_size = max_size
        self.rbuf: bytearray | None = None
        self.frags: list[bytes] | None = None
        self.frag_op = 0
        self.frag_len = 0
        self.ready: list[Any] = []  # messages parsed, not yet handed on
        self.inbox: collections.deque | None = None  # set while a receiver green thread runs
        self.rl = None  # hub READ listener
        self.wl = None  # hub WRITE listener
        self.out: collections.deque | None = None
        self.out_size = 0
        self.ending = False  # close after the buffer is flushed
        self.sent_close = False
        self.peer_gone = False
        self.released = False
        self.timer = None
        self.done = None  # an Event for a green thread waiting on the connection (fallback)

    # -- frames in ---------------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        """Parse what arrived; complete messages go to `self.ready`. Raises _Fail on a violation."""
        if self.rbuf is None:
            buf: bytes | bytearray = data
        else:
            self.rbuf += data
            buf = self.rbuf
        pos, end = 0, len(buf)
        while end - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            op = b0 & 0x0F
            n = b1 & 0x7F
            hl = 2
            if n == 126:
                if end - pos < 4:
                    break
                n = int.from_bytes(buf[pos + 2 : pos + 4], "big")
                hl = 4
            elif n == 127:
                if end - pos < 10:
                    break
                n = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                hl = 10
            if b0 & 0x70 or not b1 & 0x80:
                raise _Fail(1002)  # no extension was negotiated; client frames must be masked
            if op >= 8:
                if not b0 & 0x80 or n > 125 or op > 10:
                    raise _Fail(1002)
            elif op in (1, 2):
                if self.frags is not None:
                    raise _Fail(1002)  # a new message inside a fragmented one
            elif op != 0 or self.frags is None:
                raise _Fail(1002)  # reserved opcode, or a continuation of nothing
            if op < 8 and self.frag_len + n > self.max_size:
                raise _Fail(1009)  # refused from the header: the payload is never buffered
            if end - pos < hl + 4 + n:
                break
            mask = bytes(buf[pos + hl : pos + hl + 4])
            payload = _unmask(bytes(buf[pos + hl + 4 : pos + hl + 4 + n]), mask)
            pos += hl + 4 + n
            if op == 8:
                code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1000
                self.ready.append(_LOST)
                self.peer_gone = True  # nothing more from the client: answer, then close the fd
                self._close_frame(code if 1000 <= code < 5000 else 1002)
                break
            if op == 9:
                self.write(frame(payload, 0xA))
                continue
            if op == 10:
                continue
            if not b0 & 0x80:  # first or middle fragment
                if self.frags is None:
                    self.frags, self.frag_op, self.frag_len = [], op, 0
                self.frags.append(payload)
                self.frag_len += n
                continue
            if op == 0:
                payload = b"".join((*self.frags, payload))
                op = self.frag_op
                self.frags, self.frag_len = None, 0
            if op == 1:
                try:
                    self.ready.append(payload.decode("utf-8"))
                except UnicodeDecodeError:
                    raise _Fail(1007) from None
            else:
                self.ready.append(payload)
        if pos >= end:
            self.rbuf = None
        elif pos or self.rbuf is None:
            self.rbuf = bytearray(buf[pos:])

    def read_blocking(self, green_sock) -> Any:
        """The next message, waiting in this green thread (the upgrade's two packets); None at EOF."""
        while not self.ready:
            data = green_sock.recv(RECV_SIZE)
            if not data:
                return None
            self.feed(data)
        msg = self.ready.pop(0)
        return None if msg is _LOST else msg

    def start_reading(self) -> None:
        if self.rl is None and not self.released:
            self.rl = hubs.get_hub().add(hubs.hub.READ, self.fileno, self._on_readable, _ignore, _ignore)

    def _on_readable(self, _fileno) -> None:  # in the hub: never blocks, never switches
        if self.released or self.rl is None:
            return
        try:
            data = self.sock.recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._stop_reading()
            self.peer_gone = True
            if self.sent_close:
                self.release()
            else:
                self.ready.append(_LOST)
                self._dispatch()
            return
        if self.sent_close:  # closing: only the client's close frame or EOF matters now
            try:
                self.feed(data)
            except _Fail:
                self.ready.append(_LOST)
            if _LOST in self.ready:
                self.release()
            self.ready = []
            return
        try:
            self.feed(data)
        except _Fail as e:
            self.ready.append(_LOST)
            self._close_frame(e.code)
        self._dispatch()

    def _stop_reading(self) -> None:
        if self.rl is not None:
            hubs.get_hub().remove(self.rl)
            self.rl = None

    def _dispatch(self) -> None:
        """Hand parsed messages on: PONG here, the rest in order to the receiver green thread."""
        s = self.s
        ready, self.ready = self.ready, []
        for msg in ready:
            if msg is _LOST:
                if not self.sent_close:  # else keep reading: the client's EOF ends it sooner
                    self._stop_reading()
                self._queue(_LOST)
                break
            try:
                pkt = eio_packet.Packet(encoded_packet=msg)
            except Exception:  # not an Engine.IO packet: as python-engineio's reader, give up
                s.server.logger.info("%s: bad packet, closing connection", s.sid)
                self._stop_reading()
                self._queue(_LOST)
                break
            if pkt.packet_type == eio_packet.PONG and not self.inbox:
                try:
                    s.receive(pkt)  # schedules the next ping (a hub timer)
                except Exception:
                    s.server.logger.exception("pong handling error")
                continue
            self._queue(pkt)
        if self.inbox is not None and len(self.inbox) >= INBOX_MAX and self.rl is not None:
            self._stop_reading()  # resumed by the receiver once it caught up

    def _queue(self, item) -> None:
        if self.inbox is None:
            self.inbox = collections.deque((item,))
            eventlet.spawn_n(self._receiver)
        else:
            self.inbox.append(item)

    def _receiver(self) -> None:
        """Give the app each waiting packet in order, then end (started again by the next one)."""
        s, inbox = self.s, self.inbox
        while inbox:
            item = inbox.popleft()
            if item is _LOST:
                inbox.clear()
                self.inbox = None
                self._lost()
                return
            try:
                s.receive(item)
            except eio_exceptions.UnknownPacketError:
                pass
            except eio_exceptions.SocketIsClosedError:
                s.server.logger.info("Receive error -- socket is closed")
                inbox.clear()
                self.inbox = None
                self._lost()
                return
            except Exception:
                s.server.logger.exception("Unknown receive error")
                inbox.clear()
                self.inbox = None
                self._lost()
                return
            if (
                self.rl is None
                and len(inbox) < INBOX_MAX // 2
                and not (self.peer_gone or self.sent_close or self.released or s.closed)
            ):
                self.start_reading()
                if self.ready:
                    self._dispatch()
        self.inbox = None

    def _lost(self) -> None:
        """The client went away (EOF, close frame, error): what the old reader did after its loop."""
        s = self.s
        s.close(wait=False, abort=True, reason=s.server.reason.TRANSPORT_CLOSE)
        self.end()
        self._forget()

    def _forget(self) -> None:
        s = self.s
        if s.closed and self.released and s.server.sockets.get(s.sid) is s:
            del s.server.sockets[s.sid]  # as python-engineio does when its handler returns

    # -- frames out --------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        if self.sent_close or self.released:
            return
        if self.out is not None:
            self.out.append(data)
            self.out_size += len(data)
            if self.out_size > OUTBOX_MAX:
                log.info("%s: %d bytes unsent, dropping the client", self.s.sid, self.out_size)
                self.out = None
                self._broken()
            return
        try:
            n = self.sock.send(data)
        except (BlockingIOError, InterruptedError):
            n = 0
        except OSError:
            self._broken()
            return
        if n < len(data):
            self.out = collections.deque((memoryview(data)[n:],))
            self.out_size = len(data) - n
            self.wl = hubs.get_hub().add(hubs.hub.WRITE, self.fileno, self._on_writable, _ignore, _ignore)

    def _on_writable(self, _fileno) -> None:  # in the hub
        out = self.out
        if out is None or self.released:
            return
        while out:
            chunk = out[0]
            try:
                n = self.sock.send(chunk)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self._broken()
                return
            self.out_size -= n
            if n < len(chunk):
                out[0] = memoryview(chunk)[n:]
                return
            out.popleft()
        self.out = None
        self.out_size = 0
        if self.wl is not None:
            hubs.get_hub().remove(self.wl)
            self.wl = None
        if self.ending:
            self._close_frame(1000)

    def _broken(self) -> None:
        """A write failed: the connection is gone."""
        self.out = None
        if self.wl is not None:
            hubs.get_hub().remove(self.wl)
            self.wl = None
        self.peer_gone = True
        if self.s.closed:
            self.release()
        else:
            self._stop_reading()
            self._queue(_LOST)

    def end(self) -> None:
        """The Engine.IO socket is closed: flush, send a close frame, shut down, then release."""
        self.ending = True
        if self.peer_gone:
            self.release()
        elif self.out is None:
            self._close_frame(1000)

    def _close_frame(self, code: int) -> None:
        if self.sent_close or self.released:
            return
        if self.out is not None:  # what was sent first goes first; the rest is dropped
            self.out = None
            if self.wl is not None:
                hubs.get_hub().remove(self.wl)
                self.wl = None
        self.sent_close = True
        try:
            self.sock.send(frame(code.to_bytes(2, "big"), 0x8))
            self.sock.shutdown(_socket.SHUT_WR)
        except OSError:
            pass
        if self.peer_gone:
            self.release()
        else:  # wait for the client's close frame or EOF (the reader keeps going), bounded
            self.timer = hubs.get_hub().schedule_call_global(CLOSE_WAIT, self.release)
            self.start_reading()  # to see the client's close frame or EOF

    def release(self) -> None:
        """Close the fd and drop the hub's references (once)."""
        if self.released:
            return
        self.released = True
        hub = hubs.get_hub()
        if self.rl is not None:
            hub.remove(self.rl)
            self.rl = None
        if self.wl is not None:
            hub.remove(self.wl)
            self.wl = None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.out = None
        try:
            self.gsock.close()
        except OSError:
            pass
        s = self.s
        if not s.closed:  # the app is told by the receiver (its disconnect handler may block)
            if self.inbox is None:
                self._queue(_LOST)
        else:
            self._forget()
        if self.done is not None and not self.done.ready():
            self.done.send(True)

    def release_quietly(self) -> None:
        """The upgrade failed: the WSGI server closes the connection; forget it here, do not close."""
        self.released = True
        if self.wl is not None:
            hubs.get_hub().remove(self.wl)
            self.wl = None


def _ignore(*_a) -> None:
    pass


def _accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1(key.encode("latin-1") + GUID).digest()).decode("ascii")


#: WSGI environ entries that tie a request to its HTTP connection (buffers, the protocol object);
#: dropped from the environ python-socketio keeps per socket once the connection is a websocket.
#: (`eventlet.posthooks` is read once more by eventlet after the request: emptied, not removed.)
_CONNECTION_KEYS = ("eventlet.input", "eventlet.set_idle", "meeting.detach")


class _NoInput:
    """`wsgi.input` of a websocket's kept environ: no body."""

    def read(self, *_a) -> bytes:
        return b""

    readline = read

    def __iter__(self):
        return iter(())


_NO_INPUT = _NoInput()


class _SpentQueue:
    """The queue of a socket served by a `Conn`: HubSocket never queues, nothing polls it (upgraded)."""

    def put(self, *_a, **_k) -> None:
        pass

    def qsize(self) -> int:
        return 0

    def empty(self) -> bool:
        return True

    def get(self, *_a, **_k):
        raise eventlet.queue.Empty

    get_nowait = get

    def task_done(self) -> None:
        pass

    def join(self, *_a) -> None:
        pass


_SPENT_QUEUE = _SpentQueue()


def make_websocket_class(fallback):
    """The WSGI app python-engineio builds per websocket request (`_async['websocket']`)."""

    class HubWebSocketWSGI:
        def __init__(self, handler, server):
            self.handler = handler
            self.server = server

        def __call__(self, environ, start_response):
            s = getattr(self.handler, "__self__", None)
            inp = environ.get("eventlet.input")
            sock = inp.get_socket() if inp is not None else None
            if (
                not isinstance(s, Socket)
                or type(sock) is not _PLAIN_GREEN_SOCKET
                or "HTTP_SEC_WEBSOCKET_VERSION" not in environ
            ):
                return fallback(self.handler, self.server)(environ, start_response)
            conn_parts = [p.strip() for p in environ.get("HTTP_CONNECTION", "").lower().split(",")]
            if "upgrade" not in conn_parts or environ.get("HTTP_UPGRADE", "").lower() != "websocket":
                start_response("400 Bad Request", [("Connection", "close")])
                return []
            if environ["HTTP_SEC_WEBSOCKET_VERSION"] not in ("8", "13"):
                start_response(
                    "426 Upgrade Required", [("Connection", "close"), ("Sec-WebSocket-Version", "8, 13")]
                )
                return []
            key = environ.get("HTTP_SEC_WEBSOCKET_KEY", "")
            try:
                ok = len(base64.b64decode(key, validate=True)) == 16
            except ValueError:
                ok = False
            if not ok:
                start_response("400 Bad Request", [("Connection", "close")])
                return []
            sock.sendall(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: " + _accept_key(key).encode() + b"\r\n\r\n"
            )
            wsgi.WSGI_LOCAL.already_handled = True
            if "eventlet.set_idle" in environ:
                environ["eventlet.set_idle"]()
            return self._run(s, sock, environ)

        def _run(self, s: Socket, sock, environ) -> list:
            server = self.server
            timeout = server.ping_interval + server.ping_timeout
            sock.settimeout(timeout)  # as python-engineio does, for the upgrade's two reads
            conn = Conn(s, sock, int(server.max_http_buffer_size))
            if s.connected:  # an upgrade from polling: the same steps as python-engineio's handler
                s.upgrading = True
                try:
                    probe = conn.read_blocking(sock)
                    if probe != "2probe":
                        server.logger.info("%s: Failed websocket upgrade, no PING packet", s.sid)
                        s.upgrading = False
                        conn.release_quietly()
                        return []
                    conn.write(frame(b"3probe", 1))
                    s.queue.put(eio_packet.Packet(eio_packet.NOOP))  # end the poll
                    up = conn.read_blocking(sock)
                    if up != "5":
                        server.logger.info(
                            "%s: Failed websocket upgrade, expected UPGRADE packet, received %s instead.",
                            s.sid,
                            up,
                        )
                        s.upgraded = False
                        s.upgrading = False
                        conn.release_quietly()
                        return []
                except (TimeoutError, _Fail, OSError):
                    s.upgrading = False
                    conn.release_quietly()
                    return []
                s.upgraded = True
                s.upgrading = False
            else:
                s.connected = True
                s.upgraded = True
            # From here on nothing yields until the socket is reading from the hub: no send can
            # slip between the queue drained below and the first direct write.
            s.wsconn = conn
            s.__class__ = HubSocket
            q = s.queue
            while q.qsize():
                pkt = q.get_nowait()
                q.task_done()
                if pkt is None:  # closed meanwhile
                    conn.end()
                    break
                conn.write(packet_frame(pkt))
            s.queue = _SPENT_QUEUE  # nothing is queued any more (1.6 KB per socket)
            server.logger.info("%s: Upgrade to websocket successful", s.sid)
            detach = environ.get("meeting.detach")
            for k in _CONNECTION_KEYS:
                environ.pop(k, None)
            environ["wsgi.input"] = _NO_INPUT
            environ["eventlet.posthooks"] = ()
            sock.settimeout(None)
            detached = detach is not None and detach()
            if not detached:  # another WSGI server: this green thread holds the connection until it ends
                conn.done = eventlet.event.Event()
            conn.start_reading()
            if conn.ready and not conn.sent_close:
                conn._dispatch()  # what came right behind the upgrade
            if not detached and not conn.released:
                conn.done.wait()
            return []

    return HubWebSocketWSGI


def install(eio) -> bool:
    """Serve this Engine.IO server's websockets with `Conn` (eventlet only; `MEETING_WSCONN=0`: off)."""
    if os.environ.get("MEETING_WSCONN", "1") == "0":
        return False
    if getattr(eio, "async_mode", None) != "eventlet" or getattr(eio, "_wsconn", False):
        return False
    base = eio._async["websocket"]
    eio._async = {**eio._async, "websocket": make_websocket_class(base)}
    eio._wsconn = True
    return True
