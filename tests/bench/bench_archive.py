"""Benchmark: minutes, signature, archive and verify for a large meeting.

    .venv/bin/python tests/bench/bench_archive.py [--attendees 100] [--agenda 20]
        [--documents 30] [--pages 1500] [--polls 10] [--strokes 20000]
        [--audit 10000] [--image-kb 0] [--keep DIR]

Synthesizes the meeting first (not timed in the total), then times each
step the server runs after a meeting: load/create keys, build the minutes
PDF, sign it (PAdES), build the archive zip, verify it. Not collected by
pytest; prints figures for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import pymupdf  # noqa: E402

from meeting_server.archive.bundle import build_archive  # noqa: E402
from meeting_server.archive.keys import load_or_create_keys, make_seal_png, sign_pdf  # noqa: E402
from meeting_server.archive.verify import verify_archive  # noqa: E402
from meeting_server.core.chain import GENESIS, entry_hash  # noqa: E402
from meeting_server.minutes.pdf import (  # noqa: E402
    AgendaItem,
    Approval,
    Attendee,
    DocumentRef,
    MinutesData,
    Poll,
    build_minutes_pdf,
)

SURNAMES = (
    "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎"
)
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国红梅志文斌宇浩凯欣怡"
T0 = datetime(2025, 3, 1, 1, 30, tzinfo=UTC)
ORG = "某某市人民代表大会常务委员会"


def signature(rnd: random.Random) -> list[list[list[float]]]:
    strokes, x = [], 0.05
    for _ in range(rnd.randint(2, 4)):
        w, loops = rnd.uniform(0.14, 0.26), rnd.randint(2, 4)
        pts = []
        for k in range(120):  # tablets sample densely
            t = k / 119
            a = 2 * math.pi * loops * t
            pts.append(
                [
                    x + w * t + 0.035 * math.cos(a),
                    0.55 - 0.28 * math.sin(a) * (0.6 + 0.4 * math.sin(math.pi * t)),
                ]
            )
        strokes.append(pts)
        x += w + 0.04
    return strokes


def make_documents(folder: Path, n_docs: int, n_pages: int, image_kb: int) -> list[tuple[str, Path, int]]:
    pool = []
    if image_kb:
        from PIL import Image

        side = int(math.sqrt(image_kb * 1024 / 3))
        for _ in range(8):
            buf = io.BytesIO()
            Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(
                buf, "PNG", compress_level=1
            )
            pool.append(buf.getvalue())
    font = pymupdf.Font("cjk")
    out = []
    per = [n_pages // n_docs + (1 if i < n_pages % n_docs else 0) for i in range(n_docs)]
    for d, pages in enumerate(per):
        doc = pymupdf.open()
        for p in range(pages):
            page = doc.new_page()
            tw = pymupdf.TextWriter(page.rect)
            tw.append((72, 90), f"会议材料 {d + 1} — 第 {p + 1} 页", font=font, fontsize=18)
            for line in range(30):
                tw.append(
                    (72, 130 + line * 20),
                    f"第{line + 1}行：关于推进重点工作的说明 Item {d}.{p}.{line}",
                    font=font,
                    fontsize=10,
                )
            tw.write_text(page)
            if pool:
                page.insert_image(pymupdf.Rect(300, 600, 520, 800), stream=pool[(d + p) % len(pool)])
        doc.subset_fonts()
        path = folder / f"材料{d + 1:02d}.pdf"
        doc.save(path, garbage=3, deflate=True)
        out.append((f"materials/材料{d + 1:02d}.pdf", path, pages))
    return out


def synthesize(args, folder: Path) -> tuple[MinutesData, dict, list[dict], dict]:
    rnd = random.Random(42)
    attendees = []
    for i in range(args.attendees):
        name = rnd.choice(SURNAMES) + rnd.choice(GIVEN) + (rnd.choice(GIVEN) if i % 3 else "")
        status = rnd.choices(["present", "late", "absent", "left-early"], [85, 6, 6, 3])[0]
        attendees.append(
            Attendee(
                name=f"{name}{i:03d}",
                seat=f"{chr(65 + i // 30)}{i % 30 + 1:02d}",
                role="chair" if i == 0 else "secretary" if i == 1 else "attendee",
                status=status,
                checkin_at=None
                if status == "absent"
                else (T0 + timedelta(seconds=rnd.randint(-900, 600))).isoformat(),
                checkout_at=(T0 + timedelta(minutes=70)).isoformat() if status == "left-early" else None,
                proxy_reason="因公出差" if status == "absent" else None,
                signature=[] if status == "absent" else signature(rnd),
            )
        )
    present = [a for a in attendees if a.status != "absent"]
    agenda = [
        AgendaItem(
            title=f"第{k + 1}项：审议关于重点工作推进情况的报告",
            presenter=attendees[k % len(attendees)].name,
            duration_minutes=10 + k % 4 * 5,
            notes="## 要点\n\n- 进展总体顺利\n- 存在的问题：**资金拨付偏慢**\n\n与会人员提出意见建议 "
            + str(k)
            + " 条。\n1. 加快进度；\n2. 加强监督。",
            decisions=["原则同意。", "会后修改完善。"],
        )
        for k in range(args.agenda)
    ]
    polls = []
    for k in range(args.polls):
        secret = k % 2 == 1
        cast = len(present)
        yes = int(cast * 0.8)
        polls.append(
            Poll(
                title=f"表决事项 {k + 1}",
                kind="yes-no",
                secret=secret,
                rule="赞成票超过应投票数的半数通过",
                eligible=len(attendees),
                present=len(present),
                cast=cast,
                options=["赞成", "反对", "弃权"],
                tally=[yes, cast - yes - 2, 2],
                outcome="通过",
                named_votes=[]
                if secret
                else [(a.name, rnd.choice(["赞成", "赞成", "赞成", "反对"])) for a in present],
            )
        )
    docs = make_documents(folder, args.documents, args.pages, args.image_kb)
    minutes = MinutesData(
        title="第十六届常务委员会第二十三次会议纪要",
        location="第一会议室",
        starts_at=T0.isoformat(),
        started_at=T0.isoformat(),
        ended_at=(T0 + timedelta(hours=3)).isoformat(),
        chair=attendees[0].name,
        secretary=attendees[1].name,
        attendees=attendees,
        agenda=agenda,
        polls=polls,
        approvals=[
            Approval(
                who=attendees[0].name, role="主任", at=(T0 + timedelta(days=1)).isoformat(), action="approved"
            )
        ],
        documents=[
            DocumentRef(title=name.split("/")[-1], filename=name, pages=pages) for name, _, pages in docs
        ],
        timezone="Asia/Shanghai",
    )
    strokes = [
        {
            "attendee": rnd.randrange(len(attendees)),
            "document": rnd.randrange(len(docs)),
            "page": rnd.randint(1, 50),
            "color": "#d22",
            "width": 2,
            "points": [[round(rnd.random(), 4), round(rnd.random(), 4)] for _ in range(24)],
        }
        for _ in range(args.strokes)
    ]
    files: dict = {name: path for name, path, _ in docs}
    files["annotations.json"] = json.dumps(strokes, ensure_ascii=False).encode()
    files["attendance.json"] = json.dumps(
        [{"name": a.name, "seat": a.seat, "status": a.status, "checkin_at": a.checkin_at} for a in attendees],
        ensure_ascii=False,
    ).encode()
    files["attendance.csv"] = ("name,seat,status,checkin_at\n" + "".join(
        f"{a.name},{a.seat},{a.status},{a.checkin_at or ''}\n" for a in attendees
    )).encode()  # fmt: skip
    files["votes.csv"] = ("poll,option,votes\n" + "".join(
        f"{p.title},{o},{v}\n" for p in polls for o, v in zip(p.options, p.tally, strict=True)
    )).encode()  # fmt: skip
    entries, prev = [], GENESIS
    commands = ["present", "checkin", "vote", "annotate", "poll.open", "poll.close", "speaker.add"]
    for seq in range(1, args.audit + 1):
        e = {
            "meeting_id": 23,
            "seq": seq,
            "at": (T0 + timedelta(seconds=seq)).isoformat(),
            "actor": f"attendee:{seq % len(attendees)}",
            "command": commands[seq % len(commands)],
            "data": {"page": seq % 50 + 1, "document_id": seq % len(docs) + 1},
            "prev": prev,
        }
        e["hash"] = prev = entry_hash(e)
        entries.append(e)
    meeting = {"id": 23, "title": minutes.title, "ended_at": minutes.ended_at}
    return minutes, files, entries, meeting


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--attendees", type=int, default=100)
    ap.add_argument("--agenda", type=int, default=20)
    ap.add_argument("--documents", type=int, default=30)
    ap.add_argument("--pages", type=int, default=1500, help="pages across all documents")
    ap.add_argument("--polls", type=int, default=10)
    ap.add_argument("--strokes", type=int, default=20000, help="annotation strokes in annotations.json")
    ap.add_argument("--audit", type=int, default=10000, help="audit log entries")
    ap.add_argument("--image-kb", type=int, default=0, help="add a random image of about N KB to every page")
    ap.add_argument("--keep", type=Path, default=None, help="write the archive into this folder and keep it")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        t = time.perf_counter()
        minutes, files, entries, meeting = synthesize(args, work)
        synth = time.perf_counter() - t
        material_bytes = sum(p.stat().st_size for p in files.values() if isinstance(p, Path))
        print(
            f"synthesized in {synth:.2f} s: {args.attendees} attendees, {args.agenda} agenda items, "
            f"{args.documents} documents / {args.pages} pages ({material_bytes / 1e6:.1f} MB), {args.polls} polls, "
            f"{args.strokes} strokes ({len(files['annotations.json']) / 1e6:.1f} MB JSON), {args.audit} audit entries"
        )
        steps: list[tuple[str, float, str]] = []

        def step(name, fn):
            t0 = time.perf_counter()
            result = fn()
            steps.append((name, time.perf_counter() - t0, ""))
            return result

        keys = step(
            "keys (first run: Ed25519 + RSA-2048 cert)", lambda: load_or_create_keys(work / "data", ORG)
        )
        seal = step("seal image", lambda: make_seal_png(ORG))
        pdf = step("minutes PDF (zh)", lambda: build_minutes_pdf(minutes, "zh", ORG, seal))
        with pymupdf.open(stream=pdf, filetype="pdf") as doc:
            pages = doc.page_count
        signed = step(
            "sign minutes (PAdES, pyHanko)", lambda: sign_pdf(pdf, keys, seal, "审批通过", "第一会议室")
        )
        files["minutes.pdf"] = signed
        out = (args.keep or work) / "meeting-23.zip"
        out.parent.mkdir(parents=True, exist_ok=True)
        step(
            "archive zip (hash + deflate + sign manifest)",
            lambda: build_archive(out, files, entries, keys, meeting),
        )
        report = step("verify archive", lambda: verify_archive(out))
        if not report.ok:
            print("verify FAILED:", report.failure)
            return 1
        total = sum(s[1] for s in steps)
        print(
            f"minutes: {pages} pages, {len(signed) / 1e3:.0f} KB signed; archive {out.stat().st_size / 1e6:.1f} MB"
        )
        print()
        print("| step | seconds |")
        print("| --- | ---: |")
        for name, secs, _ in steps:
            print(f"| {name} | {secs:.2f} |")
        print(f"| **total** | **{total:.2f}** |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
