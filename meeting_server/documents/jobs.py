"""Background job: turn an uploaded file into page images (runs in a worker process)."""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import delete

from ..core import db, storage, tasks
from ..core.db import utcnow
from .models import Document, DocumentPage
from .service import IMAGE_KINDS, OFFICE_KINDS, audience_rooms, document_json

log = logging.getLogger(__name__)

SIZES = {"page": 1600, "thumb": 320}


class _Superseded(Exception):
    """The document was replaced or deleted while this job ran."""


def _page_row(store, doc_id: int, version: int, rec: dict) -> DocumentPage:
    return DocumentPage(
        document_id=doc_id,
        version=version,
        n=rec["n"],
        width=rec["page"]["width"],
        height=rec["page"]["height"],
        image_sha256=store.put_file(Path(rec["page"]["file"]), move=True),
        thumb_sha256=store.put_file(Path(rec["thumb"]["file"]), move=True),
        pdf_width=rec["pdf_width"],
        pdf_height=rec["pdf_height"],
    )


def _progress(doc_id: int, version: int, **changes) -> dict | None:
    """Update the document row in a short transaction; None when it changed under us."""
    with db.transaction() as s:
        d = s.get(Document, doc_id)
        if d is None or d.version != version:
            return None
        if "status" in changes:
            changes = {**changes, "render_claim": None, "render_heartbeat": None}
        for k, v in changes.items():
            setattr(d, k, v)
        d.updated_at = utcnow()
        out = document_json(d)
        targets = audience_rooms(s, d, group="staff")
    for room in targets:
        tasks.notify("document", out, room)
    return out


#: A render job that has not shown life for this long is presumed dead (killed worker on another host).
LEASE = dt.timedelta(seconds=60)
#: A version whose render was interrupted this many times (its worker died each time: OOM, crash) fails
#: visibly instead of killing workers for ever.
MAX_ATTEMPTS = 3


# -- the lease holder -------------------------------------------------------------------------
# `render_claim` names its holder: "<machine>.<pid>.<start>.<version>.<attempt>.<nonce>" (hex fields).
# <machine> hashes the host name and the kernel boot id: on the same machine and boot a holder whose
# process is gone (same pid and start time no longer running) is dead, and its lease is taken at once;
# a holder on another machine is judged by its heartbeat only (LEASE).


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _machine() -> str:
    import hashlib
    import socket

    boot = _boot_id()
    if not boot:
        return ""  # no way to tell a reboot: never judge liveness by pid
    return hashlib.sha256(f"{socket.gethostname()}\0{boot}".encode()).hexdigest()[:6]


