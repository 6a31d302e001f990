"""SIGKILL the server (and its worker) in the middle of an upload, a render and an archive build: nothing lost.

Each test drives a real `meeting-server serve` (with its worker) over HTTP, kills the whole process group
with SIGKILL at the worst moment, starts it again on the same data dir, and checks that what was
acknowledged is all there, that nothing half-written is visible, and that the interrupted work completes.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from meeting_server.documents import jobs
from tests.conftest import make_pdf
from tests.faults.conftest import kill_tree

pytestmark = pytest.mark.integration


def _blobs(srv) -> set[str]:
    return {p.name for p in (srv.data_dir / "blobs").rglob("*") if p.is_file()}


def _meeting(srv, title: str = "故障 Faults") -> int:
    return srv.ok("POST", "/api/v1/meetings", {"title": title}, srv.token, 201)["id"]


def _start_upload(srv, mid: int, body_size: int) -> tuple[socket.socket, bytes]:
    """Open a raw HTTP upload of a `body_size`-byte PDF; returns the socket and the rest to send."""
    boundary = "----killme"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.pdf"\r\n'
        "Content-Type: application/pdf\r\n\r\n"
    ).encode()
    pdf = make_pdf(2)
    tail = f"\r\n--{boundary}--\r\n".encode()
    rest = b"\n%" + b"0" * (body_size - len(pdf) - 2)
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
    sock.sendall(
        (
            f"POST /api/v1/meetings/{mid}/documents HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\n"
            f"Authorization: Bearer {srv.token}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {len(head) + body_size + len(tail)}\r\n\r\n"
        ).encode()
        + head
        + pdf
    )
    return sock, rest + tail


def _after_restart(srv, mid: int, before: set[str]) -> str:
    """Nothing half-written: either no document, or one complete document that renders."""
    docs = srv.ok("GET", f"/api/v1/meetings/{mid}/documents", None, srv.token)["documents"]
    audit = [e["command"] for e in srv.ok("GET", f"/api/v1/meetings/{mid}/audit", None, srv.token)["entries"]]
    if not docs:
        assert "documents.upload" not in audit
        # Blobs are written before the row is committed: a killed upload may leave a complete,
        # unreferenced blob (garbage, never a half file under a real name).
        for name in _blobs(srv) - before:
            import hashlib

            path = next((srv.data_dir / "blobs").rglob(name))
            assert hashlib.sha256(path.read_bytes()).hexdigest() == name, "a half-written blob"
        return "no document"
    assert len(docs) == 1 and audit.count("documents.upload") == 1
    assert srv.wait_document(docs[0]["id"], srv.token)["status"] in ("ready", "failed")
    return "one complete document"


def test_sigkill_during_upload(fault_server):
    srv = fault_server
    mid = _meeting(srv)
    ids = [
        srv.ok("POST", f"/api/v1/meetings/{mid}/agenda", {"title": f"议程 {i}"}, srv.token, 201)["id"]
        for i in range(20)
    ]  # acknowledged writes before the crash
    before = _blobs(srv)
    size = 16 * 1024 * 1024
    # 1. While the body is still arriving.
    sock, rest = _start_upload(srv, mid, size)
    try:
        sock.sendall(rest[: size // 3])
        time.sleep(0.3)
        srv.kill()
    finally:
        sock.close()
    srv.restart()
    assert _after_restart(srv, mid, before) == "no document"
    items = srv.ok("GET", f"/api/v1/meetings/{mid}/agenda", None, srv.token)["items"]
    assert [i["id"] for i in items] == ids  # every acknowledged write survived the SIGKILL
    assert srv.ok("GET", f"/api/v1/meetings/{mid}/audit/verify", None, srv.token)["ok"] is True
    # 2. Once the body is in: while the server spools, checks and stores it.
    sock, rest = _start_upload(srv, mid, size)
    try:
        sock.sendall(rest)
        srv.wait(
            lambda: list((srv.data_dir / "tmp").glob("upload-*")) or _blobs(srv) - before,
            30,
            "the server to store the upload",
            step=0.002,
        )
        srv.kill()
    finally:
        sock.close()
    srv.restart()
    print(f"\nkilled while storing an upload: {_after_restart(srv, mid, before)} after the restart")
    # The next start works: an upload is stored and rendered.
    status, doc = srv.upload(f"/api/v1/meetings/{mid}/documents", "ok.pdf", make_pdf(3), srv.token)
    assert status == 202, doc
    assert srv.wait_document(doc["id"], srv.token)["status"] == "ready"


def _rendering(srv, pages: int = 120) -> int:
    mid = _meeting(srv)
    status, doc = srv.upload(f"/api/v1/meetings/{mid}/documents", "long.pdf", make_pdf(pages), srv.token)
    assert status == 202, doc

    def midway():
        d = srv.document(doc["id"])
        assert d["status"] != "ready", "rendered before it could be interrupted: use more pages"
        return d["status"] == "processing" and (d.get("pages_done") or 0) >= 1

    srv.wait(midway, 60, "rendering to be under way", step=0.02)
    return doc["id"]


def test_sigkill_during_rendering(fault_server):
    srv = fault_server
    doc_id = _rendering(srv)
    srv.kill()
    # Restarted at once: the lease is fresh, but it names a holder whose process is gone, so the new
    # worker takes it at once (not after the 60 s LEASE).
    (claim,) = srv.sql("SELECT render_claim FROM documents WHERE id = ?", doc_id)[0]
    assert jobs.parse_holder(claim) is not None, claim
    srv.wait(lambda: jobs.holder_state(claim) == "dead", 10, "the killed render process to be gone")
    srv.restart()
    doc = srv.wait_document(doc_id, srv.token, timeout=120)
    assert doc["status"] == "ready", doc
    assert doc["page_count"] == len(doc["pages"]) == 120
    for n in (1, 60, 120):
        status, headers, _ = srv.request("GET", f"/api/v1/documents/{doc_id}/pages/{n}", token=srv.token)
        assert status == 200 and headers["Content-Type"] == "image/jpeg"
    (version,) = srv.sql("SELECT version FROM documents WHERE id = ?", doc_id)[0]
    rows = srv.sql(
        "SELECT count(*), count(DISTINCT n) FROM document_pages WHERE document_id = ? AND version = ?",
        doc_id,
        version,
    )
    assert rows == [(120, 120)]  # every page once: the killed job's pages were replaced, not doubled


def test_worker_killed_mid_render_is_retried_or_fails(fault_server):
    """The worker dies (OOM, crash): `serve` starts another, which takes the dead holder's lease at once."""
    srv = fault_server
    doc_id = _rendering(srv)
    old = srv.worker_pid()
    (claim,) = srv.sql("SELECT render_claim FROM documents WHERE id = ?", doc_id)[0]
    kill_tree(old)  # the worker (Huey's consumer and its processes) only: the server keeps running
    new = srv.wait(lambda: [p for p in srv.children() if p != old and _is_worker(p)], 20, "a new worker")
    assert srv.proc.poll() is None
    # Taken over by the new worker well before the 60 s lease of the killed one would run out.
    srv.wait(lambda: _claim_or_done(srv, doc_id, claim), 20, "the render to be taken over", step=0.2)
    doc = srv.wait_document(doc_id, srv.token, timeout=120)
    assert doc["status"] == "ready" and doc["page_count"] == len(doc["pages"]) == 120, doc
    assert new[0] in srv.children()
    # Only the worker's processes themselves: Huey's consumer replaces a dead render process too, and the
    # render that process held is re-queued (its holder is dead) without restarting anything else.
    doc_id = _rendering(srv)
    (claim,) = srv.sql("SELECT render_claim FROM documents WHERE id = ?", doc_id)[0]
    holder_pid = jobs.parse_holder(claim)["pid"]
    assert holder_pid in srv.children(new[0]), (holder_pid, srv.children(new[0]))
    os.kill(holder_pid, signal.SIGKILL)
    srv.wait(lambda: _claim_or_done(srv, doc_id, claim), 30, "the render to be taken over", step=0.2)
    doc = srv.wait_document(doc_id, srv.token, timeout=120)
    assert doc["status"] == "ready" and doc["page_count"] == len(doc["pages"]) == 120, doc
    assert srv.worker_pid() == new[0]


