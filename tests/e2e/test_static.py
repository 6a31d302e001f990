"""The front-ends are served as the browser needs them (no browser needed here)."""

from __future__ import annotations


def test_pages_and_service_worker_are_served(client):
    for app in ("tablet", "console", "organizer"):
        r = client.get(f"/{app}/")
        assert r.status_code == 200 and b'type="module"' in r.data
        assert "script-src 'self'" in r.headers["Content-Security-Policy"]
        r.close()
    # The service worker lives inside its scope (/tablet/), so it may control the tablet page.
    r = client.get("/tablet/sw.js")
    assert r.status_code == 200
    assert r.mimetype == "text/javascript"
    assert r.headers["Cache-Control"] == "no-cache"
    assert b"tablet-pages-v1" in r.data
    r.close()


def test_every_shell_file_of_the_service_worker_exists(client):
    import re

    from tests.serverproc import REPO

    sw = (REPO / "static" / "tablet" / "sw.js").read_text(encoding="utf-8")
    shell = re.search(r"const SHELL = \[(.*?)\];", sw, re.S).group(1)
    files = re.findall(r'"(/static/[^"]+)"', shell)
    assert len(files) > 10
    for path in files:
        if path.startswith("/static/vendor/") and not (REPO / path.lstrip("/")).exists():
            continue  # fetched by scripts/fetch_vendor.sh
        r = client.get(path)
        assert r.status_code == 200, path
        r.close()
    # Every module the tablet imports is in the shell, so it starts offline.
    modules = {
        f"/static/{p.relative_to(REPO / 'static').as_posix()}" for p in (REPO / "static").glob("*/*.js")
    }
    needed = {
        m
        for m in modules
        if m.startswith(("/static/common/", "/static/tablet/")) and not m.endswith("/sw.js")
    }
    needed -= {"/static/common/login.js", "/static/common/session.js"}  # organizer and console only
    assert needed <= set(files), sorted(needed - set(files))
