"""Sample documents, good and bad, made in code at test time (never committed as binaries).

Every ``make_*`` function writes one file to the path it is given and returns that path.
The benchmark (tests/bench/bench_ingest.py) uses ``make_text_pdf`` too.
"""

from __future__ import annotations

import io
import os
import random
import shutil
import struct
import zipfile
import zlib
from pathlib import Path

import pymupdf
from PIL import Image, ImageDraw, ImageFilter

ZH = "会议材料：第{n}页。本议题讨论二〇二五年度预算、人员安排与工作计划，请各位代表审阅并提出意见。"
EN = "Meeting material, page {n}. Budget, staffing and the work plan for the coming year; please review."


def require_tool(name: str, packages: str) -> str:
    """Return the path of tool ``name``; skip the test when it is missing, or fail when CI=true.

    On a developer machine a missing tool is a skip that says what to install; on CI the
    tool is part of the contract, so its absence must be a failure, not a silent skip.
    """
    import pytest

    path = shutil.which(name)
    if path:
        return path
    msg = f"{name!r} is not on PATH: install it with `apt-get install {packages}`"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{msg} (CI=true, so this is a failure, not a skip)")
    pytest.skip(msg)


# --------------------------------------------------------------------------- PDFs


def make_text_pdf(
    path: Path, pages: int = 30, *, drawings: bool = False, width: float = 595, height: float = 842
) -> Path:
    """A PDF with Chinese and English text on every page (embedded, subset CJK font).

    With ``drawings`` each page also gets vector graphics (a bar chart, curves, a table
    grid), the mix a typical slide deck or report has.
    """
    font = pymupdf.Font("cjk")
    doc = pymupdf.open()
    for i in range(pages):
        n = i + 1
        page = doc.new_page(width=width, height=height)
        tw = pymupdf.TextWriter(page.rect)
        tw.append((56, 70), f"第 {n} 页  Page {n}", font=font, fontsize=20)
        y = 110.0
        for _ in range(8 if drawings else 4):
            tw.append((56, y), ZH.format(n=n)[:30], font=font, fontsize=11)
            tw.append((56, y + 16), EN.format(n=n), font=font, fontsize=10)
            y += 40
        tw.write_text(page)
        if drawings:
            _draw_figures(page, n, y + 20)
    doc.subset_fonts()
    doc.save(path, garbage=3, deflate=True)
    doc.close()
    return Path(path)


def _draw_figures(page: pymupdf.Page, n: int, top: float) -> None:
    shape = page.new_shape()
    left, w = 56.0, page.rect.width - 112
    # a bar chart
    for b in range(12):
        h = 20 + ((n * 7 + b * 13) % 90)
        x = left + b * (w / 12)
        shape.draw_rect(pymupdf.Rect(x + 4, top + 120 - h, x + w / 12 - 4, top + 120))
        shape.finish(fill=((b * 20 % 255) / 255, 0.4, 0.7), color=(0, 0, 0), width=0.5)
    # curves
    for c in range(6):
        p0 = pymupdf.Point(left, top + 160 + c * 12)
        shape.draw_bezier(p0, p0 + (w / 3, -40 + c * 5), p0 + (2 * w / 3, 60 - c * 7), p0 + (w, 10 * (c % 3)))
        shape.finish(color=(0.8, 0.1 * c, 0.2), width=1.2, closePath=False)
    # a table grid and some circles
    for r in range(9):
        y = top + 260 + r * 18
        shape.draw_line((left, y), (left + w, y))
    for col in range(6):
        x = left + col * (w / 5)
        shape.draw_line((x, top + 260), (x, top + 260 + 8 * 18))
    shape.finish(color=(0.3, 0.3, 0.3), width=0.6)
    for c in range(5):
        shape.draw_circle((left + 40 + c * 90, top + 450), 25 + (n + c) % 10)
        shape.finish(color=(0, 0.3, 0.6), fill=(0.9, 0.95, 1.0), width=1.0)
    shape.commit()


