"""meeting_server.documents.render: detection, checks, conversion, rendering, watermark, export.

Every sample file is generated in tmp dirs by corpus.py; nothing binary is committed.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import stat
import struct
import time
import zipfile
from pathlib import Path

import pymupdf
import pytest
from PIL import Image, ImageChops

from meeting_server.documents import render as R
from tests.documents import corpus

OFFICE_PACKAGES = "libreoffice-writer-nogui libreoffice-impress-nogui libreoffice-calc-nogui fonts-noto-cjk"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("corpus")
    makers = {
        "text30.pdf": lambda p: corpus.make_text_pdf(p, 30),
        "truncated.pdf": corpus.make_truncated_pdf,
        "light.pdf": corpus.make_lightly_truncated_pdf,
        "empty.pdf": corpus.make_empty,
        "encrypted.pdf": corpus.make_encrypted_pdf,
        "owner_only.pdf": corpus.make_owner_only_encrypted_pdf,
        "html.pdf": corpus.make_html_named_pdf,
        "zero.pdf": corpus.make_zero_page_pdf,
        "many.pdf": lambda p: corpus.make_blank_pdf(p, 12),
        "rotated.pdf": corpus.make_rotated_pdf,
        "image.png": corpus.make_png,
        "photo.jpg": corpus.make_jpeg,
        "cut.jpg": corpus.make_truncated_jpeg,
        "bomb.png": corpus.make_bomb_png,
        "bomb_warn.png": lambda p: corpus.make_bomb_png(p, 10000),
        "minutes.docx": corpus.make_docx,
        "bomb.docx": corpus.make_zip_bomb_docx,
        "slides.pptx": lambda p: corpus.make_ooxml_stub(p, "pptx"),
        "sheet.xlsx": lambda p: corpus.make_ooxml_stub(p, "xlsx"),
        "text.odt": lambda p: corpus.make_odf_stub(p, "odt"),
        "slides.odp": lambda p: corpus.make_odf_stub(p, "odp"),
        "sheet.ods": lambda p: corpus.make_odf_stub(p, "ods"),
        "archive.zip": corpus.make_plain_zip,
        "legacy.doc": lambda p: corpus.make_ole(p, ["WordDocument", "1Table"]),
        "legacy.ppt": lambda p: corpus.make_ole(p, ["Current User", "PowerPoint Document"]),
        "legacy.xls": lambda p: corpus.make_ole(p, ["Workbook"]),
        "mail.msg": lambda p: corpus.make_ole(p, ["__properties_version1.0"]),
        "locked.docx": lambda p: corpus.make_ole(p, ["EncryptionInfo", "EncryptedPackage"]),
    }
    return {name: make(d / name) for name, make in makers.items()}


def code_of(fn, *args, **kwargs) -> tuple[int, str]:
    with pytest.raises(R.DocumentError) as info:
        fn(*args, **kwargs)
    e = info.value
    assert e.message and e.code in e.to_dict()["error"]["code"]
    return e.status, e.code


# --------------------------------------------------------------------------- errors


def test_document_error_shape_and_pickling() -> None:
    e = R.DocumentError("too_many_pages", "The PDF has 12 pages; the limit is 10.", 422, pages=12)
    assert (e.code, e.status, e.details) == ("too_many_pages", 422, {"pages": 12})
    assert e.to_dict() == {
        "error": {"code": "too_many_pages", "message": e.message, "details": {"pages": 12}}
    }
    back = pickle.loads(pickle.dumps(e))  # errors come back from render helper processes
    assert (back.code, back.message, back.status, back.details) == (e.code, e.message, 422, {"pages": 12})


# --------------------------------------------------------------------------- sniff

KINDS = {
    "text30.pdf": "pdf",
    "truncated.pdf": "pdf",
    "image.png": "png",
    "photo.jpg": "jpeg",
    "minutes.docx": "docx",
    "slides.pptx": "pptx",
    "sheet.xlsx": "xlsx",
    "text.odt": "odt",
    "slides.odp": "odp",
    "sheet.ods": "ods",
    "legacy.doc": "doc",
    "legacy.ppt": "ppt",
    "legacy.xls": "xls",
    "mail.msg": "ole",
}


@pytest.mark.parametrize(("name", "kind"), KINDS.items())
def test_sniff_detects_from_content(files: dict[str, Path], tmp_path: Path, name: str, kind: str) -> None:
    renamed = tmp_path / "upload.bin"  # the name must not matter
    renamed.write_bytes(files[name].read_bytes())
    assert R.sniff(renamed) == kind


def test_sniff_pdf_with_leading_junk(tmp_path: Path, files: dict[str, Path]) -> None:
    p = tmp_path / "junk.pdf"
    p.write_bytes(b"\r\n\x00junk" + files["text30.pdf"].read_bytes())
    assert R.sniff(p) == "pdf"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("html.pdf", (415, "unsupported_type")),  # HTML renamed .pdf: refused by content
        ("archive.zip", (415, "unsupported_type")),
        ("empty.pdf", (422, "empty_file")),
        ("locked.docx", (422, "encrypted")),  # password-protected OOXML is an OLE2 container
    ],
)
def test_sniff_refusals(files: dict[str, Path], name: str, expected: tuple[int, str]) -> None:
    assert code_of(R.sniff, files[name]) == expected


def test_sniff_html_message_says_what_it_is(files: dict[str, Path]) -> None:
    with pytest.raises(R.DocumentError) as info:
        R.sniff(files["html.pdf"])
    assert "HTML" in info.value.message


def test_sniff_garbage_and_damaged_zip(tmp_path: Path, files: dict[str, Path]) -> None:
    garbage = tmp_path / "x.pdf"
    garbage.write_bytes(os.urandom(4096).replace(b"%PDF-", b"xxxxx"))
    assert code_of(R.sniff, garbage)[1] == "unsupported_type"
    cut = tmp_path / "cut.docx"
    data = files["minutes.docx"].read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    assert code_of(R.sniff, cut) == (422, "unreadable")


def test_check_size() -> None:
    assert R.check_size(__file__, 10**9) > 0
    assert code_of(R.check_size, __file__, 10) == (413, "file_too_large")


# --------------------------------------------------------------------------- inspect_pdf


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("empty.pdf", "empty_file"),
        ("truncated.pdf", "unreadable"),
        ("encrypted.pdf", "encrypted"),
        ("html.pdf", "not_a_pdf"),
        ("zero.pdf", "no_pages"),
        ("many.pdf", "too_many_pages"),
    ],
)
def test_inspect_pdf_refusals(files: dict[str, Path], name: str, code: str) -> None:
    assert code_of(R.inspect_pdf, files[name], 10) == (422, code)


def test_inspect_pdf_garbage_with_pdf_header(tmp_path: Path) -> None:
    p = tmp_path / "g.pdf"
    p.write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 40)
    assert code_of(R.inspect_pdf, p, 10) == (422, "unreadable")


def test_inspect_pdf_accepts(files: dict[str, Path]) -> None:
    assert R.inspect_pdf(files["text30.pdf"], 30) == 30
    assert R.inspect_pdf(files["light.pdf"], 10) == 3  # repaired by MuPDF
    assert R.inspect_pdf(files["owner_only.pdf"], 10) == 1  # opens without a password
    assert R.inspect_pdf(files["many.pdf"], 12) == 12


def test_pdf_page_sizes(files: dict[str, Path]) -> None:
    assert R.pdf_page_sizes(files["text30.pdf"]) == [(595.0, 842.0)] * 30
    assert R.pdf_page_sizes(files["rotated.pdf"]) == [(842.0, 595.0)]  # as displayed


# --------------------------------------------------------------------------- images


@pytest.mark.parametrize(("name", "size"), [("image.png", (800, 600)), ("photo.jpg", (1200, 900))])
def test_image_to_pdf(files: dict[str, Path], tmp_path: Path, name: str, size: tuple[int, int]) -> None:
    assert R.check_image(files[name]) == size
    out = R.image_to_pdf(files[name], tmp_path / "out.pdf")
    assert R.inspect_pdf(out, 1) == 1
    (w, h) = R.pdf_page_sizes(out)[0]
    assert w == 842.0 and h == pytest.approx(842.0 * size[1] / size[0], abs=0.01)
    with pymupdf.open(out) as doc:
        assert len(doc[0].get_images()) == 1
        pix = doc[0].get_pixmap(dpi=36)
        assert pix.pixel(pix.width // 2 - 20, pix.height // 2 - 20) != (255, 255, 255)  # content shows


def test_image_to_pdf_applies_exif_rotation(tmp_path: Path) -> None:
    src = tmp_path / "portrait.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, shown rotated 90 degrees: portrait
    Image.new("RGB", (400, 200), (10, 200, 10)).save(src, "JPEG", exif=exif)
    out = R.image_to_pdf(src, tmp_path / "p.pdf")
    w, h = R.pdf_page_sizes(out)[0]
    assert h > w


def test_image_to_pdf_flattens_transparency(tmp_path: Path) -> None:
    src = tmp_path / "alpha.png"
    Image.new("RGBA", (100, 50), (255, 0, 0, 0)).save(src)
    out = R.image_to_pdf(src, tmp_path / "a.pdf")
    with pymupdf.open(out) as doc:
        assert doc[0].get_pixmap(dpi=20).pixel(5, 5) == (255, 255, 255)


def test_decompression_bomb_is_refused_not_warned(files: dict[str, Path], tmp_path: Path) -> None:
    # 30000 x 30000: over our limit (and over twice Pillow's, its DecompressionBombError)
    assert code_of(R.check_image, files["bomb.png"]) == (422, "image_too_large")
    assert code_of(R.image_to_pdf, files["bomb.png"], tmp_path / "b.pdf") == (422, "image_too_large")
    # 10000 x 10000 = 100 M pixels: with our limit raised, Pillow's DecompressionBombWarning
    # fires; it must become the same error and never escape as a warning (-W error here)
    status_code = code_of(R.image_to_pdf, files["bomb_warn.png"], tmp_path / "c.pdf", max_pixels=10**9)
    assert status_code == (422, "image_too_large")
    assert code_of(R.check_image, files["bomb_warn.png"], max_pixels=10**6) == (422, "image_too_large")
    assert not (tmp_path / "b.pdf").exists()


def test_truncated_image_is_unreadable(files: dict[str, Path], tmp_path: Path) -> None:
    assert code_of(R.check_image, files["cut.jpg"]) == (422, "unreadable")
    assert code_of(R.image_to_pdf, files["cut.jpg"], tmp_path / "x.pdf") == (422, "unreadable")


def test_image_functions_refuse_other_types(files: dict[str, Path], tmp_path: Path) -> None:
    assert code_of(R.image_to_pdf, files["text30.pdf"], tmp_path / "x.pdf") == (415, "unsupported_type")
    assert code_of(R.check_image, files["minutes.docx"]) == (415, "unsupported_type")


# --------------------------------------------------------------------------- zip checks


def test_check_zip(files: dict[str, Path]) -> None:
    assert R.check_zip(files["minutes.docx"]) > 0
    assert code_of(R.check_zip, files["bomb.docx"]) == (422, "zip_bomb")  # ratio about 1000:1
    assert code_of(R.check_zip, files["minutes.docx"], max_uncompressed=100) == (422, "zip_bomb")
    assert code_of(R.check_zip, files["bomb.docx"], max_ratio=10**6, max_uncompressed=10**6) == (
        422,
        "zip_bomb",
    )


def test_check_zip_catches_a_lying_size_header(tmp_path: Path) -> None:
    """A member whose headers declare 1 KiB but that inflates to 4 MiB fails its check."""
    p = tmp_path / "liar.docx"
    corpus.make_docx(p, extra={"word/media/x.bin": b"\x00" * (4 << 20)})
    data = bytearray(p.read_bytes())
    with zipfile.ZipFile(p) as z:
        info = z.getinfo("word/media/x.bin")
    struct.pack_into("<I", data, info.header_offset + 22, 1024)  # local header: uncompressed size
    patched, pos = 0, 0
    while (pos := data.find(b"PK\x01\x02", pos)) != -1:  # the member's central directory entry
        name_len = struct.unpack_from("<H", data, pos + 28)[0]
        if data[pos + 46 : pos + 46 + name_len] == b"word/media/x.bin":
            struct.pack_into("<I", data, pos + 24, 1024)
            patched += 1
        pos += 4
    assert patched == 1
    p.write_bytes(bytes(data))
    with zipfile.ZipFile(p) as z:  # the lie is what a reader sees first
        assert z.getinfo("word/media/x.bin").file_size == 1024
    assert R.check_zip(p) < 10_000  # the declared sizes alone look harmless
    assert code_of(R.check_zip, p, verify=True)[1] in ("unreadable", "zip_bomb")


# --------------------------------------------------------------------------- Office conversion


def _fake_soffice(bindir: Path, script: str) -> None:
    bindir.mkdir(exist_ok=True)
    exe = bindir / "soffice"
    exe.write_text("#!/bin/sh\n" + script)
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def test_convert_office_without_libreoffice(
    files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    assert not R.converter_available()
    with pytest.raises(R.DocumentError) as info:
        R.convert_office(files["minutes.docx"], tmp_path / "out", "job-missing")
    assert (info.value.status, info.value.code) == (415, "converter_missing")
    assert OFFICE_PACKAGES in info.value.message


def test_convert_office_refuses_bombs_and_non_office(files: dict[str, Path], tmp_path: Path) -> None:
    assert code_of(R.convert_office, files["bomb.docx"], tmp_path, "job-bomb") == (422, "zip_bomb")
    assert code_of(R.convert_office, files["photo.jpg"], tmp_path, "job-jpg") == (415, "unsupported_type")
    with pytest.raises(ValueError):
        R.convert_office(files["minutes.docx"], tmp_path, "../../etc")
    assert not Path("/tmp/lo_job-bomb").exists()


def test_convert_office_timeout_kills_the_process_group(
    files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pids = tmp_path / "pids"
    # a child in the background (like soffice.bin under oosplash) and the script itself
    _fake_soffice(tmp_path / "bin", f"sleep 30 &\necho $! > {pids}\necho $$ >> {pids}\nwait\n")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    started = time.monotonic()
    try:
        status_code = code_of(
            R.convert_office, files["minutes.docx"], tmp_path / "out", "job-slow", timeout=1
        )
        assert status_code == (422, "conversion_failed")
        assert time.monotonic() - started < 10
        ids = [int(x) for x in pids.read_text().split()]
        for _ in range(100):  # the orphaned sleep is reaped by init shortly after SIGKILL
            if not any(_alive(pid) for pid in ids):
                break
            time.sleep(0.05)
        assert not any(_alive(pid) for pid in ids)
        assert not Path("/tmp/lo_job-slow").exists()
        assert [p.name for p in (tmp_path / "out").iterdir()] == []  # work dir removed
    finally:
        for pid in [int(x) for x in pids.read_text().split()] if pids.exists() else []:
            if _alive(pid):
                os.kill(pid, 9)


def test_convert_office_without_output_fails(
    files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_soffice(tmp_path / "bin", "echo 'Error: source file could not be loaded'\nexit 0\n")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    with pytest.raises(R.DocumentError) as info:
        R.convert_office(files["minutes.docx"], tmp_path / "out", "job-noout")
    assert (info.value.status, info.value.code) == (422, "conversion_failed")
    assert "could not be loaded" in info.value.details["log"]


def test_convert_office_with_libreoffice(files: dict[str, Path], tmp_path: Path) -> None:
    corpus.require_tool("soffice", OFFICE_PACKAGES)
    out = R.convert_office(files["minutes.docx"], tmp_path / "out", "job-real-docx")
    assert out == tmp_path / "out" / "minutes.pdf"
    assert R.inspect_pdf(out, 10) == 1
    with pymupdf.open(out) as doc:
        text = doc[0].get_text()
        assert "会议纪要" in text and "Meeting minutes" in text
        assert any("CJK" in f[3] or "Noto" in f[3] or "Droid" in f[3] for f in doc.get_page_fonts(0))
    assert not Path("/tmp/lo_job-real-docx").exists()


def test_require_tool_fails_on_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="apt-get install pkg"):
        corpus.require_tool("no-such-tool-here", "pkg")
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="apt-get install pkg"):
        corpus.require_tool("no-such-tool-here", "pkg")


# --------------------------------------------------------------------------- rendering


def test_render_page(files: dict[str, Path]) -> None:
    data, w, h = R.render_page(files["text30.pdf"], 0, 1600)
    assert (w, h) == (1131, 1600)
    with Image.open(io.BytesIO(data)) as im:
        assert (im.format, im.size) == ("JPEG", (1131, 1600))
    with pymupdf.open(files["text30.pdf"]) as doc:
        _, w, h = R.render_page(doc, 29, 500)
        assert h == 500 and abs(w - 595 * 500 / 842) < 1  # MuPDF rounds the short side up
        with pytest.raises(IndexError):
            R.render_page(doc, 30, 500)
    assert R.render_page(files["rotated.pdf"], 0, 1000)[1:] == (1000, 707)  # landscape as shown


def test_render_document(files: dict[str, Path], tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    ready: list[int] = []
    out = tmp_path / "pages"  # created by render_document
    recs = R.render_document(
        files["text30.pdf"],
        out,
        progress=lambda done, total: calls.append((done, total)),
        first=7,
        on_page=lambda rec: ready.append(rec["n"]),
    )
    assert [r["n"] for r in recs] == list(range(1, 31))
    assert ready[0] == 7 and sorted(ready) == list(range(1, 31))
    assert calls == [(i, 30) for i in range(1, 31)]
    for rec in recs:
        assert (rec["pdf_width"], rec["pdf_height"]) == (595.0, 842.0)
        for name, size in (("page", (1131, 1600)), ("thumb", (227, 320))):
            info = rec[name]
            path = Path(info["file"])
            assert path.parent == out and path.name == f"{name}-{rec['n']:04d}.jpg"
            data = path.read_bytes()
            assert hashlib.sha256(data).hexdigest() == info["sha256"] and len(data) == info["size"]
            assert (info["width"], info["height"]) == size
            with Image.open(path) as im:
                assert im.size == size
    assert len(list(out.iterdir())) == 60


def test_render_document_other_sizes(files: dict[str, Path], tmp_path: Path) -> None:
    recs = R.render_document(files["rotated.pdf"], tmp_path, sizes={"big": 1000, "small": 300, "tiny": 64})
    rec = recs[0]
    assert (rec["big"]["width"], rec["big"]["height"]) == (1000, 707)
    assert max(rec["small"]["width"], rec["small"]["height"]) == 300
    assert max(rec["tiny"]["width"], rec["tiny"]["height"]) == 64
    with pytest.raises(ValueError):
        R.render_document(files["rotated.pdf"], tmp_path, sizes={"../x": 100})


def test_render_document_refuses_bad_files(files: dict[str, Path], tmp_path: Path) -> None:
    assert code_of(R.render_document, files["encrypted.pdf"], tmp_path) == (422, "encrypted")
    assert code_of(R.render_document, files["truncated.pdf"], tmp_path) == (422, "unreadable")


def test_render_document_parallel_matches_serial(files: dict[str, Path], tmp_path: Path) -> None:
    serial = R.render_document(files["text30.pdf"], tmp_path / "a")
    seen: list[int] = []
    parallel = R.render_document_parallel(
        files["text30.pdf"], tmp_path / "b", first=3, on_page=lambda r: seen.append(r["n"]), min_pages=1
    )
    assert seen[0] == 3 and sorted(seen) == list(range(1, 31))
    assert [r["n"] for r in parallel] == list(range(1, 31))
    for a, b in zip(serial, parallel, strict=True):
        assert a["page"]["sha256"] == b["page"]["sha256"] and a["thumb"]["sha256"] == b["thumb"]["sha256"]
        assert Path(b["page"]["file"]).parent == tmp_path / "b"
    # below min_pages it is render_document in this process
    small = R.render_document_parallel(files["rotated.pdf"], tmp_path / "c", processes=4)
    assert [r["n"] for r in small] == [1]


# --------------------------------------------------------------------------- watermark


def test_watermark(files: dict[str, Path]) -> None:
    page, w, h = R.render_page(files["text30.pdf"], 1, 1600)
    marked = R.watermark(page, ["张三  座位 A-12", "2025-03-01 14:02 机密 Confidential"])
    with Image.open(io.BytesIO(page)) as a, Image.open(io.BytesIO(marked)) as b:
        assert b.size == a.size == (w, h)
        middle = (w // 4, h // 4, 3 * w // 4, 3 * h // 4)
        diff = ImageChops.difference(a.convert("L"), b.convert("L")).crop(middle)
        changed = sum(diff.point(lambda v: 255 if v > 24 else 0).histogram()[255:])
        assert changed > 0.005 * diff.width * diff.height  # the mark covers the middle
        assert diff.getextrema()[1] < 255  # semi-transparent, not painted over
    assert marked != R.watermark(page, ["李四  座位 B-3", "2025-03-01 14:02"])
    with pytest.raises(ValueError):
        R.watermark(page, [])


# --------------------------------------------------------------------------- export


def test_export_annotated(files: dict[str, Path]) -> None:
    anns = [
        {
            "page": 1,
            "kind": "pen",
            "points": [[100, 300], [150, 320.5], [200, 310]],
            "color": "#0000ff",
            "width": 2,
        },
        {"page": 1, "kind": "highlighter", "points": [[100, 200], [400, 200]], "color": "#ffff00"},
        {"page": 2, "kind": "highlight", "rect": [100, 105, 400, 125], "color": "#00ff00"},
        {"page": 2, "kind": "note", "points": [[500, 100]], "text": "请核实 Check", "color": "#ff8800"},
        {
            "page": 3,
            "kind": "text",
            "points": [[100, 400]],
            "text": "同意此方案。Agreed.",
            "color": "#cc0000",
        },
    ]
    data = R.export_annotated(files["text30.pdf"], anns, "张三 (A-12)")
    with pymupdf.open(stream=data, filetype="pdf") as doc:
        assert doc.page_count == 30
        pages = [doc[i] for i in range(3)]  # annotations stay bound while their page lives
        got = {(p.number + 1, a.type[1]): a for p in pages for a in p.annots()}
        assert set(got) == {(1, "Ink"), (2, "Highlight"), (2, "Text"), (3, "FreeText")}
        assert all(a.info["title"] == "张三 (A-12)" for a in got.values())
        ink = [a for a in pages[0].annots() if a.type[1] == "Ink"]
        pen = next(a for a in ink if a.opacity < 0 or a.opacity == 1)
        marker = next(a for a in ink if 0 < a.opacity < 1)
        for annot, ann in ((pen, anns[0]), (marker, anns[1])):
            (stroke,) = annot.vertices
            assert len(stroke) == len(ann["points"])
            for (x, y), (ex, ey) in zip(stroke, ann["points"], strict=True):
                assert abs(x - ex) < 1 and abs(y - ey) < 1
        assert pen.colors["stroke"] == pytest.approx((0, 0, 1)) and pen.border["width"] == 2
        assert marker.opacity == pytest.approx(0.35, abs=0.01) and marker.border["width"] >= 8
        assert got[(2, "Text")].info["content"] == "请核实 Check"
        free = got[(3, "FreeText")]
        assert free.info["content"] == "同意此方案。Agreed."
        fonts = [doc.xref_get_key(x, "BaseFont")[1] for x in range(1, doc.xref_length())]
        assert any("Droid" in f for f in fonts), fonts  # CJK glyphs come from an embedded font
        # the Chinese text is really drawn: the annotation's area is not blank
        pix = pages[2].get_pixmap(dpi=72, clip=free.rect)
        assert any(
            pix.pixel(x, y)[0] > 150 > pix.pixel(x, y)[1] for x in range(pix.width) for y in range(pix.height)
        )
    assert len(data) < 500_000  # the CJK font is subset, not 3.5 MB


def test_export_annotated_rotated_page(files: dict[str, Path]) -> None:
    pts = [[100, 50], [300, 60]]  # displayed (landscape) coordinates
    data = R.export_annotated(files["rotated.pdf"], [{"page": 1, "kind": "pen", "points": pts}], "李四")
    with pymupdf.open(stream=data, filetype="pdf") as doc:
        page = doc[0]
        (annot,) = page.annots()
        shown = [pymupdf.Point(v) * page.rotation_matrix for v in annot.vertices[0]]
        for p, (ex, ey) in zip(shown, pts, strict=True):
            assert abs(p.x - ex) < 1 and abs(p.y - ey) < 1


@pytest.mark.parametrize(
    "bad",
    [
        {"page": 99, "kind": "pen", "points": [[1, 1]]},
        {"page": 1, "kind": "laser", "points": [[1, 1]]},
        {"page": 1, "kind": "pen", "points": [[1, "x"]]},
        {"page": 1, "kind": "pen", "points": [[1, 1]], "color": "red"},
        {"page": 1, "kind": "text", "points": [[1, 1]], "text": ""},
        {"kind": "pen"},
    ],
)
def test_export_annotated_refuses_invalid(files: dict[str, Path], bad: dict) -> None:
    assert code_of(R.export_annotated, files["text30.pdf"], [bad], "x") == (400, "invalid_annotation")
