"""Against a real `meeting-server serve` (eventlet): foreign origins cannot open Socket.IO, refusals say why.

By default (MEETING_CORS_ORIGINS unset) only the server's own origin may open the Socket.IO handshake, by
websocket or by long-polling; a page on another site cannot make a visitor's browser join the room.
(The configured list is tested in-process in test_transport.py.) A refused connection carries the
error code in `data`, which the front-ends read (`static/common/socket.js`, `refusal`).
"""

from __future__ import annotations

import base64
import os
import socket

import pytest

from tests.live.server import ORG_PASSWORD, ORG_USER, LiveServer, Tablet

pytestmark = pytest.mark.integration


def _ws_status(port: int, origin: str | None) -> int:
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    if origin:
        lines.append(f"Origin: {origin}")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        status_line = s.recv(4096).split(b"\r\n", 1)[0]
    return int(status_line.split()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = LiveServer(tmp_path_factory.mktemp("origins") / "data")
    try:
        srv.prepare().start()
        yield srv
    finally:
        srv.stop()


def test_foreign_origin_refused_by_default(server):
    port = server.port
    assert _ws_status(port, "http://evil.example") == 400
    assert _ws_status(port, f"http://127.0.0.1:{port}") == 101  # the page the server itself served
    assert _ws_status(port, None) == 101  # not a browser: no Origin header
    status, headers, _ = server.request(
        "GET", "/socket.io/?EIO=4&transport=polling", headers={"Origin": "http://evil.example"}
    )
    assert status == 400 and "Access-Control-Allow-Origin" not in headers
    status, _, _ = server.request(
        "GET", "/socket.io/?EIO=4&transport=polling", headers={"Origin": f"http://127.0.0.1:{port}"}
    )
    assert status == 200


def test_refused_connection_says_why(server):
    token = server.login(ORG_USER, ORG_PASSWORD)
    mid = server.ok("POST", "/api/v1/meetings", {"title": "拒绝 Refusal"}, token, 201)["id"]
    seat = server.ok("POST", f"/api/v1/meetings/{mid}/attendees", {"name": "王芳"}, token, 201)
    session = server.ok("POST", "/api/v1/join", {"token": seat["join_token"]})["session_token"]
    server.ok("POST", f"/api/v1/meetings/{mid}/attendees/{seat['id']}/release", {}, token)  # revoke the seat
    t = Tablet(server.url, session)
    why: list = []
    t.sio.on("connect_error", why.append)
    with pytest.raises(Exception):  # noqa: B017 - python-socketio's ConnectionError
        t.sio.connect(server.url, auth=t.auth, transports=["websocket"], wait_timeout=10)
    assert why and why[0]["data"]["code"] == "bad_token", why
