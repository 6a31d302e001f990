"""Minutes and archive from a real `meeting-server serve` (eventlet) with its worker process."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from tests.conftest import make_pdf
from tests.serverproc import REPO, ServerProcess

pytestmark = pytest.mark.integration


def _schema(data_dir) -> None:
    """The schema of the models, stamped as migrated (the lead regenerates the migration when merging)."""
    code = (
        "import warnings; warnings.filterwarnings('ignore');"
        "from alembic import command; from meeting_server.config import Settings;"
        "from meeting_server.core import db, migrate; from meeting_server import models;"
        "from meeting_server.core.db import Base; s = Settings.from_env().ensure_dirs();"
        "Base.metadata.create_all(db.make_engine(s.database_url));"
        "command.stamp(migrate.alembic_config(s.database_url), 'head')"
    )
    subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        check=True,
        timeout=120,
        env={**os.environ, "MEETING_DATA_DIR": str(data_dir)},
    )


@pytest.fixture
def server(tmp_path):
    srv = ServerProcess(tmp_path / "data")
    srv.data_dir.mkdir(parents=True)
    _schema(srv.data_dir)
    srv.cli("create-user", "admin", "--password", "password-123")
    try:
        yield srv.start()
    finally:
        srv.stop()


def _poll(srv, path: str, token: str, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while True:
        status, headers, body = srv.request("GET", path, token=token)
        if status != 202 or time.monotonic() > deadline:
            return status, headers, body
        time.sleep(float(headers.get("Retry-After", "1")))


def test_minutes_and_archive_through_the_worker(server, tmp_path):
    srv = server
    _, body = srv.json("POST", "/api/v1/auth/login", {"username": "admin", "password": "password-123"})
    tok = body["token"]
    _, m = srv.json("POST", "/api/v1/meetings", {"title": "第三次主任会议"}, tok)
    mid = m["id"]
    srv.json("POST", f"/api/v1/meetings/{mid}/attendees", {"name": "王建国", "role": "chair"}, tok)
    status, _ = srv.upload(f"/api/v1/meetings/{mid}/documents", "a.pdf", make_pdf(2), tok)
    assert status in (201, 202)
    assert srv.json("POST", f"/api/v1/meetings/{mid}/start", None, tok)[0] == 200
    assert (
        srv.json("POST", f"/api/v1/meetings/{mid}/minutes/items", {"notes": "记录", "base_revision": 0}, tok)[
            0
        ]
        == 200
    )
    assert srv.json("POST", f"/api/v1/meetings/{mid}/end", None, tok)[0] == 200
    # a plain GET gets the PDF: the route waits for the worker
    status, headers, pdf = _poll(srv, f"/api/v1/meetings/{mid}/minutes", tok)
    assert status == 200 and headers["Content-Type"] == "application/pdf" and pdf[:5] == b"%PDF-"
    status, headers, data = _poll(srv, f"/api/v1/meetings/{mid}/archive", tok)
    assert status == 200 and headers["Content-Type"] == "application/zip", (status, data[:300], srv.log())
    path = tmp_path / "archive.zip"
    path.write_bytes(data)
    # verify needs nothing but the file: no settings, no server
    out = subprocess.run(
        [sys.executable, "-m", "meeting_server.cli", "verify", str(path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "is intact" in out.stdout
