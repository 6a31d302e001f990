"""Benchmark: page images for a long uploaded document (not collected by pytest).

Makes a PDF with text and vector drawings on every page, then times, for the same pages
and the same JPEG size and quality:

  (a)  bare PyMuPDF + Pillow: pixmap -> Image.frombuffer -> JPEG file, page size only,
       one process: the physical limit of this stack;
  (a') the two ways of adding a thumbnail to (a): downscaling the large image with
       Pillow, or rendering a second small pixmap (render.py uses the faster);
  (b)  render.render_document: page + thumbnail, sha256, atomic writes, progress;
  (c)  render.render_document_parallel with --processes processes (spawn).

Run from the repository root:

    .venv/bin/python tests/bench/bench_ingest.py --pages 300 --repeat 3
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pymupdf  # noqa: E402
from PIL import Image  # noqa: E402

from meeting_server.documents import render  # noqa: E402
from tests.documents import corpus  # noqa: E402


def _pixmap(page: pymupdf.Page, long_side: int) -> pymupdf.Pixmap:
    s = long_side / max(page.rect.width, page.rect.height)
    return page.get_pixmap(matrix=pymupdf.Matrix(s, s), alpha=False)


def _image(pix: pymupdf.Pixmap) -> Image.Image:
    return Image.frombuffer("RGB", (pix.width, pix.height), pix.samples_mv, "raw", "RGB", pix.stride, 1)


def _save(im: Image.Image, path: Path, quality: int) -> None:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    path.write_bytes(buf.getvalue())


def bare(pdf: Path, out: Path, size: int, thumb: int, quality: int, mark: Callable[[], None]) -> None:
    with pymupdf.open(pdf) as doc:
        for page in doc:
            pix = _pixmap(page, size)
            _save(_image(pix), out / f"p{page.number}.jpg", quality)
            mark()


def bare_thumb_downscaled(
    pdf: Path, out: Path, size: int, thumb: int, quality: int, mark: Callable[[], None]
) -> None:
    with pymupdf.open(pdf) as doc:
        for page in doc:
            pix = _pixmap(page, size)
            im = _image(pix)
            _save(im, out / f"p{page.number}.jpg", quality)
            _save(render._downscale(im, thumb), out / f"t{page.number}.jpg", quality)
            mark()


def bare_thumb_second_pixmap(
    pdf: Path, out: Path, size: int, thumb: int, quality: int, mark: Callable[[], None]
) -> None:
    with pymupdf.open(pdf) as doc:
        for page in doc:
            pix = _pixmap(page, size)
            _save(_image(pix), out / f"p{page.number}.jpg", quality)
            small = _pixmap(page, thumb)
            _save(_image(small), out / f"t{page.number}.jpg", quality)
            mark()


def ours(pdf: Path, out: Path, size: int, thumb: int, quality: int, mark: Callable[[], None]) -> None:
    render.render_document(pdf, out, {"page": size, "thumb": thumb}, quality, lambda d, t: mark())


def make_parallel(processes: int) -> Callable[..., None]:
    def parallel(pdf: Path, out: Path, size: int, thumb: int, quality: int, mark: Callable[[], None]) -> None:
        render.render_document_parallel(
            pdf, out, {"page": size, "thumb": thumb}, quality, lambda d, t: mark(), processes=processes
        )

    return parallel


def _cpu() -> float:
    """CPU seconds of this process and its reaped children (the parallel variant's helpers)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def run_once(
    fn: Callable[..., None], pdf: Path, work: Path, args: argparse.Namespace
) -> tuple[float, float, float]:
    """(wall seconds for all pages, seconds until the first page was written, CPU seconds)."""
    out = work / "out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    first: list[float] = []
    c0 = _cpu()
    t0 = time.perf_counter()

    def mark() -> None:
        if not first:
            first.append(time.perf_counter() - t0)

    fn(pdf, out, args.size, args.thumb, args.quality, mark)
    return time.perf_counter() - t0, first[0], _cpu() - c0


