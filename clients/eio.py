"""A minimal Socket.IO v5 / Engine.IO v4 client on asyncio, websocket transport only.

Light enough for one process on one core to hold 1,000 connections and read every
broadcast frame without becoming the thing being measured. Each connection is one
non-blocking socket with one ``loop.add_reader`` callback: frames are parsed as they
are read and events handed to a plain callback (or an ``asyncio.Queue``) with the
``time.perf_counter()`` taken at parse time; acks resolve one future per id. No tasks
per connection, no timers, no polling transport, no binary packets, default
namespace only.

Two receive times per frame, both on the perf_counter clock:

* ``t`` (passed to the callback): when this process parsed the frame;
* ``client.rx_t`` (readable inside the callback): when the kernel received the bytes
  (``SO_TIMESTAMPNS`` on Linux: the frame's age on CLOCK_REALTIME at the read, taken
  off the read's perf_counter time, so a stepped wall clock does not shift it). It
  does not include the time this process spent on other sockets first, so with 1,000
  tablets in one process it measures the server rather than the client. Where the kernel gives no stamp it equals ``t``.

Why not ``websockets.asyncio.client``: on the 2-core bench machine its per-message
path (frame parser generator, message assembler, one reader-task wake-up per frame)
cost about 100 microseconds a frame, so with 200 tablets the client, not the server,
set the measured flip latency. The websocket framing here is the small subset a
client needs (RFC 6455: masked client frames, unmasked server frames, ping/pong,
close, continuation); the ``websockets`` package still supplies the handshake key and
the C masking routine.

    client = SioClient(on_event=lambda c, name, data, t: ...)
    await client.connect("http://127.0.0.1:5000", auth={"token": session_token})
    ack = await client.call("checkin", {})
    await client.disconnect()

Engine.IO packets are ``0`` open, ``1`` close, ``2`` ping, ``3`` pong, ``4`` message,
``6`` noop; a message carries a Socket.IO packet: ``40`` connect, ``41`` disconnect,
``42[id]["ev",...]`` event, ``43id[...]`` ack, ``44{...}`` connect error.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
import socket
import struct
import sys
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from websockets.utils import accept_key, generate_key

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - the pure-Python fallback of the same package
    from websockets.utils import apply_mask

log = logging.getLogger(__name__)

__all__ = ["ConnectError", "Disconnected", "SioClient", "calibrate_clock", "require_loopback", "ws_path"]

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_loads = json.loads
_scan_once = json.JSONDecoder().scan_once  # the C scanner, without json.loads' whitespace regexes


def _loads_at(text: str, index: int) -> Any:
    """Decode the JSON value that starts at ``text[index]`` (no slicing, no copy)."""
    try:
        return _scan_once(text, index)[0]
    except StopIteration as exc:
        raise ValueError(f"bad JSON at {exc.value} in {text[:80]!r}") from None


_perf = time.perf_counter
_wall_ns = time.time_ns

MAX_FRAME = 1 << 22  # 4 MiB: far above any event in the contract
READ_SIZE = 1 << 16

# SO_TIMESTAMPNS is 35 in asm-generic/socket.h (x86, arm); Python does not export it.
_SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35 if sys.platform.startswith("linux") else None)
_CMSG_SPACE = socket.CMSG_SPACE(16) if hasattr(socket, "CMSG_SPACE") else 0
_TIMESPEC = struct.Struct("@ll")
_real_minus_perf_ns = 0


def calibrate_clock() -> int:
    """Measure CLOCK_REALTIME - perf_counter (ns); returns it (kept for callers that log it).

    Takes the tightest of a few samples. Receive stamps no longer depend on it: each
    read converts its kernel stamp by the frame's age on the wall clock at that read.
    """
    global _real_minus_perf_ns
    best = None
    for _ in range(7):
        a = time.perf_counter_ns()
        w = time.time_ns()
        b = time.perf_counter_ns()
        if best is None or b - a < best[0]:
            best = (b - a, w - (a + b) // 2)
    _real_minus_perf_ns = best[1]
    return _real_minus_perf_ns


calibrate_clock()


class ConnectError(Exception):
    """The server refused the Socket.IO connection (CONNECT_ERROR, ``44``)."""

    def __init__(self, data: Any):
        super().__init__(data.get("message", data) if isinstance(data, dict) else data)
        self.data = data


class Disconnected(ConnectionError):
    """The connection is closed (or closed while a call waited for its ack)."""


def require_loopback(url: str) -> str:
    """Return the host of ``url``; raise ValueError unless it is a loopback address.

    Measuring tools must only ever talk to servers on this machine.
    """
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return host
    try:
        if ipaddress.ip_address(host).is_loopback:
            return host
    except ValueError:
        pass
    raise ValueError(f"refusing non-loopback host {host!r} in {url!r}: use 127.0.0.0/8, localhost or ::1")


def ws_path(url: str, path: str = "socket.io") -> str:
    """``http://h:p/prefix`` -> ``/prefix/socket.io/?EIO=4&transport=websocket``."""
    base = urlsplit(url).path.rstrip("/")
    return f"{base}/{path.strip('/')}/?EIO=4&transport=websocket"


