"""Offline verification of a meeting archive: ``meeting-server verify ARCHIVE.zip``.

Needs nothing but the file (no settings, no server, no network). Checks, in
order, stopping at the first failure and naming the file or record:

1. the zip opens; no entry name is unsafe or appears twice;
2. ``manifest.json`` and ``manifest.sig`` are present and well formed;
3. the Ed25519 signature over the exact manifest bytes is valid for the
   manifest's public key, which equals the pinned key when one is given;
4. every listed file is present, no file is present that is not listed;
5. every file has the listed size and SHA-256;
6. ``audit.jsonl`` parses, its hash chain verifies (``verify_chain``), and
   its record count and head hash equal the manifest's;
7. the minutes PDF carries a PAdES signature that pyHanko judges intact and
   valid, covering the whole file, made with the certificate whose SHA-256
   the manifest names (that certificate is the only trust anchor).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import io
import json
import re
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from meeting_server.archive.bundle import (
    AUDIT_NAME,
    FORMAT,
    MANIFEST_NAME,
    SIGNATURE_NAME,
    UnsafeNameError,
    check_name,
)
from meeting_server.core.chain import GENESIS, verify_chain

__all__ = ["VerifyReport", "load_public_key", "main", "verify_archive"]

_CHUNK = 1 << 20
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass
class VerifyReport:
    ok: bool
    #: what was checked and found good, in order
    checks: list[str] = field(default_factory=list)
    #: "<file or record>: <reason>" for the first failure, else None
    failure: str | None = None
    #: the file or record that failed, e.g. "minutes.pdf", "audit.jsonl record 17"
    subject: str | None = None
    manifest: dict[str, Any] | None = None


class _Failed(Exception):
    def __init__(self, subject: str, reason: str) -> None:
        super().__init__(f"{subject}: {reason}")
        self.subject = subject
        self.reason = reason


def load_public_key(data: bytes) -> bytes:
    """A pinned Ed25519 public key as 32 raw bytes, from PEM, base64, hex or raw bytes."""
    if len(data) == 32:  # raw bytes: never strip, a key byte may be whitespace
        return bytes(data)
    data = data.strip()
    if data.startswith(b"-----BEGIN"):
        key = serialization.load_pem_public_key(data)
        if not isinstance(key, ed25519.Ed25519PublicKey):
            raise ValueError("not an Ed25519 public key")
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    try:
        raw = (
            bytes.fromhex(data.decode("ascii")) if len(data) == 64 else base64.b64decode(data, validate=True)
        )
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise ValueError("expected a PEM public key, or 32 bytes raw, in base64 or in hex")
    return raw


def _read(zf: zipfile.ZipFile, name: str) -> bytes:
    try:
        return zf.read(name)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as e:
        raise _Failed(name, f"damaged inside the zip ({e})") from e


def _hash_member(zf: zipfile.ZipFile, name: str) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    try:
        with zf.open(name) as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
                size += len(chunk)
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise _Failed(name, f"damaged inside the zip ({e})") from e
    return h.hexdigest(), size


def _short(h: str) -> str:
    return h[:16] + "…"


# --------------------------------------------------------------------------- steps


def _open(path: Path, checks: list[str]) -> zipfile.ZipFile:
    try:
        zf = zipfile.ZipFile(path)
    except FileNotFoundError as e:
        raise _Failed(path.name, "no such file") from e
    except (zipfile.BadZipFile, OSError) as e:
        raise _Failed(path.name, f"not a readable zip file ({e})") from e
    seen: set[str] = set()
    for info in zf.infolist():
        if info.filename in seen:
            raise _Failed(info.filename, "appears twice in the zip")
        seen.add(info.filename)
        try:
            check_name(info.filename)
        except UnsafeNameError as e:
            raise _Failed(info.filename, f"unsafe name in the zip ({e})") from e
    checks.append(f"zip opens: {len(seen)} entries, names safe and unique")
    return zf


def _manifest(zf: zipfile.ZipFile, trusted: bytes | None, checks: list[str]) -> dict[str, Any]:
    names = set(zf.namelist())
    for name in (MANIFEST_NAME, SIGNATURE_NAME):
        if name not in names:
            raise _Failed(name, "missing")
    raw = _read(zf, MANIFEST_NAME)
    sig_text = _read(zf, SIGNATURE_NAME)
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise _Failed(MANIFEST_NAME, "not UTF-8 text") from e
    except json.JSONDecodeError as e:
        raise _Failed(MANIFEST_NAME, f"not valid JSON ({e.msg} at line {e.lineno})") from e
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise _Failed(MANIFEST_NAME, f"not a {FORMAT} manifest")
    try:
        public = base64.b64decode(manifest.get("public_key", ""), validate=True)
    except (binascii.Error, TypeError, ValueError):
        public = b""
    if len(public) != 32:
        raise _Failed(MANIFEST_NAME, "public_key is not a base64 Ed25519 key")
    try:
        signature = base64.b64decode(sig_text.strip(), validate=True)
    except (binascii.Error, ValueError):
        signature = b""
    if len(signature) != 64:
        raise _Failed(SIGNATURE_NAME, "not a base64 Ed25519 signature")
    try:
        ed25519.Ed25519PublicKey.from_public_bytes(public).verify(signature, raw)
    except (InvalidSignature, ValueError) as e:
        raise _Failed(
            f"{MANIFEST_NAME} / {SIGNATURE_NAME}",
            "the signature does not match the manifest: manifest.json or manifest.sig was changed",
        ) from e
    fp = hashlib.sha256(public).hexdigest()
    checks.append(f"manifest.sig: Ed25519 signature over manifest.json is valid (key sha256 {_short(fp)})")
    if trusted is not None:
        if public != trusted:
            raise _Failed(MANIFEST_NAME, "signed with a key that is not the pinned public key")
        checks.append("manifest key is the pinned public key")
    else:
        checks.append(
            f"manifest key not pinned (pass --public-key to pin it); key is {manifest['public_key']}"
        )

    files = manifest.get("files")
    audit = manifest.get("audit")
    if not isinstance(files, list) or not isinstance(audit, dict):
        raise _Failed(MANIFEST_NAME, "files or audit missing")
    seen: set[str] = set()
    for f in files:
        ok = (
            isinstance(f, dict)
            and isinstance(f.get("path"), str)
            and isinstance(f.get("sha256"), str)
            and _HEX64.match(f["sha256"])
            and isinstance(f.get("size"), int)
        )
        if not ok:
            raise _Failed(MANIFEST_NAME, f"malformed file entry {f!r}")
        try:
            check_name(f["path"])
        except UnsafeNameError as e:
            raise _Failed(MANIFEST_NAME, f"unsafe path listed ({e})") from e
        if f["path"] in seen or f["path"] in (MANIFEST_NAME, SIGNATURE_NAME):
            raise _Failed(MANIFEST_NAME, f"{f['path']} listed twice")
        seen.add(f["path"])
    if AUDIT_NAME not in seen:
        raise _Failed(MANIFEST_NAME, f"{AUDIT_NAME} is not listed")
    return manifest


def _files(zf: zipfile.ZipFile, manifest: dict[str, Any], checks: list[str]) -> None:
    listed = [f["path"] for f in manifest["files"]]
    present = set(zf.namelist())
    for path in listed:
        if path not in present:
            raise _Failed(path, "listed in the manifest but missing from the archive")
    extra = sorted(present - set(listed) - {MANIFEST_NAME, SIGNATURE_NAME})
    if extra:
        raise _Failed(extra[0], "in the archive but not listed in the manifest")
    checks.append(f"files: all {len(listed)} listed files present, nothing unlisted")
    total = 0
    for f in manifest["files"]:
        digest, size = _hash_member(zf, f["path"])
        if digest != f["sha256"] or size != f["size"]:
            if f["path"] == AUDIT_NAME:
                # name the record, not just the file, when the chain shows it
                _audit_records(_read(zf, AUDIT_NAME))
            if size != f["size"]:
                raise _Failed(f["path"], f"content changed: {size} bytes, the manifest says {f['size']}")
            raise _Failed(
                f["path"],
                f"content changed: sha256 {_short(digest)}, the manifest says {_short(f['sha256'])}",
            )
        total += size
    checks.append(f"files: sha256 and size of all {len(listed)} files match ({total:,} bytes)")


def _audit_records(data: bytes) -> list[dict[str, Any]]:
    entries = []
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _Failed(AUDIT_NAME, "not UTF-8 text") from e
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for n, line in enumerate(lines, 1):
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as e:
            raise _Failed(f"{AUDIT_NAME} record {n}", f"not valid JSON ({e.msg})") from e
        if not isinstance(entry, dict):
            raise _Failed(f"{AUDIT_NAME} record {n}", "not a JSON object")
        entries.append(entry)
    ok, index, message = verify_chain(entries)
    if not ok:
        assert index is not None
        reason = re.sub(r"^entry \d+: ", "", message)
        seq = entries[index].get("seq")
        raise _Failed(f"{AUDIT_NAME} record {index + 1}", f"{reason} (seq {seq!r})")
    return entries


def _audit(zf: zipfile.ZipFile, manifest: dict[str, Any], checks: list[str]) -> None:
    entries = _audit_records(_read(zf, AUDIT_NAME))
    expected = manifest["audit"]
    head = entries[-1]["hash"] if entries else GENESIS
    if len(entries) != expected.get("entries"):
        raise _Failed(AUDIT_NAME, f"{len(entries)} records, the manifest says {expected.get('entries')!r}")
    if head != expected.get("head"):
        raise _Failed(AUDIT_NAME, "the last record's hash is not the head in the manifest")
    checks.append(f"{AUDIT_NAME}: {len(entries)} records, hash chain intact, head {_short(head)} matches")


def _minutes(zf: zipfile.ZipFile, manifest: dict[str, Any], checks: list[str]) -> None:
    name = manifest.get("minutes_pdf")
    if not name:
        checks.append("no minutes PDF in this archive")
        return
    if name not in {f["path"] for f in manifest["files"]}:
        raise _Failed(MANIFEST_NAME, f"minutes_pdf {name!r} is not a listed file")
    fingerprint = manifest.get("signing_certificate_sha256")
    if not isinstance(fingerprint, str) or not _HEX64.match(fingerprint):
        raise _Failed(MANIFEST_NAME, "signing_certificate_sha256 missing or malformed")

    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko.sign.validation.settings import KeyUsageConstraints
    from pyhanko.sign.validation.status import SignatureCoverageLevel
    from pyhanko_certvalidator import ValidationContext

    data = _read(zf, name)
    try:
        sigs = PdfFileReader(io.BytesIO(data), strict=False).embedded_signatures
    except Exception as e:  # any parse error of a hostile file is a failed check
        raise _Failed(name, f"cannot be read as a PDF ({e})") from e
    if not sigs:
        raise _Failed(name, "has no signature")
    usage = KeyUsageConstraints(
        key_usage={"digital_signature", "non_repudiation"}, match_all_key_usages=False
    )
    for k, sig in enumerate(sigs):
        label = f"{name} signature {k + 1}" if len(sigs) > 1 else name
        try:
            cert = sig.signer_cert
            fp = hashlib.sha256(cert.dump()).hexdigest()
            if fp != fingerprint:
                raise _Failed(label, "signed with a certificate other than the one the manifest names")
            # judged at its signing time: the signed manifest vouches for the
            # archive, an expired self-signed certificate later changes nothing
            vc = ValidationContext(
                trust_roots=[cert], allow_fetching=False, moment=sig.self_reported_timestamp or None
            )
            status = validate_pdf_signature(sig, vc, key_usage_settings=usage)
        except _Failed:
            raise
        except Exception as e:  # malformed CMS and the like
            raise _Failed(label, f"signature cannot be validated ({e})") from e
        if not status.intact:
            raise _Failed(label, "signature broken: the signed bytes were changed")
        if not status.valid:
            raise _Failed(label, "signature is not valid for its certificate")
        if not status.trusted:
            raise _Failed(label, "the signing certificate is not valid at the signing time")
        last = k == len(sigs) - 1
        if last and status.coverage != SignatureCoverageLevel.ENTIRE_FILE:
            raise _Failed(label, "changed after signing: the signature does not cover the whole file")
        subject = cert.subject.human_friendly
        checks.append(
            f"{label}: PAdES signature intact and valid, signed by {subject}, "
            f"certificate sha256 {_short(fp)} is the one in the manifest"
            + (", covers the whole file" if last else "")
        )


def verify_archive(path: Path | str, trusted_public_key: bytes | None = None) -> VerifyReport:
    """Check an archive; see the module docstring for what is checked."""
    checks: list[str] = []
    manifest = None
    path = Path(path)
    trusted = load_public_key(trusted_public_key) if trusted_public_key is not None else None
    try:
        with _open(path, checks) as zf:
            manifest = _manifest(zf, trusted, checks)
            _files(zf, manifest, checks)
            _audit(zf, manifest, checks)
            _minutes(zf, manifest, checks)
    except _Failed as f:
        return VerifyReport(False, checks, str(f), f.subject, manifest)
    return VerifyReport(True, checks, None, None, manifest)


def main(argv: list[str] | None = None) -> int:
    """``meeting-server verify ARCHIVE.zip [--public-key FILE]``; argv excludes "verify"."""
    parser = argparse.ArgumentParser(
        prog="meeting-server verify",
        description="Check a meeting archive offline: manifest signature, files, audit chain, signed minutes.",
    )
    parser.add_argument("archive", help="the archive zip")
    parser.add_argument(
        "--public-key",
        metavar="FILE",
        help="the server's Ed25519 public key to pin (PEM, or 32 bytes raw, base64 or hex)",
    )
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help or a usage error
        return int(e.code or 0) if not isinstance(e.code, str) else 2
    trusted = None
    if args.public_key:
        try:
            trusted = load_public_key(Path(args.public_key).read_bytes())
        except (OSError, ValueError) as e:
            print(f"error: --public-key {args.public_key}: {e}", file=sys.stderr)
            return 2
    report = verify_archive(args.archive, trusted)
    for check in report.checks:
        print(f"ok  {check}")
    if report.ok:
        print(f"OK: {args.archive} is intact")
        return 0
    print(f"FAILED: {report.failure}")
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
