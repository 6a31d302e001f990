"""Malformed files, hostile file names and titles: a clear error or a processed document, nothing half-done.

Every file of the corpus (tests/documents/corpus.py, plus a few hostile ones made here, plus random
corruptions of a valid PDF) is uploaded. Each answer is 202 (and the document then ends `ready` or
`failed`, never stuck in `processing`), or 413/415/422 with a JSON error, and then nothing was stored:
no blob, no spool file, no document, no audit entry. Never a 500. Office files are tested with the
converter switched off here (conversions take seconds; tests/core/test_upload_bad_input.py runs the
zip bomb through LibreOffice).
"""

from __future__ import annotations

import io
import random
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from tests.conftest import make_pdf
from tests.documents import corpus
from tests.security import bombs

REFUSED = {413, 415, 422}
TRIED = {"files": 0}


def _hostile(tmp: Path) -> dict[str, tuple[bytes, str]]:
    pdf = make_pdf(1)
    zslip = io.BytesIO()
    with zipfile.ZipFile(zslip, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("../../../../tmp/evil.txt", "zip slip")
        z.writestr("word/document.xml", "<w:document/>")
    return {
        "one_byte": (b"%", "a.pdf"),
        "random_bytes": (random.Random(7).randbytes(50_000), "noise.pdf"),
        "elf_binary": (b"\x7fELF\x02\x01\x01" + b"\0" * 200, "program.pdf"),
        "svg_with_script": (
            b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
            "x.svg",
        ),
        "html": (b"<html><script>alert(1)</script></html>", "page.html"),
        "gif": (b"GIF89a" + b"\0" * 100, "anim.gif"),
        "pdf_with_javascript": (
            pdf.replace(
                b"/Type /Catalog",
                b"/Type /Catalog /OpenAction << /S /JavaScript /JS (app.alert\\(1\\)) >>",
                1,
            ),
            "js.pdf",
        ),
        "pdf_bad_xref": (pdf[: pdf.rfind(b"startxref")] + b"startxref\n99999999\n%%EOF\n", "xref.pdf"),
        "pdf_header_only": (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "head.pdf"),
        "pdf_then_zip": (pdf + zslip.getvalue(), "polyglot.pdf"),
        "zip_slip_docx": (zslip.getvalue(), "slip.docx"),
        "nul_padded_pdf": (b"\0" * 1024 + pdf, "pad.pdf"),
    }


def _corpus(tmp: Path) -> dict[str, tuple[bytes, str]]:
    makers = {
        "truncated_pdf": (corpus.make_truncated_pdf, "t.pdf"),
        "lightly_truncated_pdf": (corpus.make_lightly_truncated_pdf, "lt.pdf"),
        "empty": (corpus.make_empty, "e.pdf"),
        "encrypted_pdf": (corpus.make_encrypted_pdf, "enc.pdf"),
        "owner_only_encrypted_pdf": (corpus.make_owner_only_encrypted_pdf, "own.pdf"),
        "html_named_pdf": (corpus.make_html_named_pdf, "h.pdf"),
        "zero_page_pdf": (corpus.make_zero_page_pdf, "z.pdf"),
        "rotated_pdf": (corpus.make_rotated_pdf, "r.pdf"),
        "png": (corpus.make_png, "p.png"),
        "jpeg": (corpus.make_jpeg, "j.jpg"),
        "truncated_jpeg": (corpus.make_truncated_jpeg, "tj.jpg"),
        "bomb_png": (corpus.make_bomb_png, "bomb.png"),
        "zip_bomb_docx": (corpus.make_zip_bomb_docx, "bomb.docx"),
        "plain_zip": (corpus.make_plain_zip, "x.docx"),
        "pptx_stub": (lambda p: corpus.make_ooxml_stub(p, "pptx"), "s.pptx"),
        "odt_stub": (lambda p: corpus.make_odf_stub(p, "odt"), "s.odt"),
        "ole_doc": (lambda p: corpus.make_ole(p, ["WordDocument"]), "old.doc"),
        "ole_unknown": (lambda p: corpus.make_ole(p, ["Nothing"]), "what.doc"),
    }
    out = {}
    for name, (make, filename) in makers.items():
        out[name] = (make(tmp / filename).read_bytes(), filename)
    return out


def _state(room, settings) -> tuple:
    blobs = sorted(p.name for p in (settings.data_dir / "blobs").rglob("*") if p.is_file())
    tmp = sorted(p.name for p in (settings.data_dir / "tmp").iterdir())
    docs = room.org.get(f"/api/v1/meetings/{room.meeting['id']}/documents").get_json()["documents"]
    audit = room.org.get(f"/api/v1/meetings/{room.meeting['id']}/audit").get_json()["head"]
    return blobs, tmp, [d["id"] for d in docs], audit


def check_upload(room, settings, data: bytes, filename: str, **fields) -> int:
    before = _state(room, settings)
    r = room.org.upload(f"/api/v1/meetings/{room.meeting['id']}/documents", data, filename, **fields)
    body = r.get_json()
    TRIED["files"] += 1
    assert r.status_code in REFUSED | {202}, (filename, r.status_code, body)
    if r.status_code in REFUSED:
        assert body["error"]["code"] and body["error"]["message"], body
        assert _state(room, settings) == before, f"{filename}: refused, but something was stored"
        return r.status_code
    doc = room.org.get(f"/api/v1/documents/{body['id']}").get_json()
    assert doc["status"] in ("ready", "failed"), doc  # rendered inline in tests: never left processing
    if doc["status"] == "failed":
        assert doc.get("error"), doc
    assert "/" not in doc["filename"] and "\\" not in doc["filename"] and doc["filename"].isprintable()
    return r.status_code


@pytest.fixture
def no_converter(monkeypatch):
    from meeting_server.documents import render

    monkeypatch.setattr(render, "converter_available", lambda: False)


def test_corpus(room, settings, tmp_path, no_converter):
    files = {**_corpus(tmp_path), **_hostile(tmp_path)}
    got = {name: check_upload(room, settings, data, filename) for name, (data, filename) in files.items()}
    assert got["empty"] == got["encrypted_pdf"] == got["truncated_pdf"] == 422
    assert got["bomb_png"] == 422 and got["svg_with_script"] == 415 and got["elf_binary"] in REFUSED
    assert got["png"] == got["jpeg"] == got["lightly_truncated_pdf"] == 202
    print(
        f"\n{len(files)} corpus files: {sum(c == 202 for c in got.values())} accepted, "
        f"{sum(c in REFUSED for c in got.values())} refused"
    )


def test_random_corruptions_of_a_pdf(room, settings):
    pdf = make_pdf(2)

    @given(
        cuts=st.lists(
            st.tuples(st.integers(0, len(pdf) - 1), st.binary(min_size=0, max_size=8)), min_size=1, max_size=6
        ),
        truncate=st.none() | st.integers(1, len(pdf)),
    )
    @hsettings(
        max_examples=40,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def run(cuts, truncate):
        data = bytearray(pdf)
        for pos, junk in cuts:
            data[pos : pos + len(junk)] = junk
        check_upload(room, settings, bytes(data[:truncate]), "fuzzed.pdf")

    run()


NAMES = st.text(
    alphabet=st.sampled_from(list('../\\\x00\x01\x07\x1b\r\n\t\u202e\u200b:*?"<>|~ 会议ab')),
    min_size=1,
    max_size=40,
)


def test_hostile_file_names_and_titles(room, settings):
    pdf = make_pdf(1)
    seen = []

    @given(name=NAMES, title=NAMES | st.just("<script>alert(1)</script>"))
    @hsettings(
        max_examples=30,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def run(name, title):
        r = room.org.upload(
            f"/api/v1/meetings/{room.meeting['id']}/documents",
            pdf,
            name + ".pdf",
            title=title.replace("\x00", ""),
        )
        TRIED["files"] += 1
        assert r.status_code in (202, 400), r.get_json()
        if r.status_code == 400:
            return
        doc = r.get_json()
        fn = doc["filename"]
        assert fn and "/" not in fn and "\\" not in fn and ".." not in fn.strip(".")[:2]
        assert fn.isprintable() and not fn.startswith(".") and len(fn) <= 200
        orig = room.org.get(f"/api/v1/documents/{doc['id']}/original")
        cd = orig.headers["Content-Disposition"]
        assert "\r" not in cd and "\n" not in cd and "/" not in cd.split("filename", 1)[1]
        seen.append(fn)
        room.org.delete(f"/api/v1/documents/{doc['id']}")

    run()
    assert seen
    leftovers = [p.name for p in (settings.data_dir / "tmp").iterdir()]
    assert leftovers == []


# -- decompression bombs and zip bombs -------------------------------------------------------------


@pytest.fixture
def with_converter(monkeypatch):
    """Office uploads take the converter's path (its zip checks run); no bomb ever reaches LibreOffice."""
    from meeting_server.documents import render

    monkeypatch.setattr(render, "converter_available", lambda: True)


def test_zip_bombs_are_refused(room, settings, tmp_path, with_converter):
    """DOCX/PPTX are zips: a 64 MiB part (1000:1), a 64 MiB PPTX part, 20,001 parts — refused at upload,
    422 `zip_bomb`, nothing stored. A part whose headers lie about its size passes the declared-size
    checks and fails visibly when the worker inflates it (never handed to LibreOffice)."""
    from meeting_server.documents import render

    files = {
        "zip_bomb.docx": corpus.make_zip_bomb_docx(tmp_path / "zb.docx"),
        "zip_bomb.pptx": bombs.pptx_zip_bomb(tmp_path / "zb.pptx"),
        "many_parts.docx": bombs.docx_many_entries(
            tmp_path / "many.docx", render.DEFAULT_MAX_ZIP_ENTRIES + 1
        ),
    }
    for name, path in files.items():
        before = _state(room, settings)
        r = _raw_upload(room.org, f"/api/v1/meetings/{room.meeting['id']}/documents", path.read_bytes(), name)
        TRIED["files"] += 1
        assert r.status_code == 422 and r.get_json()["error"]["code"] == "zip_bomb", (name, r.get_json())
        assert _state(room, settings) == before, f"{name}: refused, but something was stored"
    liar = bombs.docx_lying_sizes(tmp_path / "liar.docx")
    assert check_upload(room, settings, liar.read_bytes(), "liar.docx") == 202  # the declared sizes look fine
    docs = room.org.get(f"/api/v1/meetings/{room.meeting['id']}/documents").get_json()["documents"]
    doc = room.org.get(f"/api/v1/documents/{docs[-1]['id']}").get_json()
    assert doc["status"] == "failed" and doc["error"], doc  # inflating it shows the lie: not converted
    print(f"\nzip bombs: {len(files)} refused at upload, 1 (lying sizes) failed visibly in the worker")


def _raw_upload(api, url: str, data: bytes, filename: str):
    """A multipart upload from one in-memory body (Werkzeug's form builder spools bodies over 500 KB to a
    temporary file that nobody closes when the server refuses before reading it)."""
    boundary = "----bomb"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return api.client.post(
        url, data=body, content_type=f"multipart/form-data; boundary={boundary}", headers=api._headers()
    )


def test_pdf_decompression_bombs_render_in_bounded_memory(room, settings, tmp_path):
    """A PDF image of 144 million pixels (a few KB) and a content stream of 64 MiB (64 KB): accepted and
    rendered (MuPDF decodes images subsampled to the output size), never a crash or a hang."""
    for name, path in (
        ("image_bomb.pdf", bombs.pdf_image_bomb(tmp_path / "ib.pdf", 12_000)),
        ("stream_bomb.pdf", bombs.pdf_stream_bomb(tmp_path / "sb.pdf", 64)),
    ):
        assert len(path.read_bytes()) < 200_000
        assert check_upload(room, settings, path.read_bytes(), name) == 202
        docs = room.org.get(f"/api/v1/meetings/{room.meeting['id']}/documents").get_json()["documents"]
        assert room.org.get(f"/api/v1/documents/{docs[-1]['id']}").get_json()["status"] == "ready", name


BOMB_RENDER = """
import resource, sys
from pathlib import Path
limit = int(sys.argv[3])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from meeting_server.documents import render
n = render.inspect_pdf(sys.argv[1])
pages = []
render.render_document(sys.argv[1], Path(sys.argv[2]), sizes={"page": 1600, "thumb": 320}, on_page=pages.append)
print(n, len(pages), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


@pytest.mark.integration
def test_pdf_image_bomb_renders_under_a_memory_limit(tmp_path):
    """600 million pixels (600 MB as 8-bit grey) rendered by the worker's code in a process limited to
    400 MB of address space: the bomb is never decoded at full size."""
    import subprocess
    import sys

    path = bombs.pdf_image_bomb(tmp_path / "ib.pdf", 24_576)
    limit = 400 << 20
    res = subprocess.run(
        [sys.executable, "-c", BOMB_RENDER, str(path), str(tmp_path / "pages"), str(limit)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    pages, rendered, maxrss_mb = (int(x) for x in res.stdout.split())
    assert pages == rendered == 1
    print(f"\n{24_576**2 / 1e6:.0f} Mpixel PDF image rendered in {maxrss_mb} MB RSS (limit {limit >> 20} MB)")
