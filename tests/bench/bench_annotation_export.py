"""Benchmark: how long annotated PDF copies take. Not collected by pytest.

Default mode: for documents of several lengths, one seat's annotated copy with a pen stroke
of 200 points on every third page, a highlight and a text note on every tenth: the time is
what the event loop would stall if the export ran inline.

    .venv/bin/python tests/bench/bench_annotation_export.py --pages 5 50 300

``--archive`` mode: the annotated copies of the archive benchmark meeting (30 documents of
50 pages, 2,000 pen annotations of 10 strokes x 24 points = 20,000 strokes by 60 seats, so
60 copies of 33-34 annotations each, as in bench_archive_e2e.py), made three ways in one
run: the previous export (PyMuPDF's annotation API point by point, ``annot.update()`` per
annotation, a ``garbage=3`` rewrite of each copy; kept below as the reference), the current
`render.write_annotated` in this process only, and `archive.copies.make_copies` with its
helper process (what the archive job runs).

    .venv/bin/python tests/bench/bench_annotation_export.py --archive [--copies 60]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from meeting_server.documents import render  # noqa: E402
from tests.documents import corpus  # noqa: E402


def annotations(pages: int) -> list[dict]:
    out = []
    for p in range(1, pages + 1):
        if p % 3 == 1:
            out.append({"page": p, "kind": "pen", "points": [[100 + i, 200 + (i % 40)] for i in range(200)]})
        if p % 10 == 1:
            out.append({"page": p, "kind": "highlight", "rect": [72, 100, 400, 120]})
            out.append(
                {"page": p, "kind": "text", "points": [[80, 600]], "text": "同意，建议修改第三条 Agree"}
            )
    return out


def reference_export(pdf_path: Path, items: list[dict], author: str) -> bytes:
    """The export as it was before the archive needed 60 copies (commit 9dd5a24~1), pen only."""
    import pymupdf

    with pymupdf.open(pdf_path) as doc:
        for a in items:
            page = doc[a["page"] - 1]
            derot = page.derotation_matrix
            ink = [[tuple(pymupdf.Point(p) * derot) for p in s] for s in a["strokes"]]
            annot = page.add_ink_annot(ink)
            annot.set_border(width=a.get("width") or 2.0)
            annot.set_colors(stroke=(0.8, 0.0, 0.0))
            annot.set_info(title=author)
            annot.update()
        doc.subset_fonts()
        return doc.tobytes(garbage=3, deflate=True)


def archive_mode(copies: int, work: Path) -> None:
    import random
    import subprocess

    from meeting_server.archive.copies import make_copies
    from tests.bench.bench_archive_e2e import pdf_with_pages

    rnd = random.Random(7)
    docs = []
    for k in range(30):
        path = work / f"doc{k:02d}.pdf"
        path.write_bytes(pdf_with_pages(50, f"材料{k + 1}"))
        docs.append(path)
    per_seat: dict[int, list[dict]] = {}
    for k in range(2000):  # as bench_archive_e2e: annotation k by seat k % 60 on document k % 30
        strokes = [[[60 + 4 * j + s, 100 + 30 * s + rnd.random() * 8] for j in range(24)] for s in range(10)]
        per_seat.setdefault(k % 60, []).append(
            {"page": 1 + k % 50, "kind": "pen", "strokes": strokes, "color": "#d00000", "width": 2}
        )
    jobs = [
        {"pdf": str(docs[seat % 30]), "items": items, "author": f"代表{seat:03d} (A{seat + 1:03d})"}
        for seat, items in sorted(per_seat.items())
    ][:copies]
    n_ann = sum(len(j["items"]) for j in jobs)
    n_strokes = sum(len(a["strokes"]) for j in jobs for a in j["items"])
    print(f"{len(jobs)} copies of 50-page documents, {n_ann} annotations, {n_strokes} strokes")
    print("load before:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    rows = []
    t0 = time.perf_counter()
    size = sum(len(reference_export(Path(j["pdf"]), j["items"], j["author"])) for j in jobs)
    rows.append(
        ("previous export (PyMuPDF annotation API, garbage=3 rewrite)", time.perf_counter() - t0, size)
    )
    for label, processes in (
        ("write_annotated, this process only", 1),
        ("make_copies, + 1 helper process", 2),
    ):
        out = work / f"out-{processes}"
        batch = [dict(j, target=str(out / f"{i:03d}.pdf")) for i, j in enumerate(jobs)]
        t0 = time.perf_counter()
        results = make_copies(batch, out / "work", processes=processes)
        dt = time.perf_counter() - t0
        assert all("size" in r for r in results), results
        rows.append((label, dt, sum(r["size"] for r in results)))
    print("load after:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    base = rows[0][1]
    for label, dt, size in rows:
        print(f"  {label:62s} {dt:7.2f} s  x{base / dt:5.1f}  {size / 1e6:6.1f} MB")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pages", type=int, nargs="+", default=[5, 50, 300])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--archive", action="store_true", help="the archive benchmark meeting's 60 copies")
    ap.add_argument("--copies", type=int, default=60)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-export-"))
    if args.archive:
        try:
            archive_mode(args.copies, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return 0
    try:
        for n in args.pages:
            pdf = corpus.make_text_pdf(work / f"{n}.pdf", n, drawings=True)
            ann = annotations(n)
            times, size = [], 0
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                size = len(render.export_annotated(pdf, ann, "代表 Delegate (S01)"))
                times.append(time.perf_counter() - t0)
            print(
                f"{n:4d} pages, {len(ann):3d} annotations: median {statistics.median(times) * 1000:7.1f} ms "
                f"(min {min(times) * 1000:.1f}), {size / 1024:.0f} KiB"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
