"""Benchmark: 3,000 ballots on PostgreSQL through three processes at once (end to end, or the write alone).

    .venv/bin/python tests/bench/bench_vote_pg.py [--e2e] [--ballots 3000] [--procs 3] [--batch 1000]
        [--runs 3] [--resends 60] [--json FILE]

`--e2e`: issue 8's figure itself. `--procs` real `meeting-server serve` processes (eventlet,
`--no-worker`) on a throwaway PostgreSQL database and their own redis-server (tests/scale/cluster.py,
no nginx: each client process connects straight to its server), one live meeting of N seats (set up
as below, with real seat tokens), one client process per server holding N / procs `clients.eio`
tablets plus the `--resends` tablets of ANOTHER server's seats (a tablet that reconnected to another
process and resent its ballot with the same `ballot_id`). Per run the chair opens a fresh secret
motion over HTTP, and at one instant (CLOCK_MONOTONIC, shared by every process) every tablet sends
`vote`. Reported: go -> the kernel receive time of the last ack (an ack leaves only after its
ballot's transaction committed, `synchronous_commit` on), the ack median, each server's CPU during
the burst, and whether the count is exact (`GET /polls/{id}` after the last ack and the tally after
`poll.close` equal what the acks imply, one receipt per `ballot_id`, no error).

Without `--e2e`: the write path alone, without Socket.IO: a throwaway PostgreSQL database
(tests/pg.py; `MEETING_TEST_PG` to point elsewhere) with one live meeting of N attendees, all joined and checked in, and an open secret motion per run. `--procs`
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

    from sqlalchemy import insert, select, update

    from meeting_server.auth import service as auth
    from meeting_server.core import db, tokens
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
        # Real seat tokens (what `POST /join` hands out), so that `--e2e` tablets can connect with them.
        seat_tokens = {a: tokens.new_token(tokens.SEAT_PREFIX) for a in ids}
        s.execute(
            insert(SeatSession),
            [
                {
                    "attendee_id": a,
                    "meeting_id": mid,
                    "token_hash": tokens.digest(seat_tokens[a]),
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
    return {
        "meeting_id": mid,
        "polls": polls,
        "seats": sorted(seats),
        "seat_tokens": [seat_tokens[a] for a, _sess in sorted(seats)],
        "token": tok["token"],
        "sync": sync,
    }


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


# -- end to end: `--procs` x `meeting-server serve` on PostgreSQL + Redis, tablets over Socket.IO ------------


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tablets_main(url: str, seat_tokens: list[str], conn, call_timeout: float) -> None:
    """One client process: a tablet per token on `url`; per run, send the (tablet, body) pairs it gets at `go`.

    `go` is on the perf_counter clock (CLOCK_MONOTONIC: one clock for every process on the machine);
    each ack's time is the kernel receive time of its bytes, minus `go`.
    """
    import asyncio

    from clients.loadgen import raise_fd_limit
    from tests.voting import crowd

    raise_fd_limit()

    async def main() -> None:
        clients = await crowd.connect_all(url, seat_tokens, concurrency=50)
        conn.send("ready")
        try:
            for _ in range(1000):  # bounded: one message per run, None to stop
                msg = await asyncio.to_thread(conn.recv)
                if msg is None:
                    break
                go, sends = msg
                await asyncio.sleep(max(0.0, go - time.perf_counter()))
                t0 = time.perf_counter()
                calls = [clients[i].call_timed("vote", body, timeout=call_timeout) for i, body in sends]
                res = await asyncio.gather(*calls, return_exceptions=True)
                out = []
                for r in res:
                    if isinstance(r, BaseException):
                        out.append((None, type(r).__name__, None))
                    else:
                        ack, _t_sent, t_ack = r
                        out.append((ack, None, t_ack - go))
                conn.send({"send_lag_ms": round((t0 - go) * 1000, 1), "acks": out})
        finally:
            await crowd.close_all(clients)

    asyncio.run(main())


def e2e(args) -> dict:
    """Issue 8's figure through real servers: go -> the last durable ack of every ballot, and the count."""
    from clients.api import Api
    from tests.scale.cluster import Cluster

    cluster = Cluster(procs=args.procs, workers=0, nginx=False)
    cluster.start()
    out: dict = {"servers": cluster.urls, "runs": []}
    ps, pipes = [], []
    try:
        room = setup(cluster.db_url, str(cluster.workdir / "setup"), args.ballots, args.runs)
        out["synchronous_commit"] = room["sync"]
        n, seat_tokens = len(room["seats"]), room["seat_tokens"]
        shares = [list(range(p, n, args.procs)) for p in range(args.procs)]
        per = args.resends // args.procs
        # the first `per` seats of each share also resend (same ballot_id) through the NEXT server
        resend = [shares[(p - 1) % args.procs][:per] for p in range(args.procs)]
        ctx = mp.get_context("spawn")
        for p in range(args.procs):
            mine, theirs = ctx.Pipe()
            toks = [seat_tokens[g] for g in shares[p] + resend[p]]
            proc = ctx.Process(target=tablets_main, args=(cluster.servers[p].url, toks, theirs, 120.0))
            proc.start()
            ps.append(proc)
            pipes.append(mine)
        for mine in pipes:
            try:
                ready = mine.poll(900) and mine.recv() == "ready"
            except EOFError:  # the tablet process died
                ready = False
            if not ready:
                print(cluster.logs()[-6000:], file=sys.stderr)
                raise RuntimeError("the tablets did not connect")
        api = Api(cluster.servers[0].url, room["token"], timeout=120)
        for poll_id in room["polls"]:
            api.post(f"/api/v1/polls/{poll_id}/open", {})
            time.sleep(1.0)  # let the `poll` broadcast land everywhere
            bodies = [
                {"poll_id": poll_id, "choices": [g % 3], "ballot_id": str(uuid.uuid4())} for g in range(n)
            ]
            load = os.getloadavg()
            cpu0 = [cpu_s(pid) for pid in cluster.pids()]
            go = time.perf_counter() + 0.5
            for p, mine in enumerate(pipes):
                sends = [(j, bodies[g]) for j, g in enumerate(shares[p])]
                sends += [(len(shares[p]) + j, bodies[g]) for j, g in enumerate(resend[p])]
                mine.send((go, sends))
            got_back = []
            for mine in pipes:
                assert mine.poll(300), "no answer from a tablet process"
                got_back.append(mine.recv())
            cpu = [round((cpu_s(pid) - c) * 1000) for pid, c in zip(cluster.pids(), cpu0, strict=True)]
            seats_of = [shares[p] + resend[p] for p in range(args.procs)]
            receipts: dict[int, set] = {}
            times, errors, resent, expected = [], {}, 0, [0, 0, 0]
            for p, back in enumerate(got_back):
                for g, (ack, exc, t) in zip(seats_of[p], back["acks"], strict=True):
                    if isinstance(ack, dict) and ack.get("ok"):
                        receipts.setdefault(g, set()).add(ack["receipt"])
                        times.append(t)
                        resent += bool(ack.get("resent"))
                    else:
                        code = exc or (ack or {}).get("error", {}).get("code", "?")
                        errors[code] = errors.get(code, 0) + 1
            for g in receipts:
                expected[g % 3] += 1
            got = api.get(f"/api/v1/polls/{poll_id}")
            closed = api.post(f"/api/v1/polls/{poll_id}/close", {})
            times.sort()
            res = {
                "ballots": n,
                "sent": sum(len(b["acks"]) for b in got_back),
                "acked_ok": len(times),
                "resent_answered": resent,
                "errors": errors,
                "one_receipt_per_ballot": all(len(v) == 1 for v in receipts.values()),
                "last_ack_ms": round(times[-1] * 1000) if times else None,
                "ack_p50_ms": round(times[len(times) // 2] * 1000) if times else None,
                "send_lag_ms": [b["send_lag_ms"] for b in got_back],
                "server_cpu_ms": cpu,
                "server_voted": got["voted"],
                "tally": closed["tally"],
                "expected_tally": expected,
                "load": [round(x, 2) for x in load],
            }
            res["exact"] = closed["tally"] == expected and got["voted"] == len(receipts) == n and not errors
            out["runs"].append(res)
            print(json.dumps(res, ensure_ascii=False), flush=True)
            time.sleep(0.5)
    finally:
        for mine in pipes:
            try:
                mine.send(None)
            except OSError:
                pass
        for proc in ps:
            proc.join(30)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
        cluster.stop()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ballots", type=int, default=3000)
    ap.add_argument("--procs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=1000, help="ballots per transaction")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--resends", type=int, default=60)
    ap.add_argument("--json", default=None)
    ap.add_argument(
        "--e2e",
        action="store_true",
        help="through real servers: --procs x `meeting-server serve` (PostgreSQL, Redis), a client process of "
        "tablets per server; go -> last ack (--batch does not apply)",
    )
    args = ap.parse_args(argv)
    if not pg_available():
        print(f"PostgreSQL is not reachable at {PG_ADMIN_URL}", file=sys.stderr)
        return 2
    if args.e2e:
        from tests.scale.cluster import missing

        lacking = [m for m in missing() if not m.startswith("nginx")]
        if lacking:
            print("; ".join(lacking), file=sys.stderr)
            return 2
        results = {"args": vars(args), "load_before": [round(x, 2) for x in os.getloadavg()]}
        results |= e2e(args)
        results["load_after"] = [round(x, 2) for x in os.getloadavg()]
        text = json.dumps(results, indent=2, ensure_ascii=False)
        print(text)
        if args.json:
            Path(args.json).write_text(text)
        return 0
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
