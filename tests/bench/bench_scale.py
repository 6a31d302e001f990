"""Several server processes on PostgreSQL and Redis behind nginx: one big room, page flips and a vote.

    .venv/bin/python tests/bench/bench_scale.py [--tablets 3000] [--procs 3] [--flips 100] [--interval 0.1]
        [--via nginx|direct] [--then COUNT@INTERVAL ...] [--no-vote] [--serve-args "..."]
        [--profile FILE] [--out FILE]

Starts a cluster on loopback (tests/scale/cluster.py: a throwaway PostgreSQL database, our own
redis-server, `--procs` x `meeting-server serve --no-worker`, one `meeting-server worker`,
nginx with the documented site file), sets up one meeting with `--tablets` seats through
nginx, and drives it with tests/scale/drive.py: the tablets are split evenly over the
processes (one client process each), either through nginx, each share from a source address
that ip_hash sends to its process (`--via nginx`), or straight to each process (`--via direct`).
A presenter on the first process flips every `--interval` s (then, for each `--then 30@1`,
30 more flips every 1 s on the same room, reported apart); then (unless `--no-vote`) the
chair opens a poll and every tablet votes at once: every ack after its commit, the count from
`GET /api/v1/polls/{id}`. Prints the figures and the CPU share of each server process, nginx
and Redis during the flips. `--profile FILE` records a py-spy profile (raw collapsed stacks)
of the first process during the flips and prints where its time goes. Everything started here
is stopped by pid at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.scale.cluster import ORGANIZER, Cluster, missing  # noqa: E402
from tests.scale.drive import (  # noqa: E402
    PROFILE_MARKS,
    Entry,
    profile_by_module,
    row,
    run_room,
    summarize_profile,
)


def children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (OSError, ValueError):
        return []


def then_arg(text: str) -> tuple[int, float]:
    n, _, every = text.partition("@")
    try:
        count, interval = int(n), float(every)
    except ValueError:
        raise argparse.ArgumentTypeError(f"COUNT@INTERVAL, e.g. 30@0.5, not {text!r}") from None
    if not (0 < count <= 10000 and interval > 0):
        raise argparse.ArgumentTypeError("COUNT 1..10000, INTERVAL > 0")
    return count, interval


def say(msg: str) -> None:
    print(f"[bench_scale {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


async def bench(opts) -> dict:
    env = dict(kv.split("=", 1) for kv in opts.env)
    cluster = Cluster(
        procs=opts.procs,
        workers=1,
        serve_args=shlex.split(opts.serve_args),
        extra_env=env,
        nginx_workers=opts.nginx_workers,
    )
    t0 = time.perf_counter()
    cluster.start()
    try:
        say(f"cluster up in {time.perf_counter() - t0:.1f} s: {cluster.urls} behind {cluster.url}")
        if opts.via == "nginx":
            sources = cluster.sources(per_upstream=1)
            entries = [
                Entry(cluster.url, sources[sp.port][0], f"nginx from {sources[sp.port][0]} -> :{sp.port}")
                for sp in cluster.servers
            ]
        else:
            entries = [Entry(sp.url, None, f"direct :{sp.port}") for sp in cluster.servers]
        others = {"redis": cluster.redis.proc.pid} if cluster.redis.proc else {}
        if cluster.front is not None:
            for i, pid in enumerate(children(cluster.front.proc.pid)):
                others[f"nginx worker {i}"] = pid
        for i, w in enumerate(cluster.worker_procs):
            others[f"worker {i}"] = w.proc.pid
        pids = cluster.pids()
        out = await run_room(
            cluster.url,
            entries,
            opts.tablets,
            username=ORGANIZER[0],
            password=ORGANIZER[1],
            presenter_url=cluster.urls[0],
            server_pids=pids,
            other_pids=others,
            flips=opts.flips,
            interval=opts.interval,
            more_flips=opts.then,
            vote=opts.vote,
            join_threads=opts.join_threads,
            checkin_threads=opts.checkin_threads,
            setup_urls=cluster.urls if opts.setup_via == "direct" else None,
            say=say,
            phase_timeout=opts.phase_timeout,
            checkin="http",
            profile=opts.profile,
        )
        if opts.profile is not None and opts.profile.exists():
            out["profile_top"] = summarize_profile(opts.profile)
            out["profile_modules"] = profile_by_module(opts.profile, PROFILE_MARKS)
        out["procs"] = opts.procs
        out["env"] = env
        out["nginx_workers"] = opts.nginx_workers
        out["via"] = opts.via
        return out
    finally:
        cluster.stop()


def render(r: dict) -> str:
    x = row(r)
    f = r.get("flips") or {}
    v = r.get("vote") or {}
    lines = [
        f"{r['tablets']} tablets over {r['procs']} processes ({r['via']}); entries: {r['entries']}"
        + (f"; server env {r['env']}" if r.get("env") else "")
        + f"; nginx worker_processes {r.get('nginx_workers')}",
        f"  connected {x['connected']}  connect p99 {x['connect_p99_ms']} ms  join {r.get('join_s')} s",
        f"  flips     {f.get('acked')}/{f.get('sent')} acked, every {r['interval_s']} s; ack p50 {f.get('ack_p50_ms')}"
        f" max {f.get('ack_max_ms')} ms",
        f"  latency   p50 {f.get('p50_ms')}  p95 {f.get('p95_ms')}  p99 {f.get('p99_ms')}  max {f.get('max_ms')} ms"
        f"  (sent -> kernel receive at each tablet)",
        f"  delivery  missed {f.get('missed')} of {f.get('expected')}  out of order {f.get('out_of_order')}"
        f"  dropped connections {f.get('dropped_connections')}",
        f"  CPU       servers {f.get('server_cpu_pct')} % of one core in all, {f.get('cpu_us_per_msg')} µs per"
        f" delivered page; {f.get('other_cpu_pct')}",
        f"  memory    {x['kb_per_tablet']} KB per tablet (RSS growth of the server processes)",
    ]
    if v:
        if "error" in v:
            lines.append(f"  vote      {v['error']}")
        else:
            lines.append(
                f"  vote      {v['acks']} acks ({v['unique_receipts']} unique receipts), last ack {v['last_ack_ms']} ms"
                f" after the go, ack p99 {v['ack_p99_ms']} ms; errors {v['errors']}"
            )
            lines.append(
                f"            second vote {v['second_vote']}, resend same receipt {v['resend_same_receipt']};"
                f" server voted {v['server_voted']} tally {v['server_tally']} expected {v['expected_tally']}"
                f" exact: {v['count_exact']}"
            )
    for e in f.get("by_entry") or []:
        lines.append(
            f"    {e['entry']}: p50 {e['p50_ms']}  p99 {e['p99_ms']} ms; per flip, first tablet p50"
            f" {e['first_p50_ms']}, last p50 {e['last_p50_ms']}, first to last p50 {e['fanout_span_p50_ms']} ms"
        )
    lines.append(f"  setup     joins {r.get('join_s')} s, check-ins {r.get('checkin_s')} s")
    for m in r.get("more_flips") or []:
        lines.append(
            f"  then      {m.get('acked')}/{m.get('sent')} flips every {m.get('interval_s')} s: p50 {m.get('p50_ms')}"
            f"  p95 {m.get('p95_ms')}  p99 {m.get('p99_ms')}  max {m.get('max_ms')} ms; missed {m.get('missed')}"
            f" of {m.get('expected')}, out of order {m.get('out_of_order')}; servers {m.get('server_cpu_pct')} %,"
            f" {m.get('cpu_us_per_msg')} µs per page; load {m.get('loadavg')}; ack p50 {m.get('ack_p50_ms')} ms"
        )
        for e in m.get("by_entry") or []:
            lines.append(
                f"    {e['entry']}: p50 {e['p50_ms']}  p99 {e['p99_ms']} ms; per flip, first tablet p50"
                f" {e['first_p50_ms']}, last p50 {e['last_p50_ms']}, first to last p50 {e['fanout_span_p50_ms']} ms"
            )
    lines.append(
        f"  load average at the start {r.get('loadavg_start')}, after the first flips"
        f" {f.get('loadavg')}, at the end {r.get('loadavg')}"
    )
    if r.get("profile_modules"):
        lines.append(
            "  py-spy, first process, during the flips (share of on-CPU samples whose stack includes):"
        )
        lines += [f"    {v:5.1f} %  {k}" for k, v in r["profile_modules"].items()]
        lines.append("  top self frames:")
        lines += [f"    {v:5.1f} %  {f}" for f, v in r["profile_top"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tablets", type=int, default=3000)
    p.add_argument("--procs", type=int, default=3)
    p.add_argument("--flips", type=int, default=100)
    p.add_argument("--interval", type=float, default=0.1)
    p.add_argument("--via", choices=("nginx", "direct"), default="nginx")
    p.add_argument(
        "--then",
        type=then_arg,
        action="append",
        default=[],
        metavar="COUNT@INTERVAL",
        help="another flip phase on the same room, e.g. 30@0.5 (repeatable)",
    )
    p.add_argument("--no-vote", dest="vote", action="store_false")
    p.add_argument("--serve-args", default="", help="extra `meeting-server serve` options")
    p.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="environment of the server processes, e.g. MEETING_FANOUT_CHUNK=0 (repeatable)",
    )
    p.add_argument(
        "--join-threads",
        type=int,
        default=8,
        help="concurrent joins (each join takes the meeting row lock; see docs/deploy.md)",
    )
    p.add_argument("--checkin-threads", type=int, default=8, help="concurrent staff check-ins")
    p.add_argument(
        "--nginx-workers",
        default="auto",
        help="nginx worker_processes: auto (one per core, Debian's default) or a number",
    )
    p.add_argument(
        "--setup-via",
        choices=("direct", "nginx"),
        default="direct",
        help="joins and check-ins straight to each process in turn (default), or all through nginx",
    )
    p.add_argument("--phase-timeout", type=float, default=300.0)
    p.add_argument("--timeout", type=float, default=1500.0, help="overall limit, seconds")
    p.add_argument("--profile", type=Path, help="py-spy raw profile of the first process (flips)")
    p.add_argument("--out", type=Path)
    opts = p.parse_args(argv)
    if not (
        1 <= opts.tablets <= 10000 and 1 <= opts.procs <= 8 and 0 < opts.flips <= 10000 and opts.interval > 0
    ):
        p.error("--tablets 1..10000, --procs 1..8, --flips 1..10000, --interval > 0")
    if any("=" not in kv or not kv.split("=", 1)[0] for kv in opts.env):
        p.error("--env NAME=VALUE")
    gaps = missing()
    if gaps:
        print("bench_scale: cannot run: " + "; ".join(gaps), file=sys.stderr)
        return 2
    result = asyncio.run(asyncio.wait_for(bench(opts), opts.timeout))
    print(render(result))
    if opts.out:
        opts.out.write_text(json.dumps(result, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
