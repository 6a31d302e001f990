"""What every HTTP answer carries: security headers; no CORS for foreign origins; no cookie authentication.

CSRF: the organizer UI, the console and the tablets send `Authorization: Bearer <token>` from
JavaScript; the server never sets or reads a cookie for authentication, so a forged cross-site
request (which carries cookies, never the header) is anonymous. `test_no_route_authenticates_by_cookie`
proves it for every route.
"""

from __future__ import annotations

import io
import re

import pytest

from tests.conftest import make_pdf

FOREIGN = "http://evil.example"


def _pages(room_with_doc):
    r, d = room_with_doc, room_with_doc.document
    aid = r.seats["attendee"]["id"]
    mid = r.meeting["id"]
    return {
        "html organizer": ("/organizer/", None),
        "html tablet": ("/tablet/", None),
        "html console": ("/console/", None),
        "javascript": ("/static/common/dom.js", None),
        "json": (f"/api/v1/meetings/{mid}", r.org.token),
        "json error": ("/api/v1/meetings/999999", r.org.token),
        "json 401": (f"/api/v1/meetings/{mid}", None),
        "health": ("/healthz", None),
        "jpeg page": (f"/api/v1/documents/{d['id']}/pages/1", r.org.token),
        "png qr": (f"/api/v1/meetings/{mid}/attendees/{aid}/qr.png", r.org.token),
        "redirect": ("/", None),
        "html 404": ("/nowhere", None),
    }


def _csp(value: str) -> dict[str, list[str]]:
    out = {}
    for part in value.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


@pytest.mark.parametrize(
    "kind",
    [
        "html organizer",
        "html tablet",
        "html console",
        "javascript",
        "json",
        "json error",
        "json 401",
        "health",
        "jpeg page",
        "png qr",
        "redirect",
        "html 404",
    ],
)
def test_security_headers(room_with_doc, kind):
    path, token = _pages(room_with_doc)[kind]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    r = room_with_doc.app.test_client().get(path, headers=headers)
    r.close()
    h = r.headers
    assert h["X-Content-Type-Options"] == "nosniff", kind
    assert h["Referrer-Policy"] in (
        "no-referrer",
        "same-origin",
        "strict-origin",
        "strict-origin-when-cross-origin",
    )
    assert h["X-Frame-Options"] == "DENY"
    csp = _csp(h["Content-Security-Policy"])
    assert csp["frame-ancestors"] == ["'none'"]
    scripts = csp.get("script-src", csp.get("default-src"))
    assert scripts == ["'self'"], scripts  # no 'unsafe-inline', no 'unsafe-eval', no CDN
    assert "'unsafe-inline'" not in csp.get("style-src", [])
    assert (
        csp["default-src"] == ["'self'"]
        and csp["base-uri"] == ["'self'"]
        and csp["form-action"] == ["'self'"]
    )
    assert "Access-Control-Allow-Origin" not in h
    assert "Set-Cookie" not in h


@pytest.mark.parametrize("app_name", ["organizer", "tablet", "console"])
def test_pages_need_no_inline_script_or_style(client, app_name):
    """The CSP forbids inline code: every front-end page loads its scripts from files."""
    r = client.get(f"/{app_name}/")
    html = r.get_data(as_text=True)
    r.close()
    for tag in re.findall(r"<script\b[^>]*>(.*?)</script>", html, flags=re.S | re.I):
        assert tag.strip() == "", "inline <script> in " + app_name
    assert not re.search(r"\son[a-z]+\s*=", html, flags=re.I), "inline event handler in " + app_name
    assert not re.search(r"\sstyle\s*=", html, flags=re.I), "inline style attribute in " + app_name
    assert "<style" not in html.lower()
    assert not re.search(r"src=[\"']https?://", html), "a script or image from another host"