def make_scanned_pdf(path: Path, pages: int = 20) -> Path:
    """Pages that are one full-page greyscale JPEG each (A4 at 300 dpi), like a scanner makes."""
    rnd = random.Random(1)
    im = Image.new("L", (2480, 3508), 245)
    d = ImageDraw.Draw(im)
    for y in range(300, 3300, 60):  # lines of "words"
        x = 200
        while x < 2200:
            w = rnd.randint(20, 120)
            d.rectangle([x, y, x + w, y + 30], fill=rnd.randint(20, 80))
            x += w + 25
    buf = io.BytesIO()
    im.filter(ImageFilter.GaussianBlur(1.2)).save(buf, "JPEG", quality=85)
    doc = pymupdf.open()
    for _ in range(pages):
        page = doc.new_page()
        page.insert_image(page.rect, stream=buf.getvalue())  # stored once, shown on every page
    doc.save(path, garbage=3)
    return Path(path)


def make_dense_vector_pdf(path: Path, pages: int = 3, strokes: int = 20000) -> Path:
    """Pages of many short vector strokes (a map or CAD plot): costly to render at any size."""
    rnd = random.Random(2)
    doc = pymupdf.open()
    for _ in range(pages):
        page = doc.new_page()
        shape = page.new_shape()
        for k in range(strokes):
            x, y = rnd.uniform(0, 595), rnd.uniform(0, 842)
            shape.draw_line((x, y), (x + rnd.uniform(-20, 20), y + rnd.uniform(-20, 20)))
            if k % 50 == 49:
                shape.finish(color=(rnd.random(), 0.2, 0.5), width=0.4)
        shape.commit()
    doc.save(path, garbage=3, deflate=True)
    return Path(path)


def make_truncated_pdf(path: Path) -> Path:
    """A PDF cut in half, beyond what MuPDF's repair can recover."""
    src = io.BytesIO()
    doc = pymupdf.open()
    for _ in range(30):
        doc.new_page().insert_text((72, 72), "truncated " * 8)
    doc.save(src, garbage=3, deflate=True, use_objstms=1)
    data = src.getvalue()
    Path(path).write_bytes(data[: len(data) // 2])
    return Path(path)


def make_lightly_truncated_pdf(path: Path) -> Path:
    """A PDF missing its last bytes (xref/trailer): MuPDF repairs it, so it must be accepted."""
    src = io.BytesIO()
    doc = pymupdf.open()
    for i in range(3):
        doc.new_page().insert_text((72, 72), f"page {i + 1}")
    doc.save(src)
    data = src.getvalue()
    Path(path).write_bytes(data[: len(data) - 40])
    return Path(path)


def make_empty(path: Path) -> Path:
    Path(path).write_bytes(b"")
    return Path(path)


def make_encrypted_pdf(path: Path) -> Path:
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "secret")
    doc.save(path, encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="user", owner_pw="owner")
    return Path(path)


def make_owner_only_encrypted_pdf(path: Path) -> Path:
    """Encrypted with an owner password only: opens without a password, must be accepted."""
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "restricted")
    doc.save(path, encryption=pymupdf.PDF_ENCRYPT_AES_256, owner_pw="owner", permissions=0)
    return Path(path)


def make_html_named_pdf(path: Path) -> Path:
    Path(path).write_bytes(
        b"<!DOCTYPE html>\n<html><head><title>Login</title></head>"
        b"<body><h1>Please sign in</h1></body></html>\n"
    )
    return Path(path)


def make_zero_page_pdf(path: Path) -> Path:
    """A well-formed PDF (with a correct xref table) whose page tree has an empty Kids array.

    PyMuPDF cannot save a document without pages, so the bytes are written by hand.
    """
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [] /Count 0 >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for num, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % num + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n" % (len(objects) + 1)
    out += b"0000000000 65535 f \n"
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    Path(path).write_bytes(bytes(out))
    return Path(path)


def make_blank_pdf(path: Path, pages: int) -> Path:
    """Many cheap pages, for the page limit."""
    doc = pymupdf.open()
    for _ in range(pages):
        doc.new_page()
    doc.save(path)
    return Path(path)


