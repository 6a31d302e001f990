"""core/mq.py on a real Redis: the other processes get an event before this process's clients do.

No server process and no listener thread: a python-socketio `Server` (threading mode) holds the
manager, a few local clients are registered with the manager the way a connection registers them,
and `_send_eio_packet` / `_send_packet` (the calls every local send goes through, which
Flask-SocketIO's own test client replaces too) are replaced by recorders of each local send. The "other process"
is a plain Redis subscriber on the manager's channel. With `PublishFirstRedisManager` the subscriber
has the message before the first local send; with the library's `RedisManager` it cannot have it
(the library publishes after the fan-out), which the control test pins down. The semantics test
sends the same emits through both managers and compares what reaches Redis and who gets it here.
"""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest
import socketio

from meeting_server.core.mq import PublishFirstRedisManager, client_manager
from tests.conftest import need

REDIS_URL = "redis://127.0.0.1:6379/0"


def _redis_up() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping())
    except Exception:
        return False


class Subscriber:
    """The other process: records each message published on the channel, in a thread stopped by `close`."""

    def __init__(self, channel: str):
        import redis

        self.messages: list[dict] = []
        self.arrived = threading.Event()
        self._r = redis.Redis.from_url(REDIS_URL)
        self._ps = self._r.pubsub(ignore_subscribe_messages=True)
        self._ps.subscribe(channel)
        self._ps.get_message(timeout=2)  # the subscribe confirmation: subscribed before anything is published
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            m = self._ps.get_message(timeout=0.05)
            if m and m["type"] == "message":
                self.messages.append(json.loads(m["data"]))
                self.arrived.set()

    def wait(self, n: int, timeout: float = 5) -> list[dict]:
        for _ in range(int(timeout / 0.02)):
            if len(self.messages) >= n:
                break
            time.sleep(0.02)
        return list(self.messages)

    def close(self) -> None:
        self._stop.set()
        self._t.join(5)
        self._ps.close()
        self._r.close()


class Host:
    """A socketio server with `manager_cls` on a fresh channel, `clients` local clients and a recorder of local sends."""

    def __init__(self, manager_cls, clients: int, sub_wait: float):
        self.channel = f"test-mq-{uuid.uuid4().hex[:8]}"
        self.sub = Subscriber(self.channel)
        self.mgr = manager_cls(REDIS_URL, channel=self.channel)
        self.server = socketio.Server(client_manager=self.mgr, async_mode="threading")
        self.sids = [self.mgr.connect(f"eio{i}", "/") for i in range(clients)]
        self.eio_of = {sid: f"eio{i}" for i, sid in enumerate(self.sids)}
        #: (eio sid, packet, whether the subscriber had the message when this local send began)
        self.sent: list[tuple[str, str, bool]] = []
        self._sub_wait = sub_wait

        def record(eio_sid, pkt):
            self.sent.append((eio_sid, pkt.data, self.sub.arrived.wait(self._sub_wait)))

        def record_packet(eio_sid, pkt):  # a packet with an ack id: encoded per client (server._send_packet)
            encoded = pkt.encode()
            for p in encoded if isinstance(encoded, list) else [encoded]:
                self.sent.append((eio_sid, p, self.sub.arrived.wait(self._sub_wait)))

        self.server._send_eio_packet = record
        self.server._send_packet = record_packet

    def close(self) -> None:
        self.sub.close()
        if getattr(self.mgr, "redis", None) is not None:
            self.mgr.redis.close()


@pytest.fixture
def hosts():
    need(_redis_up(), "Redis is not reachable at " + REDIS_URL)
    made: list[Host] = []

    def make(manager_cls, clients: int = 3, sub_wait: float = 5.0) -> Host:
        made.append(Host(manager_cls, clients, sub_wait))
        return made[-1]

    yield make
    for h in made:
        h.close()


def test_publishes_before_the_local_fan_out(hosts):
    h = hosts(PublishFirstRedisManager, clients=3)
    h.mgr.emit("page", {"seq": 1}, namespace="/")  # every client of the namespace
    assert [e for e, _, _ in h.sent] == ["eio0", "eio1", "eio2"]
    assert all(had for _, _, had in h.sent), "a local client was sent the event before Redis had it"
    assert [m["event"] for m in h.sub.wait(1)] == ["page"]


