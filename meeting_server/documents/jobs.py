"""Background job: turn an uploaded file into page images (runs in a worker process)."""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import delete

from ..core import db, rooms, storage, tasks
from ..core.db import utcnow
from .models import Document, DocumentPage
from .service import IMAGE_KINDS, OFFICE_KINDS, document_json

log = logging.getLogger(__name__)

SIZES = {"page": 1600, "thumb": 320}


def _progress(doc_id: int, version: int, **changes) -> dict | None:
    """Update the document row in a short transaction; None when it changed under us."""
    with db.transaction() as s:
        d = s.get(Document, doc_id)
        if d is None or d.version != version:
            return None
        for k, v in changes.items():
            setattr(d, k, v)
        d.updated_at = utcnow()
        out = document_json(d)
    tasks.notify("document", out, rooms.staff(out["meeting_id"]))
    return out


def render_document(doc_id: int, version: int) -> None:
    from . import render

    tasks.ensure_worker_ready()
    with db.reader() as s:
        d = s.get(Document, doc_id)
        if d is None or d.version != version:
            return  # replaced or deleted meanwhile: a newer job owns it
        kind, original_sha = d.kind, d.original_sha256
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
        sizes = render.pdf_page_sizes(pdf_path)
        last = [0.0]

        def progress(done: int, total_: int) -> None:
            now = time.monotonic()
            if now - last[0] > 0.5 or done == total_:
                last[0] = now
                _progress(doc_id, version, pages_done=done)

        pages = render.render_document(pdf_path, work / "pages", sizes=SIZES, progress=progress)
        with db.transaction() as s:
            d = s.get(Document, doc_id)
            if d is None or d.version != version:
                return
            s.execute(delete(DocumentPage).where(DocumentPage.document_id == doc_id, DocumentPage.version == version))
            for rec in pages:
                n = rec["n"]
                s.add(DocumentPage(
                    document_id=doc_id, version=version, n=n,
                    width=rec["page"]["width"], height=rec["page"]["height"],
                    image_sha256=store.put_file(Path(rec["page"]["file"]), move=True),
                    thumb_sha256=store.put_file(Path(rec["thumb"]["file"]), move=True),
                    pdf_width=sizes[n - 1][0], pdf_height=sizes[n - 1][1],
                ))
        _progress(doc_id, version, status="ready", pages_done=len(pages), page_count=len(pages))
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
            stale = [(d.id, d.version) for d in s.scalars(select(Document).where(Document.status == "processing"))]
    finally:
        db.engine.dispose()
        db.engine = None
    for doc_id, version in stale:
        tasks.enqueue("render_document", doc_id, version)
    return len(stale)
