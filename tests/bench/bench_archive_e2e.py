"""Benchmark: the archive of a real meeting, end to end through the server's routes.

    .venv/bin/python tests/bench/bench_archive_e2e.py [--attendees 100] [--agenda 20]
        [--documents 30] [--pages 1500] [--polls 10] [--strokes 20000] [--keep DIR]

Holds a whole meeting through the HTTP and Socket.IO routes of one app (file
SQLite in WAL mode, jobs run inline as the worker would run them): attendees,
agenda, uploaded PDFs rendered to pages, check-ins, page flips, polls (half of
them secret) with every present member voting, annotation strokes, minutes for
every item, approval. Setting up is not timed. Then it times what happens after
the meeting: the minutes PDF (cold, then cached), the archive build behind
`GET /meetings/{id}/archive` (worker job: minutes, materials, every seat's
annotated copies, votes, attendance, audit log, zip, Ed25519 manifest), the
cached second GET, and `verify`. Not collected by pytest; prints the figures
for docs/benchmarks.md.

    .venv/bin/python tests/bench/bench_archive_e2e.py --rebuild DIR [--repeat 2]

times the archive job again on a meeting kept by an earlier `--keep DIR` run (the data
is the same meeting; setting it up takes 10-15 minutes on this shared machine): the
cached minutes PDFs are dropped first, so each build renders and signs the minutes
again, then reads the records, copies the materials, makes every seat's annotated
copy, writes and signs the zip, exactly as the worker does (`archive.service.run_build`
in this process), and `verify` checks the result.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

SURNAMES = (
    "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎"
)
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国红梅志文斌宇浩凯欣怡"


def pdf_with_pages(n: int, label: str) -> bytes:
    import pymupdf

    doc = pymupdf.open()
    font = pymupdf.Font("cjk")
    for i in range(n):
        page = doc.new_page(width=595, height=842)
        page.insert_font(fontname="cjk", fontbuffer=font.buffer)
        page.insert_text((72, 90), f"{label} 第{i + 1}页", fontname="cjk", fontsize=20)
        for k in range(18):
            page.insert_text(
                (72, 130 + k * 34),
                f"第{k + 1}条 本页为会议材料示例文字，用于测试归档。Line {k + 1}",
                fontname="cjk",
                fontsize=11,
            )
    doc.subset_fonts()
    return doc.tobytes(garbage=3, deflate=True)


class Timer:
    def __init__(self) -> None:
        self.rows: list[tuple[str, float]] = []

    @contextlib.contextmanager
    def __call__(self, label: str):
        t0 = time.perf_counter()
        yield
        dt = time.perf_counter() - t0
        self.rows.append((label, dt))
        print(f"  {label}: {dt:.2f} s", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--attendees", type=int, default=100)
    ap.add_argument("--agenda", type=int, default=20)
    ap.add_argument("--documents", type=int, default=30)
    ap.add_argument("--pages", type=int, default=1500)
    ap.add_argument("--polls", type=int, default=10)
    ap.add_argument("--strokes", type=int, default=20000)
    ap.add_argument("--keep", default=None, help="keep the data dir and the archive here")
    ap.add_argument("--rebuild", default=None, help="time the archive job again on a kept data dir")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    if args.rebuild:
        return rebuild(Path(args.rebuild), args.repeat)

    import warnings

    warnings.filterwarnings("ignore")
    from meeting_server import create_app
    from meeting_server.archive.verify import verify_archive
    from meeting_server.core import db
    from meeting_server.core.db import Base
    from meeting_server.extensions import socketio
    from tests.conftest import Api, login, make_user, test_settings
    from tests.records_api.conftest import fast_voting

    work = Path(args.keep or tempfile.mkdtemp(prefix="bench-archive-e2e-"))
    work.mkdir(parents=True, exist_ok=True)
    settings = test_settings(work, database_url=f"sqlite:///{work / 'meeting.sqlite'}")
    app = create_app(settings)
    Base.metadata.create_all(db.engine)
    make_user(app, "bench", "organizer")
    org = login(app.test_client(), "bench")
    rnd = random.Random(7)
    setup = Timer()
    print(f"setting up in {work} (not timed in the total)", flush=True)
    with setup("meeting, attendees, agenda"):
        m = org.post(
            "/api/v1/meetings",
            json={"title": "第十四届常务委员会第二十三次会议", "location": "第一会议室", "language": "zh"},
        ).get_json()
        mid = m["id"]
        people = []
        roles = ["chair", "secretary", "presenter"] + ["attendee"] * (args.attendees - 4) + ["observer"]
        for i, role in enumerate(roles[: args.attendees]):
            name = (
                rnd.choice(SURNAMES)
                + "".join(rnd.choice(GIVEN) for _ in range(rnd.randint(1, 2)))
                + f"{i:03d}"
            )
            r = org.post(
                f"/api/v1/meetings/{mid}/attendees",
                json={"name": name, "role": role, "seat": f"A{i + 1:03d}"},
            )
            people.append(r.get_json())
        agenda = [
            org.post(
                f"/api/v1/meetings/{mid}/agenda",
                json={"title": f"第{k + 1}项 审议事项", "duration_minutes": 15},
            ).get_json()["id"]
            for k in range(args.agenda)
        ]
    with setup(f"{args.documents} documents, {args.pages} pages (upload + render)"):
        per = max(1, args.pages // args.documents)
        docs = []
        for k in range(args.documents):
            data = pdf_with_pages(per, f"材料{k + 1}")
            r = org.upload(
                f"/api/v1/meetings/{mid}/documents", data, f"材料{k + 1}.pdf", title=f"会议材料{k + 1}"
            )
            docs.append(r.get_json()["id"])
    tablets = {}
    with setup("tablets join, check in, meeting starts, flips"):
        for p in people:
            c = app.test_client()
            tok = c.post("/api/v1/join", json={"token": p["join_token"]}).get_json()["session_token"]
            tablets[p["id"]] = (p, socketio.test_client(app, auth={"token": tok}), Api(c, tok))
        absent = set(rnd.sample([p["id"] for p in people if p["role"] == "attendee"], 3))
        for aid, (_p, t, _) in tablets.items():
            if aid not in absent:
                t.emit("checkin", {}, callback=True)
        chair = next(t for p, t, _ in tablets.values() if p["role"] == "chair")
        chair.emit("meetings.start", {}, callback=True)
        for d in docs[:5]:
            for page in range(1, 6):
                chair.emit("present", {"document_id": d, "page": page}, callback=True)
        for t in tablets.values():
            t[1].get_received()
    voters = [
        (p, t)
        for aid, (p, t, _) in tablets.items()
        if aid not in absent and p["role"] in ("attendee", "chair", "presenter")
    ]
    with setup(f"{args.polls} polls, {len(voters)} voters each"), fast_voting():
        for k in range(args.polls):
            secret = k % 2 == 1
            body = (
                {"title": f"表决事项{k + 1}", "kind": "motion"}
                if not secret
                else {"title": f"选举事项{k + 1}", "options": ["甲", "乙", "丙"], "secret": True}
            )
            poll = org.post(f"/api/v1/meetings/{mid}/polls", json=body).get_json()
            chair.emit("poll.open", {"poll_id": poll["id"]}, callback=True)
            for _, t in voters:
                t.emit(
                    "vote",
                    {"poll_id": poll["id"], "choices": [rnd.randint(0, 2)], "ballot_id": str(uuid.uuid4())},
                    callback=True,
                )
            chair.emit("poll.close", {"poll_id": poll["id"]}, callback=True)
            for t in tablets.values():
                t[1].get_received()
    per_ann = 10
    n_ann = max(1, args.strokes // per_ann)
    with setup(f"{args.strokes} annotation strokes ({n_ann} annotations)"):
        annotators = [t for p, t, _ in tablets.values() if p["role"] != "observer"][:60]
        for k in range(n_ann):
            t = annotators[k % len(annotators)]
            strokes = [
                [[60 + 4 * j + s, 100 + 30 * s + rnd.random() * 8] for j in range(24)] for s in range(per_ann)
            ]
            t.emit(
                "annotation.save",
                {
                    "document_id": docs[k % len(docs)],
                    "id": f"a{k}",
                    "page": 1 + k % per,
                    "kind": "pen",
                    "strokes": strokes,
                },
                callback=True,
            )
            if k % 500 == 0:
                for x in tablets.values():
                    x[1].get_received()
    with setup("minutes for every item, end, submit"):
        sec = next(t for p, t, _ in tablets.values() if p["role"] == "secretary")
        for k, item in enumerate(agenda):
            sec.emit(
                "minutes.save",
                {
                    "agenda_item_id": item,
                    "base_revision": 0,
                    "notes": f"## 审议情况\n- 第{k + 1}项经讨论**原则通过**\n- 有关部门抓紧落实",
                    "decisions": [f"同意第{k + 1}项", "会后印发"],
                },
                callback=True,
            )
        chair.emit("meetings.end", {}, callback=True)
        sec.emit("minutes.submit", {}, callback=True)

    timed = Timer()
    print("timed:", flush=True)
    with timed("GET minutes (draft, cold: data, render, PAdES sign)"):
        r = org.get(f"/api/v1/meetings/{mid}/minutes")
        assert r.status_code == 200, r.get_data()[:300]
    with timed("GET minutes (cached)"):
        assert org.get(f"/api/v1/meetings/{mid}/minutes").status_code == 200
    with timed("GET archive (draft: job builds records, materials, annotated copies, zip, signs)"):
        r = org.get(f"/api/v1/meetings/{mid}/archive?wait=60")
        assert r.status_code == 200, r.get_data()[:300]
    with timed("minutes.approve (job: final minutes, archive, seal)"):
        a = chair.emit("minutes.approve", {}, callback=True)
        assert a["ok"], a
    with timed("GET minutes (approved, cached by the archive job)"):
        r = org.get(f"/api/v1/meetings/{mid}/minutes")
        assert r.status_code == 200 and r.headers["X-Minutes-Status"] == "final"
    minutes_size = len(r.data)
    for t in tablets.values():
        t[1].disconnect()
    with timed("GET archive (cached, sealed)"):
        r = org.get(f"/api/v1/meetings/{mid}/archive")
        assert r.status_code == 200 and r.headers["X-Archive-Sealed"] == "true", r.headers
    path = work / "archive.zip"
    path.write_bytes(r.data)
    with timed("verify"):
        report = verify_archive(path)
    assert report.ok, report.failure
    status = org.get(f"/api/v1/meetings/{mid}/archive/status").get_json()
    print(f"archive job steps (s): {status.get('timings')}")
    print(
        f"archive {path.stat().st_size / 1e6:.1f} MB, {status['files']} files, minutes {minutes_size / 1e3:.0f} KB; "
        f"audit {report.manifest['audit']['entries']} entries; notes: {status['notes']}"
    )
    total = sum(dt for label, dt in timed.rows if "approve" in label or label == "verify")
    print(f"after approval to a verified sealed archive (approve + verify): {total:.2f} s")
    db.engine.dispose()
    return 0


def rebuild(work: Path, repeat: int) -> int:
    import subprocess
    import warnings

    warnings.filterwarnings("ignore")
    from sqlalchemy import delete, func, select

    from meeting_server import create_app
    from meeting_server.archive import service
    from meeting_server.archive.models import ArchiveBuild
    from meeting_server.archive.verify import verify_archive
    from meeting_server.core import db, storage
    from meeting_server.meetings.models import Meeting
    from meeting_server.minutes.models import MinutesPdf
    from tests.conftest import test_settings

    app = create_app(test_settings(work, database_url=f"sqlite:///{work / 'meeting.sqlite'}"))
    with app.app_context():
        with db.reader() as s:
            m = s.scalars(select(Meeting).order_by(Meeting.id)).first()
            mid, head, seq = m.id, m.audit_head, m.audit_seq
            from meeting_server.annotations.models import Annotation

            n_ann = s.scalar(select(func.count()).select_from(Annotation).where(Annotation.meeting_id == mid))
        print(f"meeting {mid} in {work}: {seq} audit entries, {n_ann} annotations", flush=True)
        for k in range(repeat):
            with db.transaction() as s:
                s.execute(delete(MinutesPdf).where(MinutesPdf.meeting_id == mid))
                s.execute(
                    delete(ArchiveBuild).where(
                        ArchiveBuild.meeting_id == mid, ArchiveBuild.audit_head == head
                    )
                )
                b = ArchiveBuild(meeting_id=mid, audit_seq=seq, audit_head=head, status="queued", notes=[])
                s.add(b)
                s.flush()
                bid = b.id
            load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
            t0 = time.perf_counter()
            out = service.run_build(bid, f"bench-{k}")
            dt = time.perf_counter() - t0
            assert out is not None and out["status"] == "ready", out
            t1 = time.perf_counter()
            report = verify_archive(storage.get().path(out["sha256"]))
            dv = time.perf_counter() - t1
            assert report.ok, report.failure
            print(
                f"build {k + 1}: archive job {dt:.2f} s (load: {load.split('load average: ')[1]})", flush=True
            )
            print(f"  steps (s): {out['timings']}")
            print(f"  {out['size'] / 1e6:.1f} MB, {out['files']} files; verify {dv:.2f} s")
    db.engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
