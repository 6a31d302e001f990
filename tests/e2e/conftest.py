"""Browser tests: a real `meeting-server serve` (with its worker) and Debian's chromium driven by Playwright.

Nothing is downloaded: chromium is /usr/bin/chromium (`apt-get install chromium`), never
`playwright install`. Without it the tests skip, except under CI=true, where they fail.
Screenshots go to artifacts/ (gitignored).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.serverproc import REPO, ServerProcess

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = REPO / "artifacts"
PASSWORD = "e2e-password-123"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def need_chromium() -> None:
    if Path(CHROMIUM).exists():
        return
    what = f"{CHROMIUM} is missing (apt-get install chromium)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {what}")
    pytest.skip(what)


def shot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def make_pdf(pages: int, title: str = "年度工作报告 Annual report") -> bytes:
    """A PDF with a big page number on each page, Chinese text with an embedded font."""
    import pymupdf

    doc = pymupdf.open()
    font = pymupdf.Font("cjk")
    for i in range(pages):
        page = doc.new_page(width=595, height=842)
        page.insert_font(fontname="cjk", fontbuffer=font.buffer)
        page.insert_text((60, 90), f"{title} · {i + 1}/{pages}", fontname="cjk", fontsize=22)
        page.draw_rect(pymupdf.Rect(60, 140, 535, 760), color=(0.05, 0.3, 0.6), width=4)
        page.insert_text((200, 520), str(i + 1), fontname="cjk", fontsize=200, color=(0.05, 0.3, 0.6))
    doc.subset_fonts()
    data = doc.tobytes()
    doc.close()
    return data


def create_schema(data_dir: Path) -> None:
    """Create the database from the models and stamp it as migrated.

    These tests are about the browser; the models are the truth while other developers
    change them in parallel and the single initial migration is regenerated only at the
    end (tests/core/test_migrations.py checks that it matches; tests/integration runs
    `serve` on the real migration). With the migration in step this changes nothing.
    """
    code = (
        "import sys; from meeting_server.config import Settings; from meeting_server.core import db, migrate;"
        "from meeting_server import models; from meeting_server.core.db import Base;"
        "from alembic import command;"
        "s = Settings.from_env().ensure_dirs(); db.configure(s.database_url); Base.metadata.create_all(db.engine);"
        "command.stamp(migrate.alembic_config(s.database_url), 'head')"
    )
    import subprocess
    import sys

    env = {**os.environ, "MEETING_DATA_DIR": str(data_dir)}
    subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=REPO, check=True, timeout=120, capture_output=True
    )


# Package scope, not session: Playwright's sync API keeps an asyncio loop running in this thread
# while it lives, and later tests (asyncio.run in clients, pyHanko) must not inherit it.
@pytest.fixture(scope="package")
def server(tmp_path_factory) -> Iterator[ServerProcess]:
    need_chromium()
    data = tmp_path_factory.mktemp("e2e-data")
    srv = ServerProcess(data, env={"MEETING_SECRET_KEY": "e2e-secret-key-0123456789abcdef"})
    create_schema(data)
    srv.cli("create-user", "admin", "--password", PASSWORD)
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="package")
def browser(server) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        try:
            yield b
        finally:
            b.close()


class Room:
    """A meeting set up over HTTP: chair + attendees with join links, a ready document, a poll."""

    def __init__(
        self, server: ServerProcess, token: str, meeting: dict, seats: list[dict], doc: dict, poll: dict
    ):
        self.server, self.token, self.meeting, self.seats, self.doc, self.poll = (
            server,
            token,
            meeting,
            seats,
            doc,
            poll,
        )

    @property
    def id(self) -> int:
        return self.meeting["id"]

    def console_url(self) -> str:
        return f"{self.server.url}/console/#meeting={self.id}&org=1"


def build_room(
    server: ServerProcess, pages: int = 12, names: tuple[str, ...] = ("李委员", "张委员", "王委员")
) -> Room:
    token = server.login("admin", PASSWORD)
    status, meeting = server.json(
        "POST", "/api/v1/meetings", {"title": "第十二届理事会第三次会议", "location": "一号会议室"}, token
    )
    assert status == 201, meeting
    mid = meeting["id"]
    seats = []
    for i, name in enumerate(names, start=1):
        status, a = server.json(
            "POST", f"/api/v1/meetings/{mid}/attendees", {"name": name, "seat": f"A{i:02d}"}, token
        )
        assert status == 201, a
        seats.append(a)
    status, item = server.json(
        "POST", f"/api/v1/meetings/{mid}/agenda", {"title": "审议年度工作报告", "duration_minutes": 30}, token
    )
    assert status == 201, item
    status, doc = server.upload(
        f"/api/v1/meetings/{mid}/documents",
        "report.pdf",
        make_pdf(pages),
        token,
        title="年度工作报告",
        agenda_item_id=str(item["id"]),
    )
    assert status in (201, 202), doc
    doc = server.wait_document(doc["id"], token)
    assert doc["status"] == "ready", doc
    status, poll = server.json(
        "POST",
        f"/api/v1/meetings/{mid}/polls",
        {"title": "关于年度预算方案的表决", "kind": "motion", "secret": True},
        token,
    )
    assert status == 201, poll
    return Room(server, token, meeting, seats, doc, poll)


#: Pages opened by the running test, screenshotted into artifacts/ when it fails.
OPEN_PAGES: list[tuple[str, Any]] = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        for i, (name, page) in enumerate(OPEN_PAGES):
            print(f"--- {name}: console and failed requests ---")
            print("\n".join(getattr(page, "log", [])[-40:]))
            try:
                if not page.is_closed():
                    shot(page, f"FAILED-{item.name}-{i}-{name}")
            except Exception:  # the page may be gone; the failure itself matters more
                pass


@pytest.fixture
def open_page(browser):
    """A factory of pages, each in its own browser context (a separate device); closed after the test."""
    contexts = []

    def factory(**kw):
        ctx, page = new_page(browser, **kw)
        contexts.append(ctx)
        return page

    OPEN_PAGES.clear()
    yield factory
    OPEN_PAGES.clear()
    for ctx in contexts:
        try:
            ctx.close()
        except Exception:  # already closed with the browser
            pass


def new_page(
    browser,
    *,
    name: str = "page",
    width: int = 1280,
    height: int = 800,
    lang: str | None = None,
    token: str | None = None,
):
    ctx = browser.new_context(viewport={"width": width, "height": height}, device_scale_factor=1)
    ctx.set_default_timeout(15_000)
    script = ""
    if lang:
        script += f"localStorage.setItem('meeting.lang', {json.dumps(lang)});"
    if token:
        script += f"localStorage.setItem('meeting.org.token', {json.dumps(token)});"
    if script:
        ctx.add_init_script(
            f"if (!sessionStorage.getItem('init-done')) {{ {script} sessionStorage.setItem('init-done', '1'); }}"
        )
    page = ctx.new_page()
    OPEN_PAGES.append((name, page))
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors  # type: ignore[attr-defined]
    log: list[str] = []
    page.on("console", lambda m: log.append(f"{m.type}: {m.text}"))
    page.on(
        "response",
        lambda r: log.append(f"HTTP {r.status} {r.request.method} {r.url}") if r.status >= 400 else None,
    )
    page.log = log  # type: ignore[attr-defined]
    return ctx, page


def wait_until(fn, timeout: float = 10.0, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")