def test_cors_closed_for_foreign_origin(room):
    mid = room.meeting["id"]
    c = room.app.test_client()
    auth = {"Authorization": f"Bearer {room.org.token}", "Origin": FOREIGN}
    r = c.get(f"/api/v1/meetings/{mid}", headers=auth)
    assert r.status_code == 200 and "Access-Control-Allow-Origin" not in r.headers
    pre = c.options(
        f"/api/v1/meetings/{mid}",
        headers={
            "Origin": FOREIGN,
            "Access-Control-Request-Method": "DELETE",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert "Access-Control-Allow-Origin" not in pre.headers
    assert "Access-Control-Allow-Headers" not in pre.headers
    login = c.post(
        "/api/v1/auth/login",
        json={"username": "org1", "password": "password-123"},
        headers={"Origin": FOREIGN},
    )
    assert "Access-Control-Allow-Origin" not in login.headers


def _polling_handshake(app, origin: str | None):
    headers = {"Origin": origin} if origin else {}
    return app.test_client().get("/socket.io/?EIO=4&transport=polling", headers=headers)


def test_socketio_origin_closed_by_default(app):
    assert _polling_handshake(app, FOREIGN).status_code == 400
    assert _polling_handshake(app, "http://localhost").status_code == 200  # same origin (Host: localhost)
    assert _polling_handshake(app, None).status_code == 200  # not a browser


def test_socketio_origins_configurable(tmp_path):
    from meeting_server import create_app
    from meeting_server.core import db
    from tests.conftest import make_settings

    app = create_app(make_settings(tmp_path, cors_origins=("https://hall-display.example",)))
    try:
        assert _polling_handshake(app, "https://hall-display.example").status_code == 200
        assert _polling_handshake(app, FOREIGN).status_code == 400
    finally:
        db.engine.dispose()


def test_cors_origins_setting_parsed():
    from meeting_server.config import Settings

    s = Settings.from_env(
        {"MEETING_CORS_ORIGINS": "https://a.example, https://b.example", "MEETING_DATA_DIR": "/tmp/x"}
    )
    assert s.cors_origins == ("https://a.example", "https://b.example")
    assert Settings.from_env({"MEETING_DATA_DIR": "/tmp/x"}).cors_origins == ()


def test_no_route_authenticates_by_cookie(room_with_doc):
    """Every route that needs credentials answers 401 to a request carrying valid tokens only as cookies."""
    from meeting_server.core.commands import PUBLIC, registry
    from tests.security.world import http_path

    r = room_with_doc
    seat = r.join("chair").token
    ids = {
        "meeting_id": r.meeting["id"],
        "document_id": r.document["id"],
        "attendee_id": r.seats["attendee"]["id"],
        "poll_id": 1,
        "item_id": 1,
        "export_id": 1,
        "session_id": 1,
        "n": 1,
        "code": "X",
    }
    c = r.app.test_client()
    for name, value in (
        ("session", r.org.token),
        ("token", r.org.token),
        ("access_token", r.org.token),
        ("Authorization", f"Bearer {r.org.token}"),
        ("session_token", seat),
        ("seat", seat),
    ):
        c.set_cookie(name, value)
    pdf = make_pdf(1)
    wrong = []
    for cmd in registry.commands.values():
        if not cmd.http or PUBLIC in cmd.roles:
            continue
        method = cmd.http[0]
        kw = {"data": {"file": (io.BytesIO(pdf), "x.pdf")}} if cmd.multipart else {}
        if method not in ("GET", "DELETE") and not cmd.multipart:
            kw = {"json": {}}
        resp = c.open(http_path(cmd, ids), method=method, **kw)
        if resp.status_code != 401:
            wrong.append((cmd.name, resp.status_code))
    assert not wrong, wrong
    from meeting_server.extensions import socketio

    assert not socketio.test_client(r.app, flask_test_client=c).is_connected()  # cookies, no auth


def test_login_and_join_set_no_cookie(room, client):
    r = client.post("/api/v1/auth/login", json={"username": "org1", "password": "password-123"})
    assert r.status_code == 200 and "Set-Cookie" not in r.headers
    r = client.post("/api/v1/join", json={"token": room.seats["attendee"]["join_token"]})
    assert r.status_code == 200 and "Set-Cookie" not in r.headers
