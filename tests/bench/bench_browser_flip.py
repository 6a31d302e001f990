"""Page-flip time in the browser: console click -> the tablet's new page image painted.

Starts a real `meeting-server serve` (with its worker) on a free loopback port and a
temporary data dir, opens a presenter console and N seat tablets in Debian's chromium
(Playwright, headless), waits until every tablet has cached the whole document
(service worker), then flips pages from the console and measures, per flip and tablet,
the time from the console's click handler to the tablet's paint of the new image
(two animation frames after the decoded image is in the page). Both ends are stamped
with `performance.timeOrigin + performance.now()` in the browser (one machine, one clock).

    .venv/bin/python tests/bench/bench_browser_flip.py [--flips 30] [--tablets 3] [--pages 40]

Two runs: sequential flips (next page; neighbours are decoded ahead) and jumps to
random pages (cached, but not decoded ahead). Each is split into "wire" (click ->
the tablet received `page`: Socket.IO, the server's commit and broadcast) and "paint"
(`page` received -> painted: the tablet's own work). Prints p50/p95/max in
milliseconds and a JSON line. Needs /usr/bin/chromium; downloads nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.e2e.conftest import CHROMIUM, LAUNCH_ARGS, PASSWORD, build_room, create_schema  # noqa: E402
from tests.serverproc import ServerProcess  # noqa: E402


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    k = (len(s) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def summary(name: str, values: list[float]) -> dict:
    out = {
        "run": name,
        "n": len(values),
        "p50_ms": round(pct(values, 0.5), 1),
        "p95_ms": round(pct(values, 0.95), 1),
        "max_ms": round(max(values), 1),
        "mean_ms": round(statistics.fmean(values), 1),
    }
    print(f"{name:>17}: n={out['n']}  p50 {out['p50_ms']} ms  p95 {out['p95_ms']} ms  max {out['max_ms']} ms")
    return out


def flip(console, tablets, doc_id: int, n: int, how: str) -> list[tuple[float, float, float, float]]:
    """One flip; per tablet, in ms: click -> `page` received, click -> painted, `page` received ->
    image swapped in, `page` received -> image decoded (the viewer's marks; NaN if it has none)."""
    if how == "next":
        console.get_by_test_id("c-next").click()
    else:
        console.get_by_test_id("c-thumb").nth(n - 1).click()
    clicked = console.wait_for_function(
        "(n) => window.__lastPresent && window.__lastPresent.page === n && window.__lastPresent.at", arg=n
    ).json_value()
    out = []
    for t in tablets:
        painted = t.wait_for_function(
            "([d, n]) => { const p = window.__lastPaint; return p && p.document_id === d && p.page === n && p.ok && p.at; }",
            arg=[doc_id, n],
            timeout=10_000,
        ).json_value()
        received, swapped, decoded = t.evaluate(
            "() => [window.__lastPageEvent.at, window.__lastPaint.swapped, window.__lastPaint.decoded ?? null]"
        )
        dec = decoded - received if decoded is not None else float("nan")
        out.append((received - clicked, painted - clicked, swapped - received, dec))
    return out


def report(name: str, rows: list[tuple[float, float, float, float]]) -> list[dict]:
    out = [
        summary(f"{name} total", [r[1] for r in rows]),
        summary(f"{name} wire", [r[0] for r in rows]),
        summary(f"{name} paint", [r[1] - r[0] for r in rows]),
        summary(f"{name} swap", [r[2] for r in rows]),
    ]
    decode = [r[3] for r in rows if r[3] == r[3]]
    if decode:
        out.append(summary(f"{name} decode", decode))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--flips", type=int, default=30)
    ap.add_argument("--tablets", type=int, default=3)
    ap.add_argument("--pages", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=3)
    args = ap.parse_args()
    if not Path(CHROMIUM).exists():
        print(f"{CHROMIUM} is missing (apt-get install chromium)", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="bench-flip-") as tmp:
        srv = ServerProcess(Path(tmp), env={"MEETING_SECRET_KEY": "bench-secret-key-0123456789abcdef"})
        create_schema(Path(tmp))
        srv.cli("create-user", "admin", "--password", PASSWORD)
        try:
            srv.start()
            names = tuple(f"委员{i + 1}" for i in range(args.tablets))
            room = build_room(srv, pages=args.pages, names=names)
            doc_id = room.doc["id"]
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
                try:
                    tablets = []
                    for seat in room.seats:
                        ctx = browser.new_context(viewport={"width": 1280, "height": 800})
                        t = ctx.new_page()
                        t.goto(seat["join_url"])
                        t.get_by_test_id("checkin-later").click()
                        tablets.append(t)
                    started = time.monotonic()
                    for t in tablets:
                        t.locator("[data-testid=cache-progress][data-finished=true]").wait_for(
                            timeout=120_000
                        )
                    print(
                        f"{args.tablets} tablets cached {args.pages} pages each in {time.monotonic() - started:.1f} s"
                    )
                    cctx = browser.new_context(viewport={"width": 1366, "height": 800})
                    cctx.add_init_script(
                        f"localStorage.setItem('meeting.org.token', {json.dumps(room.token)})"
                    )
                    console = cctx.new_page()
                    console.goto(room.console_url())
                    console.get_by_test_id("c-doc").last.click()
                    for t in tablets:
                        t.locator(f".viewer[data-shown='{doc_id}:1']").wait_for()
                    results = []
                    seq: list[tuple[float, float, float, float]] = []
                    page = 1
                    for i in range(args.warmup + args.flips):
                        page += 1
                        ms = flip(console, tablets, doc_id, page, "next")
                        if i >= args.warmup:
                            seq.extend(ms)
                    results += report("sequential", seq)
                    rnd: list[tuple[float, float, float, float]] = []
                    rng = random.Random(7)
                    for _ in range(args.flips):
                        n = rng.choice([x for x in range(1, args.pages + 1) if x != page])
                        page = n
                        rnd.extend(flip(console, tablets, doc_id, n, "jump"))
                    results += report("random", rnd)
                    print(
                        json.dumps(
                            {
                                "load_avg": os.getloadavg(),
                                "repo": str(REPO),
                                "tablets": args.tablets,
                                "pages": args.pages,
                                "flips": args.flips,
                                "results": results,
                            }
                        )
                    )
                finally:
                    browser.close()
        finally:
            srv.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
