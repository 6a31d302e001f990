"""Benchmark: how long `render.export_annotated` takes (is it fit for the event loop?). Not collected by pytest.

For documents of several lengths, one seat's annotated copy with a pen stroke of 200 points
on every third page, a highlight and a text note on every tenth: the time is what the
event loop would stall if the export ran inline.

    .venv/bin/python tests/bench/bench_annotation_export.py --pages 5 50 300
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pages", type=int, nargs="+", default=[5, 50, 300])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-export-"))
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