def make_rotated_pdf(path: Path) -> Path:
    """One A4 page with /Rotate 90: shown landscape, stored portrait."""
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((72, 72), "rotated")
    page.set_rotation(90)
    doc.save(path)
    return Path(path)


# --------------------------------------------------------------------------- images


def _sample_image(size: tuple[int, int]) -> Image.Image:
    im = Image.new("RGB", size, (250, 250, 245))
    d = ImageDraw.Draw(im)
    w, h = size
    d.rectangle([w // 10, h // 10, w // 2, h // 2], fill=(200, 40, 40))
    d.ellipse([w // 2, h // 2, w - w // 10, h - h // 10], fill=(40, 90, 200))
    d.line([0, h - 1, w - 1, 0], fill=(0, 0, 0), width=3)
    return im


def make_png(path: Path, size: tuple[int, int] = (800, 600)) -> Path:
    _sample_image(size).save(path, "PNG")
    return Path(path)


def make_jpeg(path: Path, size: tuple[int, int] = (1200, 900)) -> Path:
    _sample_image(size).save(path, "JPEG", quality=85)
    return Path(path)


def make_truncated_jpeg(path: Path) -> Path:
    buf = io.BytesIO()
    _sample_image((1200, 900)).save(buf, "JPEG", quality=85)
    data = buf.getvalue()
    Path(path).write_bytes(data[: len(data) // 3])
    return Path(path)


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def make_bomb_png(path: Path, side: int = 30000) -> Path:
    """A valid 1-bit greyscale PNG of ``side`` x ``side`` pixels, all black: about 110 KB on
    disk for 30000 (900 million pixels once decoded), made in about 50 ms."""
    row = b"\x00" + b"\x00" * ((side + 7) // 8)  # filter byte + packed 1-bit pixels
    rows_per_block = 256
    block = row * rows_per_block
    # Deflate one block after a full flush (no back-references across it), then repeat its
    # bytes: far cheaper than compressing 100+ MB of zeros.
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    deflated_block = comp.compress(block) + comp.flush(zlib.Z_FULL_FLUSH)
    full, rest = divmod(side, rows_per_block)
    tail = zlib.compressobj(9, zlib.DEFLATED, -15)
    deflated_tail = tail.compress(row * rest) + tail.flush()
    adler = 1
    for _ in range(full):
        adler = zlib.adler32(block, adler)
    adler = zlib.adler32(row * rest, adler)
    idat = b"\x78\xda" + deflated_block * full + deflated_tail + struct.pack(">I", adler)
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    data = (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )
    Path(path).write_bytes(data)
    return Path(path)


# --------------------------------------------------------------------------- Office files

_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
    'Target="{target}"/></Relationships>'
)

_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/{part}" ContentType="{ctype}"/></Types>'
)

_DOCUMENT = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>'
    "{paragraphs}"
    '<w:sectPr><w:pgSz w:w="11906" w:h="16838"/></w:sectPr></w:body></w:document>'
)

_OOXML = {
    "docx": (
        "word/document.xml",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
    ),
    "pptx": (
        "ppt/presentation.xml",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml",
    ),
    "xlsx": ("xl/workbook.xml", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"),
}


def _ooxml_zip(path: Path, kind: str, main_xml: str, extra: dict[str, bytes] | None = None) -> Path:
    part, ctype = _OOXML[kind]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", _CONTENT_TYPES.format(part=part, ctype=ctype))
        z.writestr("_rels/.rels", _RELS.format(target=part))
        z.writestr(part, main_xml)
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return Path(path)


def make_docx(path: Path, paragraphs: list[str] | None = None, extra: dict[str, bytes] | None = None) -> Path:
    """A minimal Word document built by hand with zipfile (python-docx is not installed)."""
    paragraphs = paragraphs or ["会议纪要 Meeting minutes", "第一项议程：预算审议。Item one: the budget."]
    body = "".join(
        f'<w:p><w:r><w:t xml:space="preserve">{_xml_escape(p)}</w:t></w:r></w:p>' for p in paragraphs
    )
    return _ooxml_zip(path, "docx", _DOCUMENT.format(paragraphs=body), extra)


def make_ooxml_stub(path: Path, kind: str) -> Path:
    """A package with the right parts for ``kind`` (pptx, xlsx): enough for type detection only."""
    return _ooxml_zip(path, kind, '<?xml version="1.0"?><root/>')


def make_zip_bomb_docx(path: Path, megabytes: int = 64) -> Path:
    """A docx carrying a part of ``megabytes`` MiB of zeros (compresses about 1000:1)."""
    zeros = b"\x00" * (1 << 20)
    tmp = zipfile.ZipInfo("word/media/padding.bin")
    tmp.compress_type = zipfile.ZIP_DEFLATED
    make_docx(path)
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as z, z.open(tmp, "w", force_zip64=True) as f:
        for _ in range(megabytes):
            f.write(zeros)
    return Path(path)


def make_odf_stub(path: Path, kind: str) -> Path:
    mime = {
        "odt": "application/vnd.oasis.opendocument.text",
        "odp": "application/vnd.oasis.opendocument.presentation",
        "ods": "application/vnd.oasis.opendocument.spreadsheet",
    }[kind]
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(zipfile.ZipInfo("mimetype"), mime)  # first and stored, as ODF requires
        z.writestr("content.xml", '<?xml version="1.0"?><office:document-content/>', zipfile.ZIP_DEFLATED)
    return Path(path)


def make_plain_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("readme.txt", "just a zip")
    return Path(path)


def _xml_escape(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def make_ole(path: Path, streams: list[str]) -> Path:
    """A minimal but valid OLE2 compound file (the container of .doc/.ppt/.xls) whose
    directory holds empty streams with the given names.

    Layout: header, sector 0 = FAT, sector 1 = directory (4 entries of 128 bytes).
    """
    if len(streams) > 3:
        raise ValueError("at most 3 streams fit this tiny layout")
    endofchain, freesect, fatsect = 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFD
    header = bytearray(512)
    header[0:8] = bytes.fromhex("D0CF11E0A1B11AE1")
    struct.pack_into("<HHHH", header, 24, 0x3E, 3, 0xFFFE, 9)  # minor, major v3, byte order, 512-byte sectors
    struct.pack_into("<H", header, 32, 6)  # mini sector shift
    struct.pack_into("<I", header, 44, 1)  # number of FAT sectors
    struct.pack_into("<I", header, 48, 1)  # first directory sector
    struct.pack_into("<I", header, 56, 4096)  # mini stream cutoff
    struct.pack_into("<IIII", header, 60, endofchain, 0, endofchain, 0)  # mini FAT, DIFAT: none
    struct.pack_into("<I", header, 76, 0)  # DIFAT[0] = sector 0 holds the FAT
    for i in range(1, 109):
        struct.pack_into("<I", header, 76 + 4 * i, freesect)
    fat = bytearray(b"\xff" * 512)
    struct.pack_into("<II", fat, 0, fatsect, endofchain)

    def entry(name: str, kind: int, child: int, right: int) -> bytes:
        e = bytearray(128)
        raw = (name + "\0").encode("utf-16-le")
        e[: len(raw)] = raw
        struct.pack_into("<HBB", e, 64, len(raw), kind, 1)  # name length, type, colour black
        struct.pack_into("<III", e, 68, 0xFFFFFFFF, right, child)  # left, right, child
        struct.pack_into("<II", e, 116, endofchain, 0)  # start sector, size
        return bytes(e)

    directory = bytearray()
    directory += entry("Root Entry", 5, 1 if streams else 0xFFFFFFFF, 0xFFFFFFFF)
    for i, name in enumerate(streams, start=1):
        directory += entry(name, 2, 0xFFFFFFFF, i + 1 if i < len(streams) else 0xFFFFFFFF)
    directory += b"\x00" * (512 - len(directory))
    Path(path).write_bytes(bytes(header) + bytes(fat) + bytes(directory))
    return Path(path)
