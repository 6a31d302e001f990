"""How the cost of a page flip grows with the room: one server process, 100 to 2,000 tablets.

    .venv/bin/python tests/bench/bench_cost.py [--sizes 100,500,1000,2000] [--flips 100] [--interval 0.1]
        [--targets node,ours] [--variant NAME=SERVE_ARGS ...] [--profile-size 1000] [--out FILE]

For each size it starts, one after the other, the Node.js reference (clients/node_ref) and one
`meeting-server serve` per variant (embedded defaults: SQLite, its own worker), each on a free
loopback port with a fresh data dir, and drives the same room through tests/scale/drive.py:
N tablets connect (one client process), a presenter flips every `--interval` s. It prints one
table: flip latency p50/p99 (sent -> kernel receive at each tablet), missed, server CPU during
the flips and CPU per delivered `page` message, server memory per tablet.

`--variant` compares serve options in the same run, e.g. the garbage-collector tuning:
`--variant tuned= --variant plain="--gc default"`. `--profile-size N` records a py-spy profile
(`pip install py-spy`; attaching needs root or ptrace rights) of the first variant at size N
and prints where the time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shlex
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.scale.cluster import prepare_schema  # noqa: E402
from tests.scale.drive import (  # noqa: E402
    PROFILE_MARKS,
    Entry,
    profile_by_module,
    row,
    run_room,
    summarize_profile,
)
from tests.serverproc import ServerProcess  # noqa: E402


def start_ours(workdir: Path, serve_args: list[str]) -> tuple[ServerProcess, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEETING_")}
    env["MEETING_SECRET_KEY"] = secrets.token_urlsafe(24)
    sp = ServerProcess(workdir / "data", env=env, extra_args=serve_args)
    user, password = "bench", "pw-" + secrets.token_urlsafe(12)  # never a leading "-"
    sp.data_dir.mkdir(parents=True, exist_ok=True)
    # The schema of the models (the single migration lags them until the lead regenerates it).
    prepare_schema(f"sqlite:///{sp.data_dir / 'meeting.sqlite'}")
    sp.cli("create-user", user, "--password", password)
    sp.start(timeout=120)
    return sp, user, password


def say(msg: str) -> None:
    print(f"[bench_cost {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


async def one_run(target: str, n: int, opts, serve_args: list[str], logdir: Path, profile: Path | None):
    if target == "node":
        from clients.bench_room import start_node

        node = start_node(logdir)
        try:
            return await run_room(
                node.url,
                [Entry(node.url)],
                n,
                target="node",
                server_pids=[node.pid],
                flips=opts.flips,
                interval=opts.interval,
                say=say,
                connect_concurrency=opts.connect_concurrency,
            )
        finally:
            node.stop()
    sp, user, password = start_ours(Path(tempfile.mkdtemp(prefix="cost-", dir=logdir)), serve_args)
    try:
        return await run_room(
            sp.url,
            [Entry(sp.url)],
            n,
            username=user,
            password=password,
            server_pids=[sp.proc.pid],
            flips=opts.flips,
            interval=opts.interval,
            profile=profile,
            say=say,
            connect_concurrency=opts.connect_concurrency,
        )
    finally:
        sp.stop()


def table(results: list[dict]) -> str:
    head = (
        "| tablets | server | load avg | flip p50 (ms) | p99 (ms) | max (ms) | missed | server CPU during flips "
        "| CPU per delivered message (µs) | KB per tablet | connect p99 (ms) | p99 / Node p99 |"
    )
    lines = [head, "|" + " --- |" * 12]
    node_p99 = {r["tablets"]: (r.get("flips") or {}).get("p99_ms") for r in results if r["target"] == "node"}
    for r in results:
        x = row(r)
        load = (r.get("flips") or {}).get("loadavg") or r.get("loadavg") or [None]
        load = load[0]
        ratio = ""
        if r["target"] != "node" and node_p99.get(r["tablets"]) and x["p99_ms"]:
            ratio = f"{x['p99_ms'] / node_p99[r['tablets']]:.2f}"
        lines.append(
            f"| {x['tablets']} | {r.get('label', r['target'])} | {load} | {x['p50_ms']} | {x['p99_ms']} | {x['max_ms']} "
            f"| {x['missed']} | {x['server_cpu_pct']} % | {x['cpu_us_per_msg']} | {x['kb_per_tablet']} "
            f"| {x['connect_p99_ms']} | {ratio} |"
        )
    return "\n".join(lines)


async def main_async(opts) -> list[dict]:
    variants = []
    for v in opts.variant or ["ours="]:
        name, _, args = v.partition("=")
        variants.append((name, shlex.split(args)))
    logdir = Path(tempfile.mkdtemp(prefix="bench-cost-"))
    results = []
    for n in [int(x) for x in opts.sizes.split(",")]:
        for target in opts.targets.split(","):
            runs = [("node", [])] if target == "node" else variants
            for label, args in runs:
                profile = None
                if target == "ours" and n == opts.profile_size and label == variants[0][0]:
                    profile = logdir / f"profile-{label}-{n}.txt"
                say(f"{label} N={n} {' '.join(args)}")
                try:
                    r = await asyncio.wait_for(
                        one_run(target, n, opts, args, logdir, profile), opts.run_timeout
                    )
                except Exception as e:  # one failed run is reported, the others still run
                    r = {"target": target, "tablets": n, "error": repr(e)}
                r["label"] = label
                results.append(r)
                if "error" in r:
                    say(f"{label} N={n} failed: {r['error']}")
                else:
                    say(f"{label} N={n}: {row(r)}")
                if profile is not None and profile.exists():
                    r["profile_top"] = summarize_profile(profile)
                    r["profile_modules"] = profile_by_module(profile, PROFILE_MARKS)
                time.sleep(1)
    say(f"logs in {logdir}")
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="100,500,1000,2000")
    p.add_argument("--targets", default="node,ours")
    p.add_argument("--variant", action="append", help="NAME=SERVE_ARGS; repeat to compare serve options")
    p.add_argument("--flips", type=int, default=100)
    p.add_argument("--interval", type=float, default=0.1)
    p.add_argument("--profile-size", type=int, default=0)
    p.add_argument(
        "--connect-concurrency",
        type=int,
        default=50,
        help="tablets connecting at the same time (a reconnect storm: several hundred)",
    )
    p.add_argument("--run-timeout", type=float, default=600.0)
    p.add_argument("--out", type=Path)
    opts = p.parse_args(argv)
    if not (0 < opts.flips <= 10000 and opts.interval > 0):
        p.error("--flips 1..10000, --interval > 0")
    results = asyncio.run(main_async(opts))
    print(table([r for r in results if "error" not in r]))
    for r in results:
        if r.get("profile_modules"):
            print(f"\npy-spy, {r['label']} N={r['tablets']} (share of samples whose stack includes):")
            for k, v in r["profile_modules"].items():
                print(f"  {v:5.1f} %  {k}")
            print("  top self frames:")
            for f, v in r["profile_top"]:
                print(f"  {v:5.1f} %  {f}")
        if "error" in r:
            print(f"{r['label']} N={r['tablets']}: {r['error']}")
    if opts.out:
        opts.out.write_text(json.dumps(results, indent=1, ensure_ascii=False))
    return 0 if all("error" not in r for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
