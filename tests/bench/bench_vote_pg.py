"""Benchmark: the vote batcher's write on PostgreSQL, from three processes at once.

    .venv/bin/python tests/bench/bench_vote_pg.py [--ballots 3000] [--procs 3] [--batch 1000] [--runs 3]
        [--resends 60] [--json FILE]

The write path of issue 8's "3,000 ballots at once on PostgreSQL" figure, without Socket.IO:
a throwaway PostgreSQL database (tests/pg.py; `MEETING_TEST_PG` to point elsewhere) with one live
meeting of N attendees, all joined and checked in, and an open secret motion per run. `--procs`
processes (each its own app, engine and connection pool, as three `meeting-server serve` would be)
each take N / procs ballots, wait for a common start instant, and write them with
`voting.batcher.Batcher._write` in batches of `--batch` ballots (what the batcher does with a
burst: check every vote, one transaction, commit, then the acks). `--resends` ballots are also sent
a second time with the same `ballot_id` through ANOTHER process at the same moment (a tablet that
reconnected elsewhere and resent): they must get the same receipt and not be counted twice.

Reported per run: the time from the start instant to the last commit (all processes), each batch's
write time, the SQL statements per batch, each process's CPU, and whether the count is exact (the
acks, the participation and ballot rows, and the tally once the poll is closed all agree).
Not collected by pytest; prints figures for docs/benchmarks.md. Run it under `flock /tmp/bench.lock`.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.pg import PG_ADMIN_URL, pg_available, temp_database  # noqa: E402

SECRET = "bench-vote-pg-secret-key-0123456789abcdef"


def make_app(url: str, data_dir: str):
    from meeting_server import create_app
    from meeting_server.config import Settings

    env = {
        "MEETING_DATABASE_URL": url,
        "MEETING_DATA_DIR": data_dir,
        "MEETING_SECRET_KEY": SECRET,
        "MEETING_TESTING": "1",
    }
    return create_app(Settings.from_env(env))


def setup(url: str, data_dir: str, n: int, runs: int) -> dict:
    """A live meeting with `n` attendees joined (a seat session each) and checked in; `runs` draft motions."""
    import datetime as dt
    import hashlib
    import secrets

    from sqlalchemy import insert, select, update

    from meeting_server.auth import service as auth
    from meeting_server.core import db
    from meeting_server.core.db import Base
    from meeting_server.roster.models import Attendee, SeatSession

    app = make_app(url, data_dir)
    Base.metadata.create_all(db.engine)
    with db.transaction() as s:
        auth.create_user(s, "bench", "bench-password-1", role="admin")
    c = app.test_client()
    tok = c.post("/api/v1/auth/login", json={"username": "bench", "password": "bench-password-1"}).get_json()
    h = {"Authorization": f"Bearer {tok['token']}"}
    mid = c.post("/api/v1/meetings", json={"title": "表决基准 PG"}, headers=h).get_json()["id"]
    rows = ["姓名,座位,角色"] + [f"代表{i:04d},{i:04d},代表" for i in range(1, n + 1)]
    r = c.post(
        f"/api/v1/meetings/{mid}/attendees/import",
        data={"file": (__import__("io").BytesIO("\n".join(rows).encode()), "list.csv")},
        headers=h,
        content_type="multipart/form-data",
    )
    assert r.status_code == 201, r.get_json()
    assert c.post(f"/api/v1/meetings/{mid}/start", headers=h).status_code == 200
    polls = []
    for i in range(runs):
        r = c.post(
            f"/api/v1/meetings/{mid}/polls",
            json={"title": f"Motion {i + 1}", "kind": "motion", "secret": True},
            headers=h,
        )
        assert r.status_code == 201, r.get_json()
        polls.append(r.get_json()["id"])
    # Joining and checking 3,000 seats in over HTTP is not what is measured: rows written directly.
    now = dt.datetime.now(dt.UTC)
    with db.transaction() as s:
        ids = list(s.scalars(select(Attendee.id).where(Attendee.meeting_id == mid).order_by(Attendee.id)))
        s.execute(
            insert(SeatSession),
            [
                {
                    "attendee_id": a,
                    "meeting_id": mid,
                    "token_hash": hashlib.sha256(secrets.token_bytes(16)).hexdigest(),
                    "expires_at": now + dt.timedelta(days=1),
                }
                for a in ids
            ],
        )
        s.execute(update(Attendee).where(Attendee.meeting_id == mid).values(present=True, checked_in_at=now))
        seats = s.execute(
            select(SeatSession.attendee_id, SeatSession.id).where(SeatSession.meeting_id == mid)
        ).all()
    with db.reader() as s:
        sync = s.connection().exec_driver_sql("SHOW synchronous_commit").scalar()
    db.engine.dispose()
    return {"meeting_id": mid, "polls": polls, "seats": sorted(seats), "token": tok["token"], "sync": sync}


def worker(url, data_dir, mid, poll_id, seats, resend, go, start_at, batch, q) -> None:
    """One server process: write `seats`' ballots (plus `resend` ballots) once `go` is set, in batches."""
    from sqlalchemy import event

    from meeting_server.core import db
    from meeting_server.core.commands import registry, validate
    from meeting_server.core.identity import Actor
    from meeting_server.voting import batcher, progress

    progress.touch = lambda *_a: None  # no room to tell: this measures the write only
    app = make_app(url, data_dir)
    statements = [0]

    @event.listens_for(db.engine, "before_cursor_execute")
    def _count(*_a):
        statements[0] += 1

    def item(aid, sess, choice, bid):
        raw = {"poll_id": poll_id, "choices": [choice], "ballot_id": bid}
        actor = Actor("seat", aid, f"代表{aid}", "attendee", mid, sess)
        return batcher.Item(actor=actor, raw=raw, payload=validate(registry.get("vote"), raw), app=app)

    items = [item(aid, sess, choice, bid) for aid, sess, choice, bid in seats + resend]
    with app.app_context():  # warm the pool: one connection per process, as a running server has
        with db.reader() as s:
            s.connection().exec_driver_sql("SELECT 1")
    q.put("ready")
    go.wait(300)
    t_cpu = time.process_time()
    time.sleep(max(0.0, start_at.value - time.time()))
    batches = []
    for i in range(0, len(items), batch):
        chunk = items[i : i + batch]
        n0, t0 = statements[0], time.perf_counter()
        batcher.batcher._write(chunk)
        batches.append(
            {
                "ballots": len(chunk),
                "write_ms": round((time.perf_counter() - t0) * 1000, 1),
                "statements": statements[0] - n0,
            }
        )
    done_at = time.time()
    q.put(
        {
            "pid": os.getpid(),
            "done_s": done_at - start_at.value,
            "cpu_ms": round((time.process_time() - t_cpu) * 1000),
            "batches": batches,
            "acks": [(it.raw["ballot_id"], it.result) for it in items],
        }
    )


