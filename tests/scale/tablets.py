"""Tablets and consoles for the scale tests, on `clients.eio` (one asyncio loop, many sockets).

`BoundClient` is `clients.eio.SioClient` connecting from a chosen loopback source address, so
that nginx's `ip_hash` (keyed on the client's /24) spreads tablets over the upstreams the way a
hall of real tablets with their own addresses would be spread.
"""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from clients import eio
from clients.eio import SioClient


class BoundClient(SioClient):
    """A SioClient whose TCP connection leaves from `source` (an address of 127.0.0.0/8)."""

    __slots__ = ("source",)

    def __init__(self, *args: Any, source: str | None = None, **kw: Any):
        super().__init__(*args, **kw)
        self.source = source

    async def _open_socket(self, host: str, port: int) -> None:
        if self.source is None:
            return await super()._open_socket(host, port)
        loop = self._loop
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind((self.source, 0))
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            await loop.sock_connect(sock, (host, port))
        except BaseException:
            sock.close()
            raise
        if eio._SO_TIMESTAMPNS is not None and eio._CMSG_SPACE:  # kernel receive stamps, as SioClient
            try:
                sock.setsockopt(socket.SOL_SOCKET, eio._SO_TIMESTAMPNS, 1)
                self._stamps = True
            except OSError:
                self._stamps = False
        self._sock, self._fd = sock, sock.fileno()
        loop.add_reader(self._fd, self._on_readable)


@dataclass
class Tablet:
    """One device: who it is, where it connects, and every event it got (in arrival order)."""

    name: str
    url: str
    auth: dict[str, Any]
    source: str | None = None
    client: BoundClient | None = None
    events: list[tuple[str, Any]] = field(default_factory=list)
    seqs: list[int] = field(default_factory=list)  #: `seq` of every `page` received, as received
    shown: list[int] = field(default_factory=list)  #: what the tablet applied: stale seqs dropped
    state: dict[str, Any] | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def _on_event(self, _client: SioClient, name: str, data: Any, _t: float) -> None:
        self.events.append((name, data))
        if name == "page" and isinstance(data, dict) and isinstance(data.get("seq"), int):
            self.seqs.append(data["seq"])
            if not self.shown or data["seq"] > self.shown[-1]:
                self.shown.append(data["seq"])
        elif name == "state" and isinstance(data, dict):
            self.state = data
            seq = (data.get("current") or {}).get("seq")
            if isinstance(seq, int) and (not self.shown or seq > self.shown[-1]):
                self.shown.append(seq)
        self.changed.set()

    @property
    def current_seq(self) -> int | None:
        return self.shown[-1] if self.shown else None

    async def connect(self, url: str | None = None, timeout: float = 20.0) -> Tablet:
        self.state = None
        self.client = BoundClient(self._on_event, source=self.source, ignore={"attendance", "seat.status"})
        await self.client.connect(url or self.url, self.auth, timeout=timeout)
        await self.wait(lambda: self.state is not None, timeout, "state")
        return self

    @property
    def connected(self) -> bool:
        return self.client is not None and self.client.connected

    async def call(self, event: str, data: Any = None, timeout: float = 20.0) -> Any:
        return await self.client.call(event, {} if data is None else data, timeout=timeout)

    async def wait(self, cond, timeout: float, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            left = deadline - time.monotonic()
            if left <= 0:
                last = [name for name, _ in self.events[-8:]]
                raise TimeoutError(f"{self.name}: no {what} after {timeout:.0f} s (last events: {last})")
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), min(left, 0.5))
            except TimeoutError:
                pass

    async def close(self) -> None:
        if self.client is not None:
            try:
                await self.client.disconnect()
            except Exception:  # already gone
                pass


async def connect_all(tablets: list[Tablet], concurrency: int = 20) -> None:
    sem = asyncio.Semaphore(concurrency)

    async def one(t: Tablet) -> None:
        async with sem:
            await t.connect()

    await asyncio.gather(*(one(t) for t in tablets))


async def close_all(tablets: list[Tablet]) -> None:
    await asyncio.gather(*(t.close() for t in tablets), return_exceptions=True)


async def wait_all(tablets: list[Tablet], cond, timeout: float, what: str) -> None:
    await asyncio.gather(*(t.wait(lambda t=t: cond(t), timeout, what) for t in tablets))
