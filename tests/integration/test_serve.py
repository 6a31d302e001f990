"""The real `meeting-server serve` process: setup of a whole meeting, documents of every kind."""

import shutil

import pytest

from tests.conftest import make_pdf, need
from tests.documents import corpus
from tests.serverproc import ServerProcess

pytestmark = pytest.mark.integration


@pytest.fixture
def server(tmp_path):
    srv = ServerProcess(tmp_path / "data")
    try:
        srv.cli("create-user", "boss", "--password", "secret-password")
        srv.start()
        yield srv
    finally:
        srv.stop()


def test_meeting_with_pdf_docx_png(server, tmp_path):
    token = server.login("boss", "secret-password")
    status, m = server.json("POST", "/api/v1/meetings", {"title": "全体会议 Plenary"}, token)
    assert status == 201
    mid = m["id"]
    status, a = server.json("POST", f"/api/v1/meetings/{mid}/attendees", {"name": "张伟", "seat": "A1"}, token)
    assert status == 201
    status, pdf = server.upload(f"/api/v1/meetings/{mid}/documents", "report.pdf", make_pdf(30), token, title="报告")
    assert status == 202, pdf
    png_path = corpus.make_png(tmp_path / "chart.png")
    status, png = server.upload(f"/api/v1/meetings/{mid}/documents", "chart.png", png_path.read_bytes(), token)
    assert status == 202, png
    docs = [server.wait_document(pdf["id"], token), server.wait_document(png["id"], token)]
    assert docs[0]["status"] == "ready" and docs[0]["page_count"] == 30, (docs[0], server.log())
    assert docs[1]["status"] == "ready" and docs[1]["page_count"] == 1
    if shutil.which("soffice") or shutil.which("libreoffice"):
        docx_path = corpus.make_docx(tmp_path / "plan.docx", ["第一段 First paragraph", "第二段"])
        status, docx = server.upload(f"/api/v1/meetings/{mid}/documents", "plan.docx", docx_path.read_bytes(), token)
        assert status == 202, docx
        done = server.wait_document(docx["id"], token, timeout=180)
        assert done["status"] == "ready" and done["page_count"] >= 1, done
        docs.append(done)
    else:
        need(False, "LibreOffice is not installed: apt-get install libreoffice-writer-nogui fonts-noto-cjk")
    # the tablet joins and reads every page image
    status, joined = server.json("POST", "/api/v1/join", {"token": a["join_token"]})
    assert status == 200
    seat = joined["session_token"]
    for d in docs:
        for n in (1, d["page_count"]):
            status, headers, body = server.request("GET", f"/api/v1/documents/{d['id']}/pages/{n}?v={d['version']}", token=seat)
            assert status == 200 and headers["Content-Type"] == "image/jpeg" and body[:3] == b"\xff\xd8\xff"
            assert "immutable" in headers["Cache-Control"]
            status, _, _ = server.request("GET", f"/api/v1/documents/{d['id']}/pages/{n}", token=seat,
                                          headers={"If-None-Match": headers["ETag"]})
            assert status == 304


def test_bad_setting_exits_clearly(tmp_path):
    srv = ServerProcess(tmp_path / "data", env={"MEETING_DATABASE_URL": "mysql://nope"})
    r = srv.cli("db", "upgrade", check=False)
    assert r.returncode == 2 and "MEETING_DATABASE_URL" in r.stderr


def test_demo_serve_prints_urls_and_renders(tmp_path):
    srv = ServerProcess(tmp_path / "data", extra_args=["--demo"])
    try:
        srv.start()
        import time

        deadline = time.monotonic() + 60
        while "Scan to join" not in srv.log() and time.monotonic() < deadline:
            time.sleep(0.2)
        out = srv.log()
        assert "/organizer/" in out and "/console/#meeting=" in out and "/tablet/#join=" in out
        token = srv.login("demo", "demo-password")
        status, meetings = srv.json("GET", "/api/v1/meetings", token=token)
        mid = meetings["meetings"][0]["id"]
        status, m = srv.json("GET", f"/api/v1/meetings/{mid}", token=token)
        assert len(m["attendees"]) >= 8 and len(m["agenda"]) >= 3
        doc = srv.wait_document(m["documents"][0]["id"], token, timeout=60)
        assert doc["status"] == "ready"
    finally:
        srv.stop()