def _frame(opcode: int, payload: bytes) -> bytes:
    """One final, masked client frame."""
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0xFE, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0xFF, n)
    mask = os.urandom(4)
    return head + mask + apply_mask(payload, mask)


_LEAVE = "\x00leave"  # _packet's answer to a server DISCONNECT

EventCallback = Callable[["SioClient", str, Any, float], None]


class SioClient:
    """One Socket.IO connection to the default namespace.

    ``on_event(client, name, data, t)`` is called synchronously, as frames are read,
    for every server event; ``data`` is the first argument (``None`` if none, a list
    if several). Without a callback, ``(name, data, t)`` tuples go to ``self.events``.
    Names in ``ignore`` are only counted (``self.ignored``), never JSON-decoded.
    """

    __slots__ = (
        "on_event",
        "ignore",
        "events",
        "sid",
        "eio_sid",
        "ping_interval",
        "ping_timeout",
        "connected",
        "received",
        "ignored",
        "pings",
        "last_recv",
        "rx_t",
        "tag",
        "_loop",
        "_sock",
        "_fd",
        "_wbuf",
        "_stamps",
        "_auth",
        "_key",
        "_request",
        "_upgraded",
        "_close_sent",
        "_buf",
        "_fragments",
        "_connect_fut",
        "_closed",
        "_acks",
        "_next_id",
    )

    def __init__(
        self,
        on_event: EventCallback | None = None,
        *,
        ignore: frozenset[str] | set[str] = frozenset(),
        tag: Any = None,
    ):
        self.on_event = on_event
        self.ignore = frozenset(ignore)
        self.events: asyncio.Queue | None = None if on_event else asyncio.Queue()
        self.sid: str | None = None
        self.eio_sid: str | None = None
        self.ping_interval = 25.0
        self.ping_timeout = 20.0
        self.connected = False
        self.received = 0  #: Engine.IO message packets read (events, acks, ...)
        self.ignored = 0  #: events skipped because their name is in ``ignore``
        self.pings = 0  #: server pings answered
        self.last_recv = 0.0  #: perf_counter of the last read
        self.rx_t = 0.0  #: kernel receive time of the last read, perf_counter clock
        self.tag = tag  #: free slot for the caller (e.g. a tablet record)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sock: socket.socket | None = None
        self._fd = -1
        self._wbuf: bytearray | None = None
        self._stamps = False
        self._auth: Any = None
        self._key = ""
        self._request = b""
        self._upgraded = False
        self._close_sent = False
        self._buf = bytearray()
        self._fragments: list[bytes] | None = None
        self._connect_fut: asyncio.Future | None = None
        self._closed: asyncio.Future | None = None
        self._acks: dict[int, asyncio.Future] = {}
        self._next_id = 0

    # -- public API -------------------------------------------------------------
    async def connect(
        self,
        url: str,
        auth: Any = None,
        *,
        timeout: float = 10.0,
        path: str = "socket.io",
        loopback_only: bool = True,
    ) -> None:
        """Open the websocket, then wait for the Engine.IO open and the Socket.IO CONNECT.

        Raises ConnectError on CONNECT_ERROR, Disconnected if the server closes or
        refuses the upgrade, TimeoutError, or OSError from the TCP connect.
        """
        if loopback_only:
            require_loopback(url)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "ws"):
            raise ValueError(f"only http:// (plain websocket) URLs are supported, got {url!r}")
        loop = self._loop = asyncio.get_running_loop()
        self._auth = auth
        self._key = generate_key()
        request = (
            f"GET {ws_path(url, path)} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {self._key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
        self._connect_fut = loop.create_future()
        self._closed = loop.create_future()
        try:
            async with asyncio.timeout(timeout):
                await self._open_socket(parts.hostname, parts.port or 80)
                self._write(request)
                await self._connect_fut
        except BaseException:
            self._abort()
            raise
        self.connected = True

    async def emit(self, event: str, data: Any = None) -> None:
        """Send an event without asking for an ack."""
        self._send_text("42" + _dumps([event] if data is None else [event, data]))

    async def call(self, event: str, data: Any = None, *, timeout: float = 10.0) -> Any:
        """Send an event and return the first argument of the server's ack."""
        return (await self.call_timed(event, data, timeout=timeout))[0]

    async def call_timed(
        self, event: str, data: Any = None, *, timeout: float = 10.0
    ) -> tuple[Any, float, float]:
        """Like call(); returns ``(ack, t_sent, t_ack)`` on the perf_counter clock.

        ``t_ack`` is the kernel receive time of the ack's bytes (``rx_t``), not the time
        this coroutine resumed.
        """
        if not self.connected:
            raise Disconnected("not connected")
        self._next_id += 1
        ack_id = self._next_id
        fut = asyncio.get_running_loop().create_future()
        self._acks[ack_id] = fut
        try:
            payload = f"42{ack_id}" + _dumps([event] if data is None else [event, data])
            t_sent = _perf()
            self._send_text(payload)
            async with asyncio.timeout(timeout):
                result, t_ack = await fut
        finally:
            self._acks.pop(ack_id, None)
        return result, t_sent, t_ack

    async def disconnect(self, timeout: float = 2.0) -> None:
        """Leave the namespace, close the websocket and wait for the TCP close (idempotent)."""
        if self._sock is None:
            self.connected = False
            return
        if self.connected:
            self._send_text("41")
        self.connected = False
        self._send_close()
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(self._closed)  # the server closes TCP after the close frame
        except TimeoutError:
            self._abort()

    async def wait_closed(self) -> None:
        if self._closed is not None:
            await asyncio.shield(self._closed)

    # -- the socket ---------------------------------------------------------------
    async def _open_socket(self, host: str, port: int) -> None:
        loop = self._loop
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
        error: OSError | None = None
        for family, type_, proto, _, addr in infos:
            sock = socket.socket(family, type_, proto)
            try:
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                await loop.sock_connect(sock, addr)
            except OSError as exc:
                sock.close()
                error = exc
                continue
            except BaseException:
                sock.close()
                raise
            if _SO_TIMESTAMPNS is not None and _CMSG_SPACE:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
                    self._stamps = True
                except OSError:
                    self._stamps = False
            self._sock, self._fd = sock, sock.fileno()
            loop.add_reader(self._fd, self._on_readable)
            return
        raise error or OSError(f"cannot resolve {host}:{port}")

    def _on_readable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        try:
            if self._stamps:
                data, anc, _, _ = sock.recvmsg(READ_SIZE, _CMSG_SPACE)
            else:
                data, anc = sock.recv(READ_SIZE), ()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lost(exc)
            return
        if not data:
            self._lost(None)
            return
        t = _perf()
        rx = t
        for level, kind, cdata in anc:
            if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(cdata) >= _TIMESPEC.size:
                sec, nsec = _TIMESPEC.unpack_from(cdata)
                # The frame's age on the wall clock, read now, taken off the perf_counter time of
                # this read: immune to the wall clock being stepped since `calibrate_clock()` (a
                # fixed offset went stale after an NTP step: stamps "from the future").
                age = _wall_ns() - (sec * 1_000_000_000 + nsec)
                if age > 0:
                    rx = t - age / 1e9
        self.rx_t = rx
        self.data_received(data, t)

    def _write(self, data: bytes) -> None:
        sock = self._sock
        if sock is None:
            raise Disconnected("not connected")
        if self._wbuf:
            self._wbuf += data
            return
        try:
            n = sock.send(data)
        except (BlockingIOError, InterruptedError):
            n = 0
        except OSError as exc:
            self._lost(exc)
            raise Disconnected(str(exc)) from exc
        if n < len(data):
            self._wbuf = bytearray(data[n:])
            self._loop.add_writer(self._fd, self._on_writable)

    def _on_writable(self) -> None:
        sock, buf = self._sock, self._wbuf
        if sock is None or not buf:
            return
        try:
            n = sock.send(buf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lost(exc)
            return
        del buf[:n]
        if not buf:
            self._loop.remove_writer(self._fd)

    def _abort(self) -> None:
        if self._sock is not None:
            self._lost(None)

    def _lost(self, exc: Exception | None) -> None:
        """Close the socket (if still open) and fail everything still waiting."""
        sock = self._sock
        if sock is not None:
            self._sock = None
            self._loop.remove_reader(self._fd)
            if self._wbuf is not None:
                self._loop.remove_writer(self._fd)
            sock.close()
        self.connected = False
        err = Disconnected(f"connection closed{f': {exc}' if exc else ''}")
        if self._connect_fut is not None and not self._connect_fut.done():
            self._connect_fut.set_exception(err)
        for fut in self._acks.values():
            if not fut.done():
                fut.set_exception(err)
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)

    def data_received(self, data: bytes, t: float) -> None:
        self.last_recv = t
        buf = self._buf
        buf += data
        if not self._upgraded and not self._handshake():
            return
        pos = 0
        end = len(buf)
        try:
            while end - pos >= 2:
                b0 = buf[pos]
                b1 = buf[pos + 1]
                n = b1 & 0x7F
                hdr = 2
                if n == 126:
                    if end - pos < 4:
                        break
                    n = (buf[pos + 2] << 8) | buf[pos + 3]
                    hdr = 4
                elif n == 127:
                    if end - pos < 10:
                        break
                    n = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                    hdr = 10
                if b1 & 0x80:  # servers must not mask; tolerate it anyway
                    hdr += 4
                if n > MAX_FRAME:
                    raise ValueError(f"frame of {n} bytes is over the {MAX_FRAME} limit")
                if end - pos < hdr + n:
                    break
                payload = bytes(buf[pos + hdr : pos + hdr + n])
                if b1 & 0x80:
                    payload = apply_mask(payload, bytes(buf[pos + hdr - 4 : pos + hdr]))
                pos += hdr + n
                self._frame_in(b0, payload, t)
                if self._sock is None:
                    return
        except Exception as exc:  # a protocol error ends this connection only
            log.warning("socket.io client dropped a connection: %r", exc)
            self._abort()
            return
        finally:
            if pos:
                del buf[:pos]

    # -- internals ---------------------------------------------------------------
    def _handshake(self) -> bool:
        """Parse the HTTP 101 answer; True once upgraded (frames may follow in the buffer)."""
        buf = self._buf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > 65536:
                self._fail_connect("handshake answer too long")
            return False
        head = bytes(buf[:end]).decode("latin-1").split("\r\n")
        del buf[: end + 4]
        status = head[0].split(" ", 2)
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if len(status) < 2 or status[1] != "101":
            self._fail_connect(f"websocket upgrade refused: {head[0]}")
            return False
        if headers.get("sec-websocket-accept") != accept_key(self._key):
            self._fail_connect("bad Sec-WebSocket-Accept")
            return False
        self._upgraded = True
        return True

    def _fail_connect(self, message: str) -> None:
        if self._connect_fut is not None and not self._connect_fut.done():
            self._connect_fut.set_exception(Disconnected(message))
        self._abort()

    def _send_close(self, code: bytes = struct.pack("!H", 1000)) -> None:
        if not self._close_sent:
            self._close_sent = True
            self._write(_frame(0x8, code))

    def _send_text(self, text: str) -> None:
        self._write(_frame(0x1, text.encode()))

    def _frame_in(self, b0: int, payload: bytes, t: float) -> None:
        opcode = b0 & 0x0F
        if opcode == 0x1 or opcode == 0x2:
            if not b0 & 0x80:
                self._fragments = [payload]
                return
        elif opcode == 0x0:
            if self._fragments is None:
                raise ValueError("continuation frame without a start")
            self._fragments.append(payload)
            if not b0 & 0x80:
                return
            payload, self._fragments = b"".join(self._fragments), None
        elif opcode == 0x9:
            self._write(_frame(0xA, payload))
            return
        elif opcode == 0x8:
            self.connected = False
            self._send_close(payload[:2])
            self._lost(None)
            return
        else:
            return  # pong or reserved
        if opcode == 0x2:
            return  # binary packets are not used by the contract
        self._eio(payload.decode(), t)

    def _eio(self, msg: str, t: float) -> None:
        kind = msg[:1]
        if kind == "4":
            self.received += 1
            reply = self._packet(msg, t)
            if reply is _LEAVE:  # the server disconnected us from the namespace
                self.connected = False
                self._send_close()
                self._lost(None)
            elif reply is not None:
                self._send_text(reply)
        elif kind == "2":
            self.pings += 1
            self._send_text("3" + msg[1:])
        elif kind == "0":
            info = _loads(msg[1:])
            self.eio_sid = info.get("sid")
            self.ping_interval = info.get("pingInterval", 25000) / 1000
            self.ping_timeout = info.get("pingTimeout", 20000) / 1000
            self._send_text("40" + ("" if self._auth is None else _dumps(self._auth)))
        elif kind == "1":
            self._lost(None)
        # "6" noop and anything else: ignore

    def _dispatch(self, args: list, t: float) -> None:
        name = args[0]
        data = None if len(args) < 2 else args[1] if len(args) == 2 else args[1:]
        if self.on_event is not None:
            try:
                self.on_event(self, name, data, t)
            except Exception:  # a caller's bug must not kill the connection
                log.exception("on_event failed for %r", name)
        else:
            self.events.put_nowait((name, data, t))

    def _packet(self, msg: str, t: float) -> str | None:
        """Handle one Engine.IO message (``4...``); returns a frame to send back, if any."""
        if msg.startswith('42["'):  # fast path: an event without ack id or namespace
            if self.ignore:
                end = msg.find('"', 4)
                if msg[4:end] in self.ignore:
                    self.ignored += 1
                    return None
            self._dispatch(_loads_at(msg, 2), t)
            return None
        kind = msg[1:2]
        i = 2
        if msg[i : i + 1] == "/":  # a namespace other than "/" is not ours
            comma = msg.find(",", i)
            if msg[i : comma if comma >= 0 else None] != "/":
                return None
            i = comma + 1
        if kind == "2":
            j = i
            while j < len(msg) and msg[j].isdigit():
                j += 1
            ack_id = msg[i:j]
            body = msg[j:]
            if self.ignore and body.startswith('["'):
                end = body.find('"', 2)
                if body[2:end] in self.ignore:
                    self.ignored += 1
                    return f"43{ack_id}[]" if ack_id else None
            self._dispatch(_loads(body), t)
            return f"43{ack_id}[]" if ack_id else None
        if kind == "3":
            j = i
            while j < len(msg) and msg[j].isdigit():
                j += 1
            fut = self._acks.get(int(msg[i:j]))
            if fut is not None and not fut.done():
                args = _loads(msg[j:])
                fut.set_result((args[0] if len(args) == 1 else (args or None), self.rx_t))
            return None
        if kind == "0":
            info = _loads(msg[i:]) if len(msg) > i else {}
            self.sid = info.get("sid")
            if not self._connect_fut.done():
                self._connect_fut.set_result(None)
            return None
        if kind == "4":
            data = _loads(msg[i:]) if len(msg) > i else {}
            if not self._connect_fut.done():
                self._connect_fut.set_exception(ConnectError(data))
            return None
        if kind == "1":
            return _LEAVE
        return None  # 5/6: binary event/ack, not used by the contract
