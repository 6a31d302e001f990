"""Archive: build, verify, and name the first thing that was changed, added or removed."""

from __future__ import annotations

import base64
import json
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pymupdf
import pytest

from meeting_server.archive.bundle import (
    UnsafeNameError,
    build_archive,
    check_name,
    safe_name,
)
from meeting_server.archive.keys import load_or_create_keys, sign_pdf
from meeting_server.archive.verify import load_public_key, main, verify_archive
from meeting_server.core.chain import GENESIS, canonical_json, entry_hash
from meeting_server.minutes.pdf import Attendee, MinutesData, Poll, build_minutes_pdf

ORG = "某某市人民代表大会常务委员会"
T0 = datetime(2025, 3, 1, 1, 30, tzinfo=UTC)


def make_chain(n: int, meeting_id: int = 7) -> list[dict]:
    entries, prev = [], GENESIS
    for seq in range(1, n + 1):
        e = {
            "meeting_id": meeting_id,
            "seq": seq,
            "at": (T0 + timedelta(seconds=seq * 13)).isoformat(),
            "actor": f"attendee:{seq % 9}",
            "command": ["checkin", "present", "vote", "poll.open", "poll.close"][seq % 5],
            "data": {"page": seq, "note": "第" + str(seq) + "条"},
            "prev": prev,
        }
        e["hash"] = entry_hash(e)
        prev = e["hash"]
        entries.append(e)
    return entries


def small_pdf(text: str, pages: int = 2) -> bytes:
    doc = pymupdf.open()
    for i in range(pages):
        doc.new_page().insert_text((72, 72), f"{text} page {i + 1}")
    return doc.tobytes()


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return load_or_create_keys(tmp_path_factory.mktemp("data"), ORG)


@pytest.fixture(scope="module")
def minutes(keys) -> bytes:
    m = MinutesData(
        title="第二十三次会议纪要",
        attendees=[Attendee(name=n, signature=[[[0.1, 0.5], [0.9, 0.5]]]) for n in ("王建国", "李秀英")],
        polls=[Poll(title="表决", options=["赞成", "反对"], tally=[2, 0], cast=2, outcome="通过")],
    )
    return sign_pdf(build_minutes_pdf(m, "zh", ORG), keys, None, reason="审批通过", location="会议室")


@pytest.fixture(scope="module")
def inputs(minutes, tmp_path_factory) -> dict:
    material = tmp_path_factory.mktemp("files") / "budget.pdf"
    material.write_bytes(small_pdf("budget", 3))
    return {
        "minutes.pdf": minutes,
        "materials/预算执行报告.pdf": material,  # streamed from disk
        "materials/agenda.pdf": small_pdf("agenda"),
        "votes.csv": "poll,option,votes\n表决,赞成,2\n表决,反对,0\n".encode(),
        "attendance.json": json.dumps([{"name": "王建国", "status": "present"}], ensure_ascii=False).encode(),
        "回执/receipts.csv": b"receipt,choice\nabc123,0\n",
    }


MEETING = {"id": 7, "title": "第二十三次会议", "ended_at": "2025-03-01T03:05:00Z"}


@pytest.fixture(scope="module")
def archive(tmp_path_factory, inputs, keys) -> Path:
    out = tmp_path_factory.mktemp("out") / "meeting-7.zip"
    build_archive(out, inputs, make_chain(50), keys, MEETING, created_at=T0)
    return out


