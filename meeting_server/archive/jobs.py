"""Background jobs of the records layer (run in a worker process; inline in tests)."""

from __future__ import annotations

from ..core import tasks


def build_minutes(pdf_id: int) -> None:
    """Render and sign one minutes PDF (a `MinutesPdf` row)."""
    from . import service

    tasks.ensure_worker_ready()
    service.build_minutes_row(pdf_id)


def build_archive(build_id: int) -> None:
    """Build one archive zip (an `ArchiveBuild` row); seals the meeting when its minutes are approved."""
    from . import service

    tasks.ensure_worker_ready()
    service.run_build(build_id, service.holder_name(build_id))
