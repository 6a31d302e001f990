"""Records anyone can verify: the audit log as served, the signing identity,
the signed minutes PDF, the archive zip (built in the worker, cached by the
audit head, sealed once the minutes are approved) and retention.

Everything CPU-heavy here (`render_minutes`, `run_build`) runs in a worker
process (`archive.jobs`), never on the server's event loop. Database work is
done in short transactions: on SQLite every transaction holds the write lock.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ..core import audit, db, rooms, storage, tasks
from ..core.chain import GENESIS, verify_chain
from ..core.db import iso, utcnow
from .models import ArchiveBuild

log = logging.getLogger(__name__)

#: The actor of entries the server writes by itself (sealing, retention).
SYSTEM = {"kind": "system", "id": None, "name": "meeting-server", "role": ""}
#: A build that has not shown life for this long is presumed dead (killed worker) and may be redone.
LEASE = dt.timedelta(seconds=120)
#: Seconds between progress reports of one build.
PROGRESS_EVERY = 0.5


# --------------------------------------------------------------------------- audit log


def audit_records(s: Session, meeting_id: int, upto_seq: int | None = None) -> list[dict[str, Any]]:
    """The meeting's audit entries as canonical records (what audit.jsonl holds)."""
    q = select(audit.AuditEntry).where(audit.AuditEntry.meeting_id == meeting_id)
    if upto_seq is not None:
        q = q.where(audit.AuditEntry.seq <= upto_seq)
    return [e.as_record() for e in s.scalars(q.order_by(audit.AuditEntry.seq))]


def check_audit(s: Session, meeting: Any) -> dict[str, Any]:
    """Verify the stored chain from the first entry to the head the meeting row names.

    `failure` names the first bad entry (`seq`) and why: an edited, inserted,
    removed or reordered row breaks the chain there; a removed or rewritten tail
    no longer ends at the meeting's recorded head.
    """
    records = audit_records(s, meeting.id)
    ok, index, message = verify_chain(records)
    head = records[-1]["hash"] if records else GENESIS
    out: dict[str, Any] = {"ok": ok, "entries": len(records), "head": head, "failure": None}
    if not ok:
        assert index is not None
        out["failure"] = {"seq": index + 1, "command": records[index].get("command"), "message": message}
        return out
    expect_seq, expect_head = meeting.audit_seq or 0, meeting.audit_head or GENESIS
    if len(records) != expect_seq or head != expect_head:
        seq = min(len(records), expect_seq) or 1
        out["ok"] = False
        out["failure"] = {
            "seq": seq,
            "command": records[seq - 1]["command"] if 0 < seq <= len(records) else None,
            "message": f"the log has {len(records)} entries ending in {head[:16]}…, "
            f"the meeting records {expect_seq} ending in {expect_head[:16]}…",
        }
    return out


# --------------------------------------------------------------------------- signing identity


def _settings():
    if tasks.settings is None:
        raise RuntimeError("settings not configured")
    return tasks.settings


@lru_cache(maxsize=4)
def _keys_for(data_dir: str, org_name: str, cert: str | None, key: str | None):
    from .keys import load_or_create_keys

    return load_or_create_keys(data_dir, org_name, cert, key)


def keys():
    """The server's archive key and organization certificate (created on first use)."""
    st = _settings()
    return _keys_for(
        str(st.data_dir),
        st.org_name,
        str(st.org_cert_file) if st.org_cert_file else None,
        str(st.org_key_file) if st.org_key_file else None,
    )


@lru_cache(maxsize=4)
def _seal_for(org_name: str, path: str | None) -> bytes:
    from .keys import make_seal_png

    if path:
        return Path(path).read_bytes()
    return make_seal_png(org_name)


def seal_png() -> bytes:
    st = _settings()
    return _seal_for(st.org_name, str(st.seal_image_file) if st.seal_image_file else None)