def rewrite(
    src: Path,
    dst: Path,
    change: Callable[[str, bytes], bytes | None] = lambda n, d: d,
    add: dict[str, bytes] | None = None,
) -> Path:
    """Copy a zip entry by entry, as someone editing the archive would."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = change(info.filename, zin.read(info))
            if data is not None:
                zout.writestr(info, data)
        for name, data in (add or {}).items():
            zout.writestr(name, data)
    return dst


def flip(target: str, at: float = 0.5) -> Callable[[str, bytes], bytes]:
    def change(name: str, data: bytes) -> bytes:
        if name != target:
            return data
        i = int(len(data) * at)
        return data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1 :]

    return change


# --------------------------------------------------------------------------- good


def test_archive_contents_and_manifest(archive, inputs, keys):
    with zipfile.ZipFile(archive) as zf:
        names = zf.namelist()
        assert names[-2:] == ["manifest.json", "manifest.sig"]
        assert names[:-2] == sorted(names[:-2])
        assert "audit.jsonl" in names and "materials/预算执行报告.pdf" in names
        for info in zf.infolist():
            stored = info.filename.lower().endswith((".pdf", ".png", ".zip"))
            assert info.compress_type == (zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED), (
                info.filename
            )
            if not info.filename.isascii():
                assert info.flag_bits & 0x800, info.filename  # UTF-8 name flag
        manifest_bytes = zf.read("manifest.json")
        manifest = json.loads(manifest_bytes)
        sig = base64.b64decode(zf.read("manifest.sig"))
        lines = zf.read("audit.jsonl").splitlines()
    keys.archive_key.public_key().verify(sig, manifest_bytes)
    assert manifest["format"] == "meeting-archive/1"
    assert manifest["meeting"] == MEETING
    assert manifest["created_at"] == "2025-03-01T01:30:00Z"
    assert manifest["audit"] == {"entries": 50, "head": make_chain(50)[-1]["hash"]}
    assert manifest["public_key"] == keys.public_key_b64
    assert manifest["signing_certificate_sha256"] == keys.cert_sha256
    assert manifest["minutes_pdf"] == "minutes.pdf"
    assert [f["path"] for f in manifest["files"]] == sorted([*inputs, "audit.jsonl"])
    assert lines == [canonical_json(e) for e in make_chain(50)]


def test_verify_passes(archive, keys):
    report = verify_archive(archive)
    assert report.ok, report.failure
    assert report.failure is None
    text = "\n".join(report.checks)
    for expected in ("zip opens", "manifest.sig", "all 7 listed files present", "sha256 and size",
                     "audit.jsonl: 50 records", "minutes.pdf: PAdES signature intact and valid"):  # fmt: skip
        assert expected in text
    pinned = verify_archive(archive, keys.public_key_raw)
    assert pinned.ok and "pinned public key" in "\n".join(pinned.checks)


def test_build_is_deterministic(tmp_path, inputs, keys, archive):
    again = tmp_path / "again.zip"
    build_archive(again, inputs, make_chain(50), keys, MEETING, created_at=T0)
    assert again.read_bytes() == archive.read_bytes()


def test_empty_audit_and_no_minutes(tmp_path, keys):
    out = tmp_path / "a.zip"
    manifest = build_archive(out, {"notes.txt": b"x"}, [], keys, {"id": 1})
    assert manifest["audit"] == {"entries": 0, "head": GENESIS}
    assert manifest["minutes_pdf"] is None
    report = verify_archive(out)
    assert report.ok, report.failure


# --------------------------------------------------------------------------- tampering


@pytest.mark.parametrize(
    ("target", "at", "named"),
    [
        ("votes.csv", 0.5, "votes.csv"),
        ("attendance.json", 0.5, "attendance.json"),
        ("materials/预算执行报告.pdf", 0.5, "materials/预算执行报告.pdf"),
        ("minutes.pdf", 0.3, "minutes.pdf"),
        ("audit.jsonl", 0.5, "audit.jsonl record"),
        ("manifest.json", 0.5, "manifest.json"),
        ("manifest.json", 0.02, "manifest.json"),
        ("manifest.sig", 0.5, "manifest.sig"),
    ],
)
def test_flipped_byte_is_named(tmp_path, archive, target, at, named):
    bad = rewrite(archive, tmp_path / "bad.zip", flip(target, at))
    report = verify_archive(bad)
    assert not report.ok
    assert report.failure.startswith(named) or named in report.failure, report.failure


def test_flipped_audit_byte_names_the_record(tmp_path, archive):
    lines = None

    def change(name, data):
        nonlocal lines
        if name != "audit.jsonl":
            return data
        lines = data.split(b"\n")
        lines[22] = lines[22].replace(b'"page":23', b'"page":22')  # one digit of record 23
        return b"\n".join(lines)

    report = verify_archive(rewrite(archive, tmp_path / "bad.zip", change))
    assert report.subject == "audit.jsonl record 23"
    assert report.failure.startswith("audit.jsonl record 23: hash does not match its content")


def test_removed_file_is_named(tmp_path, archive):
    bad = rewrite(archive, tmp_path / "bad.zip", lambda n, d: None if n == "votes.csv" else d)
    report = verify_archive(bad)
    assert report.subject == "votes.csv"
    assert "missing" in report.failure


def test_added_file_is_named(tmp_path, archive):
    bad = rewrite(archive, tmp_path / "bad.zip", add={"materials/补充材料.pdf": small_pdf("extra")})
    report = verify_archive(bad)
    assert report.subject == "materials/补充材料.pdf"
    assert "not listed" in report.failure


def test_edited_audit_entry_is_named(tmp_path, archive):
    def change(name, data):
        if name != "audit.jsonl":
            return data
        entries = [json.loads(x) for x in data.splitlines()]
        entries[16]["actor"] = "organizer:mallory"
        return b"".join(canonical_json(e) + b"\n" for e in entries)

    report = verify_archive(rewrite(archive, tmp_path / "bad.zip", change))
    assert report.subject == "audit.jsonl record 17"
    assert "hash does not match" in report.failure


def test_reordered_audit_entries_are_named(tmp_path, archive):
    def change(name, data):
        if name != "audit.jsonl":
            return data
        lines = data.splitlines(keepends=True)
        lines[29], lines[30] = lines[30], lines[29]
        return b"".join(lines)

    report = verify_archive(rewrite(archive, tmp_path / "bad.zip", change))
    assert report.subject == "audit.jsonl record 30"
    assert "seq is 31, expected 30" in report.failure


def test_rechained_audit_log_still_fails(tmp_path, archive):
    """Editing a record and recomputing every later hash breaks the file hash and head."""

    def change(name, data):
        if name != "audit.jsonl":
            return data
        entries = make_chain(50)
        entries[16]["actor"] = "organizer:mallory"
        prev = entries[15]["hash"]
        for e in entries[16:]:
            e["prev"] = prev
            e["hash"] = prev = entry_hash(e)
        return b"".join(canonical_json(e) + b"\n" for e in entries)

    report = verify_archive(rewrite(archive, tmp_path / "bad.zip", change))
    assert report.subject == "audit.jsonl"
    assert "content changed" in report.failure


def test_other_signing_key_is_refused_when_pinned(tmp_path, archive, inputs, keys):
    mallory = load_or_create_keys(tmp_path / "mallory", ORG)
    forged = tmp_path / "forged.zip"
    build_archive(forged, inputs, make_chain(50), mallory, MEETING)
    assert not verify_archive(forged).ok  # minutes carry the real certificate, not mallory's
    report = verify_archive(forged, keys.public_key_raw)
    assert report.subject == "manifest.json"
    assert "pinned" in report.failure


def test_minutes_pdf_signature_is_checked(tmp_path, minutes, keys):
    # the server itself sealed an archive whose minutes were changed after signing
    i = len(minutes) // 3
    changed = minutes[:i] + bytes([minutes[i] ^ 0x01]) + minutes[i + 1 :]
    out = tmp_path / "a.zip"
    build_archive(out, {"minutes.pdf": changed}, make_chain(3), keys, MEETING)
    report = verify_archive(out)
    assert report.subject == "minutes.pdf"
    assert "signature" in report.failure
    # unsigned minutes
    build_archive(out, {"minutes.pdf": small_pdf("unsigned")}, make_chain(3), keys, MEETING)
    report = verify_archive(out)
    assert report.failure == "minutes.pdf: has no signature"
    # minutes signed with a certificate the manifest does not name
    other = load_or_create_keys(tmp_path / "other", "Other Org")
    build_archive(out, {"minutes.pdf": sign_pdf(small_pdf("x"), other, None, "r", "l")}, [], keys, MEETING)
    report = verify_archive(out)
    assert report.subject == "minutes.pdf"
    assert "certificate other than" in report.failure


def test_not_a_zip(tmp_path):
    p = tmp_path / "junk.zip"
    p.write_bytes(b"not a zip at all")
    report = verify_archive(p)
    assert report.subject == "junk.zip" and not report.ok
    assert verify_archive(tmp_path / "absent.zip").failure == "absent.zip: no such file"


def test_unsafe_entry_in_zip(tmp_path, archive):
    bad = rewrite(archive, tmp_path / "bad.zip", add={"../evil.sh": b"rm -rf /"})
    report = verify_archive(bad)
    assert report.subject == "../evil.sh"
    assert "unsafe" in report.failure


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    "name",
    [
        "",
        "../x",
        "a/../b",
        "/etc/passwd",
        "C:evil",
        "a\\b",
        "a\x00b",
        "a\nb",
        "a//b",
        "./a",
        "\u202etxt.exe",
        "x" * 256,
    ],
)
def test_unsafe_names_refused(name):
    with pytest.raises(UnsafeNameError):
        check_name(name)


def test_reserved_and_clashing_names_refused(tmp_path, keys):
    with pytest.raises(UnsafeNameError):
        build_archive(tmp_path / "a.zip", {"manifest.json": b"{}"}, [], keys, {})
    with pytest.raises(UnsafeNameError):
        build_archive(tmp_path / "a.zip", {"Report.pdf": b"1", "report.PDF": b"2"}, [], keys, {})
    assert not (tmp_path / "a.zip").exists()


def test_broken_chain_refused(tmp_path, keys):
    entries = make_chain(5)
    entries[2]["data"] = {"page": 99}
    with pytest.raises(ValueError, match="entry 3"):
        build_archive(tmp_path / "a.zip", {}, entries, keys, {})
    assert list(tmp_path.iterdir()) == []


def test_safe_name():
    assert safe_name("2024/预算:报告.pdf") == "2024_预算_报告.pdf"
    assert safe_name("..hidden") == "hidden"
    assert safe_name("  ") == "file"
    long = safe_name("长" * 100 + ".pdf")
    assert long.endswith(".pdf") and len(long.encode()) <= 200
    assert check_name(safe_name("a\x00b/c")) == "a_b_c"


# --------------------------------------------------------------------------- CLI


def test_cli(tmp_path, archive, keys, capsys):
    assert main([str(archive)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ok  zip opens")
    assert out.rstrip().endswith("is intact")

    pem = tmp_path / "server.pub"
    pem.write_bytes(keys.public_key_pem)
    assert main([str(archive), "--public-key", str(pem)]) == 0
    assert "pinned public key" in capsys.readouterr().out
    b64 = tmp_path / "server.b64"
    b64.write_text(keys.public_key_b64)
    assert load_public_key(b64.read_bytes()) == keys.public_key_raw
    assert load_public_key(keys.public_key_raw.hex().encode() + b"\n") == keys.public_key_raw
    # raw keys are taken as they are, even when a byte looks like whitespace
    assert load_public_key(b" " + bytes(30) + b"\n") == b" " + bytes(30) + b"\n"

    bad = rewrite(archive, tmp_path / "bad.zip", flip("votes.csv"))
    assert main([str(bad)]) == 1
    out = capsys.readouterr().out
    assert "FAILED: votes.csv: content changed" in out
    assert out.rstrip().splitlines()[-1].startswith("FAILED: votes.csv")

    other = tmp_path / "other.pub"
    other.write_bytes(load_or_create_keys(tmp_path / "o", "x").public_key_pem)
    assert main([str(archive), "--public-key", str(other)]) == 1
    assert "FAILED: manifest.json" in capsys.readouterr().out

    assert main([]) == 2
    assert main([str(archive), "--public-key", str(tmp_path / "nope")]) == 2
    capsys.readouterr()
