"""The sealed archive of one meeting: a zip with a signed manifest.

Layout of the zip (entries in this order, UTF-8 names; files that are compressed already
(PDF, images, Office packages, zips: see ``STORED_SUFFIXES``) are stored, the others
deflated)::

    <every given file, sorted by path>, audit.jsonl among them
    manifest.json   {"format": "meeting-archive/1", "meeting", "organization",
                     "created_at", "files": [{"path", "sha256", "size"}...],
                     "audit": {"entries", "head"}, "public_key",
                     "signing_certificate_sha256", "minutes_pdf"}
    manifest.sig    base64 Ed25519 signature over the exact manifest.json bytes

``audit.jsonl`` holds one canonical JSON audit entry per line (as given,
each with ``seq``/``prev``/``hash``); ``audit.head`` is the last entry's hash
(``GENESIS`` when there are none). ``meeting-server verify`` (verify.py)
checks all of it with nothing but the file.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import unicodedata
import zipfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from meeting_server.core.chain import GENESIS, canonical_json, verify_chain

__all__ = [
    "AUDIT_NAME",
    "FORMAT",
    "MANIFEST_NAME",
    "MINUTES_NAME",
    "SIGNATURE_NAME",
    "UnsafeNameError",
    "build_archive",
    "check_name",
    "safe_name",
]

FORMAT = "meeting-archive/1"
MANIFEST_NAME = "manifest.json"
SIGNATURE_NAME = "manifest.sig"
AUDIT_NAME = "audit.jsonl"
MINUTES_NAME = "minutes.pdf"
#: names the archive writes itself; a caller's file may not take them
RESERVED = frozenset({MANIFEST_NAME, SIGNATURE_NAME, AUDIT_NAME})

_CHUNK = 1 << 20
#: Formats that are compressed already: deflating them again costs about 30 MB/s for a few percent.
STORED_SUFFIXES = frozenset(
    {
        ".pdf",
        ".zip",
        ".png",
        ".jpg",
        ".jpeg",
        ".gif",
        ".webp",
        ".docx",
        ".pptx",
        ".xlsx",
        ".odt",
        ".odp",
        ".ods",
    }
)
#: bidirectional controls can make "gpj.exe" display as "exe.jpg"
_BIDI = set("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


class UnsafeNameError(ValueError):
    """A path that must not go into an archive (traversal, absolute, controls...)."""


def check_name(path: str) -> str:
    """Return ``path`` (NFC) if it is a safe relative archive path, else raise.

    Refused: empty, absolute (``/x``, ``C:x``), backslashes, ``.`` or ``..``
    segments, empty segments, control or bidi-control characters, segments
    over 255 UTF-8 bytes.
    """
    if not isinstance(path, str) or not path:
        raise UnsafeNameError("empty name")
    name = unicodedata.normalize("NFC", path)
    if "\\" in name:
        raise UnsafeNameError(f"{path!r}: backslash")
    if name.startswith("/") or (
        len(name) >= 2 and name[1] == ":" and name[0].isascii() and name[0].isalpha()
    ):
        raise UnsafeNameError(f"{path!r}: absolute path")
    for ch in name:
        if unicodedata.category(ch) in ("Cc", "Cs") or ch in _BIDI:
            raise UnsafeNameError(f"{path!r}: control character U+{ord(ch):04X}")
    for seg in name.split("/"):
        if seg in ("", ".", ".."):
            raise UnsafeNameError(f"{path!r}: empty, '.' or '..' segment")
        if len(seg.encode("utf-8")) > 255:
            raise UnsafeNameError(f"{path!r}: segment longer than 255 bytes")
    return name


def safe_name(text: str, default: str = "file") -> str:
    """Turn a title into one safe path segment (for callers naming files).

    Slashes, backslashes, controls and ``:`` become ``_``; leading dots and
    surrounding spaces go; long names are cut at 200 bytes keeping the
    extension.
    """
    s = unicodedata.normalize("NFC", text or "")
    s = "".join(
        "_" if (ch in '/\\:*?"<>|' or unicodedata.category(ch) in ("Cc", "Cs") or ch in _BIDI) else ch
        for ch in s
    )
    s = s.strip().lstrip(".").strip()
    if not s:
        return default
    if len(s.encode("utf-8")) > 200:
        stem, dot, ext = s.rpartition(".")
        if not dot or len(ext) > 10:
            stem, ext = s, ""
        keep = 200 - len(ext.encode("utf-8")) - (1 if ext else 0)
        stem = stem.encode("utf-8")[:keep].decode("utf-8", "ignore")
        s = f"{stem}.{ext}" if ext else stem
    return s


def _zinfo(name: str, when: datetime) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=when.timetuple()[:6])
    suffix = os.path.splitext(name)[1].lower()
    info.compress_type = zipfile.ZIP_STORED if suffix in STORED_SUFFIXES else zipfile.ZIP_DEFLATED
    # zipfile sets the UTF-8 flag (0x800) itself on every non-ASCII name
    info.external_attr = 0o644 << 16
    info.create_system = 3
    return info


def _write_member(zf: zipfile.ZipFile, name: str, data: bytes | Path, when: datetime) -> dict[str, Any]:
    h = hashlib.sha256()
    size = 0
    with zf.open(_zinfo(name, when), "w", force_zip64=True) as dst:
        if isinstance(data, bytes | bytearray | memoryview):
            chunk = bytes(data)
            h.update(chunk)
            dst.write(chunk)
            size = len(chunk)
        else:
            with open(data, "rb") as src:
                while chunk := src.read(_CHUNK):
                    h.update(chunk)
                    dst.write(chunk)
                    size += len(chunk)
    return {"path": name, "sha256": h.hexdigest(), "size": size}


def build_archive(
    out_path: Path | str,
    files: Mapping[str, bytes | Path | str],
    audit_entries: list[dict[str, Any]],
    keys: Any,
    meeting: dict[str, Any],
    *,
    created_at: datetime | None = None,
) -> dict[str, Any]:
    """Write the archive zip to ``out_path`` and return its manifest.

    ``files`` maps archive paths to bytes or to a file on disk (streamed,
    never loaded whole). Unsafe or reserved names raise
    :class:`UnsafeNameError`; two names equal after Unicode normalization or
    case folding raise too (they would clash when unpacked). An audit chain
    that does not verify raises ``ValueError``: the server never seals a
    broken log. ``keys`` is a :class:`~meeting_server.archive.keys.Keys`.
    The zip is written next to ``out_path`` and renamed into place, so a
    reader never sees half an archive.
    """
    names: dict[str, bytes | Path] = {}
    folded: dict[str, str] = {}
    for raw, data in files.items():
        name = check_name(raw)
        if name in RESERVED:
            raise UnsafeNameError(f"{raw!r} is reserved for the archive itself")
        key = name.casefold()
        if key in folded:
            raise UnsafeNameError(f"{raw!r} clashes with {folded[key]!r}")
        folded[key] = raw
        names[name] = Path(data) if isinstance(data, str) else data

    entries = list(audit_entries)
    ok, _, message = verify_chain(entries)
    if not ok:
        raise ValueError(f"audit chain does not verify: {message}")
    audit_bytes = b"".join(canonical_json(e) + b"\n" for e in entries)
    names[AUDIT_NAME] = audit_bytes

    when = (created_at or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    out_path = Path(out_path)
    tmp = out_path.with_name(f".{out_path.name}.{os.getpid()}.tmp")
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
            listed = [_write_member(zf, name, names[name], when) for name in sorted(names)]
            manifest: dict[str, Any] = {
                "format": FORMAT,
                "meeting": meeting,
                "organization": getattr(keys, "org_name", None),
                "created_at": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "files": listed,
                "audit": {"entries": len(entries), "head": entries[-1]["hash"] if entries else GENESIS},
                "public_key": base64.b64encode(keys.public_key_raw).decode("ascii"),
                "signing_certificate_sha256": keys.cert_sha256,
                "minutes_pdf": MINUTES_NAME if MINUTES_NAME in names else None,
            }
            manifest_bytes = (
                json.dumps(manifest, ensure_ascii=False, sort_keys=True, indent=2).encode("utf-8") + b"\n"
            )
            signature = base64.b64encode(keys.sign_manifest(manifest_bytes)) + b"\n"
            zf.writestr(_zinfo(MANIFEST_NAME, when), manifest_bytes)
            zf.writestr(_zinfo(SIGNATURE_NAME, when), signature)
        os.replace(tmp, out_path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return manifest
