"""Background job: build an annotated PDF or a meeting's annotation zip (runs in a worker).

`render.export_annotated` costs about 65 ms for a 5-page document and about 1 s for a
300-page one (docs/benchmarks.md): too long for the event loop, so it always runs here.
"""

from __future__ import annotations

import logging
import tempfile
import zipfile
from pathlib import Path

from ..core import db, storage, tasks
from ..core.db import utcnow
from .models import AnnotationExport

log = logging.getLogger(__name__)


def _finish(export_id: int, **changes) -> None:
    with db.transaction() as s:
        row = s.get(AnnotationExport, export_id)
        if row is not None:
            for k, v in changes.items():
                setattr(row, k, v)
            row.finished_at = utcnow()


def export_annotations(export_id: int) -> None:
    from ..documents.models import Document
    from ..roster.models import Attendee
    from . import service

    tasks.ensure_worker_ready()
    with db.transaction() as s:
        row = s.get(AnnotationExport, export_id)
        if row is None or row.status not in ("queued", "running"):
            return
        row.status = "running"
    store = storage.get()
    try:
        with db.reader() as s:
            row = s.get(AnnotationExport, export_id)
            if row.document_id is not None:
                d, a = s.get(Document, row.document_id), s.get(Attendee, row.attendee_id)
                sha = store.put_bytes(service.annotated_pdf(s, d, a))
                size = store.path(sha).stat().st_size
            else:
                fd, name = tempfile.mkstemp(dir=store.tmp, prefix="annotations-", suffix=".zip")
                tmp = Path(name)
                try:
                    with open(fd, "wb") as f, zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as zf:
                        for path, data in service.iter_export_all(s, row.meeting_id):
                            zf.writestr(path, data)
                    size = tmp.stat().st_size
                    sha = store.put_file(tmp, move=True)
                finally:
                    tmp.unlink(missing_ok=True)
        _finish(export_id, status="ready", sha256=sha, size=size, error=None)
    except Exception as e:  # the export fails visibly with a reason; nothing hangs in "running"
        reason = getattr(e, "message", None) or str(e) or e.__class__.__name__
        log.warning("annotation export %s failed: %s", export_id, reason, exc_info=not hasattr(e, "code"))
        _finish(export_id, status="failed", error=reason[:1000])
