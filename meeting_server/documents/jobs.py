"""Background job: turn an uploaded file into page images (runs in a worker process)."""

from __future__ import annotations

import datetime as dt
import logging
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
        document_id=doc_id, version=version, n=rec["n"],
        width=rec["page"]["width"], height=rec["page"]["height"],
        image_sha256=store.put_file(Path(rec["page"]["file"]), move=True),
        thumb_sha256=store.put_file(Path(rec["thumb"]["file"]), move=True),
        pdf_width=rec["pdf_width"], pdf_height=rec["pdf_height"],
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


#: A render job that has not shown life for this long is presumed dead (killed worker).
LEASE = dt.timedelta(seconds=60)


def claim(doc_id: int, version: int, job: str) -> tuple[str, str] | None:
    """Take the render lease of a document version; None if it is done or another live job has it."""
    with db.transaction() as s:
        d = s.get(Document, doc_id)
        if d is None or d.version != version or d.status != "processing":
            return None
        now = utcnow()
        if d.render_claim and d.render_heartbeat and now - d.render_heartbeat < LEASE:
            return None
        d.render_claim, d.render_heartbeat = job, now
        return d.kind, d.original_sha256


def render_document(doc_id: int, version: int) -> None:
    from . import render

    tasks.ensure_worker_ready()
    job = uuid.uuid4().hex
    claimed = claim(doc_id, version, job)
    if claimed is None:
        return  # finished, replaced, deleted, or being rendered by a live job
    kind, original_sha = claimed
    store = storage.get()
    work = Path(tempfile.mkdtemp(prefix=f"render-{doc_id}-", dir=store.tmp))
    try:
        src = store.path(original_sha)
        if kind == "pdf":
            pdf_path, pdf_sha = src, original_sha
        else:
            if kind in OFFICE_KINDS:
                pdf_path = render.convert_office(src, work, job_id=f"{doc_id}-{version}-{uuid.uuid4().hex[:8]}")
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
            s.execute(delete(DocumentPage).where(DocumentPage.document_id == doc_id, DocumentPage.version == version))
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
        log.warning("rendering document %s v%s failed: %s", doc_id, version, reason, exc_info=not hasattr(e, "code"))
        _progress(doc_id, version, status="failed", error=reason[:1000])
    finally:
        shutil.rmtree(work, ignore_errors=True)


def requeue_stale(settings) -> int:
    """At worker start: a job lost with a killed worker is queued again, never left hanging."""
    from sqlalchemy import select

    from ..core import tasks

    db.configure(settings.database_url)
    try:
        with db.reader() as s:
            cutoff = utcnow() - LEASE
            stale = [(d.id, d.version) for d in s.scalars(select(Document).where(Document.status == "processing"))
                     if d.render_heartbeat is None or d.render_heartbeat < cutoff]
    finally:
        db.engine.dispose()
        db.engine = None
    for doc_id, version in stale:
        tasks.enqueue("render_document", doc_id, version)
    return len(stale)
