"""The websocket frames `core.sockets` writes directly (eventlet), checked against a websocket parser."""

from __future__ import annotations

import pytest
from websockets.frames import Frame, Opcode

from meeting_server.core.sockets import _ws_frame, install_direct_send


def _parse(data: bytes) -> Frame:
    from websockets.streams import StreamReader

    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    gen = Frame.parse(reader.read_exact, mask=False)
    try:
        next(gen)
        while True:
            gen.send(None)
    except StopIteration as stop:
        return stop.value


@pytest.mark.parametrize("size", [0, 1, 125, 126, 1000, 65535, 65536, 200_000])
def test_frames_of_every_length_encoding_parse_back(size):
    text = '42["page",' + "é" * (size // 2) + "x" * (size % 2) + "]"
    f = _parse(_ws_frame(text))
    assert f.opcode is Opcode.TEXT and f.fin and not (f.rsv1 or f.rsv2 or f.rsv3)
    assert f.data.decode("utf-8") == text


def test_not_installed_outside_eventlet(app):
    from meeting_server.extensions import socketio

    eio = socketio.server.eio
    assert eio.async_mode != "eventlet"
    assert install_direct_send(eio) is False
    assert not getattr(eio, "_direct_send", False)