def test_the_library_manager_sends_locally_first(hosts):
    """The control: the reason core/mq.py exists (fails, telling us so, if python-socketio changes)."""
    h = hosts(socketio.RedisManager, clients=2, sub_wait=0.3)
    h.mgr.emit("page", {"seq": 1}, namespace="/")
    assert [had for _, _, had in h.sent] == [False, False]
    assert [m["event"] for m in h.sub.wait(1)] == ["page"]  # published, but after the fan-out


def _emits(host: Host) -> None:
    a, b, c = host.sids
    host.mgr.enter_room(a, "/", "meeting:1")
    host.mgr.enter_room(b, "/", "meeting:1")
    host.mgr.emit("to-room", {"n": 1}, namespace="/", to="meeting:1")
    host.mgr.emit("room-skip", {"n": 2}, namespace="/", room="meeting:1", skip_sid=a)
    host.mgr.emit("one", ("x", 3), namespace="/", to=c)
    host.mgr.emit("all-but", None, namespace="/", skip_sid=[b, c])
    host.mgr.emit("bytes", {"blob": b"\x00\x01"}, namespace="/", to=b)
    host.mgr.emit("ack", {"n": 4}, namespace="/", to=c, callback=lambda *args: host.acks.append(args))


def test_same_semantics_as_the_library(hosts):
    seen = {}
    for cls in (socketio.RedisManager, PublishFirstRedisManager):
        h = hosts(cls, clients=3, sub_wait=0)
        h.acks = []
        _emits(h)
        published = h.sub.wait(6)
        for m in published:
            m.pop("host_id")
            if m["callback"]:
                m["callback"][0] = h.sids.index(m["callback"][0])  # sids differ per host
            for k in ("room", "skip_sid"):
                v = m[k]
                m[k] = (
                    [h.sids.index(x) for x in v]
                    if isinstance(v, list)
                    else (h.sids.index(v) if v in h.sids else v)
                )
        local = [(e, d) for e, d, _ in h.sent]
        # The ack of the last packet, as the server handles a client's ACK packet: the callback runs here.
        ack_id = int(local[-1][1].split("[", 1)[0][1:])
        h.mgr.trigger_callback(h.sids[2], ack_id, ["done"])
        seen[cls.__name__] = (published, local, h.acks)
    assert seen["PublishFirstRedisManager"] == seen["RedisManager"]
    published, local, acks = seen["RedisManager"]
    assert [m["event"] for m in published] == ["to-room", "room-skip", "one", "all-but", "bytes", "ack"]
    assert [e for e, _ in local] == [
        "eio0", "eio1",  # to-room
        "eio1",  # room-skip (a skipped)
        "eio2",  # one
        "eio0",  # all-but
        "eio1", "eio1",  # bytes: the packet and its attachment
        "eio2",  # ack
    ]  # fmt: skip
    assert acks == [("done",)]


def test_client_manager_only_on_redis():
    assert client_manager(None) is None
    mgr = client_manager(REDIS_URL)
    assert isinstance(mgr, PublishFirstRedisManager)
    assert mgr.channel == "flask-socketio"  # the channel core/tasks.py's worker emitter publishes on


def test_own_fan_out_yields_every_chunk(hosts, monkeypatch):
    """This process's own fan-out lets other green threads run every FANOUT_CHUNK clients; nothing else yields."""
    from meeting_server.core import mq

    monkeypatch.setattr(mq, "FANOUT_CHUNK", 2)
    h = hosts(PublishFirstRedisManager, clients=5)
    log: list[str] = []
    h.server.sleep = lambda seconds=0: log.append(f"yield {seconds}")
    recorded = h.server._send_eio_packet
    h.server._send_eio_packet = lambda eio_sid, pkt: (log.append(eio_sid), recorded(eio_sid, pkt))
    h.mgr.emit("page", {"seq": 1}, namespace="/")
    assert log == ["eio0", "eio1", "yield 0", "eio2", "eio3", "yield 0", "eio4"]
    assert all(had for _, _, had in h.sent)  # still published first

    # Another process's message (the listener's path) and a plain walk over a room do not yield.
    log.clear()
    h.mgr._handle_emit(
        {
            "method": "emit",
            "event": "page",
            "data": [{"seq": 2}],
            "namespace": "/",
            "room": None,
            "host_id": "x",
        }
    )
    assert list(h.mgr.get_participants("/", None)) and log == ["eio0", "eio1", "eio2", "eio3", "eio4"]