@lru_cache(maxsize=2)
def draft_stamp_png(size: int = 300) -> bytes:
    """The appearance of a draft's signature: a grey "草稿 / DRAFT" stamp, never the red seal."""
    import pymupdf
    from PIL import Image, ImageDraw, ImageFont

    grey = (110, 110, 118)
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    font_data = pymupdf.Font("cjk").buffer
    big = ImageFont.truetype(io.BytesIO(font_data), size // 4)
    small = ImageFont.truetype(io.BytesIO(font_data), size // 9)
    d.rounded_rectangle(
        (8, size * 0.22, size - 8, size * 0.78), radius=size // 12, outline=grey + (220,), width=6
    )
    d.text((size / 2, size * 0.43), "草 稿", font=big, fill=grey + (220,), anchor="mm")
    d.text((size / 2, size * 0.64), "DRAFT · 未经审批", font=small, fill=grey + (220,), anchor="mm")
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _cert_sha256() -> str:
    """The organization certificate's fingerprint, read from its file when it exists (cheap, no private key)."""
    from cryptography.hazmat.primitives import serialization

    from .keys import ORG_CERT_FILE, _load_cert

    st = _settings()
    path = Path(st.org_cert_file) if st.org_cert_file else Path(st.data_dir) / "keys" / ORG_CERT_FILE
    try:
        cert = _load_cert(path.read_bytes())
    except (OSError, ValueError):
        return keys().cert_sha256  # first use: creates the keys
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def identity() -> dict[str, Any]:
    """What, besides the minutes data, changes the signed PDF: part of its cache key.

    Cheap on purpose (the minutes route computes it on the server): the seal is
    named by its file's hash or by the name it is drawn from, never drawn here.
    """
    st = _settings()
    seal = (
        hashlib.sha256(Path(st.seal_image_file).read_bytes()).hexdigest()
        if st.seal_image_file
        else f"drawn:{st.org_name}"
    )
    return {
        "organization": st.org_name,
        "certificate_sha256": _cert_sha256(),
        "seal": seal,
        "timezone": st.timezone,
    }


def keys_json() -> dict[str, Any]:
    k = keys()
    from cryptography.hazmat.primitives import serialization

    return {
        "algorithm": "Ed25519",
        "public_key": k.public_key_b64,
        "public_key_hex": k.public_key_raw.hex(),
        "public_key_pem": k.public_key_pem.decode("ascii"),
        "public_key_sha256": hashlib.sha256(k.public_key_raw).hexdigest(),
        "organization": k.org_name,
        "certificate_sha256": k.cert_sha256,
        "certificate_pem": k.org_cert.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        "certificate_subject": k.org_cert.subject.rfc4514_string(),
        "certificate_not_after": iso(k.org_cert.not_valid_after_utc),
    }


# --------------------------------------------------------------------------- minutes PDF (worker side)


def render_minutes(data: Any, lang: str, *, draft: bool, location: str) -> tuple[bytes, int]:
    """Build and sign the minutes PDF (CPU work: worker only); returns (bytes, pages)."""
    import pymupdf

    from ..minutes.pdf import build_minutes_pdf
    from .keys import sign_pdf

    st = _settings()
    raw = build_minutes_pdf(data, lang, st.org_name)
    if draft:
        reason = "会议纪要草稿，未经审批" if lang == "zh" else "Draft minutes, not approved"
        stamp = draft_stamp_png()
    else:
        reason = "会议纪要经主持人批准" if lang == "zh" else "Minutes approved by the chair"
        stamp = seal_png()
    signed = _without_running_loop(
        lambda: sign_pdf(raw, keys(), stamp, reason=reason, location=location or st.org_name)
    )
    with pymupdf.open(stream=signed, filetype="pdf") as doc:
        pages = doc.page_count
    return signed, pages


def _without_running_loop(fn: Callable[[], Any]) -> Any:
    """Run `fn` where no asyncio loop is running: pyHanko signs with `asyncio.run`, which refuses to
    start inside a running loop (a caller's thread may have one, e.g. Playwright's sync API)."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return fn()
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn).result()


def minutes_inputs(meeting_id: int, lang: str) -> tuple[Any, str, bool, str]:
    """(MinutesData, input hash, draft, location) read in one short transaction."""
    from ..meetings.models import Meeting
    from ..minutes import service as ms

    with db.reader() as s:
        meeting = s.get(Meeting, meeting_id)
        if meeting is None:
            raise LookupError(f"meeting {meeting_id} is gone")
        data = ms.minutes_data(s, meeting, lang, _settings().timezone)
        location = meeting.location
    return data, ms.input_hash(data, lang, identity()), data.draft, location


def build_minutes_row(pdf_id: int) -> None:
    """Render the minutes PDF a `MinutesPdf` row asks for (the `build_minutes` job)."""
    from ..minutes.models import MinutesPdf

    with db.transaction() as s:
        row = s.get(MinutesPdf, pdf_id)
        if row is None or row.status == "ready":
            return
        if row.status == "building" and row.started_at and utcnow() - row.started_at < LEASE:
            return  # another worker has it
        row.status, row.started_at, row.error = "building", utcnow(), None
        meeting_id, lang, wanted = row.meeting_id, row.lang, row.input_hash
    try:
        data, h, draft, location = minutes_inputs(meeting_id, lang)
        if h != wanted:
            _finish_minutes(pdf_id, status="failed", error="superseded: the minutes changed; ask again")
            return
        pdf, pages = render_minutes(data, lang, draft=draft, location=location)
        sha = storage.get().put_bytes(pdf)
    except Exception as e:
        log.exception("minutes PDF %s failed", pdf_id)
        _finish_minutes(pdf_id, status="failed", error=f"{type(e).__name__}: {e}"[:500])
        raise
    _finish_minutes(pdf_id, status="ready", sha256=sha, size=len(pdf), pages=pages, draft=draft)


def _finish_minutes(pdf_id: int, **changes: Any) -> None:
    from ..minutes.models import MinutesPdf

    with db.transaction() as s:
        row = s.get(MinutesPdf, pdf_id)
        if row is None:
            return
        for k, v in changes.items():
            setattr(row, k, v)
        row.finished_at = utcnow()


def ensure_minutes_pdf(meeting_id: int, lang: str) -> tuple[str, Any]:
    """In a worker: the signed minutes PDF for the meeting as it is now (cached); returns (sha256, row id)."""
    from ..minutes.models import MinutesPdf
    from ..minutes.service import find_pdf

    data, h, draft, location = minutes_inputs(meeting_id, lang)
    with db.transaction() as s:
        row = find_pdf(s, meeting_id, lang, h)
        if row is not None and row.status == "ready" and row.sha256 and storage.get().exists(row.sha256):
            return row.sha256, row.id
        if row is None:
            row = MinutesPdf(meeting_id=meeting_id, lang=lang, input_hash=h, status="building", draft=draft)
            s.add(row)
        row.status, row.started_at, row.error = "building", utcnow(), None
        s.flush()
        pdf_id = row.id
    try:
        pdf, pages = render_minutes(data, lang, draft=draft, location=location)
        sha = storage.get().put_bytes(pdf)
    except Exception as e:
        _finish_minutes(pdf_id, status="failed", error=f"{type(e).__name__}: {e}"[:500])
        raise
    _finish_minutes(pdf_id, status="ready", sha256=sha, size=len(pdf), pages=pages, draft=draft)
    return sha, pdf_id


# --------------------------------------------------------------------------- archive builds


def build_json(b: ArchiveBuild) -> dict[str, Any]:
    return {
        "id": b.id,
        "meeting_id": b.meeting_id,
        "status": "building" if b.status in ("queued", "building") else b.status,
        "state": b.status,
        "progress": round(float(b.progress or 0.0), 3),
        "step": b.step,
        "audit_seq": b.audit_seq,
        "audit_head": b.audit_head,
        "sha256": b.sha256,
        "size": b.size,
        "files": b.files,
        "manifest_sha256": b.manifest_sha256,
        "sealed": b.sealed,
        "notes": list(b.notes or []),
        "timings": dict(b.timings or {}),
        "error": b.error,
        "created_at": iso(b.created_at),
        "finished_at": iso(b.finished_at),
    }


def current_build(s: Session, meeting: Any) -> ArchiveBuild | None:
    """The build that is the meeting's archive now: the sealed one once archived, else the one for the head."""
    if meeting.status == "archived":
        sealed = s.scalar(
            select(ArchiveBuild)
            .where(ArchiveBuild.meeting_id == meeting.id, ArchiveBuild.sealed.is_(True))
            .order_by(ArchiveBuild.id.desc())
        )
        if sealed is not None:
            return sealed
    head = meeting.audit_head or GENESIS
    return s.scalar(
        select(ArchiveBuild).where(ArchiveBuild.meeting_id == meeting.id, ArchiveBuild.audit_head == head)
    )


def request_build(s: Session, meeting: Any, *, retry_failed: bool = False) -> tuple[ArchiveBuild, bool]:
    """The build for the meeting's current head, made or revived; returns (build, must_enqueue)."""
    b = current_build(s, meeting)
    now = utcnow()
    if b is None:
        b = ArchiveBuild(
            meeting_id=meeting.id,
            audit_seq=meeting.audit_seq or 0,
            audit_head=meeting.audit_head or GENESIS,
            status="queued",
            progress=0.0,
            step="queued",
            notes=[],
        )
        s.add(b)
        s.flush()
        return b, True
    if b.status == "ready" and b.sha256 and not storage.get().exists(b.sha256):
        b.status = "failed"
        b.error = "the archive file is missing from storage"
        if b.sealed:
            return b, False  # a sealed archive cannot be made again: its SHA-256 is on the record
        retry_failed = True
    stale = b.status in ("queued", "building") and (
        (now - (b.heartbeat or b.created_at)) > LEASE or _holder_dead(b.claim)
    )
    if stale or b.status == "superseded" or (b.status == "failed" and retry_failed):
        b.status, b.progress, b.step, b.error, b.claim, b.heartbeat = (
            "queued",
            0.0,
            "queued",
            None,
            None,
            None,
        )
        b.created_at = now
        return b, True
    return b, False


def holder_name(build_id: int) -> str:
    """The claim an archive job writes: names this process (documents.jobs.holder), so that a build whose
    process died on this machine (SIGKILL, OOM) is taken over at once instead of after LEASE."""
    from ..documents.jobs import holder

    return holder(build_id, 1)


def _holder_dead(claim: str | None) -> bool:
    """The claim names a process of this machine and boot that is no longer running."""
    from ..documents.jobs import holder_state

    return bool(claim) and holder_state(claim) == "dead"


def _claim(build_id: int, job: str) -> ArchiveBuild | None:
    with db.transaction() as s:
        b = s.get(ArchiveBuild, build_id)
        if b is None or b.status not in ("queued", "building"):
            return None
        now = utcnow()
        if b.status == "building" and b.claim and b.heartbeat and now - b.heartbeat < LEASE:
            if not _holder_dead(b.claim):
                return None  # a live job has it
        b.status, b.claim, b.heartbeat, b.started_at = "building", job, now, now
        b.progress, b.step = 0.01, "reading the records"
        s.flush()
        s.expunge(b)
        return b


class _Lost(Exception):
    """The build was taken over or removed while this job ran."""


class Progress:
    """Reports a build's progress to the database (the truth) and, when it can, to the organizers."""

    def __init__(self, build_id: int, meeting_id: int, job: str):
        self.build_id, self.meeting_id, self.job = build_id, meeting_id, job
        self.last = 0.0

    def __call__(self, progress: float, step: str, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < PROGRESS_EVERY:
            return
        self.last = now
        with db.transaction() as s:
            b = s.get(ArchiveBuild, self.build_id)
            if b is None or b.claim != self.job:
                raise _Lost
            b.progress, b.step, b.heartbeat = max(b.progress or 0.0, progress), step[:120], utcnow()
            out = build_json(b)
        tasks.notify("archive.progress", out, rooms.organizers(self.meeting_id))


def _csv(rows: list[list[Any]]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerows(rows)
    return ("\ufeff" + buf.getvalue()).encode("utf-8")  # the BOM makes Excel read UTF-8


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=1).encode("utf-8") + b"\n"


def _attendance_files(report: list[dict[str, Any]], counts: dict[str, Any]) -> dict[str, bytes]:
    rows = [
        [
            "attendee_id",
            "name",
            "seat",
            "role",
            "organization",
            "status",
            "checked_in_at",
            "checked_out_at",
            "late",
            "left_early",
            "proxy",
            "counted",
            "signed",
            "signature_sha256",
            "stays",
        ]
    ]
    for r in report:
        status = (
            "absent"
            if not r["checked_in_at"]
            else "left-early"
            if r["left_early"]
            else "late"
            if r["late"]
            else "present"
        )
        stays = "; ".join(
            f"{x['in_at']}–{x['out_at'] or ''}{' (proxy: ' + x['in_reason'] + ')' if x['in_method'] == 'proxy' else ''}"
            for x in r["records"]
        )
        rows.append(
            [
                r["attendee_id"],
                r["name"],
                r["seat"] or "",
                r["role"],
                r.get("organization") or "",
                status,
                r["checked_in_at"] or "",
                r["checked_out_at"] or "",
                r["late"],
                r["left_early"],
                r["proxy"],
                r["counted"],
                bool(r.get("signed")),
                r.get("signature_sha256") or "",
                stays,
            ]
        )
    return {"attendance.csv": _csv(rows), "attendance.json": _json({"counts": counts, "attendees": report})}


def _with_signatures(s: Session, meeting_id: int, report: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The attendance report with whether each attendee signed at check-in, and the signature's SHA-256
    (the strokes themselves are drawn in the minutes; the audit log's check-in entry holds the same hash)."""
    try:
        from ..attendance import service as att
    except ImportError:
        att = None
    fn = getattr(att, "signatures", None)
    sigs = dict(fn(s, meeting_id) or {}) if callable(fn) else {}
    out = []
    for r in report:
        sig = sigs.get(r["attendee_id"]) or {}
        out.append(
            {
                **r,
                "signed": bool(r.get("signed")) or bool(sig),
                "signature_sha256": sig.get("sha256") if isinstance(sig, dict) else None,
                "signed_at": sig.get("signed_at") if isinstance(sig, dict) else None,
            }
        )
    return out


def _vote_files(results: list[dict[str, Any]], per_poll_csv: dict[int, str]) -> dict[str, bytes]:
    """votes.csv (one row per option), votes.json (everything), ballots.csv (named voters, receipts), and the
    voting domain's own CSV per poll."""
    rows = [
        [
            "poll_id",
            "title",
            "kind",
            "secret",
            "status",
            "closed_at",
            "eligible",
            "present",
            "cast",
            "option_index",
            "option",
            "votes",
            "outcome",
        ]
    ]
    ballots = [["poll_id", "title", "secret", "receipt", "attendee_id", "name", "seat", "choices"]]
    for r in results:
        for i, opt in enumerate(r["options"]):
            v = r["tally"][i] if r["tally"] is not None and i < len(r["tally"]) else ""
            rows.append(
                [
                    r["id"],
                    r["title"],
                    r["kind"],
                    r["secret"],
                    r["status"],
                    r["closed_at"] or "",
                    r["eligible"],
                    r["present"],
                    r["cast"] if r["cast"] is not None else "",
                    i,
                    opt,
                    v,
                    r["outcome_text"]["zh"] or r["outcome"] or "",
                ]
            )
        for n in r["named"]:
            ballots.append(
                [
                    r["id"],
                    r["title"],
                    False,
                    n.get("receipt", ""),
                    n.get("attendee_id", ""),
                    n.get("name", ""),
                    n.get("seat", ""),
                    " ".join(str(c) for c in n.get("choices") or []),
                ]
            )
        for x in r["receipts"]:
            ballots.append(
                [
                    r["id"],
                    r["title"],
                    True,
                    x.get("receipt", ""),
                    "",
                    "",
                    "",
                    " ".join(str(c) for c in x.get("choices") or []),
                ]
            )
    out = {"votes.csv": _csv(rows), "votes.json": _json({"polls": results}), "ballots.csv": _csv(ballots)}
    for poll_id, text in per_poll_csv.items():
        out[f"votes/poll-{poll_id:03d}.csv"] = text.encode("utf-8")
    return out


def _material_name(d: dict[str, Any], ext: str) -> str:
    from .bundle import safe_name

    return f"materials/{d['id']:03d}-{safe_name(d['title'], 'document')[:80]}.{ext}"


def _extension(filename: str, kind: str) -> str:
    stem, dot, ext = (filename or "").rpartition(".")
    ext = ext.lower() if dot and stem and ext.isalnum() and len(ext) <= 8 else ""
    return ext or (kind if kind.isalnum() else "") or "bin"


def _snapshot(build: ArchiveBuild, lang_hint: str | None = None) -> dict[str, Any]:
    """Every record of the meeting the archive holds, read in one short transaction."""
    from ..documents.service import document_json, list_documents
    from ..meetings.models import Meeting
    from ..meetings.service import meeting_detail, meeting_summary
    from ..minutes import service as ms

    with db.reader() as s:
        m = s.get(Meeting, build.meeting_id)
        if m is None:
            raise _Lost
        if (m.audit_head or GENESIS) != build.audit_head:
            raise _Superseded
        docs = []
        for d in list_documents(s, m.id):
            docs.append(
                {
                    "json": document_json(d),
                    "id": d.id,
                    "title": d.title,
                    "kind": d.kind,
                    "original": d.original_sha256,
                    "pdf": d.pdf_sha256,
                }
            )
        detail = meeting_detail(s, m, for_staff=False)
        vote_csv: dict[int, str] = {}
        try:
            from ..voting import exports as vote_exports
            from ..voting.service import list_polls
        except ImportError:
            vote_exports = None
        if vote_exports is not None and hasattr(vote_exports, "results_csv"):
            for poll in list_polls(s, m.id):
                if poll.status in ("closed", "cancelled"):
                    vote_csv[poll.id] = vote_exports.results_csv(s, poll)
        minutes = ms.minutes_json(s, m)
        minutes["revisions"] = [ms.revision_json(r) for r in ms.all_revisions(s, m.id)]
        records = audit_records(s, m.id, build.audit_seq)
        ok, _, message = verify_chain(records)
        if not ok:  # never seal a broken log; say which entry, before any rendering
            raise ValueError(f"audit chain does not verify: {message}")
        return {
            "meeting": meeting_summary(m),
            "detail": detail,
            "lang": lang_hint or m.language or "zh",
            "documents": docs,
            "attendance": _with_signatures(s, m.id, ms.attendance_report(s, m)),
            "counts": ms.attendance_counts(s, m),
            "votes": ms.poll_results(s, m.id),
            "vote_csv": vote_csv,
            "minutes": minutes,
            "audit": records,
        }


class _Superseded(Exception):
    """The meeting's audit head moved on: this build would mix two states."""


def _annotation_files(
    meeting_id: int, work: Path, progress: Callable[[float, str], None]
) -> tuple[dict[str, Path | bytes], list[str]]:
    """Every seat's annotated copies and ``annotations/annotations.json`` (adapter to the annotations domain).

    What to draw is read in one short transaction (`annotations.service.export_plan`); the copies
    are then made outside it, in this process and one helper process (`archive.copies`).
    """
    from ..annotations import service as ann
    from .copies import make_copies

    with db.reader() as s:
        plan = ann.export_plan(s, meeting_id)
    folder = work / "annotations"
    jobs = [
        {"pdf": c.pdf, "raw": c.raw, "author": c.author, "target": str(folder / f"{n:06d}.pdf")}
        for n, c in enumerate(plan.copies, 1)
    ]
    # the largest first: the helper takes from the back, so both end at about the same time
    order = sorted(range(len(jobs)), key=lambda i: -plan.copies[i].cost)

    def report(done: int, total: int) -> None:
        progress(0.3 + 0.5 * done / max(total, 1), f"annotated copies ({done}/{total})")

    results = make_copies([jobs[i] for i in order], folder / "work", report)
    out: dict[str, Path | bytes] = {}
    errors = []
    for i, res in zip(order, results, strict=True):
        copy = plan.copies[i]
        if "error" in res:
            log.warning("annotated copy %s failed: %s", copy.path, res["error"])
            errors.append({"path": copy.path, "error": res["error"]})
        else:
            out[copy.path] = Path(jobs[i]["target"])
    out["annotations/annotations.json"] = plan.json_bytes(errors)
    return out, []


def run_build(build_id: int, job: str) -> dict[str, Any] | None:
    """The archive job: collect, render the minutes, write and sign the zip, store it, maybe seal."""
    from .bundle import MINUTES_NAME, build_archive

    b = _claim(build_id, job)
    if b is None:
        return None
    progress = Progress(b.id, b.meeting_id, job)
    store = storage.get()
    work = Path(tempfile.mkdtemp(prefix=f"archive-{b.meeting_id}-", dir=store.tmp))
    timings: dict[str, float] = {}
    mark = [time.perf_counter()]

    def lap(name: str) -> None:
        now = time.perf_counter()
        timings[name] = round(now - mark[0], 3)
        mark[0] = now

    try:
        progress(0.02, "reading the records", force=True)
        snap = _snapshot(b)
        lap("records")
        lang = snap["lang"] if snap["lang"] in ("zh", "en") else "zh"
        progress(0.08, "minutes PDF", force=True)
        minutes_sha, _ = ensure_minutes_pdf(b.meeting_id, lang)
        lap("minutes_pdf")
        files: dict[str, bytes | Path] = {MINUTES_NAME: store.path(minutes_sha)}
        files["minutes.json"] = _json(snap["minutes"])
        notes: list[str] = []
        progress(0.25, "materials", force=True)
        for d in snap["documents"]:
            if d["original"] and store.exists(d["original"]):
                ext = _extension(d["json"].get("filename") or "", d["kind"])
                files[_material_name(d, ext)] = store.path(d["original"])
                if d["pdf"] and d["pdf"] != d["original"] and store.exists(d["pdf"]):
                    files[_material_name(d, "pdf" if ext != "pdf" else "rendered.pdf")] = store.path(d["pdf"])
            else:
                notes.append(f"materials: the original of document {d['id']} is no longer stored")
        lap("materials")
        progress(0.3, "annotated copies", force=True)
        ann, ann_notes = _annotation_files(b.meeting_id, work, progress)
        lap("annotated_copies")
        files.update(ann)
        notes += ann_notes
        files.update(_attendance_files(snap["attendance"], snap["counts"]))
        files.update(_vote_files(snap["votes"], snap["vote_csv"]))
        files["meeting.json"] = _json(snap["detail"])
        lap("votes_attendance")
        if any(r["status"] == "closed" and r["export"] is None for r in snap["votes"]):
            notes.append(
                "votes: no per-ballot lists (named votes, receipts) from the voting domain yet; totals only"
            )
        progress(0.85, "writing the zip", force=True)
        out = work / "archive.zip"
        meeting_meta = {
            "id": snap["meeting"]["id"],
            "title": snap["meeting"]["title"],
            "status": snap["meeting"]["status"],
            "language": lang,
            "location": snap["meeting"]["location"],
            "starts_at": snap["meeting"]["starts_at"],
            "started_at": snap["meeting"]["started_at"],
            "ended_at": snap["meeting"]["ended_at"],
            "minutes_status": snap["minutes"]["status"],
        }
        manifest = build_archive(out, files, snap["audit"], keys(), meeting_meta)
        manifest_sha = hashlib.sha256(
            json.dumps(manifest, ensure_ascii=False, sort_keys=True, indent=2).encode("utf-8") + b"\n"
        ).hexdigest()
        lap("zip_and_sign")
        size = out.stat().st_size
        sha = store.put_file(out, move=True)
        lap("store")
        progress(0.98, "storing", force=True)
        log.info("archive build %s of meeting %s: %s", b.id, b.meeting_id, timings)
        return _finish_build(
            b.id,
            job,
            sha=sha,
            size=size,
            manifest_sha=manifest_sha,
            files=len(manifest["files"]),
            notes=notes,
            minutes_status=snap["minutes"]["status"],
            timings=timings,
        )
    except _Lost:
        return None
    except _Superseded:
        _fail(b.id, job, "superseded", "the meeting changed while the archive was built; ask again")
        return None
    except Exception as e:
        log.exception("archive build %s failed", build_id)
        _fail(b.id, job, "failed", f"{type(e).__name__}: {e}"[:1000])
        return None
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _fail(build_id: int, job: str, status: str, error: str) -> None:
    with db.transaction() as s:
        b = s.get(ArchiveBuild, build_id)
        if b is None or b.claim != job:
            return
        b.status, b.error, b.finished_at, b.claim = status, error, utcnow(), None
        out = build_json(b)
    tasks.notify("archive.progress", out, rooms.organizers(out["meeting_id"]))


def _finish_build(
    build_id: int,
    job: str,
    *,
    sha: str,
    size: int,
    manifest_sha: str,
    files: int,
    notes: list[str],
    minutes_status: str,
    timings: dict[str, float],
) -> dict[str, Any] | None:
    """Mark the build ready; seal the meeting if this is the archive of approved minutes."""
    from ..meetings.models import Meeting
    from ..meetings.service import meeting_summary
    from ..minutes import service as ms

    sealed_meeting = None
    with db.transaction() as s:
        b = s.get(ArchiveBuild, build_id)
        if b is None or b.claim != job:
            return None
        m = s.get(Meeting, b.meeting_id, with_for_update=True)
        b.status, b.progress, b.step = "ready", 1.0, "ready"
        b.sha256, b.size, b.manifest_sha256, b.files, b.notes = sha, size, manifest_sha, files, notes
        b.timings = timings
        b.finished_at, b.claim = utcnow(), None
        if (
            m is not None
            and m.status == "ended"
            and (m.audit_head or GENESIS) == b.audit_head
            and minutes_status == "approved"
            and ms.status_of(s, m.id) == "approved"
        ):
            seal(s, m, b)
            sealed_meeting = meeting_summary(m)
        out = build_json(b)
    tasks.notify("archive.progress", out, rooms.organizers(out["meeting_id"]))
    if sealed_meeting is not None:
        tasks.notify("meeting", sealed_meeting, rooms.meeting(out["meeting_id"]))
    return out


def seal(s: Session, m: Any, b: ArchiveBuild, reason: str = "minutes approved") -> None:
    """Make `b` the meeting's archive for good: the meeting becomes `archived`, the minutes `locked`.

    The seal entry follows the head the archive holds, so the archive stays
    valid and its SHA-256 is itself on the record.
    """
    from ..minutes import service as ms

    b.sealed = True
    m.status = "archived"
    ms.lock(s, m.id)
    audit.append(
        s,
        m,
        SYSTEM,
        "archive.seal",
        {
            "build_id": b.id,
            "archive_sha256": b.sha256,
            "manifest_sha256": b.manifest_sha256,
            "audit_seq": b.audit_seq,
            "audit_head": b.audit_head,
            "reason": reason,
        },
    )


# --------------------------------------------------------------------------- retention


def _sha_columns(table) -> list:
    return [c for c in table.columns if c.name == "sha256" or c.name.endswith("_sha256")]


def _rows_of(table, meeting_id: int, doc_ids: list[int]):
    """A WHERE clause for the rows of `table` that belong to the meeting, or None."""
    cols = table.columns
    if "meeting_id" in cols:
        return cols["meeting_id"] == meeting_id
    if "document_id" in cols and doc_ids:
        return cols["document_id"].in_(doc_ids)
    return None


def _material_tables():
    """`documents` and every table that points at a document (pages, annotations, watermarks, exports…)."""
    from ..core.db import Base

    out = []
    for t in Base.metadata.sorted_tables:
        if t.name == "documents" or any(fk.column.table.name == "documents" for fk in t.foreign_keys):
            out.append(t)
    return out


def _blob_in_use(s: Session, sha: str) -> bool:
    from ..core.db import Base

    for t in Base.metadata.sorted_tables:
        for c in _sha_columns(t):
            if s.execute(select(c).where(c == sha).limit(1)).first() is not None:
                return True
    return False


def _delete_rows(s: Session, meeting_id: int, tables: list) -> tuple[int, set[str]]:
    """Delete the meeting's rows of `tables` (dependents first); returns (rows, blobs they named)."""
    from ..documents.models import Document

    doc_ids = list(s.scalars(select(Document.id).where(Document.meeting_id == meeting_id)))
    shas: set[str] = set()
    rows = 0
    for t in reversed(tables):
        where = _rows_of(t, meeting_id, doc_ids)
        if where is None:
            continue
        for c in _sha_columns(t):
            shas.update(v for v in s.scalars(select(c).where(where)) if v)
        rows += s.execute(delete(t).where(where)).rowcount or 0
    return rows, shas


def _unlink_unused(s: Session, shas: set[str]) -> tuple[int, int]:
    store = storage.get()
    n = size = 0
    for sha in sorted(shas):
        try:
            path = store.path(sha)
        except ValueError:
            continue
        if _blob_in_use(s, sha) or not path.exists():
            continue
        size += path.stat().st_size
        path.unlink(missing_ok=True)
        n += 1
    return n, size


def _retention_entry(command: str) -> Any:
    return select(audit.AuditEntry.id).where(audit.AuditEntry.command == command)


def purge_expired(
    settings: Any, now: dt.datetime | None = None, dry_run: bool = False, log_fn=print
) -> list[dict]:
    """Apply the retention settings; returns what was (or, dry run, would be) done.

    - materials past `materials_retention_days`: the meeting is sealed first if it
      was not (its archive keeps the materials), then its documents, page images,
      annotations and their files are deleted; a `retention.materials_purged`
      entry stays in the audit log;
    - meetings past `archive_retention_days`: everything but the meeting row and
      its audit log is deleted, the archive file too; `retention.meeting_deleted`
      is the log's last entry (the tombstone).
    """
    from ..core.db import Base
    from ..meetings.models import Meeting

    now = now or utcnow()
    done: list[dict] = []
    mdays, adays = settings.materials_retention_days, settings.archive_retention_days
    if not mdays and not adays:
        log_fn(
            "retention: MEETING_MATERIALS_RETENTION_DAYS and MEETING_ARCHIVE_RETENTION_DAYS are 0: keep everything"
        )
        return done
    with db.reader() as s:
        candidates = [
            (m.id, m.ended_at, m.status)
            for m in s.scalars(
                select(Meeting).where(Meeting.deleted_at.is_(None), Meeting.ended_at.is_not(None))
            )
        ]
    for mid, ended_at, status in candidates:
        age = now - ended_at
        if status not in ("ended", "archived"):
            continue
        if adays and age > dt.timedelta(days=adays):
            action = {"meeting_id": mid, "action": "delete_meeting", "ended_at": iso(ended_at)}
            if not dry_run:
                action.update(
                    _delete_meeting(
                        mid,
                        adays,
                        [
                            t
                            for t in Base.metadata.sorted_tables
                            if t.name not in ("meetings", "audit_entries")
                        ],
                    )
                )
            done.append(action)
            log_fn(
                f"meeting {mid}: deleted after {adays} days (tombstone kept in its audit log)"
                if not dry_run
                else f"meeting {mid}: would be deleted (ended {iso(ended_at)})"
            )
        elif mdays and age > dt.timedelta(days=mdays):
            with db.reader() as s:
                purged = s.scalar(
                    _retention_entry("retention.materials_purged").where(audit.AuditEntry.meeting_id == mid)
                )
            if purged is not None:
                continue
            action = {"meeting_id": mid, "action": "purge_materials", "ended_at": iso(ended_at)}
            if not dry_run:
                action.update(_purge_materials(mid, mdays))
            done.append(action)
            log_fn(
                f"meeting {mid}: materials deleted after {mdays} days ({action.get('rows', 0)} rows, "
                f"{action.get('blobs', 0)} files)"
                if not dry_run
                else f"meeting {mid}: materials would be deleted"
            )
    return done


def seal_for_retention(meeting_id: int) -> ArchiveBuild | None:
    """Build (here, in this process) and seal the archive of an ended meeting before its materials go."""
    import uuid

    from ..meetings.models import Meeting

    with db.transaction() as s:
        m = s.get(Meeting, meeting_id, with_for_update=True)
        if m is None or m.status != "ended":
            return None
        b, _ = request_build(s, m, retry_failed=True)
        bid = b.id
        ready = b.status == "ready"
    if not ready:
        run_build(bid, uuid.uuid4().hex)
    with db.transaction() as s:
        m = s.get(Meeting, meeting_id, with_for_update=True)
        b = s.get(ArchiveBuild, bid)
        if m is None or b is None or b.status != "ready":
            raise RuntimeError(
                f"meeting {meeting_id}: the archive could not be built ({b.error if b else 'gone'})"
            )
        if m.status == "ended":
            seal(s, m, b, reason="retention: materials expire")
        return b


def _purge_materials(meeting_id: int, days: int) -> dict[str, Any]:
    from ..meetings.models import Meeting

    seal_for_retention(meeting_id)
    with db.transaction() as s:
        m = s.get(Meeting, meeting_id, with_for_update=True)
        rows, shas = _delete_rows(s, meeting_id, _material_tables())
        s.flush()
        blobs, size = _unlink_unused(s, shas)
        audit.append(
            s,
            m,
            SYSTEM,
            "retention.materials_purged",
            {"retention_days": days, "rows": rows, "blobs": blobs, "bytes": size},
        )
    return {"rows": rows, "blobs": blobs, "bytes": size}


def _delete_meeting(meeting_id: int, days: int, tables: list) -> dict[str, Any]:
    from ..meetings.models import Meeting

    with db.transaction() as s:
        m = s.get(Meeting, meeting_id, with_for_update=True)
        head_before = m.audit_head
        rows, shas = _delete_rows(s, meeting_id, tables)
        s.flush()
        blobs, size = _unlink_unused(s, shas)
        m.deleted_at = utcnow()
        audit.append(
            s,
            m,
            SYSTEM,
            "retention.meeting_deleted",
            {"retention_days": days, "rows": rows, "blobs": blobs, "bytes": size, "head_before": head_before},
        )
    return {"rows": rows, "blobs": blobs, "bytes": size}