def _is_worker(pid: int) -> bool:
    try:
        return b"worker" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _claim_or_done(srv, doc_id: int, old_claim: str) -> bool:
    (claim, status) = srv.sql("SELECT render_claim, status FROM documents WHERE id = ?", doc_id)[0]
    return status != "processing" or (claim is not None and claim != old_claim)


def _ended_meeting_with_material(srv) -> int:
    mid = _meeting(srv, "归档 Archive")
    srv.ok("POST", f"/api/v1/meetings/{mid}/attendees", {"name": "张伟", "seat": "01"}, srv.token, 201)
    status, doc = srv.upload(f"/api/v1/meetings/{mid}/documents", "m.pdf", make_pdf(30), srv.token)
    assert status == 202
    assert srv.wait_document(doc["id"], srv.token)["status"] == "ready"
    srv.ok("POST", f"/api/v1/meetings/{mid}/start", None, srv.token)
    srv.ok("POST", f"/api/v1/meetings/{mid}/end", None, srv.token)
    return mid


def test_sigkill_during_archive_building(fault_server, tmp_path):
    srv = fault_server
    mid = _ended_meeting_with_material(srv)
    status, _, _ = srv.request("GET", f"/api/v1/meetings/{mid}/archive?wait=0", token=srv.token)
    assert status == 202

    def building():
        b = srv.ok("GET", f"/api/v1/meetings/{mid}/archive/status", None, srv.token)
        return b.get("state") in ("building", "ready") and b

    seen = srv.wait(building, 60, "the archive build to start", step=0.02)
    srv.kill()
    interrupted = seen["state"] == "building"
    print(
        f"\narchive build killed at {seen.get('progress')} ({seen.get('step')}); interrupted: {interrupted}"
    )
    # No waiting for the lease: the build's claim names its process, which is gone, so it is taken at once.
    srv.restart()

    def fetched():
        code, headers, body = srv.request("GET", f"/api/v1/meetings/{mid}/archive?wait=5", token=srv.token)
        assert code in (200, 202), (code, body[:300])
        return code == 200 and body

    data = srv.wait(fetched, 120, "the archive after the restart", step=0.5)
    path = tmp_path / "archive.zip"
    path.write_bytes(data)
    res = subprocess.run(
        [sys.executable, "-m", "meeting_server.cli", "verify", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert srv.ok("GET", f"/api/v1/meetings/{mid}/audit/verify", None, srv.token)["ok"] is True
