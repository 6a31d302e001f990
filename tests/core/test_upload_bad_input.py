"""Every bad upload gets its documented error and leaves nothing behind."""

import pytest

from tests.conftest import make_pdf
from tests.documents import corpus

CASES = {
    "truncated": (corpus.make_truncated_pdf, "t.pdf", 422, "unreadable"),
    "empty": (corpus.make_empty, "e.pdf", 422, "empty_file"),
    "encrypted": (corpus.make_encrypted_pdf, "enc.pdf", 422, "encrypted"),
    "html_as_pdf": (corpus.make_html_named_pdf, "page.pdf", None, None),
    "zero_pages": (corpus.make_zero_page_pdf, "zero.pdf", 422, "no_pages"),
    "bomb_png": (corpus.make_bomb_png, "bomb.png", 422, "image_too_large"),
    "zip_bomb_docx": (corpus.make_zip_bomb_docx, "bomb.docx", 422, "zip_bomb"),
    "plain_zip": (corpus.make_plain_zip, "x.docx", 415, None),
}


def _files(settings):
    return sorted(p.name for p in (settings.data_dir / "blobs").rglob("*") if p.is_file())


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_upload(room, settings, tmp_path, case):
    make, name, status, code = CASES[case]
    if case == "zip_bomb_docx":
        import shutil

        from tests.conftest import need

        need(bool(shutil.which("soffice") or shutil.which("libreoffice")), "LibreOffice is not installed")
    data = make(tmp_path / name).read_bytes()
    before = _files(settings)
    r = room.org.upload(f"/api/v1/meetings/{room.meeting['id']}/documents", data, name)
    body = r.get_json()
    if status is None:
        assert r.status_code in (415, 422), body
    else:
        assert r.status_code == status, body
    if code:
        assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    assert _files(settings) == before
    assert list((settings.data_dir / "tmp").iterdir()) == []
    assert room.org.get(f"/api/v1/meetings/{room.meeting['id']}/documents").get_json()["documents"] == []


def test_too_many_pages(app, room, settings):
    app.config["SETTINGS"] = settings.__class__(**{**settings.__dict__, "max_pages": 3})
    r = room.org.upload(f"/api/v1/meetings/{room.meeting['id']}/documents", make_pdf(5), "long.pdf")
    assert r.status_code == 422 and r.get_json()["error"]["code"] == "too_many_pages"


def test_oversized_upload(app, room, settings):
    app.config["SETTINGS"] = settings.__class__(**{**settings.__dict__, "max_upload_bytes": 10_000})
    r = room.org.upload(f"/api/v1/meetings/{room.meeting['id']}/documents", make_pdf(40) + b"\0" * 20_000, "big.pdf")
    assert r.status_code == 413 and r.get_json()["error"]["code"] == "too_large"
    assert _files(settings) == []


def test_missing_file_field(room):
    r = room.org.client.post(f"/api/v1/meetings/{room.meeting['id']}/documents", data={"title": "x"},
                             content_type="multipart/form-data", headers={"Authorization": f"Bearer {room.org.token}"})
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "file_missing"


def test_path_traversal_filename_is_neutralised(room):
    r = room.org.upload(f"/api/v1/meetings/{room.meeting['id']}/documents", make_pdf(1), "../../etc/pa\x07sswd.pdf")
    assert r.status_code == 202
    assert r.get_json()["filename"] == "passwd.pdf"


def test_office_without_libreoffice_is_415(room, tmp_path, monkeypatch):
    from meeting_server.documents import render

    monkeypatch.setattr(render, "converter_available", lambda: False)
    data = corpus.make_docx(tmp_path / "a.docx", ["你好"]).read_bytes()
    r = room.org.upload(f"/api/v1/meetings/{room.meeting['id']}/documents", data, "a.docx")
    assert r.status_code == 415
    err = r.get_json()["error"]
    assert err["code"] == "converter_missing" and "libreoffice" in err["message"].lower()
