"""Decompression and zip bombs made in milliseconds (no huge buffer is ever held while making them)."""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

from tests.documents import corpus


def _deflate_zeros(total: int, block: int = 1 << 20) -> bytes:
    """zlib data that inflates to `total` zero bytes (about 1000:1)."""
    comp = zlib.compressobj(9)
    chunk = b"\x00" * block
    out = [comp.compress(chunk) for _ in range(total // block)]
    out.append(comp.compress(b"\x00" * (total % block)))
    out.append(comp.flush())
    return b"".join(out)


def pdf_image_bomb(path: Path, side: int) -> Path:
    """A one-page PDF showing a `side` x `side` 1-bit image of zeros (Flate): a few KB per 100 million
    pixels on disk, `side`² bytes as 8-bit grey once decoded at full size."""
    side -= side % 8
    data = _deflate_zeros(side // 8 * side)
    content = b"q 500 0 0 700 50 50 cm /Im1 Do Q"
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /XObject << /Im1 5 0 R >> >> "
        b"/Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /BitsPerComponent 1 /ColorSpace /DeviceGray "
        b"/Filter /FlateDecode /Length %d >>\nstream\n" % (side, side, len(data)) + data + b"\nendstream",
    ]
    return _write_pdf(path, objs)


def pdf_stream_bomb(path: Path, megabytes: int) -> Path:
    """A one-page PDF whose content stream inflates to `megabytes` MiB (spaces: nothing to draw)."""
    comp = zlib.compressobj(9)
    mib = b" " * (1 << 20)
    data = b"".join(comp.compress(mib) for _ in range(megabytes)) + comp.compress(b"BT ET") + comp.flush()
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(data) + data + b"\nendstream",
    ]
    return _write_pdf(path, objs)


def _write_pdf(path: Path, objs: list[bytes]) -> Path:
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for i, o in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + o + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    Path(path).write_bytes(bytes(out))
    return Path(path)


def pptx_zip_bomb(path: Path, megabytes: int = 64) -> Path:
    """A pptx carrying a part of `megabytes` MiB of zeros."""
    corpus.make_ooxml_stub(path, "pptx")
    info = zipfile.ZipInfo("ppt/media/padding.bin")
    info.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as z, z.open(info, "w", force_zip64=True) as f:
        for _ in range(megabytes):
            f.write(b"\x00" * (1 << 20))
    return Path(path)


def docx_many_entries(path: Path, entries: int) -> Path:
    """A docx with `entries` tiny parts (a directory bomb: each costs the unpacker a file)."""
    corpus.make_docx(path)
    with zipfile.ZipFile(path, "a", zipfile.ZIP_STORED) as z:
        for i in range(entries):
            z.writestr(f"word/media/p{i}.bin", b"")
    return Path(path)


def docx_lying_sizes(path: Path, megabytes: int = 48, claimed: int = 1000) -> Path:
    """A docx whose padding part holds `megabytes` MiB of zeros but whose headers claim `claimed` bytes:
    declared sizes pass every check; only inflating it shows the truth."""
    corpus.make_docx(path)
    name = "word/media/padding.bin"
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as z, z.open(name, "w") as f:
        for _ in range(megabytes):
            f.write(b"\x00" * (1 << 20))
    with zipfile.ZipFile(path) as z:
        info = z.getinfo(name)
        cd_start = z.start_dir
    raw = bytearray(Path(path).read_bytes())
    real = info.file_size
    # Local header: the uncompressed size at +22; central directory entry: at +24 (the name at +46).
    assert raw[info.header_offset : info.header_offset + 4] == b"PK\x03\x04"
    raw[info.header_offset + 22 : info.header_offset + 26] = claimed.to_bytes(4, "little")
    at = raw.index(b"PK\x01\x02", cd_start)
    while raw[at + 46 : at + 46 + len(name)] != name.encode():
        at = raw.index(b"PK\x01\x02", at + 4)
    assert int.from_bytes(raw[at + 24 : at + 28], "little") == real
    raw[at + 24 : at + 28] = claimed.to_bytes(4, "little")
    Path(path).write_bytes(bytes(raw))
    return Path(path)