def interleaved_cpu(pdf: Path, work: Path, args: argparse.Namespace) -> dict[str, float]:
    """CPU ms per page of (a), (a') and (b), measured page by page in turn.

    Each page goes through every variant before the next page, in an order that rotates
    from page to page (whoever touches a page first pays for loading it), so a busy moment
    on a shared machine weighs on all of them alike; thread CPU time ignores waiting for a
    core.
    """
    out = work / "cpu"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    sizes = {"page": args.size, "thumb": args.thumb}
    q = args.quality

    def a(page: pymupdf.Page) -> None:
        _save(_image(_pixmap(page, args.size)), out / f"a{page.number}.jpg", q)

    def downscaled(page: pymupdf.Page) -> None:
        im = _image(_pixmap(page, args.size))
        _save(im, out / f"d{page.number}.jpg", q)
        _save(render._downscale(im, args.thumb), out / f"dt{page.number}.jpg", q)

    def second(page: pymupdf.Page) -> None:
        _save(_image(_pixmap(page, args.size)), out / f"s{page.number}.jpg", q)
        _save(_image(_pixmap(page, args.thumb)), out / f"st{page.number}.jpg", q)

    def b(page: pymupdf.Page) -> None:
        render._render_pages(page.parent, [page.number + 1], out, sizes, q)

    variants = [("(a)", a), ("(a') downscaled", downscaled), ("(a') second pixmap", second), ("(b)", b)]
    spent = dict.fromkeys((k for k, _ in variants), 0.0)
    with pymupdf.open(pdf) as doc:
        n = doc.page_count
        for r in range(args.repeat):
            for page in doc:
                k = (page.number + r) % len(variants)
                for name, fn in variants[k:] + variants[:k]:
                    t = time.thread_time()
                    fn(page)
                    spent[name] += time.thread_time() - t
    return {k: 1000 * v / (n * args.repeat) for k, v in spent.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pages", type=int, default=300)
    ap.add_argument("--size", type=int, default=1600, help="long side of the page image, px")
    ap.add_argument("--thumb", type=int, default=320, help="long side of the thumbnail, px")
    ap.add_argument("--quality", type=int, default=render.DEFAULT_QUALITY)
    ap.add_argument("--processes", type=int, default=2, help="for the parallel variant; 0 skips it")
    ap.add_argument("--repeat", type=int, default=3, help="rounds over all variants; the best is shown")
    ap.add_argument(
        "--kind",
        choices=["text", "scan", "dense"],
        default="text",
        help="generated content: text and drawings (default), scanned pages (a full-page JPEG "
        "each), or dense vector plots (20,000 strokes a page: use few pages)",
    )
    ap.add_argument("--pdf", type=Path, help="benchmark this PDF instead of a generated one")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that `finally` removes the work dir

    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    try:
        pdf = args.pdf
        if pdf is None:
            pdf = work / "doc.pdf"
            t = time.perf_counter()
            make = {
                "text": lambda: corpus.make_text_pdf(pdf, args.pages, drawings=True),
                "scan": lambda: corpus.make_scanned_pdf(pdf, args.pages),
                "dense": lambda: corpus.make_dense_vector_pdf(pdf, args.pages),
            }[args.kind]
            make()
            print(f"made a {args.pages}-page '{args.kind}' PDF in {time.perf_counter() - t:.1f} s")
        n = render.inspect_pdf(pdf, 100_000)
        print(
            f"pages={n} size={args.size}px thumb={args.thumb}px quality={args.quality} "
            f"cpus={os.cpu_count()} pymupdf={pymupdf.VersionBind} pillow={Image.__version__} "
            f"best of {args.repeat}"
        )
        variants: list[tuple[str, Callable[..., None]]] = [
            ("(a)  bare PyMuPDF+Pillow, page only", bare),
            ("(a') bare + thumb downscaled (Pillow)", bare_thumb_downscaled),
            ("(a') bare + thumb second pixmap", bare_thumb_second_pixmap),
            ("(b)  render_document, page + thumb", ours),
        ]
        if args.processes > 1:
            variants.append(
                (f"(c)  render_document_parallel, {args.processes} processes", make_parallel(args.processes))
            )
        results = {}
        print(f"load average before: {os.getloadavg()[0]:.2f}")
        # rounds over all variants, so that a busy moment on the machine hits them alike
        runs: dict[str, list[tuple[float, float, float]]] = {label: [] for label, _ in variants}
        for _ in range(args.repeat):
            for label, fn in variants:
                runs[label].append(run_once(fn, pdf, work, args))
        results: dict[str, tuple[float, float]] = {}
        for label, _ in variants:
            total, first, cpu = min(runs[label])  # the best wall time
            results[label[:4].strip()] = (total, cpu)
            print(
                f"{label:50s} {total:6.2f} s {n / total:6.1f} pages/s {1000 * total / n:5.1f} ms/page"
                f"  cpu {1000 * cpu / n:5.1f} ms/page  first page {1000 * first:4.0f} ms"
            )
        (a, a_cpu), (b, b_cpu) = results["(a)"], results["(b)"]
        print(f"ratio (b)/(a) = {b / a:.2f} wall, {b_cpu / a_cpu:.2f} cpu  (target <= 1.3)")
        if "(c)" in results:
            c, c_cpu = results["(c)"]
            print(
                f"ratio (c)/(a) = {c / a:.2f} wall, {c_cpu / a_cpu:.2f} cpu;  speed-up (b)/(c) = {b / c:.2f}"
            )
        cpu = interleaved_cpu(pdf, work, args)
        print("CPU per page, variants interleaved page by page:")
        for k, v in cpu.items():
            print(f"  {k:22s} {v:5.1f} ms")
        print(f"  ratio (b)/(a) = {cpu['(b)'] / cpu['(a)']:.2f}")
        print(f"load average after: {os.getloadavg()[0]:.2f}")
        sizes = [p.stat().st_size for p in (work / "out").glob("page-*.jpg")]
        if sizes:
            print(
                f"page JPEG size: median {statistics.median(sizes) / 1024:.0f} KiB, total {sum(sizes) / 1048576:.1f} MiB"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