def one_run(url, data_dir, room, poll_id, procs, batch, resends) -> dict:
    from meeting_server.core import db

    app = make_app(url, data_dir)
    c = app.test_client()
    h = {"Authorization": f"Bearer {room['token']}"}
    assert c.post(f"/api/v1/polls/{poll_id}/open", json={}, headers=h).status_code == 200
    db.engine.dispose()
    seats = [(a, sess, i % 3, str(uuid.uuid4())) for i, (a, sess) in enumerate(room["seats"])]
    shares = [seats[p::procs] for p in range(procs)]
    # the first `resends` ballots of each share are sent again, with the same ballot_id, by the next process
    per = resends // procs
    resend_for = [shares[(p - 1) % procs][:per] for p in range(procs)]
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    go = ctx.Event()
    start_at = ctx.Value("d", 0.0)
    ps = [
        ctx.Process(
            target=worker,
            args=(
                url,
                data_dir,
                room["meeting_id"],
                poll_id,
                shares[p],
                resend_for[p],
                go,
                start_at,
                batch,
                q,
            ),
        )
        for p in range(procs)
    ]
    for p in ps:
        p.start()
    try:
        for _ in ps:  # every process has started, built its ballots and opened a connection
            assert q.get(timeout=300) == "ready"
        start_at.value = time.time() + 0.3
        go.set()
        outs = [q.get(timeout=120) for _ in ps]
    finally:
        for p in ps:
            p.join(30)
            if p.is_alive():
                p.kill()
    acks = [a for o in outs for a in o["acks"]]
    ok = [(bid, res) for bid, res in acks if res and res.get("ok")]
    errors = [res for _bid, res in acks if not (res and res.get("ok"))]
    receipts: dict[str, set] = {}
    for bid, res in ok:
        receipts.setdefault(bid, set()).add(res["receipt"])
    resent_ok = sum(1 for _bid, res in ok if res.get("resent"))

    app = make_app(url, data_dir)
    c = app.test_client()
    got = c.get(f"/api/v1/polls/{poll_id}", headers=h).get_json()
    closed = c.post(f"/api/v1/polls/{poll_id}/close", json={}, headers=h).get_json()
    db.engine.dispose()
    expected = [0, 0, 0]
    for _a, _s, choice, _b in seats:
        expected[choice] += 1
    return {
        "ballots": len(seats),
        "sent": len(acks),
        "acked_ok": len(ok),
        "resent_answered": resent_ok,
        "errors": errors[:5],
        "one_receipt_per_ballot": all(len(v) == 1 for v in receipts.values()),
        "last_commit_ms": round(max(o["done_s"] for o in outs) * 1000),
        "per_process": [
            {"done_ms": round(o["done_s"] * 1000), "cpu_ms": o["cpu_ms"], "batches": o["batches"]}
            for o in outs
        ],
        "server_voted": got["voted"],
        "tally": closed["tally"],
        "expected_tally": expected,
        "exact": closed["tally"] == expected and got["voted"] == len(seats) and not errors,
        "load": round(os.getloadavg()[0], 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ballots", type=int, default=3000)
    ap.add_argument("--procs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=1000, help="ballots per transaction")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--resends", type=int, default=60)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    if not pg_available():
        print(f"PostgreSQL is not reachable at {PG_ADMIN_URL}", file=sys.stderr)
        return 2
    results = {"args": vars(args), "load_before": [round(x, 2) for x in os.getloadavg()], "runs": []}
    with temp_database() as url, tempfile.TemporaryDirectory(prefix="bench-vote-pg-") as tmp:
        room = setup(url, tmp, args.ballots, args.runs)
        results["synchronous_commit"] = room["sync"]
        for poll_id in room["polls"]:
            res = one_run(url, tmp, room, poll_id, args.procs, args.batch, args.resends)
            results["runs"].append(res)
            print(
                json.dumps({k: v for k, v in res.items() if k != "per_process"}, ensure_ascii=False),
                flush=True,
            )
    results["load_after"] = [round(x, 2) for x in os.getloadavg()]
    text = json.dumps(results, indent=2, ensure_ascii=False)
    print(text)
    if args.json:
        Path(args.json).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
