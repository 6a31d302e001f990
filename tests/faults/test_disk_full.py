"""The disk fills up while a document is uploaded: a clear 507, no half-written document, nothing left behind.

Two ways: the storage layer's writes fail with ENOSPC part-way through (monkeypatched: runs anywhere),
and a real 4 MB tmpfs as the data dir (needs root to mount; skipped otherwise).
"""

from __future__ import annotations

import errno
import os
import subprocess
import types
from pathlib import Path

import pytest

from tests.conftest import Api, create_meeting, login, make_pdf, make_settings, make_user


def upload(api: Api, url: str, data: bytes, filename: str):
    """A multipart upload encoded here (the test client spools big bodies to a file it never closes)."""
    boundary = "----faults" + os.urandom(6).hex()
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return api.client.post(
        url,
        data=body,
        content_type=f"multipart/form-data; boundary={boundary}",
        headers={"Authorization": f"Bearer {api.token}"},
    )


def _leftovers(data_dir: Path) -> tuple[list[str], list[str]]:
    blobs = sorted(p.name for p in (data_dir / "blobs").rglob("*") if p.is_file())
    tmp = sorted(p.name for p in (data_dir / "tmp").iterdir())
    return blobs, tmp


class _FullDisk:
    """A file whose writes fail with ENOSPC once `room` bytes were written."""

    def __init__(self, f, room: int):
        self.f, self.room = f, room

    def write(self, data: bytes) -> int:
        if len(data) > self.room:
            self.f.write(data[: self.room])
            self.room = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return self.f.write(data)

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


def test_enospc_while_spooling_the_upload(room, settings, monkeypatch):
    from meeting_server.core import storage

    mid = room.meeting["id"]
    before = _leftovers(settings.data_dir)
    fake_os = types.SimpleNamespace(**{k: getattr(os, k) for k in dir(os) if not k.startswith("__")})
    fake_os.fdopen = lambda fd, mode="r", *a, **k: _FullDisk(os.fdopen(fd, mode, *a, **k), 256 * 1024)
    monkeypatch.setattr(storage, "os", fake_os)
    r = upload(
        room.org, f"/api/v1/meetings/{mid}/documents", make_pdf(3) + b"\n%" + b"x" * 3_000_000, "big.pdf"
    )
    body = r.get_json()
    assert r.status_code == 507, body
    assert body["error"]["code"] == "storage_failed" and "disk" in body["error"]["message"]
    assert _leftovers(settings.data_dir) == before  # no partial blob, no spool file
    monkeypatch.undo()
    assert room.org.get(f"/api/v1/meetings/{mid}/documents").get_json()["documents"] == []
    audit = room.org.get(f"/api/v1/meetings/{mid}/audit").get_json()["entries"]
    assert "documents.upload" not in [e["command"] for e in audit]
    # The disk has room again: the same upload now works.
    r = room.org.upload(f"/api/v1/meetings/{mid}/documents", make_pdf(3), "again.pdf")
    assert r.status_code == 202
    assert room.org.get(f"/api/v1/documents/{r.get_json()['id']}").get_json()["status"] == "ready"


@pytest.fixture
def tiny_disk(tmp_path):
    """A 4 MB tmpfs, unmounted at the end; skipped where mounting is not allowed."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; test_enospc_while_spooling_the_upload covers the same path")
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], capture_output=True, timeout=20
    )
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.decode(errors='replace').strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True, timeout=20)


def test_real_full_disk(tmp_path, tiny_disk):
    from meeting_server import create_app
    from meeting_server.core import db
    from meeting_server.core.db import Base

    data = tiny_disk / "data"
    app = create_app(
        make_settings(tmp_path, data_dir=data, database_url=f"sqlite:///{tmp_path / 'db.sqlite'}")
    )
    try:
        Base.metadata.create_all(db.engine)
        make_user(app, "full")
        org: Api = login(app.test_client(), "full")
        m = create_meeting(org)
        before = _leftovers(data)
        big = make_pdf(2) + b"\n%" + os.urandom(6 * 1024 * 1024)  # larger than the whole disk
        r = upload(org, f"/api/v1/meetings/{m['id']}/documents", big, "big.pdf")
        assert r.status_code == 507, r.get_json()
        assert r.get_json()["error"]["code"] == "storage_failed"
        assert _leftovers(data) == before
        assert org.get(f"/api/v1/meetings/{m['id']}/documents").get_json()["documents"] == []
        r = org.upload(f"/api/v1/meetings/{m['id']}/documents", make_pdf(2), "small.pdf")
        assert r.status_code == 202, r.get_json()
        doc = org.get(f"/api/v1/documents/{r.get_json()['id']}").get_json()
        assert doc["status"] in ("ready", "failed"), doc  # never stuck in "processing"
    finally:
        db.engine.dispose()
