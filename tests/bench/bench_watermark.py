"""Benchmark: per-seat watermarked pages of a confidential document against plain rendering.

Not collected by pytest. Makes a PDF with text and vector drawings on every page, then, in
the same run and process:

  (a) plain: render.render_document, page (1600 px) + thumbnail, the work done once per
      document when it is uploaded;
  (b) watermark: render.watermark of every page image for every seat (distinct name, seat
      and time per seat: one mask per seat, as in production), one process;
  (c) the same spread over --processes worker processes (spawn), like `meeting-server worker`;
  (d) the real job, documents.watermarks.watermark_pages, for --job-seats seats: reading the
      plain blob, watermarking, storing the blob (fsync) and its row in SQLite.

Run from the repository root:

    .venv/bin/python tests/bench/bench_watermark.py --pages 50 --seats 100 --processes 2
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import datetime as dt
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from meeting_server.documents import render, watermarks  # noqa: E402
from tests.documents import corpus  # noqa: E402

AT = dt.datetime(2026, 12, 3, 9, 30, tzinfo=dt.UTC)


def seat_lines(i: int) -> list[str]:
    return watermarks.lines_for(f"代表{i:03d} Delegate {i}", f"{i:03d}", AT)


def _watermark_seats(args: tuple[list[str], list[int]]) -> int:
    """Worker: watermark every page for the given seats; returns pages done."""
    files, seats = args
    pages = [Path(f).read_bytes() for f in files]
    for i in seats:
        lines = seat_lines(i)
        for data in pages:
            render.watermark(data, lines, watermarks.OPACITY)
    return len(pages) * len(seats)


def bench_job(work: Path, records: list[dict], seats: int) -> tuple[int, float]:
    """(d): the production job with a file database and blob storage."""
    from meeting_server.auth.service import create_user
    from meeting_server.core import db, storage, tasks
    from meeting_server.core.db import Base
    from meeting_server.documents.models import Document, DocumentPage
    from meeting_server.documents.watermarks import WatermarkedPage
    from meeting_server.meetings.models import Meeting
    from meeting_server.roster.models import Attendee
    from tests.conftest import test_settings

    settings = test_settings(work / "job", database_url=f"sqlite:///{work / 'job.sqlite'}").ensure_dirs()
    from meeting_server import models  # noqa: F401

    db.configure(settings.database_url)
    Base.metadata.create_all(db.engine)
    store = storage.configure(settings.data_dir)
    tasks.configure(settings)
    with db.transaction() as s:
        user = create_user(s, "bench", "password-123", role="admin")
        m = Meeting(title="bench", owner_id=user.id)
        s.add(m)
        s.flush()
        d = Document(
            meeting_id=m.id,
            title="机密",
            status="ready",
            page_count=len(records),
            original_sha256="0" * 64,
            confidential=True,
        )
        s.add(d)
        s.flush()
        for rec in records:
            s.add(
                DocumentPage(
                    document_id=d.id,
                    version=1,
                    n=rec["n"],
                    width=rec["page"]["width"],
                    height=rec["page"]["height"],
                    image_sha256=store.put_file(Path(rec["page"]["file"])),
                    thumb_sha256=store.put_file(Path(rec["thumb"]["file"])),
                    pdf_width=rec["pdf_width"],
                    pdf_height=rec["pdf_height"],
                )
            )
        people = []
        for i in range(seats):
            a = Attendee(meeting_id=m.id, name=f"代表{i:03d}", seat=f"{i:03d}", join_token=f"t{i}")
            s.add(a)
            s.flush()
            people.append(a.id)
            for rec in records:
                s.add(
                    WatermarkedPage(
                        document_id=d.id,
                        version=1,
                        n=rec["n"],
                        size="page",
                        attendee_id=a.id,
                        requested_at=AT,
                    )
                )
        doc_id = d.id
    pages = [rec["n"] for rec in records]
    t0 = time.perf_counter()
    for aid in people:
        watermarks.watermark_pages(doc_id, 1, aid, "page", pages)
    elapsed = time.perf_counter() - t0
    with db.reader() as s:
        done = s.query(WatermarkedPage).filter(WatermarkedPage.sha256.is_not(None)).count()
    db.engine.dispose()
    return done, elapsed


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pages", type=int, default=50)
    p.add_argument("--seats", type=int, default=100)
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--job-seats", type=int, default=5, help="seats for (d), the real job")
    args = p.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-watermark-"))
    try:
        pdf = corpus.make_text_pdf(work / "confidential.pdf", args.pages, drawings=True)
        print(f"{args.pages}-page PDF with text and drawings; {args.seats} seats; {os.cpu_count()} CPUs")

        t0 = time.perf_counter()
        records = render.render_document(pdf, work / "plain")
        plain = time.perf_counter() - t0
        files = [r["page"]["file"] for r in records]
        size = records[0]["page"]
        print(
            f"(a) plain rendering, page {size['width']}x{size['height']} + thumb: {plain:.2f} s, "
            f"{args.pages / plain:.1f} pages/s ({plain / args.pages * 1000:.1f} ms/page)"
        )

        n = args.pages * args.seats
        t0 = time.perf_counter()
        _watermark_seats((files, list(range(args.seats))))
        one = time.perf_counter() - t0
        print(
            f"(b) watermark, 1 process: {n} pages in {one:.1f} s, {n / one:.1f} pages/s "
            f"({one / n * 1000:.1f} ms/page; {(one / n) / (plain / args.pages):.2f}x a plain page)"
        )

        if args.processes > 1:
            chunks = [(files, list(range(i, args.seats, args.processes))) for i in range(args.processes)]
            ctx = multiprocessing.get_context("spawn")
            t0 = time.perf_counter()
            with cf.ProcessPoolExecutor(args.processes, mp_context=ctx) as pool:
                total = sum(pool.map(_watermark_seats, chunks))
            par = time.perf_counter() - t0
            print(
                f"(c) watermark, {args.processes} processes (spawn, start included): {total} pages in "
                f"{par:.1f} s, {total / par:.1f} pages/s"
            )

        done, job = bench_job(work, records, args.job_seats)
        print(
            f"(d) watermark_pages job, {args.job_seats} seats x {args.pages} pages (blob fsync + SQLite row): "
            f"{done} pages in {job:.1f} s, {done / job:.1f} pages/s ({job / done * 1000:.1f} ms/page)"
        )
        print(
            f"    first page of a seat ready after ~{job / done * 1000:.0f} ms of worker time; "
            f"a whole seat's {args.pages} pages after ~{job / args.job_seats:.1f} s"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
