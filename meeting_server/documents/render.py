"""Document processing: type detection, checks, conversion, page images, watermarks, export.

The only module that imports PyMuPDF. Pure functions over files and bytes: no Flask, no
database. PyMuPDF is not thread-safe: call this from a worker process (one document at a
time per process), never on the eventlet loop. ``render_document_parallel`` spreads one
document over several processes started with ``spawn``.

Errors that the uploader must see are ``DocumentError`` with a stable ``code`` and an HTTP
``status``: 422 a document that cannot be processed, 415 an unsupported type or a missing
converter, 413 too large, 400 an invalid annotation. Everything else is a bug.
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import hashlib
import io
import logging
import math
import multiprocessing
import os
import re
import shutil
import signal
import struct
import subprocess
import tempfile
import time
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any
from xml.sax.saxutils import escape as xml_escape

import pymupdf
from PIL import Image, ImageDraw, ImageFont, ImageOps

log = logging.getLogger(__name__)

#: Long side in pixels of each image made per page; the largest is rendered, the others
#: are downscaled from it (measured faster than a second pixmap, see docs/benchmarks.md).
DEFAULT_SIZES: Mapping[str, int] = MappingProxyType({"page": 1600, "thumb": 320})
DEFAULT_QUALITY = 80
DEFAULT_MAX_PAGES = 1000
#: Largest image accepted as a document (pixels); Pillow's own bomb limit is 89.5 M.
DEFAULT_MAX_IMAGE_PIXELS = 64_000_000
#: Zip (docx/pptx/xlsx/odt...) limits before LibreOffice sees the file.
DEFAULT_MAX_UNCOMPRESSED = 512 * 1024 * 1024
DEFAULT_MAX_RATIO = 200
DEFAULT_MAX_ZIP_ENTRIES = 20_000
#: Image documents become one PDF page whose long side is this many points (A4's).
IMAGE_PAGE_LONG_SIDE = 842.0
OFFICE_PACKAGES = "libreoffice-writer-nogui libreoffice-impress-nogui libreoffice-calc-nogui fonts-noto-cjk"
OFFICE_KINDS = frozenset({"docx", "pptx", "xlsx", "doc", "ppt", "xls", "odt", "odp", "ods", "ole"})
IMAGE_KINDS = frozenset({"png", "jpeg"})


# --------------------------------------------------------------------------- errors


class DocumentError(Exception):
    """A file the server refuses, with a stable ``code``, a human ``message`` and a ``status``.

    ``details`` carries extra facts for logs and the JSON error body (never file contents).
    """

    def __init__(self, code: str, message: str, status: int = 422, **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            err["details"] = self.details
        return {"error": err}

    def __reduce__(self) -> tuple[Any, ...]:  # survives pickling from a helper process
        return (self.__class__, (self.code, self.message, self.status), {"details": self.details})

    def __repr__(self) -> str:
        return f"DocumentError({self.code!r}, status={self.status})"


def _err(code: str, message: str, status: int = 422, **details: Any) -> DocumentError:
    return DocumentError(code, message, status, **details)


# --------------------------------------------------------------------------- type detection

_OLE_MAGIC = bytes.fromhex("D0CF11E0A1B11AE1")
_ODF_MIMETYPES = {
    "application/vnd.oasis.opendocument.text": "odt",
    "application/vnd.oasis.opendocument.presentation": "odp",
    "application/vnd.oasis.opendocument.spreadsheet": "ods",
}


def sniff(path: str | os.PathLike[str]) -> str:
    """Detect the type of a file from its content (the name is never trusted).

    Returns one of 'pdf', 'png', 'jpeg', 'docx', 'pptx', 'xlsx', 'odt', 'odp', 'ods',
    'doc', 'ppt', 'xls', or 'ole' (an OLE2 compound file of another kind).

    Raises DocumentError: 422 ``empty_file``; 422 ``encrypted`` (a password-protected
    Word/Excel/PowerPoint file, which is an OLE2 container holding an EncryptedPackage);
    422 ``unreadable`` (a zip package too damaged to look inside); 415
    ``unsupported_type`` for anything else. An HTML page renamed ``.pdf`` is content we do
    not support, so it gets 415 ``unsupported_type`` here (and 422 ``not_a_pdf`` from
    ``inspect_pdf`` if that is called on it directly).
    """
    path = Path(path)
    with path.open("rb") as f:
        head = f.read(8192)
    if not head:
        raise _err("empty_file", "The file is empty (文件为空).")
    if b"%PDF-" in head[:1024]:  # the spec allows junk before the header
        return "pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"PK\x03\x04"):
        return _sniff_zip(path)
    if head.startswith(_OLE_MAGIC):
        return _sniff_ole(path)
    raise _err("unsupported_type", _unsupported_message(head), 415)


def _unsupported_message(head: bytes) -> str:
    start = head.lstrip()[:200].lower()
    if start.startswith((b"<!doctype html", b"<html")) or b"<html" in start:
        what = "an HTML web page, not a document"
    elif start.startswith(b"<?xml") or start.startswith(b"<"):
        what = "an XML or markup file"
    elif head.startswith((b"GIF8", b"RIFF", b"II*\x00", b"MM\x00*", b"BM")):
        what = "an image format we do not take (use PNG or JPEG)"
    else:
        what = "not a PDF, Office document or PNG/JPEG image"
    return (
        f"Unsupported file type: the content is {what}. Upload PDF, Word, PowerPoint, Excel, "
        "OpenDocument, PNG or JPEG files (不支持的文件类型)."
    )


def _sniff_zip(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            if "mimetype" in names:
                with z.open("mimetype") as f:  # bounded: the member could be a bomb
                    mime = f.read(100).decode("ascii", "replace").strip()
                if mime in _ODF_MIMETYPES:
                    return _ODF_MIMETYPES[mime]
            if "[Content_Types].xml" in names:
                for prefix, kind in (("word/", "docx"), ("ppt/", "pptx"), ("xl/", "xlsx")):
                    if any(n.startswith(prefix) for n in names):
                        return kind
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, KeyError, ValueError) as e:
        raise _err(
            "unreadable",
            "The file looks like an Office document (a zip package) but is damaged or "
            "incomplete (文件已损坏).",
            reason=str(e)[:200],
        ) from None
    raise _err(
        "unsupported_type",
        "Unsupported file type: a zip archive that is not a Word, PowerPoint, Excel or "
        "OpenDocument file (不支持的文件类型).",
        415,
    )


def _sniff_ole(path: Path) -> str:
    try:
        names = set(_ole_stream_names(path))
    except (ValueError, struct.error, OSError) as e:
        log.info("OLE2 directory of %s not readable: %s", path, e)
        return "ole"
    if "EncryptedPackage" in names:
        raise _err(
            "encrypted",
            "The Office document is protected by a password; remove the password and upload "
            "it again (文件已加密).",
        )
    if "WordDocument" in names:
        return "doc"
    if "PowerPoint Document" in names:
        return "ppt"
    if "Workbook" in names or "Book" in names:
        return "xls"
    return "ole"


def _ole_stream_names(path: Path, max_entries: int = 4096) -> list[str]:
    """Names in the directory of an OLE2 compound file (MS-CFB), read without a library."""
    size = path.stat().st_size
    with path.open("rb") as f:
        header = f.read(512)
        if len(header) < 512 or header[:8] != _OLE_MAGIC:
            raise ValueError("not an OLE2 file")
        shift = struct.unpack_from("<H", header, 30)[0]
        if shift not in (9, 12):
            raise ValueError(f"bad sector shift {shift}")
        ssize = 1 << shift
        n_fat, first_dir = struct.unpack_from("<I", header, 44)[0], struct.unpack_from("<I", header, 48)[0]
        first_difat, n_difat = struct.unpack_from("<II", header, 68)
        if n_fat > size // ssize + 1:
            raise ValueError("FAT larger than the file")

        def read_sector(sid: int) -> bytes:
            f.seek((sid + 1) * ssize)
            data = f.read(ssize)
            if len(data) != ssize:
                raise ValueError(f"sector {sid} beyond end of file")
            return data

        fat_sids = [s for s in struct.unpack_from("<109I", header, 76) if s < 0xFFFFFFFA]
        sid, guard = first_difat, 0
        while sid < 0xFFFFFFFA and len(fat_sids) < n_fat and guard <= n_difat:
            block = read_sector(sid)
            entries = struct.unpack(f"<{ssize // 4}I", block)
            fat_sids += [s for s in entries[:-1] if s < 0xFFFFFFFA]
            sid, guard = entries[-1], guard + 1
        fat: list[int] = []
        for s in fat_sids[:n_fat]:
            fat += struct.unpack(f"<{ssize // 4}I", read_sector(s))
        names: list[str] = []
        sid, seen = first_dir, set()
        while sid < 0xFFFFFFFA and len(names) < max_entries:
            if sid in seen or sid >= len(fat):
                raise ValueError("broken directory chain")
            seen.add(sid)
            block = read_sector(sid)
            for off in range(0, ssize, 128):
                entry = block[off : off + 128]
                name_len, kind = struct.unpack_from("<HB", entry, 64)
                if kind in (1, 2, 5) and 2 <= name_len <= 64:
                    names.append(entry[: name_len - 2].decode("utf-16-le", "replace"))
            sid = fat[sid]
    return names


def check_size(path: str | os.PathLike[str], max_bytes: int) -> int:
    """Return the size of the file; 413 ``file_too_large`` when it exceeds ``max_bytes``."""
    size = Path(path).stat().st_size
    if size > max_bytes:
        raise _err(
            "file_too_large",
            f"The file is {size / 1048576:.1f} MB; the limit is {max_bytes / 1048576:.0f} MB (文件过大).",
            413,
            size=size,
            limit=max_bytes,
        )
    return size


# --------------------------------------------------------------------------- PDF checks


def _open_pdf(path: str | os.PathLike[str]) -> pymupdf.Document:
    """Open a PDF or raise the DocumentError that says why it cannot be used."""
    path = Path(path)
    if path.stat().st_size == 0:
        raise _err("empty_file", "The file is empty (文件为空).")
    try:
        doc = pymupdf.open(path, filetype="pdf")
    except pymupdf.EmptyFileError:
        raise _err("empty_file", "The file is empty (文件为空).") from None
    except RuntimeError as e:  # FileDataError and MuPDF's plain RuntimeErrors ("code=7: ...")
        raise _unreadable(e) from None
    if not doc.is_pdf:
        doc.close()
        raise _err(
            "not_a_pdf",
            "The file is not a PDF, although it may be named like one (不是有效的PDF文件).",
        )
    if doc.needs_pass:
        doc.close()
        raise _err(
            "encrypted",
            "The PDF is protected by a password; remove the password and upload it again (文件已加密).",
        )
    return doc


def _unreadable(e: Exception | None = None) -> DocumentError:
    return _err(
        "unreadable",
        "The PDF is damaged or incomplete and cannot be read; save or export it again and "
        "upload the new file (文件已损坏，无法读取).",
        **({"reason": str(e)[:200]} if e else {}),
    )


def inspect_pdf(path: str | os.PathLike[str], max_pages: int = DEFAULT_MAX_PAGES) -> int:
    """Check that a PDF can be rendered and return its page count.

    422 codes: ``empty_file``, ``unreadable`` (garbage, or truncated beyond repair; a
    lightly damaged file that MuPDF repairs is accepted), ``not_a_pdf``, ``encrypted`` (needs
    a password to open; owner-password-only files open and are accepted), ``no_pages``,
    ``too_many_pages``. The first and last pages are loaded to catch broken page trees.
    """
    doc = _open_pdf(path)
    with doc:
        n = _page_count(doc)
        if n > max_pages:
            raise _err(
                "too_many_pages",
                f"The PDF has {n} pages; the limit is {max_pages} (页数超过上限).",
                pages=n,
                limit=max_pages,
            )
        try:
            for i in {0, n - 1}:
                doc.load_page(i)
        except (RuntimeError, ValueError) as e:
            raise _unreadable(e) from None
        return n


def _page_count(doc: pymupdf.Document) -> int:
    """The page count of an open PDF; 422 ``unreadable`` / ``no_pages`` when there are none."""
    try:
        n = doc.page_count
    except RuntimeError as e:
        raise _unreadable(e) from None
    if n == 0:
        if doc.is_repaired:  # a cut-off file whose page tree was lost, not an empty one
            raise _unreadable()
        raise _err("no_pages", "The PDF has no pages (文档没有页面).")
    return n


def pdf_page_sizes(path: str | os.PathLike[str]) -> list[tuple[float, float]]:
    """Size in points of every page as displayed (rotation applied), index 0 = page 1.

    These are the coordinates of annotations (origin top-left), see ``export_annotated``.
    """
    with _open_pdf(path) as doc:
        try:
            return [(round(p.rect.width, 3), round(p.rect.height, 3)) for p in doc]
        except (RuntimeError, ValueError) as e:
            raise _unreadable(e) from None


# --------------------------------------------------------------------------- images


def _image_too_large(w: int | None = None, h: int | None = None, limit: int | None = None) -> DocumentError:
    dims = f" ({w} x {h} pixels)" if w and h else ""
    return _err(
        "image_too_large",
        f"The image is too large{dims}; scale it down below {limit or DEFAULT_MAX_IMAGE_PIXELS:,} "
        "pixels and upload it again (图片尺寸过大).",
        **({"width": w, "height": h} if w and h else {}),
    )


def _unreadable_image(e: Exception) -> DocumentError:
    return _err(
        "unreadable",
        "The image is damaged or incomplete and cannot be read (图片已损坏，无法读取).",
        reason=str(e)[:200],
    )


def _open_image(path: Path, max_pixels: int, *, decode: bool) -> tuple[Image.Image, tuple[int, int]]:
    """Open (and with ``decode`` fully decode) an image; bombs become ``image_too_large``.

    Returns the image and its size as stored (a JPEG checked in draft mode is smaller).

    Pillow's DecompressionBombWarning is turned into an exception here, so no warning ever
    escapes (our tests run with warnings as errors), and a bomb is never decoded.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            im = Image.open(path)
        except (Image.DecompressionBombWarning, Image.DecompressionBombError):
            raise _image_too_large(limit=max_pixels) from None
        except (OSError, SyntaxError, ValueError) as e:
            raise _unreadable_image(e) from None
        w, h = im.size
        if w * h > max_pixels or w < 1 or h < 1:
            im.close()
            raise _image_too_large(w, h, max_pixels)
        try:
            if decode:
                im.load()
            elif im.format == "JPEG":
                im.draft("RGB", (max(1, w // 8), max(1, h // 8)))  # DCT scaling: 1/64 of the work
                im.load()
            else:
                im.verify()  # chunk CRCs and structure, without decoding the pixels
        except (Image.DecompressionBombWarning, Image.DecompressionBombError):
            im.close()
            raise _image_too_large(w, h, max_pixels) from None
        except (OSError, SyntaxError, ValueError, EOFError, zlib.error) as e:
            im.close()
            raise _unreadable_image(e) from None
    return im, (w, h)


def check_image(path: str | os.PathLike[str], max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> tuple[int, int]:
    """Cheap upload check of a PNG/JPEG: type, dimensions, structure. Returns (width, height).

    Does not decode the full pixels (``image_to_pdf`` does, in the worker): a JPEG is decoded
    at 1/8 scale, a PNG's chunks are verified. 422 ``image_too_large``,
    422 ``unreadable``, 415 ``unsupported_type``.
    """
    path = Path(path)
    if sniff(path) not in IMAGE_KINDS:
        raise _err("unsupported_type", "Only PNG and JPEG images are supported (仅支持PNG和JPEG图片).", 415)
    im, size = _open_image(path, max_pixels, decode=False)
    im.close()
    return size


def image_to_pdf(
    src: str | os.PathLike[str], dst: str | os.PathLike[str], *, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
) -> Path:
    """Make a one-page PDF from a PNG or JPEG; the page's long side is 842 pt (A4).

    The image is fully decoded first (a truncated file is refused). A JPEG that needs no
    change is embedded as is (no recompression); otherwise the EXIF orientation is applied
    and transparency is flattened on white. 422 ``image_too_large`` / ``unreadable``, 415
    ``unsupported_type``.
    """
    src, dst = Path(src), Path(dst)
    kind = sniff(src)
    if kind not in IMAGE_KINDS:
        raise _err("unsupported_type", "Only PNG and JPEG images are supported (仅支持PNG和JPEG图片).", 415)
    im, _ = _open_image(src, max_pixels, decode=True)
    try:
        orientation = im.getexif().get(0x0112, 1)
        passthrough = kind == "jpeg" and orientation in (0, 1) and im.mode in ("L", "RGB", "CMYK")
        if not passthrough:
            im = ImageOps.exif_transpose(im) or im
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                rgba = im.convert("RGBA")
                im = Image.new("RGB", rgba.size, (255, 255, 255))
                im.paste(rgba, mask=rgba.getchannel("A"))
            elif im.mode == "1":
                im = im.convert("L")
            elif im.mode not in ("L", "RGB"):
                im = im.convert("RGB")
        w, h = im.size
        scale = IMAGE_PAGE_LONG_SIDE / max(w, h)
        doc = pymupdf.open()
        page = doc.new_page(width=max(1.0, w * scale), height=max(1.0, h * scale))
        if passthrough:
            page.insert_image(page.rect, filename=str(src))
        else:
            cs = pymupdf.csGRAY if im.mode == "L" else pymupdf.csRGB
            page.insert_image(page.rect, pixmap=pymupdf.Pixmap(cs, w, h, im.tobytes(), False))
        dst.parent.mkdir(parents=True, exist_ok=True)
        doc.save(dst, garbage=3, deflate=True)
        doc.close()
    except RuntimeError as e:  # MuPDF could not take the image after all
        raise _unreadable_image(e) from None
    finally:
        im.close()
    return dst


# --------------------------------------------------------------------------- Office files


def converter_path() -> str | None:
    """The LibreOffice executable on PATH, or None."""
    return shutil.which("soffice") or shutil.which("libreoffice")


def converter_available() -> bool:
    return converter_path() is not None


def _converter_missing() -> DocumentError:
    return _err(
        "converter_missing",
        "Word, PowerPoint and Excel files need LibreOffice on the server, which is not "
        f"installed: apt-get install {OFFICE_PACKAGES} (服务器未安装LibreOffice，无法转换Office文件).",
        415,
    )


def check_zip(
    path: str | os.PathLike[str],
    *,
    max_uncompressed: int = DEFAULT_MAX_UNCOMPRESSED,
    max_ratio: float = DEFAULT_MAX_RATIO,
    max_entries: int = DEFAULT_MAX_ZIP_ENTRIES,
    verify: bool = False,
) -> int:
    """Refuse zip bombs before anything unpacks the file; returns the uncompressed total.

    Checks the declared sizes (total, entry count, total and per-entry compression ratio;
    entries under 1 MiB are exempt from the per-entry ratio): milliseconds, fit for the
    upload request. With ``verify`` (what ``convert_office`` does, in the worker) it also
    inflates every member, up to ``max_uncompressed`` bytes, so that a header that lies
    about its size fails its CRC instead of fooling LibreOffice: up to a few seconds, never
    on the event loop. 422 ``zip_bomb``, 422 ``unreadable``, 422 ``encrypted``.
    """
    path = Path(path)
    archive_size = max(path.stat().st_size, 1)

    def bomb(why: str, **details: Any) -> DocumentError:
        return _err(
            "zip_bomb",
            f"The file unpacks to far more data than a document holds ({why}); it was refused "
            "to protect the server (文件解压后过大，已拒绝).",
            **details,
        )

    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
            if len(infos) > max_entries:
                raise bomb(f"{len(infos)} files inside", entries=len(infos))
            total = sum(i.file_size for i in infos)
            if total > max_uncompressed:
                raise bomb(f"{total / 1048576:.0f} MB unpacked", uncompressed=total)
            if total > 1048576 and total / archive_size > max_ratio:
                raise bomb(f"compression ratio {total / archive_size:.0f}:1", uncompressed=total)
            for i in infos:
                if i.flag_bits & 0x1:
                    raise _err(
                        "encrypted",
                        "The Office document is protected by a password; remove the password and "
                        "upload it again (文件已加密).",
                    )
                if i.file_size > 1048576 and i.file_size / max(i.compress_size, 1) > max_ratio:
                    raise bomb(f"{i.filename} expands {i.file_size / max(i.compress_size, 1):.0f}:1")
            if verify:
                seen = 0
                for i in infos:
                    with z.open(i) as f:
                        while chunk := f.read(1 << 20):
                            seen += len(chunk)
                            if seen > max_uncompressed:
                                raise bomb(f"more than {max_uncompressed / 1048576:.0f} MB unpacked")
    except DocumentError:
        raise
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        zlib.error,
        EOFError,
        OSError,
        NotImplementedError,
        ValueError,
    ) as e:
        raise _err(
            "unreadable",
            "The Office document is damaged or incomplete and cannot be read (文件已损坏，无法读取).",
            reason=str(e)[:200],
        ) from None
    return total


_JOB_ID = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
_EXT = {"ole": "doc"}


def convert_office(
    src: str | os.PathLike[str],
    dst_dir: str | os.PathLike[str],
    job_id: str,
    timeout: float = 120,
    *,
    max_uncompressed: int = DEFAULT_MAX_UNCOMPRESSED,
    max_ratio: float = DEFAULT_MAX_RATIO,
) -> Path:
    """Convert a Word/PowerPoint/Excel/OpenDocument file to PDF with headless LibreOffice.

    Returns ``dst_dir / (src stem + ".pdf")``. Each job gets its own LibreOffice profile
    ``/tmp/lo_<job_id>`` (two conversions sharing one fail silently), removed afterwards;
    LibreOffice runs in its own process group, killed whole on timeout.

    415 ``converter_missing`` (with the Debian packages to install), 415
    ``unsupported_type``, 422 ``zip_bomb`` / ``unreadable`` / ``encrypted`` (checked before
    LibreOffice sees the file), 422 ``conversion_failed`` (timeout, LibreOffice error, no
    output).
    """
    src, dst_dir = Path(src), Path(dst_dir)
    if not _JOB_ID.match(job_id):
        raise ValueError(f"job_id must match {_JOB_ID.pattern}: {job_id!r}")
    kind = sniff(src)
    if kind not in OFFICE_KINDS:
        raise _err(
            "unsupported_type",
            f"Only Word, PowerPoint, Excel and OpenDocument files are converted, not {kind} (不支持的文件类型).",
            415,
        )
    if kind not in ("doc", "ppt", "xls", "ole"):
        check_zip(src, max_uncompressed=max_uncompressed, max_ratio=max_ratio, verify=True)
    exe = converter_path()
    if exe is None:
        raise _converter_missing()

    dst_dir.mkdir(parents=True, exist_ok=True)
    profile = Path(f"/tmp/lo_{job_id}")
    shutil.rmtree(profile, ignore_errors=True)  # a crashed earlier attempt of the same job
    work = Path(tempfile.mkdtemp(prefix=".convert-", dir=dst_dir))  # same filesystem as dst
    try:
        # LibreOffice names its output after the input: give it a safe name with the right
        # extension (stored originals are content-addressed and have none).
        inp = work / f"input.{_EXT.get(kind, kind)}"
        shutil.copyfile(src, inp)
        out = work / "out"
        cmd = [
            exe,
            f"-env:UserInstallation={profile.as_uri()}",
            "--headless",
            "--invisible",
            "--nologo",
            "--nodefault",
            "--nofirststartwizard",
            "--nolockcheck",
            "--norestore",
            "--convert-to",
            "pdf",
            "--outdir",
            str(out),
            str(inp),
        ]
        env = {**os.environ, "HOME": str(work), "SAL_USE_VCLPLUGIN": "svp"}
        started = time.monotonic()
        # output goes to a file, not a pipe: a pipe would keep us waiting on any straggler
        log_path = work / "soffice.log"
        with log_path.open("wb") as log_file:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=work,
                start_new_session=True,  # its own process group: oosplash and soffice.bin die together
            )
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                raise _err(
                    "conversion_failed",
                    f"Converting the document to PDF took longer than {timeout:g} s and was stopped "
                    "(文档转换超时).",
                    timeout=timeout,
                ) from None
            finally:
                _kill_group(proc)  # nothing of this job may outlive it
        log_tail = log_path.read_bytes()[-500:].decode("utf-8", "replace")
        pdf = out / "input.pdf"
        if proc.returncode != 0 or not pdf.is_file() or pdf.stat().st_size == 0:
            log.warning("LibreOffice failed (rc=%s) on %s: %s", proc.returncode, src, log_tail)
            raise _err(
                "conversion_failed",
                "LibreOffice could not convert the document to PDF; open it in Office, save it "
                "again and upload the new file (文档转换失败).",
                returncode=proc.returncode,
                log=log_tail,
            )
        log.info("converted %s (%s) in %.1f s", src.name, kind, time.monotonic() - started)
        dst = dst_dir / f"{src.stem}.pdf"
        os.replace(pdf, dst)
        return dst
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(profile, ignore_errors=True)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process group we started for ``proc`` (its pgid is its pid) and reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:  # pragma: no cover - a SIGKILLed child always exits
        log.error("LibreOffice process %s did not exit after SIGKILL", proc.pid)


# --------------------------------------------------------------------------- rendering


def _page_image(page: pymupdf.Page, long_side: int) -> Image.Image:
    """Render a page so that its long side is exactly ``long_side`` pixels (RGB, no alpha).

    Pillow stores RGB as 4 bytes a pixel, so ``frombuffer`` unpacks the samples into memory
    of its own (no zero-copy here, and none possible that is safe: a mapped RGBX image
    outliving its Pixmap is a use-after-free); ``samples_mv`` spares one more copy.
    """
    rect = page.rect
    scale = long_side / max(rect.width, rect.height)
    pix = page.get_pixmap(matrix=pymupdf.Matrix(scale, scale), alpha=False, colorspace=pymupdf.csRGB)
    im = Image.frombuffer("RGB", (pix.width, pix.height), pix.samples_mv, "raw", "RGB", pix.stride, 1)
    if max(pix.width, pix.height) != long_side:  # MuPDF rounds outward with a tolerance; defensive
        im = im.resize(_scaled_size(pix.width, pix.height, long_side), Image.Resampling.BICUBIC)
    return im


def _scaled_size(w: int, h: int, long_side: int) -> tuple[int, int]:
    if w >= h:
        return long_side, max(1, round(h * long_side / w))
    return max(1, round(w * long_side / h)), long_side


def _downscale(im: Image.Image, long_side: int) -> Image.Image:
    """A smaller copy: an integer box ``reduce`` (fast, good for text), then a short resize."""
    w, h = im.size
    big = max(w, h)
    if big <= long_side:
        return im
    factor = big // long_side
    if big % long_side == 0:
        return im.reduce(factor)
    small = im.reduce(factor) if factor >= 2 else im
    return small.resize(_scaled_size(w, h, long_side), Image.Resampling.BILINEAR)


def _jpeg(im: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def render_page(
    doc_or_path: pymupdf.Document | str | os.PathLike[str],
    page_index: int,
    long_side: int,
    *,
    quality: int = DEFAULT_QUALITY,
) -> tuple[bytes, int, int]:
    """Render one page (``page_index`` from 0) to JPEG with its long side ``long_side`` px.

    Returns (jpeg_bytes, width, height). Pass an open Document when rendering many pages.
    """
    if isinstance(doc_or_path, pymupdf.Document):
        return _render_one(doc_or_path, page_index, long_side, quality)
    with _open_pdf(doc_or_path) as doc:
        return _render_one(doc, page_index, long_side, quality)


def _render_one(
    doc: pymupdf.Document, page_index: int, long_side: int, quality: int
) -> tuple[bytes, int, int]:
    if not 0 <= page_index < doc.page_count:
        raise IndexError(f"page index {page_index} out of range 0..{doc.page_count - 1}")
    try:
        im = _page_image(doc[page_index], long_side)
    except (RuntimeError, ValueError) as e:
        raise _render_failed(page_index + 1, e) from None
    return _jpeg(im, quality), im.width, im.height


def _render_failed(n: int, e: Exception) -> DocumentError:
    return _err(
        "render_failed",
        f"Page {n} of the PDF could not be rendered; the file may be damaged (第{n}页无法显示).",
        page=n,
        reason=str(e)[:200],
    )


def _write(path: Path, data: bytes) -> None:
    # No temp file + rename: a page is announced (on_page/progress) only once its files are
    # closed, and the rename cost about 1 ms a file on ext4, 5% of a page.
    with open(path, "wb") as f:
        f.write(data)


def _render_pages(
    doc: pymupdf.Document,
    numbers: Iterable[int],
    out_dir: Path,
    sizes: Mapping[str, int],
    quality: int,
    on_page: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Render pages ``numbers`` (from 1) of an open document to files; one record per page."""
    order = sorted(sizes.items(), key=lambda kv: -kv[1])  # largest first: the others derive from it
    records = []
    for n in numbers:
        try:
            page = doc[n - 1]
            rect = page.rect
            big = _page_image(page, order[0][1])
        except (RuntimeError, ValueError) as e:
            raise _render_failed(n, e) from None
        rec: dict[str, Any] = {"n": n, "pdf_width": round(rect.width, 3), "pdf_height": round(rect.height, 3)}
        for name, long_side in order:
            im = big if long_side == order[0][1] else _downscale(big, long_side)
            data = _jpeg(im, quality)
            path = out_dir / f"{name}-{n:04d}.jpg"
            _write(path, data)
            rec[name] = {
                "file": str(path),
                "width": im.width,
                "height": im.height,
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        big.close()
        records.append(rec)
        if on_page is not None:
            on_page(rec)
    return records


def _page_order(total: int, first: int) -> list[int]:
    if not 1 <= first <= total:
        raise ValueError(f"first must be a page number from 1 to {total}, not {first}")
    return [first] + [n for n in range(1, total + 1) if n != first]


def render_document(
    pdf_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    sizes: Mapping[str, int] | None = None,
    quality: int = DEFAULT_QUALITY,
    progress: Callable[[int, int], None] | None = None,
    *,
    first: int = 1,
    on_page: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Render every page to JPEG files in ``out_dir`` (created if needed), in this process.

    ``sizes`` maps a name to a long side in pixels (default ``{"page": 1600, "thumb": 320}``);
    the largest is rendered by MuPDF and the smaller ones are downscaled from it with Pillow.
    Files are ``<name>-<n:04d>.jpg``, complete by the time their page is reported. Page
    ``first`` (from 1) is rendered before the others, so the page a presenter is on is ready
    first. ``progress(done, total)`` is called after each page, ``on_page(record)`` with each
    record.

    Returns one record per page in page order::

        {"n": 1, "pdf_width": 595.0, "pdf_height": 842.0,
         "page": {"file": "/abs/out/page-0001.jpg", "width": 1131, "height": 1600,
                  "size": 201234, "sha256": "..."},
         "thumb": {...}}

    422 ``render_failed`` when MuPDF cannot render a page; the ``inspect_pdf`` codes when
    the file cannot be opened.
    """
    sizes = dict(sizes or DEFAULT_SIZES)
    _check_sizes(sizes)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with _open_pdf(pdf_path) as doc:
        total = _page_count(doc)
        done = 0

        def page_done(rec: dict[str, Any]) -> None:
            nonlocal done
            done += 1
            if on_page is not None:
                on_page(rec)
            if progress is not None:
                progress(done, total)

        records = _render_pages(doc, _page_order(total, first), out_dir, sizes, quality, page_done)
    records.sort(key=lambda r: r["n"])
    return records


def _check_sizes(sizes: Mapping[str, int]) -> None:
    if not sizes:
        raise ValueError("sizes must name at least one image size")
    for name, px in sizes.items():
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name) or not isinstance(px, int) or not 16 <= px <= 10000:
            raise ValueError(f"bad size {name!r}: {px!r}")


# ----- helpers of render_document_parallel (module level: spawn pickles them by name)

_shared_cursor: Any = None  # in a helper: Array('i', [front, back]) of positions in the page list
_helper_doc: tuple[str, pymupdf.Document] | None = None


def _helper_init(cursor: Any) -> None:
    global _shared_cursor
    _shared_cursor = cursor


def _take(cursor: Any, from_back: bool) -> int | None:
    """Claim the next position from the front (the caller) or the back (helpers)."""
    with cursor.get_lock():
        front, back = cursor[0], cursor[1]
        if front >= back:
            return None
        if from_back:
            cursor[1] = back - 1
            return back - 1
        cursor[0] = front + 1
        return front


def _render_from_back(
    pdf_path: str, out_dir: str, sizes: dict[str, int], quality: int, numbers: list[int], batch: int
) -> list[dict[str, Any]]:
    """Helper task: render up to ``batch`` pages taken one at a time from the back."""
    global _helper_doc
    if _helper_doc is None or _helper_doc[0] != pdf_path:
        if _helper_doc is not None:
            _helper_doc[1].close()
        _helper_doc = (pdf_path, _open_pdf(pdf_path))
    doc = _helper_doc[1]
    records: list[dict[str, Any]] = []
    while len(records) < batch:
        i = _take(_shared_cursor, from_back=True)
        if i is None:
            break
        records += _render_pages(doc, [numbers[i]], Path(out_dir), sizes, quality)
    return records


def render_document_parallel(
    pdf_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    sizes: Mapping[str, int] | None = None,
    quality: int = DEFAULT_QUALITY,
    progress: Callable[[int, int], None] | None = None,
    *,
    first: int = 1,
    on_page: Callable[[dict[str, Any]], None] | None = None,
    processes: int = 2,
    batch: int = 8,
    min_pages: int = 40,
) -> list[dict[str, Any]]:
    """``render_document`` spread over ``processes`` processes, this one included.

    This process renders page ``first`` at once and then takes pages from the front, while
    ``processes - 1`` helpers started with ``spawn`` (never fork: eventlet, MuPDF) take
    pages from the back; a shared cursor hands out each page once, so nobody waits on work
    claimed by a helper that is still starting. Same files and records as
    ``render_document``; ``progress``/``on_page`` run in this process (a helper's pages
    are reported every ``batch`` pages). Pages a crashed helper had claimed are rendered
    here at the end.

    Falls back to ``render_document`` for documents under ``min_pages`` (starting a
    helper costs about as much as rendering 20 pages), ``processes <= 1``, or when this
    process is a daemonic multiprocessing child (which may not have children).
    """
    sizes = dict(sizes or DEFAULT_SIZES)
    _check_sizes(sizes)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with _open_pdf(pdf_path) as doc:
        total = _page_count(doc)
    if processes <= 1 or total < max(min_pages, 2) or multiprocessing.current_process().daemon:
        return render_document(pdf_path, out_dir, sizes, quality, progress, first=first, on_page=on_page)
    with _open_pdf(pdf_path) as doc:
        order = _page_order(total, first)
        rest = order[1:]
        done: dict[int, dict[str, Any]] = {}

        def report(recs: list[dict[str, Any]]) -> None:
            for rec in recs:
                if rec["n"] in done:
                    continue
                done[rec["n"]] = rec
                if on_page is not None:
                    on_page(rec)
                if progress is not None:
                    progress(len(done), total)

        ctx = multiprocessing.get_context("spawn")
        cursor = ctx.Array("i", [0, len(rest)])
        args = (str(pdf_path), str(out_dir), sizes, quality, rest, batch)
        pool = cf.ProcessPoolExecutor(
            max_workers=processes - 1, mp_context=ctx, initializer=_helper_init, initargs=(cursor,)
        )
        try:
            # submitted first, so that the helpers start while this process renders
            running = {pool.submit(_render_from_back, *args) for _ in range(processes - 1)}
            report(_render_pages(doc, order[:1], out_dir, sizes, quality))
            while True:
                for fut in [f for f in running if f.done()]:
                    running.discard(fut)
                    try:
                        report(fut.result())
                    except cf.process.BrokenProcessPool:
                        log.warning("a render helper died; its pages are rendered here")
                        continue
                    if cursor[0] < cursor[1]:
                        running.add(pool.submit(_render_from_back, *args))
                i = _take(cursor, from_back=False)
                if i is None:
                    break
                report(_render_pages(doc, [rest[i]], out_dir, sizes, quality))
            for fut in cf.as_completed(running):
                try:
                    report(fut.result())
                except cf.process.BrokenProcessPool:
                    log.warning("a render helper died; its pages are rendered here")
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        missing = [n for n in order if n not in done]
        report(_render_pages(doc, missing, out_dir, sizes, quality))
    return [done[n] for n in range(1, total + 1)]


# --------------------------------------------------------------------------- watermark


@functools.lru_cache(maxsize=1)
def _cjk_font_bytes() -> bytes:
    return pymupdf.Font("cjk").buffer  # Droid Sans Fallback, built into PyMuPDF: CJK and Latin


@functools.lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(io.BytesIO(_cjk_font_bytes()), size)


@functools.lru_cache(maxsize=16)
def _watermark_mask(lines: tuple[str, ...], size: tuple[int, int], opacity: float) -> Image.Image:
    """An 'L' mask the size of the image: the text block, rotated 30 degrees, tiled."""
    w, h = size
    fsize = max(10, min(64, round(min(w, h) / 30)) // 2 * 2)  # even sizes: fewer cached fonts
    font = _font(fsize)
    alpha = max(1, min(255, round(255 * opacity)))
    spacing = fsize // 3
    boxes = [font.getbbox(line or " ") for line in lines]
    bw = max(b[2] - b[0] for b in boxes)
    bh = sum(fsize + spacing for _ in lines)
    tile = Image.new("L", (bw + 2 * fsize, bh + 2 * fsize), 0)
    draw = ImageDraw.Draw(tile)
    y = fsize
    for line in lines:
        draw.text((fsize, y), line, fill=255, font=font)
        y += fsize + spacing
    tile = tile.rotate(30, resample=Image.Resampling.BICUBIC, expand=True)
    ink = tile.point(lambda v: 255 if v else 0)  # paste only where there is text: tiles overlap
    tile = tile.point(lambda v: v * alpha // 255)
    mask = Image.new("L", size, 0)
    tw, th = tile.size
    step_x, step_y = max(tw, 1), max(th * 3 // 4, 1)
    for row, y in enumerate(range(-th // 2, h, step_y)):
        offset = (row % 2) * (step_x // 2) - step_x // 2
        for x in range(offset, w, step_x):
            mask.paste(tile, (x, y), ink)
    return mask


def watermark(
    jpeg_bytes: bytes,
    lines: Sequence[str],
    opacity: float = 0.18,
    *,
    quality: int = DEFAULT_QUALITY,
    color: tuple[int, int, int] = (40, 40, 40),
) -> bytes:
    """Burn repeated, diagonal, semi-transparent text (viewer name, seat, time) into a JPEG.

    Text in any script the built-in CJK font covers (Chinese, Japanese, Korean, Latin). The
    mask for a given (lines, image size, opacity) is cached, so one viewer's pages of one
    size cost a decode, a paste and an encode.
    """
    if not lines or not any(s.strip() for s in lines):
        raise ValueError("watermark needs at least one non-empty line")
    if not 0 < opacity <= 1:
        raise ValueError("opacity must be in (0, 1]")
    with Image.open(io.BytesIO(jpeg_bytes)) as src:
        im = src.convert("RGB")
    mask = _watermark_mask(tuple(lines), im.size, round(opacity, 3))
    im.paste(color, (0, 0), mask)
    return _jpeg(im, quality)


# --------------------------------------------------------------------------- export


def _rgb(color: Any, default: str = "#d00000") -> tuple[float, float, float]:
    s = color or default
    if not isinstance(s, str) or not re.fullmatch(r"#[0-9a-fA-F]{6}", s):
        raise _bad_annotation(f"color must be '#rrggbb', not {color!r}")
    return tuple(int(s[i : i + 2], 16) / 255 for i in (1, 3, 5))  # type: ignore[return-value]


def _bad_annotation(why: str, index: int | None = None) -> DocumentError:
    where = f" {index}" if index is not None else ""
    return _err("invalid_annotation", f"Invalid annotation{where}: {why} (批注数据无效).", 400, why=why)


def _points(raw: Any) -> list[tuple[float, float]]:
    try:
        pts = [(float(p[0]), float(p[1])) for p in raw]
    except (TypeError, ValueError, IndexError):
        raise _bad_annotation("points must be [[x, y], ...]") from None
    if not pts or not all(math.isfinite(c) for p in pts for c in p):
        raise _bad_annotation("points must be finite numbers")
    return pts


def _rect(a: Mapping[str, Any]) -> pymupdf.Rect:
    raw = a.get("rect")
    if raw is not None:
        try:
            r = pymupdf.Rect(*[float(v) for v in raw])
        except (TypeError, ValueError):
            raise _bad_annotation("rect must be [x0, y0, x1, y1]") from None
    else:
        pts = _points(a.get("points"))
        r = pymupdf.Rect(
            min(p[0] for p in pts), min(p[1] for p in pts), max(p[0] for p in pts), max(p[1] for p in pts)
        )
    r.normalize()
    return r


def _rich_text(text: str) -> str:
    paras = "".join(f"<p>{xml_escape(line) or '&#160;'}</p>" for line in text.split("\n"))
    return (
        '<?xml version="1.0"?><body xmlns="http://www.w3.org/1999/xhtml" '
        'xmlns:xfa="http://www.xfa.org/schema/xfa-data/1.0/" xfa:APIVersion="Acrobat:8.0.0" '
        f'xfa:spec="2.0.2">{paras}</body>'
    )


def export_annotated(
    pdf_path: str | os.PathLike[str], annotations: Iterable[Mapping[str, Any]], author: str
) -> bytes:
    """A copy of the PDF carrying the annotations as real PDF annotations, with title=author.

    Each annotation: ``{"page": n (from 1), "kind": ..., "points": [[x, y], ...],
    "strokes": [[[x, y], ...], ...], "rect": [x0, y0, x1, y1], "color": "#rrggbb",
    "width": float, "text": str, "font_size": float}`` in the page's displayed coordinates
    (points, origin top-left, rotation applied: the same space as ``pdf_page_sizes`` and the
    page images).

    kinds: ``pen`` (ink), ``highlighter`` (ink, opacity 0.35, multiply, default width 12),
    ``highlight`` (highlight annotation over ``rect`` or the points' bounding box),
    ``note`` (sticky note at points[0]), ``text`` (free text in ``rect``, or from points[0];
    the appearance embeds a subset of a CJK font so Chinese shows in any viewer).
    An invalid annotation raises 400 ``invalid_annotation``; nothing is skipped silently.
    """
    with tempfile.TemporaryDirectory(prefix="export-") as tmp:
        target = Path(tmp) / "annotated.pdf"
        write_annotated(pdf_path, annotations, author, target)
        return target.read_bytes()


def write_annotated(
    pdf_path: str | os.PathLike[str],
    annotations: Iterable[Mapping[str, Any]],
    author: str,
    target: str | os.PathLike[str],
) -> int:
    """``export_annotated`` written to the file ``target``; returns its size.

    The copy is the original file with an incremental update appended (the original bytes
    stay as they are, the annotations are new objects after them), so a 50-page document
    is not rewritten for each seat. Ink (``pen``, ``highlighter``), by far the most
    annotations, is written directly as Ink annotation objects with an appearance stream
    (PDF path operators), not point by point through PyMuPDF's annotation API. A copy
    with ``text`` annotations (whose appearance embeds a font that must be subset) or of
    a file MuPDF had to repair is rewritten whole instead.
    """
    items = list(annotations)
    target = Path(target)
    shutil.copyfile(pdf_path, target)
    try:
        doc = _open_pdf(target)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    try:
        with doc:
            n_pages = doc.page_count
            inks: dict[int, list[str]] = {}
            matrices: dict[int, tuple[float, ...]] = {}
            fonts = False
            title = pymupdf.get_pdf_str(author)
            for i, a in enumerate(items):
                try:
                    page_no = int(a["page"])
                    kind = a["kind"]
                except (KeyError, TypeError, ValueError):
                    raise _bad_annotation("needs 'page' and 'kind'", i) from None
                if not 1 <= page_no <= n_pages:
                    raise _bad_annotation(f"page {page_no} is not in 1..{n_pages}", i)
                try:
                    if kind in ("pen", "highlighter"):
                        ref = _ink_objects(doc, page_no - 1, kind, a, title, matrices)
                        inks.setdefault(page_no, []).append(ref)
                        continue
                    page = doc[page_no - 1]
                    annot = _add_annotation(page, kind, a)
                except DocumentError as e:
                    raise _bad_annotation(e.details.get("why", e.message), i) from None
                fonts = fonts or kind == "text"
                annot.set_info(title=author)
                annot.update()
            for page_no, refs in inks.items():
                _append_annots(doc, doc.page_xref(page_no - 1), refs)
            if fonts or not doc.can_save_incrementally():
                if fonts:
                    doc.subset_fonts()  # free-text appearances embed the CJK font: 3.5 MB -> a few KB
                data = doc.tobytes(garbage=3, deflate=True)
            else:
                doc.saveIncr()
                data = None
        if data is not None:
            target.write_bytes(data)
        return target.stat().st_size
    except BaseException:
        target.unlink(missing_ok=True)
        raise


def _num(v: float) -> str:
    return f"{v:.2f}"


def _ink_objects(
    doc: pymupdf.Document,
    index: int,
    kind: str,
    a: Mapping[str, Any],
    title: str,
    matrices: dict[int, tuple[float, ...]],
) -> str:
    """Write one Ink annotation (dictionary and appearance stream); returns its reference.

    The points are mapped from displayed page space (origin top-left, rotation applied)
    to PDF user space with one matrix per page (derotation, then PyMuPDF's page space to
    PDF space), in plain float arithmetic; ``matrices`` caches it per page index.
    """
    page_xref = doc.page_xref(index)
    m = matrices.get(index)
    if m is None:
        page = doc[index]
        m = matrices[index] = tuple(page.derotation_matrix * _page_to_pdf(page))
    ma, mb, mc, md, me, mf = m
    r, g, b = _rgb(a.get("color"), "#ffd400" if kind == "highlighter" else "#d00000")
    width = a.get("width")
    try:
        width = float(width) if width is not None else (2.0 if kind == "pen" else 12.0)
    except (TypeError, ValueError):
        raise _bad_annotation("width must be a number") from None
    if not math.isfinite(width) or width < 0:
        raise _bad_annotation("width must be a finite number")
    strokes = a.get("strokes") or [a.get("points")]
    ink, ops = [], []
    x0 = y0 = math.inf
    x1 = y1 = -math.inf
    for stroke in strokes:
        try:
            px = [float(q[0]) for q in stroke]
            py = [float(q[1]) for q in stroke]
        except (TypeError, ValueError, IndexError, KeyError):
            raise _bad_annotation("points must be [[x, y], ...]") from None
        # a sum is finite only if every term is (NaN and infinities propagate; an overflow is refused too)
        if not px or not math.isfinite(sum(px) + sum(py)):
            raise _bad_annotation("points must be finite numbers")
        xs = [x * ma + y * mc + me for x, y in zip(px, py, strict=True)]
        ys = [x * mb + y * md + mf for x, y in zip(px, py, strict=True)]
        xy = ["%.2f %.2f" % p for p in zip(xs, ys, strict=True)]  # noqa: UP031 (faster than f-strings here)
        ink.append("[" + " ".join(xy) + "]")
        ops.append(xy[0] + " m " + (" l ".join(xy[1:]) + " l S" if len(xy) > 1 else xy[0] + " l S"))
        x0, x1 = min(x0, min(xs)), max(x1, max(xs))
        y0, y1 = min(y0, min(ys)), max(y1, max(ys))
    pad = width / 2 + 1
    rect = f"[{_num(x0 - pad)} {_num(y0 - pad)} {_num(x1 + pad)} {_num(y1 + pad)}]"
    color = f"{r:.4g} {g:.4g} {b:.4g}"
    if kind == "highlighter":
        alpha = "/CA 0.35/BM/Multiply"
        resources, gs = "<</ExtGState<</H<</Type/ExtGState/CA 0.35/ca 0.35/BM/Multiply>>>>>>", "/H gs "
    else:
        alpha, resources, gs = "", "<<>>", ""
    ap = doc.get_new_xref()
    doc.update_object(ap, f"<</Type/XObject/Subtype/Form/BBox{rect}/Resources{resources}>>")
    body = f"q {gs}{color} RG {_num(width)} w 1 J 1 j\n" + "\n".join(ops) + "\nQ\n"
    doc.update_stream(ap, body.encode("ascii"))
    xref = doc.get_new_xref()
    doc.update_object(
        xref,
        f"<</Type/Annot/Subtype/Ink/Rect{rect}/InkList[{' '.join(ink)}]/C[{color}]"
        f"/BS<</W {_num(width)}>>/F 4{alpha}/T{title}/M{pymupdf.get_pdf_str(_pdf_now())}"
        f"/P {page_xref} 0 R/AP<</N {ap} 0 R>>>>",
    )
    return f"{xref} 0 R"


def _page_to_pdf(page: pymupdf.Page) -> pymupdf.Matrix:
    """The matrix PyMuPDF's own ``add_ink_annot`` maps (derotated) points with to PDF space.

    Like that method, it is taken with the page's rotation set to 0 for the moment:
    ``page.transformation_matrix`` of a rotated page drops the CropBox offset.
    """
    rotation = page.rotation
    if not rotation:
        return ~page.transformation_matrix
    page.set_rotation(0)
    try:
        return ~page.transformation_matrix
    finally:
        page.set_rotation(rotation)


def _pdf_now() -> str:
    return time.strftime("D:%Y%m%d%H%M%SZ", time.gmtime())


def _append_annots(doc: pymupdf.Document, page_xref: int, refs: list[str]) -> None:
    """Add annotation references to a page's /Annots (an array in the page, or an indirect one)."""
    kind, value = doc.xref_get_key(page_xref, "Annots")
    if kind == "xref":
        target = int(value.split()[0])
        old = doc.xref_object(target, compressed=True).strip()
        if old.startswith("[") and old.endswith("]"):
            doc.update_object(target, old[:-1] + " " + " ".join(refs) + "]")
            return
        old_items = ""
    elif kind == "array":
        old_items = value.strip()[1:-1]
    else:
        old_items = ""
    doc.xref_set_key(page_xref, "Annots", "[" + " ".join(x for x in (old_items, *refs) if x) + "]")


def _add_annotation(page: pymupdf.Page, kind: str, a: Mapping[str, Any]) -> pymupdf.Annot:
    derot = page.derotation_matrix  # annotations are stored in unrotated page space
    color = _rgb(a.get("color"), "#ffd400" if kind in ("highlighter", "highlight") else "#d00000")
    width = a.get("width")
    try:
        width = float(width) if width is not None else None
    except (TypeError, ValueError):
        raise _bad_annotation("width must be a number") from None
    if kind in ("pen", "highlighter"):
        strokes = a.get("strokes") or [a.get("points")]
        ink = [[tuple(pymupdf.Point(p) * derot) for p in _points(s)] for s in strokes]
        annot = page.add_ink_annot(ink)
        if kind == "pen":
            annot.set_border(width=width or 2.0)
        else:
            annot.set_border(width=width or 12.0)
            annot.set_opacity(0.35)
            annot.set_blendmode(pymupdf.PDF_BM_Multiply)
        annot.set_colors(stroke=color)
        return annot
    if kind == "highlight":
        r = _rect(a) * derot
        r.normalize()
        if r.is_empty:
            raise _bad_annotation("highlight rect is empty")
        annot = page.add_highlight_annot(r)
        annot.set_colors(stroke=color)
        return annot
    text = a.get("text") or ""
    if not isinstance(text, str):
        raise _bad_annotation("text must be a string")
    if kind == "note":
        p = _points(a.get("points") or [_rect(a).tl])[0]
        annot = page.add_text_annot(pymupdf.Point(p) * derot, text, icon="Note")
        annot.set_colors(stroke=color)
        return annot
    if kind == "text":
        if not text.strip():
            raise _bad_annotation("text annotation without text")
        size = float(a.get("font_size") or 14)
        if a.get("rect") is not None:
            r = _rect(a)
        else:
            x, y = _points(a.get("points"))[0]
            lines = text.split("\n")
            longest = max(sum(1.0 if ord(c) > 0x2E80 else 0.6 for c in ln) for ln in lines)
            r = pymupdf.Rect(
                x, y, x + max(longest * size + size, 2 * size), y + len(lines) * size * 1.4 + size
            )
        r = r * derot
        r.normalize()
        if r.is_empty:
            raise _bad_annotation("text rect is empty")
        hexcolor = "#" + "".join(f"{round(c * 255):02x}" for c in color)
        annot = page.add_freetext_annot(
            r,
            " ",
            richtext=True,
            style=f"font-size:{size:g}pt;font-family:sans-serif;color:{hexcolor}",
            rotate=page.rotation,
        )
        # PyMuPDF's own rich-text wrapper indents the body (a blank first line) and
        # misspells the XHTML namespace; MuPDF builds the appearance from ours, embedding a
        # font that has the glyphs (non-rich FreeText uses a non-embedded /Song font).
        annot.set_info(content=text)  # plain text for search and accessibility; drops RC
        page.parent.xref_set_key(annot.xref, "RC", pymupdf.get_pdf_str(_rich_text(text)))
        return annot
    raise _bad_annotation(f"unknown kind {kind!r}")
