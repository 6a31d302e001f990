"""A whole meeting through the API: its sealed archive verifies, and every tampering is named."""

from __future__ import annotations

import csv
import io
import json
import os
import struct
import zipfile
from pathlib import Path

import pymupdf
import pytest

from meeting_server.archive.verify import main as verify_main
from meeting_server.archive.verify import verify_archive
from tests.records_api.conftest import SIGNATURES, TITLE

#: One file of each kind in the archive: (a prefix of its path, the subject verify must name).
KINDS = [
    ("minutes.pdf", None),
    ("minutes.json", None),
    ("materials/", None),
    ("annotations/annotations.json", None),
    ("annotations/", None),  # an annotated copy (PDF)
    ("votes.csv", None),
    ("votes.json", None),
    ("ballots.csv", None),
    ("votes/poll-", None),
    ("attendance.csv", None),
    ("attendance.json", None),
    ("meeting.json", None),
    ("audit.jsonl", "audit.jsonl record"),
    ("manifest.json", "manifest.json"),
    ("manifest.sig", "manifest.sig"),
]


def rewrite(
    src: Path, dst: Path, change=None, drop: str | None = None, add: tuple[str, bytes] | None = None
) -> None:
    """Copy a zip entry by entry, changing, dropping or adding one member."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            if info.filename == drop:
                continue
            data = zin.read(info.filename)
            if change is not None:
                data = change(info.filename, data)
            zout.writestr(info, data)
        if add:
            zout.writestr(add[0], add[1])


def flip(data: bytes, at: int | None = None) -> bytes:
    i = len(data) // 2 if at is None else at
    return data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1 :]


def member(names: list[str], prefix: str) -> str | None:
    if prefix == "annotations/":
        return next((n for n in names if n.startswith(prefix) and n.endswith(".pdf")), None)
    return next(
        (n for n in names if n == prefix or (prefix.endswith(("/", "-")) and n.startswith(prefix))), None
    )


def test_the_sealed_archive_verifies(sealed, capsys):
    report = verify_archive(sealed["zip"])
    assert report.ok, report.failure
    assert any("PAdES signature intact" in c for c in report.checks)
    assert report.manifest["meeting"]["title"] == TITLE
    assert report.manifest["meeting"]["minutes_status"] == "approved"
    # the key the server publishes is the key that signed it; pinning it passes
    assert report.manifest["public_key"] == sealed["keys"]["public_key"]
    pem = sealed["dir"] / "server.pem"
    pem.write_text(sealed["keys"]["public_key_pem"])
    assert verify_main([str(sealed["zip"]), "--public-key", str(pem)]) == 0
    assert "is intact" in capsys.readouterr().out
    assert sealed["meeting"]["status"] == "archived"


def test_the_archive_holds_every_record(sealed):
    held = sealed["held"]
    with zipfile.ZipFile(sealed["zip"]) as zf:
        names = zf.namelist()
        for name in (
            "minutes.pdf",
            "minutes.json",
            "votes.csv",
            "votes.json",
            "attendance.csv",
            "attendance.json",
            "audit.jsonl",
            "meeting.json",
            "manifest.json",
            "manifest.sig",
        ):
            assert name in names
        assert any(n.startswith("materials/") and n.endswith(".pdf") for n in names)
        attendance = json.loads(zf.read("attendance.json"))["attendees"]
        by_name = {a["name"]: a for a in attendance}
        assert set(by_name) == set(held.names)
        assert by_name["Anna Schmidt"]["late"] and by_name["刘洋"]["left_early"]
        assert by_name["陈静"]["checked_in_at"] is None
        # who signed with a finger at check-in, in the JSON and the CSV
        for name, row in by_name.items():
            assert row["signed"] is (name in SIGNATURES), name
            assert bool(row["signature_sha256"]) is (name in SIGNATURES), name
        csv_rows = list(csv.DictReader(io.StringIO(zf.read("attendance.csv").decode("utf-8-sig"))))
        assert {r["name"]: r["signed"] for r in csv_rows} == {n: str(n in SIGNATURES) for n in held.names}
        sig_entries = {
            json.loads(line)["data"].get("signature_sha256")
            for line in zf.read("audit.jsonl").decode().splitlines()
            if json.loads(line)["command"] == "checkin"
        }
        assert {r["signature_sha256"] for r in csv_rows if r["signed"] == "True"} <= sig_entries
        audit_lines = zf.read("audit.jsonl").decode().splitlines()
        commands = [json.loads(line)["command"] for line in audit_lines]
        assert "minutes.approve" in commands and commands[-1] == "minutes.approve"
        votes = json.loads(zf.read("votes.json"))["polls"]
        secret = next(p for p in votes if p["secret"])
        named = next(p for p in votes if not p["secret"])
        assert len(secret["receipts"]) == 4 and all(r["receipt"] for r in secret["receipts"])
        assert all("name" not in r and "attendee_id" not in r for r in secret["receipts"])
        assert {n["name"] for n in named["named"]} == {"王建国", "张伟", "刘洋", "Anna Schmidt"}
        assert secret["tally"] == held.tallies["secret"] and named["tally"] == held.tallies["motion"]
        # a secret ballot's choice never appears next to a voter anywhere in the archive
        ballots = zf.read("ballots.csv").decode("utf-8-sig")
        for line in ballots.splitlines()[1:]:
            cells = line.split(",")
            assert not (cells[2] == "True" and cells[5]), line
        assert any(n.startswith("annotations/") and n.endswith(".pdf") for n in names)
    # the live log goes on: the seal follows the head the archive holds
    entries = sealed["audit"]["entries"]
    assert entries[-1]["command"] == "archive.seal"
    manifest = verify_archive(sealed["zip"]).manifest
    assert entries[-1]["prev"] == manifest["audit"]["head"]
    assert entries[-1]["data"]["archive_sha256"] == sealed["etag"].strip('"')


@pytest.mark.parametrize("prefix, subject", KINDS, ids=[k[0] for k in KINDS])
def test_a_flipped_byte_is_named(sealed, tmp_path, prefix, subject):
    with zipfile.ZipFile(sealed["zip"]) as zf:
        name = member(zf.namelist(), prefix)
    assert name is not None, f"the archive has no {prefix}"
    out = tmp_path / "tampered.zip"
    rewrite(sealed["zip"], out, change=lambda n, d: flip(d) if n == name else d)
    report = verify_archive(out)
    assert not report.ok
    expected = subject or name
    assert report.subject is not None, report.failure
    if name.startswith("manifest."):
        # a signature that no longer matches cannot tell which of the two was changed: both are named
        assert expected in report.subject, (report.subject, report.failure)
    else:
        assert report.subject.startswith(expected), (report.subject, report.failure)
    if name == "audit.jsonl":
        assert report.subject.startswith("audit.jsonl record ")


def test_a_removed_file_is_named(sealed, tmp_path):
    out = tmp_path / "removed.zip"
    rewrite(sealed["zip"], out, drop="attendance.csv")
    report = verify_archive(out)
    assert not report.ok and report.subject == "attendance.csv", report.failure
    assert "missing" in report.failure


def test_an_added_file_is_named(sealed, tmp_path, capsys):
    out = tmp_path / "added.zip"
    rewrite(sealed["zip"], out, add=("materials/extra.pdf", b"%PDF-1.7 not in the record"))
    report = verify_archive(out)
    assert not report.ok and report.subject == "materials/extra.pdf", report.failure
    assert verify_main([str(out)]) == 1
    assert "FAILED: materials/extra.pdf" in capsys.readouterr().out


def _text(pdf: bytes) -> str:
    with pymupdf.open(stream=pdf, filetype="pdf") as doc:
        return "\n".join(page.get_text() for page in doc)


def test_the_minutes_read_back(sealed):
    held = sealed["held"]
    with zipfile.ZipFile(sealed["zip"]) as zf:
        pdf = zf.read("minutes.pdf")
    text = _text(pdf)
    compact = "".join(text.split())
    assert TITLE in compact
    for name in held.names:
        assert "".join(name.split()) in compact, name
    for tally in held.tallies.values():
        for v in tally:
            assert str(v) in text
    assert "原则同意2025年预算执行情况报告" in compact and "审议意见" in compact
    assert "批准" in compact  # the approval record
    assert "迟到" in compact and "早退" in compact and "缺席" in compact
    with pymupdf.open(stream=pdf, filetype="pdf") as doc:
        fonts = {f[3] for page in doc for f in page.get_fonts()}
        assert all(doc.extract_font(f[0])[3] for page in doc for f in page.get_fonts()), "fonts embedded"
    assert fonts
    en = _text(sealed["minutes_en"])
    assert "Minutes" in en and "Attendance" in en


def test_pyhanko_accepts_the_minutes_signature(sealed):
    from asn1crypto import pem, x509
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    with zipfile.ZipFile(sealed["zip"]) as zf:
        pdf = zf.read("minutes.pdf")
    _, _, der = pem.unarmor(sealed["keys"]["certificate_pem"].encode())
    cert = x509.Certificate.load(der)
    sig = PdfFileReader(io.BytesIO(pdf)).embedded_signatures[0]
    status = validate_pdf_signature(sig, ValidationContext(trust_roots=[cert], allow_fetching=False))
    assert status.intact and status.valid and status.trusted
    assert status.coverage.name == "ENTIRE_FILE"


def test_first_page_renders(sealed, tmp_path):
    """The first page as an image; UPDATE_SCREENSHOTS=1 writes docs/screenshots/minutes-page1.png
    (the whole meeting of this module: check-ins with finger signatures, two polls, approval)."""
    with zipfile.ZipFile(sealed["zip"]) as zf:
        pdf = zf.read("minutes.pdf")
    with pymupdf.open(stream=pdf, filetype="pdf") as doc:
        png = doc[0].get_pixmap(dpi=110).tobytes("png")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        target = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "minutes-page1.png"
        target.write_bytes(png)


def _signature_cells(doc) -> dict[str, list]:
    """Per attendee name: the vector drawings inside that row's cell of the attendance table's
    signature column (the column under the header 签名)."""
    out: dict[str, list] = {}
    for page in doc:
        heads = page.search_for("签名")
        if not heads:
            continue
        head = heads[0]
        drawings = [d for d in page.get_drawings() if d.get("color") is not None and d["rect"].y0 > head.y1]
        for name in SIGNATURE_ROWS:
            rows = [r for r in page.search_for(name) if r.y0 > head.y1]
            if not rows or name in out:
                continue
            row = rows[0]  # the attendance table comes first
            mid = (row.y0 + row.y1) / 2
            out[name] = [
                d
                for d in drawings
                if head.x0 - 60 < (d["rect"].x0 + d["rect"].x1) / 2 < head.x1 + 60
                and d["rect"].y0 < mid + 14
                and d["rect"].y1 > mid - 14
                and d["rect"].height < 40
            ]
    return out


SIGNATURE_ROWS = ("王建国", "李秀英", "张伟", "刘洋", "陈静")


def test_the_minutes_show_each_finger_signature(sealed):
    """Who signed at check-in has their strokes drawn (vector paths) in the signature cell of their row."""
    with zipfile.ZipFile(sealed["zip"]) as zf:
        pdf = zf.read("minutes.pdf")
    with pymupdf.open(stream=pdf, filetype="pdf") as doc:
        cells = _signature_cells(doc)
    assert set(cells) == set(SIGNATURE_ROWS), cells.keys()
    for name in SIGNATURE_ROWS:
        drawn = cells[name]
        if name in SIGNATURES:
            strokes = len(SIGNATURES[name]["strokes"])
            lines = sum(1 for d in drawn for item in d["items"] if item[0] == "l")
            assert drawn and lines >= strokes * 10, (name, len(drawn), lines)
            width = max(d["rect"].x1 for d in drawn) - min(d["rect"].x0 for d in drawn)
            assert width > 20, (name, width)  # a signature, not a dot
        else:
            assert not drawn, (name, drawn)


def test_a_byte_flipped_in_a_stored_member_is_named(sealed, tmp_path):
    """PDFs are stored uncompressed in the zip: a byte flipped in the file itself (not rewritten
    through zipfile) is caught by the member's CRC and named."""
    src = sealed["zip"].read_bytes()
    with zipfile.ZipFile(sealed["zip"]) as zf:
        stored = [i for i in zf.infolist() if i.compress_type == zipfile.ZIP_STORED]
    assert {i.filename for i in stored} >= {"minutes.pdf"} and all(
        i.filename.endswith(".pdf") for i in stored
    )
    assert any(i.filename.startswith("annotations/") for i in stored)
    for info in stored:
        name_len, extra_len = struct.unpack("<HH", src[info.header_offset + 26 : info.header_offset + 30])
        at = info.header_offset + 30 + name_len + extra_len + info.compress_size // 2
        out = tmp_path / "flipped.zip"
        out.write_bytes(flip(src, at))
        report = verify_archive(out)
        assert not report.ok and report.subject == info.filename, (info.filename, report.failure)


