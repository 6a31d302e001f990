"""The Socket.IO client manager of a server process on Redis: publish to the other processes first.

python-socketio's `PubSubManager.emit` (5.18.1, which `RedisManager` inherits) sends an event to
the clients of THIS process first and only then publishes it to Redis for the other processes. A
broadcast to a room of 1,000 tablets on the presenter's process therefore reaches every other
process only after the whole local fan-out (tens of ms): the tablets on the other processes are
always that much behind. `PublishFirstRedisManager` does the two steps the other way round: one
`PUBLISH` (a round trip of well under a millisecond on loopback), then the local fan-out, so the
other processes fan out at the same time as this one.

Everything else is the library's: the message it publishes is built exactly as in
`PubSubManager.emit` (so processes running the stock manager, and the worker's write-only
`RedisManager` emitter in core/tasks.py, understand each other), the local send goes through the
same `_handle_emit` the listener thread uses for messages of other processes, and `skip_sid`,
callbacks, rooms and `to` mean what they mean there. Keep `emit` in step with the library's when
python-socketio is upgraded (tests/scale/test_mq.py compares the two).
"""

from __future__ import annotations

import base64
import os
import threading
from typing import Any

import socketio
from socketio.packet import Packet

#: Local clients written to between two yields to the other green threads, during this process's
#: own fan-out (`emit`). A flip to 1,000 local tablets is about 20-40 ms of `send` calls; without a
#: yield the presenter's next command (already read from its socket) waits for all of it before
#: its first database round trip, with them the two overlap. 0: never yield.
FANOUT_CHUNK = int(os.environ.get("MEETING_FANOUT_CHUNK", "250"))  # env: for before/after benchmarks


class PublishFirstRedisManager(socketio.RedisManager):
    """A `RedisManager` whose `emit` publishes to Redis before it sends to the local clients."""

    name = "redis-publish-first"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Two emits of this process must reach the local clients in the order they reached Redis
        # (the other processes see the Redis order). Publishing yields to other green threads
        # while it waits for Redis's answer, so without this lock emit B could publish after emit
        # A yet fan out locally before it. Created here, after `eventlet.monkey_patch()` (cli.py
        # patches before `create_app`): a green lock under eventlet/gevent, a real one otherwise.
        self._order = threading.Lock()
        # Set while this green thread (`threading.local` is per green thread once patched) runs the
        # local part of its own `emit`: only that loop yields, not every walk over a room.
        self._chunked = threading.local()

    def get_participants(self, namespace: str, room: Any):  # noqa: ANN201 - a generator, as the library's
        """The library's participants; during this process's own fan-out, a yield every `FANOUT_CHUNK`.

        The library iterates over a copy of the room, so a client joining or leaving while this
        green thread is away changes nothing here (a client that left gets nothing: its socket is gone).
        """
        chunk = getattr(self._chunked, "size", 0)
        if not chunk:
            yield from super().get_participants(namespace, room)
            return
        for n, item in enumerate(super().get_participants(namespace, room), start=1):
            yield item
            if n % chunk == 0:
                self.server.sleep(0)

    def emit(  # noqa: PLR0913 - the signature of `PubSubManager.emit`
        self,
        event: str,
        data: Any,
        namespace: str | None = None,
        room: Any = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: Any = None,
        **kwargs: Any,
    ) -> None:
        room = to or room
        if kwargs.get("ignore_queue"):  # local only: the library's own path
            return super().emit(
                event, data, namespace=namespace, room=room, skip_sid=skip_sid, callback=callback, **kwargs
            )
        # From here to `message`: as in `PubSubManager.emit` (python-socketio 5.18.1).
        namespace = namespace or "/"
        if callback is not None:
            if self.server is None:
                raise RuntimeError("Callbacks can only be issued from the context of a server.")
            if room is None:
                raise ValueError("Cannot use callback without a room set.")
            # The ack comes back to this host (`host_id`), from a local client or through Redis.
            callback = (room, namespace, self._generate_ack_id(room, callback))
        data = list(data) if isinstance(data, tuple) else [data]
        binary = Packet.data_is_binary(data)
        if binary:
            data, attachments = Packet.deconstruct_binary(data)
            data = [data, *[base64.b64encode(a).decode() for a in attachments]]
        message = {
            "method": "emit",
            "event": event,
            "data": data,
            "binary": binary,
            "namespace": namespace,
            "room": room,
            "skip_sid": skip_sid,
            "callback": callback,
            "host_id": self.host_id,
        }
        with self._order:
            try:
                # The other processes first. `RedisManager._publish` retries once and logs (does not
                # raise) when Redis is down: the local clients are served all the same.
                self._publish(message)
            finally:
                # Then this process's clients, exactly as the listener thread serves another
                # process's message (our own comes back from Redis too and is skipped by `host_id`).
                # In chunks: other green threads run in between (still in order: the lock is held).
                self._chunked.size = FANOUT_CHUNK
                try:
                    self._handle_emit(message)
                finally:
                    self._chunked.size = 0
        return None


def client_manager(redis_url: str | None) -> PublishFirstRedisManager | None:
    """The manager of a server process: on Redis when `redis_url` is set, else None (socketio's in-process one).

    The channel is Flask-SocketIO's default, the one core/tasks.py's worker emitter publishes on.
    """
    if not redis_url:
        return None
    from .tasks import SOCKETIO_CHANNEL

    return PublishFirstRedisManager(redis_url, channel=SOCKETIO_CHANNEL)