def _start_time(pid: int) -> int | None:
    """The process's start time (clock ticks after boot), None when it is not running (or a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def holder(version: int, attempt: int, pid: int | None = None) -> str:
    """A process's name (this one's by default) for a lease on `version`, at most 40 characters."""
    pid = pid or os.getpid()
    name = f"{_machine()}.{pid:x}.{(_start_time(pid) or 0):x}.{version:x}.{attempt:x}"
    return f"{name}.{uuid.uuid4().hex[: max(0, 39 - len(name))]}"[:40]


def parse_holder(claim: str | None) -> dict | None:
    """The fields of a holder name, None for a name in another form (an older server's job id)."""
    parts = (claim or "").split(".")
    if len(parts) != 6:
        return None
    try:
        pid, start, version, attempt = (int(x, 16) for x in parts[1:5])
    except ValueError:
        return None
    return {"machine": parts[0], "pid": pid, "start": start, "version": version, "attempt": attempt}


def holder_state(claim: str | None) -> str:
    """`dead`: surely gone (its process ended on this machine); `self`: this very process (a leftover of
    an earlier job here); `alive`: running here; `unknown`: another machine or an unnamed holder."""
    h = parse_holder(claim)
    if h is None or not h["machine"] or h["machine"] != _machine():
        return "unknown"
    if h["pid"] == os.getpid() and h["start"] == (_start_time(h["pid"]) or 0):
        return "self"
    return "alive" if _start_time(h["pid"]) == h["start"] else "dead"


def _takeover(d: Document, version: int, now: dt.datetime) -> tuple[bool, int]:
    """May this job take the render lease of `d` now, and as which attempt?"""
    if not d.render_claim:
        return True, 1
    h = parse_holder(d.render_claim)
    attempt = (h["attempt"] if h and h["version"] == version else 0) + 1
    if h is not None and h["version"] != version:
        return True, 1  # a job of an older version: it stops at its next page (superseded)
    state = holder_state(d.render_claim)
    if state in ("dead", "self"):
        return True, attempt
    if state == "alive":
        # Running on this machine (same pid and start time): a long conversion shows no heartbeat for
        # a while but ends (LibreOffice has a timeout); taking over would only render it twice.
        return False, attempt
    expired = d.render_heartbeat is None or now - d.render_heartbeat >= LEASE
    return expired, attempt


class _Busy(Exception):
    """Another job holds a live lease: check again when it would run out."""

    def __init__(self, retry_in: float):
        self.retry_in = retry_in


def claim(doc_id: int, version: int, job: str | None = None) -> tuple[str, str, str] | None:
    """Take the render lease of a document version: (kind, original sha, holder name).

    None when there is nothing to do (done, replaced, deleted, or failed after MAX_ATTEMPTS interrupted
    renders); raises _Busy when a holder that may be alive has it.
    """
    with db.transaction() as s:
        d = s.get(Document, doc_id)
        if d is None or d.version != version or d.status != "processing":
            return None
        now = utcnow()
        ok, attempt = _takeover(d, version, now)
        if not ok:
            left = (LEASE - (now - d.render_heartbeat)).total_seconds() if d.render_heartbeat else 0.0
            raise _Busy(left + 1.0 if left > 0 else LEASE.total_seconds())  # an alive holder past its lease
        if attempt > MAX_ATTEMPTS:
            d.status, d.render_claim, d.render_heartbeat = "failed", None, None
            d.error = (
                f"rendering was interrupted {MAX_ATTEMPTS} times (the worker stopped); upload the file again"
            )
            d.updated_at = now
            out = document_json(d)
            targets = audience_rooms(s, d, group="staff")
            log.warning("document %s v%s: %s", doc_id, version, d.error)
            failed = True
        else:
            d.render_claim, d.render_heartbeat = job or holder(version, attempt), now
            failed = False
            result = d.kind, d.original_sha256, d.render_claim
    if failed:
        for room in targets:
            tasks.notify("document", out, room)
        return None
    return result


def render_document(doc_id: int, version: int) -> None:
    from . import render

    tasks.ensure_worker_ready()
    try:
        claimed = claim(doc_id, version)
    except _Busy as busy:  # a holder that may be alive: look again when its lease would run out
        tasks.enqueue_in(busy.retry_in, "render_document", doc_id, version)
        return
    if claimed is None:
        return  # finished, replaced, deleted, or failed visibly
    kind, original_sha, job = claimed
    store = storage.get()
    work = Path(tempfile.mkdtemp(prefix=f"render-{doc_id}-", dir=store.tmp))
    try:
        src = store.path(original_sha)
        if kind == "pdf":
            pdf_path, pdf_sha = src, original_sha
        else:
            if kind in OFFICE_KINDS:
                pdf_path = render.convert_office(
                    src, work, job_id=f"{doc_id}-{version}-{uuid.uuid4().hex[:8]}"
                )
            elif kind in IMAGE_KINDS:
                pdf_path = work / "image.pdf"
                render.image_to_pdf(src, pdf_path)
            else:
                raise render.DocumentError("unsupported_type", f"files of type {kind} are not supported", 415)
            pdf_sha = store.put_file(pdf_path)
            pdf_path = store.path(pdf_sha)
        settings = tasks.settings
        total = render.inspect_pdf(pdf_path, settings.max_pages if settings else 2000)
        if _progress(doc_id, version, page_count=total, pdf_sha256=pdf_sha, pages_done=0) is None:
            return
        with db.transaction() as s:
            s.execute(
                delete(DocumentPage).where(
                    DocumentPage.document_id == doc_id, DocumentPage.version == version
                )
            )
        pending: list[dict] = []
        last = [0.0]
        done = [0]

        def flush() -> None:
            """Store the rendered pages so far: the first page is served while the rest renders."""
            rows = [_page_row(store, doc_id, version, rec) for rec in pending]
            pending.clear()
            with db.transaction() as s:
                d = s.get(Document, doc_id)
                if d is None or d.version != version:
                    raise _Superseded
                if d.render_claim != job:
                    raise _Superseded
                s.add_all(rows)
                d.pages_done = done[0]
                d.updated_at = d.render_heartbeat = utcnow()
                out = document_json(d)
                targets = audience_rooms(s, d, group="staff")
            for room in targets:
                tasks.notify("document", out, room)

        def on_page(rec: dict) -> None:
            pending.append(rec)
            done[0] += 1
            now = time.monotonic()
            if done[0] == 1 or now - last[0] > 0.5:
                last[0] = now
                flush()

        render.render_document(pdf_path, work / "pages", sizes=SIZES, on_page=on_page)
        if pending:
            flush()
        if _progress(doc_id, version, status="ready", pages_done=done[0], page_count=done[0]) is not None:
            from ..annotations.service import on_version_ready  # moves annotations; never raises

            on_version_ready(doc_id, version)
    except _Superseded:
        return  # replaced or deleted meanwhile: a newer job owns it
    except Exception as e:  # the document fails visibly with a reason; nothing hangs in "processing"
        reason = getattr(e, "message", None) or str(e) or e.__class__.__name__
        log.warning(
            "rendering document %s v%s failed: %s", doc_id, version, reason, exc_info=not hasattr(e, "code")
        )
        _progress(doc_id, version, status="failed", error=reason[:1000])
    finally:
        shutil.rmtree(work, ignore_errors=True)


def reclaimable(d: Document, now: dt.datetime) -> bool:
    """A 'processing' version nobody is surely working on: never claimed, lease run out (and the holder
    not seen running here), holder of an older version, or holder dead."""
    h = parse_holder(d.render_claim)
    if h is not None and h["version"] != d.version:
        return True
    state = holder_state(d.render_claim)
    if state == "dead":
        return True
    if d.render_heartbeat is None or now - d.render_heartbeat >= LEASE:
        return state != "alive"
    return False


def requeue_stale(settings, *, dead_only: bool = False) -> int:
    """A job lost with a killed worker is queued again, never left hanging.

    At worker start every 'processing' version that is not surely being rendered; with `dead_only`
    (after the consumer replaced a dead worker process) only those whose holder is surely dead.
    """
    from sqlalchemy import select

    db.configure(settings.database_url)
    try:
        with db.reader() as s:
            now = utcnow()
            docs = s.scalars(select(Document).where(Document.status == "processing")).all()
            if dead_only:
                stale = [(d.id, d.version) for d in docs if holder_state(d.render_claim) == "dead"]
            else:
                stale = [(d.id, d.version) for d in docs if reclaimable(d, now)]
    finally:
        db.engine.dispose()
        db.engine = None
    for doc_id, version in stale:
        tasks.enqueue("render_document", doc_id, version)
    if stale:
        tasks.huey.storage.close()  # the consumer forks workers next: none may inherit this connection
        log.warning("re-queued %d interrupted render(s): %s", len(stale), stale)
    return len(stale)