def test_each_seats_annotated_copy_carries_its_ink(sealed):
    """A seat's copy is the material itself plus that seat's annotations as real PDF Ink annotations."""
    with zipfile.ZipFile(sealed["zip"]) as zf:
        names = zf.namelist()
        original = zf.read(next(n for n in names if n.startswith("materials/") and n.endswith(".pdf")))
        copies = {n: zf.read(n) for n in names if n.startswith("annotations/") and n.endswith(".pdf")}
    by_seat = {("A04" if "A04-" in n else "A06" if "A06-" in n else "?"): data for n, data in copies.items()}
    assert set(by_seat) == {"A04", "A06"}, list(copies)
    for seat, name in (("A04", "刘洋"), ("A06", "Anna Schmidt")):
        data = by_seat[seat]
        assert data.startswith(original)  # the original bytes, then an incremental update
        with pymupdf.open(stream=data, filetype="pdf") as doc:
            pages = [doc[0], doc[1]]
            annots = [
                (p.number + 1, a.type[1], a.info["title"], len(a.vertices[0]))
                for p in pages
                for a in p.annots()
            ]
        assert sorted(annots) == sorted(
            [
                (1, "Ink", f"{name} ({seat})", 20),
                (1, "Ink", f"{name} ({seat})", 20),
                (2, "Ink", f"{name} ({seat})", 20),
            ]
        ), annots
