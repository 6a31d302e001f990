"""Annotated copies as the archive makes them: ink written directly, an incremental update of the
original, and the copies shared between this process and a helper process."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import pymupdf
import pytest

from meeting_server.archive.copies import _helper_main, make_copies
from meeting_server.documents import render


def _pdf(path: Path, pages: int = 3, *, rotate: int = 0, crop: tuple | None = None) -> Path:
    doc = pymupdf.open()
    for i in range(pages):
        page = doc.new_page(width=595, height=842)
        page.insert_text((72, 72), f"page {i + 1}")
        if crop:
            page.set_cropbox(pymupdf.Rect(*crop))
        if rotate:
            page.set_rotation(rotate)
    doc.save(path, garbage=3, deflate=True)
    doc.close()
    return path


def _reference_vertices(src: Path, page_no: int, strokes: list) -> list:
    """Where PyMuPDF's own annotation API puts the same ink (the old, slow export path)."""
    with pymupdf.open(src) as doc:
        page = doc[page_no - 1]
        derot = page.derotation_matrix
        annot = page.add_ink_annot([[tuple(pymupdf.Point(p) * derot) for p in s] for s in strokes])
        return [list(s) for s in annot.vertices]


@pytest.mark.parametrize(
    "rotate, crop",
    [(0, None), (90, None), (270, None), (0, (30, 40, 500, 700)), (90, (30, 40, 500, 700))],
    ids=["plain", "rot90", "rot270", "cropbox", "rot90-cropbox"],
)
def test_ink_lands_where_pymupdfs_api_puts_it(tmp_path, rotate, crop):
    src = _pdf(tmp_path / "src.pdf", rotate=rotate, crop=crop)
    strokes = [[[60 + 7 * j, 100 + 3 * j] for j in range(12)], [[200, 300], [260, 340], [300, 310]]]
    out = tmp_path / "copy.pdf"
    render.write_annotated(
        src, [{"page": 2, "kind": "pen", "strokes": strokes, "width": 3}], "王伟 (A01)", out
    )
    expected = _reference_vertices(src, 2, strokes)
    with pymupdf.open(out) as doc:
        page = doc[1]
        (annot,) = page.annots()
        assert annot.type[1] == "Ink" and annot.info["title"] == "王伟 (A01)"
        assert annot.border["width"] == 3
        got = annot.vertices
        assert len(got) == len(expected)
        for gs, es in zip(got, expected, strict=True):
            assert len(gs) == len(es)
            for (x, y), (ex, ey) in zip(gs, es, strict=True):
                assert abs(x - ex) < 0.02 and abs(y - ey) < 0.02
        assert not list(doc[0].annots()) and not list(doc[2].annots())
        # drawn where the seat drew it on the displayed page (the page image's pixels)
        pix = page.get_pixmap(dpi=72)
        r, g, b = pix.pixel(95, 115)[:3]
        assert r > 150 and g < 100 and b < 100, (r, g, b)


def test_a_copy_is_the_original_plus_an_update_and_draws_its_ink(tmp_path):
    src = _pdf(tmp_path / "src.pdf", pages=5)
    out = tmp_path / "copy.pdf"
    line = [[100 + 4 * j, 400] for j in range(60)]
    items = [
        {"page": 3, "kind": "pen", "points": line, "color": "#0000ff", "width": 4},
        {"page": 3, "kind": "highlighter", "points": [[100, 200], [400, 200]], "color": "#ffff00"},
        {"page": 3, "kind": "highlight", "rect": [100, 500, 300, 520]},
    ]
    size = render.write_annotated(src, items, "Anna", out)
    original, copy = src.read_bytes(), out.read_bytes()
    assert size == len(copy) and copy.startswith(original) and len(copy) > len(original)
    with pymupdf.open(out) as doc:
        page = doc[2]
        kinds = sorted(a.type[1] for a in page.annots())
        assert kinds == ["Highlight", "Ink", "Ink"]
        marker = next(a for a in page.annots() if a.type[1] == "Ink" and 0 < a.opacity < 1)
        assert marker.opacity == pytest.approx(0.35, abs=0.01) and marker.blendmode == "Multiply"
        # the appearance stream really draws the blue line: pixels on it are blue, beside it white
        pix = page.get_pixmap(dpi=72)
        r, g, b = pix.pixel(200, 400)[:3]
        assert b > 150 and r < 100 and g < 100, (r, g, b)
        assert pix.pixel(200, 450)[:3] == (255, 255, 255)
    # a page that already has annotations keeps them
    again = tmp_path / "again.pdf"
    render.write_annotated(out, [{"page": 3, "kind": "pen", "points": line}], "Bob", again)
    with pymupdf.open(again) as doc:
        assert len(list(doc[2].annots())) == 4


def _jobs(tmp_path: Path, n: int) -> list[dict]:
    src = _pdf(tmp_path / "doc.pdf", pages=4)
    return [
        {
            "pdf": str(src),
            "items": [{"page": 1 + k % 4, "kind": "pen", "points": [[50 + k, 60], [90, 100 + k]]}],
            "author": f"seat {k}",
            "target": str(tmp_path / "out" / f"{k:03d}.pdf"),
        }
        for k in range(n)
    ]


def _check(job: dict, k: int) -> None:
    with pymupdf.open(job["target"]) as doc:
        page = doc[k % 4]
        (annot,) = page.annots()
        assert annot.info["title"] == f"seat {k}"


@pytest.mark.parametrize("processes", [1, 2])
def test_make_copies_makes_each_copy_once(tmp_path, processes):
    jobs = _jobs(tmp_path, 8)
    jobs.append(
        {
            **jobs[0],
            "items": [{"page": 9, "kind": "pen", "points": [[1, 1]]}],
            "target": str(tmp_path / "bad.pdf"),
        }
    )
    seen = []
    results = make_copies(jobs, tmp_path / "work", lambda d, t: seen.append((d, t)), processes=processes)
    assert [r["index"] for r in results] == list(range(9))
    for k, (job, res) in enumerate(zip(jobs[:8], results, strict=False)):
        assert res["size"] == Path(job["target"]).stat().st_size
        _check(job, k)
    assert "page 9" in results[8]["error"] and not Path(tmp_path / "bad.pdf").exists()
    assert seen[-1] == (9, 9)
    claims = sorted((tmp_path / "work").glob("claim-*"))
    assert len(claims) == 9  # every copy claimed exactly once (O_EXCL)


def test_copies_a_dead_helper_had_claimed_are_made_here(tmp_path):
    jobs = _jobs(tmp_path, 3)
    work = tmp_path / "work"
    work.mkdir()
    (work / "claim-000002").write_text("helper")  # claimed, never reported
    results = make_copies(jobs, work, processes=1)
    assert all("size" in r for r in results)
    _check(jobs[2], 2)


def test_the_helper_process_takes_copies_from_the_back(tmp_path):
    jobs = [dict(j, index=i) for i, j in enumerate(_jobs(tmp_path, 4))]
    work = tmp_path / "work"
    work.mkdir()
    (work / "claim-000000").write_text("main")
    spec = work / "jobs.pickle"
    spec.write_bytes(pickle.dumps({"folder": str(work), "jobs": jobs}))
    out = work / "results.jsonl"
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, "-m", "meeting_server.archive.copies", str(spec), str(out)],
        cwd=root,
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    done = [json.loads(line)["index"] for line in out.read_text().splitlines()]
    assert done == [3, 2, 1]
    for i in done:
        _check(jobs[i], i)
    assert _helper_main(str(spec), str(out)) == 0  # nothing left to take: no new lines
    assert len(out.read_text().splitlines()) == 3
