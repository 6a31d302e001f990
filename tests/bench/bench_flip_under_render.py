"""Page flips stay fast while a 300-page PDF renders: flip latency with and without a render, one run.

    .venv/bin/python tests/bench/bench_flip_under_render.py [--tablets 50] [--flips 100] [--interval 0.1]
                                                            [--pages 300] [--json OUT]

Starts `meeting-server serve` (with the worker process it starts itself) on a free loopback port and a
fresh data dir, sets up a meeting with N tablets and a short document to flip, and connects the tablets
and the presenter with the light asyncio client (`clients/eio.py`) in this process. Then:

1. idle: `--flips` flips, one every `--interval` s, nothing else happening;
2. render: flips the same way from half a second before the upload of a `--pages`-page PDF (text and
   vector drawings on every page) until the worker has rendered it (`ready`, polled over HTTP), so the
   upload (the server checks the file) and the whole render are covered.

Latency of a flip at a tablet = kernel receive time of its `page` frame - the time the presenter sent
`present` (one clock, one machine). Printed per phase: p50/p99/max over every (flip, tablet), p50/p99 of
the slowest tablet per flip, the presenter's ack time, missed or out-of-order pages. Every process is
stopped by pid in a `finally`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from clients.eio import SioClient, calibrate_clock  # noqa: E402
from tests.live.server import LiveServer  # noqa: E402


def heavy_pdf(pages: int) -> bytes:
    """A document that costs something to render: full text pages, tables of lines, filled shapes."""
    import pymupdf

    doc = pymupdf.open()
    font = pymupdf.Font("cjk")
    para = "第{n}页 会议材料 Meeting paper, page {n}: 预算执行情况与下一年度计划 budget and plan. " * 3
    for i in range(pages):
        page = doc.new_page(width=595, height=842)
        page.insert_font(fontname="cjk", fontbuffer=font.buffer)
        y = 60
        for line in range(34):
            text = para.format(n=i + 1)[: 60 + line % 20]
            if line % 8:  # mostly Latin text in a base-14 font, a CJK line now and then
                text = text.encode("ascii", "ignore").decode()
            page.insert_text((50, y), text, fontname="cjk" if line % 8 == 0 else "helv", fontsize=10)
            y += 15
        shape = page.new_shape()
        for k in range(30):
            shape.draw_rect(pymupdf.Rect(50 + k * 16, 600, 62 + k * 16, 600 + (k * 7 + i) % 150))
        shape.finish(color=(0, 0, 0.6), fill=(0.7, 0.8, 1.0))
        for k in range(40):
            shape.draw_line((50, 770 + k % 10), (545, 760 + (k * 13 + i) % 60))
        shape.finish(color=(0.8, 0.1, 0.1), width=0.5)
        shape.commit()
    doc.subset_fonts()
    return doc.tobytes(garbage=3, deflate=True)


def descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                kids = [int(x) for x in (task / "children").read_text().split()]
            except (OSError, ValueError):
                kids = []
            out += kids
            todo += kids
    return out


def nice_worker(srv: LiveServer, value: int) -> list[int]:
    """Lower the priority of the worker process `serve` started (and its children); returns their pids."""
    pids = [p for p in descendants(srv.proc.pid)]
    for p in pids:
        os.setpriority(os.PRIO_PROCESS, p, value)
    return pids


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    k = max(0, min(len(values) - 1, round(p / 100 * (len(values) - 1))))
    return values[k]


class Bench:
    def __init__(self, srv: LiveServer, room, tablets: int):
        self.srv, self.room, self.n = srv, room, tablets
        self.recv: list[dict[int, float]] = []  # per tablet: seq -> receive time
        self.order_errors = 0
        self.clients: list[SioClient] = []
        self.presenter: SioClient | None = None

    def _on_event(self, client: SioClient, name: str, data: Any, t: float) -> None:
        if name != "page":
            return
        seen = self.recv[client.tag]
        if seen and data["seq"] <= max(seen):
            self.order_errors += 1
        seen[data["seq"]] = client.rx_t or t

    async def connect(self) -> None:
        for i, token in enumerate(self.room.tablet_tokens):
            self.recv.append({})
            c = SioClient(
                self._on_event,
                tag=i,
                ignore={
                    "state",
                    "seat.status",
                    "seat.joined",
                    "document",
                    "documents.changed",
                    "attendance",
                    "meeting",
                },
            )
            await c.connect(self.srv.url, auth={"token": token})
            self.clients.append(c)
        self.presenter = SioClient(lambda *a: None)
        await self.presenter.connect(self.srv.url, auth={"token": self.room.presenter_token})

    async def flips(self, count: int, interval: float, keep_going=lambda: True) -> list[dict[str, float]]:
        self.load_before = os.getloadavg()[0]
        out = []
        page = 1
        for _ in range(count):
            if not keep_going():
                break
            page = page % 5 + 1
            ack, t_sent, t_ack = await self.presenter.call_timed(
                "present", {"document_id": self.room.document_id, "page": page}
            )
            assert ack["ok"], ack
            out.append({"seq": ack["seq"], "sent": t_sent, "ack": t_ack - t_sent})
            await asyncio.sleep(interval)
        await asyncio.sleep(1.0)  # stragglers
        return out

    def summarize(
        self, name: str, flips: list[dict[str, float]], extra: dict | None = None
    ) -> dict[str, Any]:
        lat, last, missed = [], [], 0
        for f in flips:
            per = []
            for seen in self.recv:
                t = seen.get(f["seq"])
                if t is None:
                    missed += 1
                else:
                    per.append((t - f["sent"]) * 1000)
            lat += per
            if per:
                last.append(max(per))
        acks = [f["ack"] * 1000 for f in flips]
        return {
            "phase": name,
            "flips": len(flips),
            "tablets": self.n,
            "p50_ms": round(pct(lat, 50), 1),
            "p99_ms": round(pct(lat, 99), 1),
            "max_ms": round(max(lat, default=float("nan")), 1),
            "last_tablet_p50_ms": round(pct(last, 50), 1),
            "last_tablet_p99_ms": round(pct(last, 99), 1),
            "ack_p50_ms": round(statistics.median(acks), 1) if acks else None,
            "missed": missed,
            "out_of_order": self.order_errors,
            "load_avg": round(self.load_before, 1),
            **(extra or {}),
        }

    async def close(self) -> None:
        for c in [*self.clients, self.presenter]:
            if c is not None:
                await c.disconnect()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tablets", type=int, default=50)
    ap.add_argument("--flips", type=int, default=100)
    ap.add_argument("--interval", type=float, default=0.1)
    ap.add_argument("--pages", type=int, default=300)
    ap.add_argument("--json", default=None, help="write the results here too")
    ap.add_argument(
        "--nice-worker", type=int, default=0, help="renice the worker processes (e.g. 10) to compare"
    )
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    pdf = heavy_pdf(args.pages)
    print(f"generated a {args.pages}-page PDF ({len(pdf) // 1024} KiB) in {time.perf_counter() - t0:.1f} s")
    with tempfile.TemporaryDirectory(prefix="bench-flip-") as tmp:
        srv = LiveServer(Path(tmp) / "data", worker=True)
        try:
            srv.prepare().start()
            room = srv.setup_room(tablets=args.tablets, pages=5)
            srv.wait_document(room.document_id, room.org_token)
            if args.nice_worker:
                print(f"worker processes {nice_worker(srv, args.nice_worker)} reniced to {args.nice_worker}")
            results = asyncio.run(run(srv, room, pdf, args))
        finally:
            srv.stop()
    cols = [
        "phase",
        "load_avg",
        "flips",
        "p50_ms",
        "p99_ms",
        "max_ms",
        "last_tablet_p50_ms",
        "last_tablet_p99_ms",
        "ack_p50_ms",
        "missed",
        "out_of_order",
    ]
    print("\n| " + " | ".join(cols) + " |\n|" + " --- |" * len(cols))
    for r in results:
        print("| " + " | ".join(str(r.get(c)) for c in cols) + " |")
    render = results[-1]
    print(
        f"\nrender: {render.get('render_pages')} pages in {render.get('render_s')} s "
        f"({render.get('render_status')}; upload answered in {render.get('upload_s')} s); "
        f"flips measured during upload and render: {render['flips']}"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


async def run(srv: LiveServer, room, pdf: bytes, args) -> list[dict[str, Any]]:
    calibrate_clock()
    bench = Bench(srv, room, args.tablets)
    await bench.connect()
    try:
        idle = await bench.flips(args.flips, args.interval)
        results = [bench.summarize("idle", idle)]
        bench.order_errors = 0

        # Flips start first and run through the upload (the server checks the file) and the render.
        status: dict[str, Any] = {"status": "processing", "pages_done": 0}
        stop = threading.Event()
        t_up = time.perf_counter()
        flipping = asyncio.create_task(
            bench.flips(100_000, args.interval, keep_going=lambda: status.get("status") == "processing")
        )
        await asyncio.sleep(0.5)
        code, doc = await asyncio.to_thread(
            srv.upload, f"/api/v1/meetings/{room.meeting_id}/documents", "big.pdf", pdf, room.org_token
        )
        assert code == 202, doc
        upload_s = time.perf_counter() - t_up - 0.5

        def poll() -> None:
            while not stop.is_set():
                _, d = srv.json("GET", f"/api/v1/documents/{doc['id']}", token=room.org_token)
                status.update(d or {})
                if status.get("status") != "processing":
                    status["done_at"] = time.perf_counter()
                    return
                time.sleep(0.25)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        during = await flipping
        while poller.is_alive():
            await asyncio.sleep(0.25)
        stop.set()
        render_s = round(status.get("done_at", time.perf_counter()) - t_up - 0.5, 1)
        results.append(
            bench.summarize(
                "during render",
                during,
                {
                    "render_pages": status.get("page_count"),
                    "render_s": render_s,
                    "render_status": status.get("status"),
                    "upload_s": round(upload_s, 2),
                },
            )
        )
        return results
    finally:
        await bench.close()


if __name__ == "__main__":
    sys.exit(main())
