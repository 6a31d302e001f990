"""Drive one live room from several entry points and measure it: the scale and cost benchmarks' engine.

Built from `clients.loadgen`'s pieces (its tablet groups in spawned worker processes, its
presenter loop and its flip analysis), with two additions the load generator does not need
for one server:

- entry points: the tablets are split over several URLs (each server process directly, or
  nginx from a source address that ip_hash sends to one process), one client process each;
- server-side cost: CPU seconds (utime+stime from /proc) and RSS of every server process
  over the flip phase, so "CPU per delivered message" is the servers' CPU divided by the
  pages the tablets received; optionally a py-spy profile of one server during the flips.

Every phase is bounded in time; every process started here is stopped by pid.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from clients import api, loadgen  # noqa: E402
from clients.eio import SioClient, calibrate_clock  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Entry:
    """Where a share of the tablets connects: a URL, optionally from a loopback source address."""

    url: str
    source: str | None = None
    label: str = ""


def cpu_s(pid: int) -> float | None:
    """utime + stime of a process, seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK
    except (OSError, IndexError, ValueError):
        return None


def _bound_worker_main(conn: Any, url: str, tokens: list, call_timeout: float, source: str | None) -> None:
    if source:
        from tests.scale.tablets import BoundClient

        loadgen.SioClient = functools.partial(BoundClient, source=source)
    loadgen._worker_main(conn, url, tokens, call_timeout)


class BoundGroup(loadgen.RemoteGroup):
    """loadgen's RemoteGroup, its tablets connecting from `source` (spawned: never fork an event loop)."""

    def __init__(self, url: str, tokens: list, call_timeout: float, source: str | None = None):
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(
            target=_bound_worker_main, args=(child, url, tokens, call_timeout, source), daemon=True
        )
        self.proc.start()
        child.close()


class Profiler:
    """`py-spy record` on one pid for the flip phase (root can attach to any process)."""

    def __init__(self, pid: int, out: Path, seconds: float, rate: int = 200):
        self.pid, self.out, self.seconds, self.rate = pid, out, seconds, rate
        self.proc: subprocess.Popen | None = None

    def start(self) -> bool:
        exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        if not os.access(exe, os.X_OK):
            return False
        self.proc = subprocess.Popen(
            [
                exe,
                "record",
                "-p",
                str(self.pid),
                "-o",
                str(self.out),
                "-f",
                "raw",
                "-r",
                str(self.rate),
                "-d",
                str(int(self.seconds) + 1),
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        return True

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            self.proc.wait(self.seconds + 30)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(10)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        if self.proc.stderr:
            self.proc.stderr.close()


#: What "where the time goes" counts: the share of py-spy's samples (on-CPU only: py-spy leaves
#: out a thread waiting in epoll unless `--idle`) whose stack contains each mark (a frame's text),
#: or `(mark, but_not)`: contains `mark` and not `but_not`. Shares overlap (a broadcast runs inside
#: the command that emits it).
PROFILE_MARKS = {
    "command pipeline (`_execute`: validate, lock, write, audit, commit, then emit)": "_execute (",
    "  of which outside the broadcast (the database work, the audit chain)": (
        "_execute (",
        "emit (socketio/",
    ),
    "SQLAlchemy (anywhere)": "sqlalchemy/",
    "broadcast loop (python-socketio manager.emit over the room's clients)": "emit (socketio/manager.py",
    "  direct websocket write per client (core/sockets.py send_packet)": "install_direct_send.<locals>.send_packet",
    "  hub websocket write per client (core/wsconn.py HubSocket.send)": "HubSocket.send (",
    "  of which the non-blocking send itself (core/wsconn.py Conn.write)": "Conn.write (",
    "per-client writer green threads (engineio: queue, encode, frame, send)": "writer (engineio/socket.py",
    "send() syscall loop (eventlet greenio)": "_send_loop (eventlet/greenio/base.py",
    "eventlet timers (green thread wake-ups)": "fire_timers (eventlet/hubs/hub.py",
    "Flask-SocketIO event dispatch (a request context per event)": "SocketIO._handle_event (flask_socketio",
    "reading client frames": "wait (eventlet/websocket.py",
    "Redis: publishing a broadcast": "_publish (socketio/redis_manager.py",
    "Redis: listener (another process's broadcasts)": "_thread (socketio/pubsub_manager.py",
}


def summarize_profile(path: Path, top: int = 12) -> list[tuple[str, float]]:
    """From py-spy's raw (collapsed) stacks: share of samples per self-frame's function (and file)."""
    if not path.exists():
        return []
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        try:
            k = int(n)
        except ValueError:
            continue
        total += k
        leaf = stack.split(";")[-1]
        own[leaf] += k
    return [(f, round(100 * k / total, 1)) for f, k in own.most_common(top)] if total else []


def profile_by_module(path: Path, marks: dict[str, Any]) -> dict[str, float]:
    """Share of samples whose stack contains each mark (a substring of a frame), e.g. a module path."""
    if not path.exists():
        return {}
    hit: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        try:
            k = int(n)
        except ValueError:
            continue
        total += k
        for name, mark in marks.items():
            want, but_not = (mark, None) if isinstance(mark, str) else mark
            if want in stack and (but_not is None or but_not not in stack):
                hit[name] += k
    return {name: round(100 * hit[name] / total, 1) for name in marks} if total else {}


def _spread(urls: list[str], token: str | None, items: list, call, threads: int) -> list:
    """`call(api, item)` for every item, `threads` at a time, item k on `urls[k % len(urls)]`; results in order.

    Setup only (joins, check-ins): straight to every server process instead of all through one,
    so the setup's CPU is spread over the processes (each request still takes the meeting row lock).
    """
    from concurrent.futures import ThreadPoolExecutor

    apis = [api.Api(u, token) for u in urls]
    try:
        with ThreadPoolExecutor(max(1, threads)) as pool:
            return list(pool.map(lambda k: call(apis[k % len(apis)], items[k]), range(len(items))))
    finally:
        for a in apis:
            a.close()


def _join_all(urls: list[str], join_tokens: list[str], threads: int) -> list[dict]:
    """`POST /api/v1/join` for every seat (as `clients.api.join_many`, spread over `urls`)."""
    return _spread(urls, None, join_tokens, api.join, threads)


def _checkin_http(urls: list[str], room: Any, joined: list[dict], threads: int = 8) -> int:
    """Every seat checked in by the organizer (`POST /meetings/{id}/attendees/{aid}/checkin`), spread over `urls`."""
    path = f"/api/v1/meetings/{room.meeting_id}/attendees/{{}}/checkin"
    body = {"reason": "benchmark: seated before the doors open"}
    done = _spread(
        urls,
        room.organizer_token,
        joined,
        lambda a, j: a.post(path.format(j["attendee"]["id"]), body),
        threads,
    )
    return len(done)


def _by_entry(records: list, seq_map: dict, arrivals: list[dict], labels: list[str]) -> list[dict[str, Any]]:
    """Latency per entry point (per server process): all deliveries, and per flip its first and last tablet.

    The first tablet of a process tells when that process began its fan-out (the command's time,
    plus the Redis hop for the other processes); first to last, how long its fan-out took.
    """
    out = []
    for label, r in zip(labels, arrivals, strict=True):
        lat: list[float] = []
        first: dict[Any, float] = {}
        last: dict[Any, float] = {}
        for tablet_pages in r["pages"]:
            for seq, t_rx, _t_parse in tablet_pages:
                f = seq_map.get(seq)
                if f is None:
                    continue
                d = t_rx - f.t_send
                lat.append(d)
                first[seq] = min(first.get(seq, d), d)
                last[seq] = max(last.get(seq, d), d)
        lat.sort()
        spans = sorted(last[k] - first[k] for k in last)
        out.append(
            {
                "entry": label,
                "p50_ms": loadgen.ms(loadgen.pct(lat, 50)),
                "p99_ms": loadgen.ms(loadgen.pct(lat, 99)),
                "first_p50_ms": loadgen.ms(loadgen.pct(sorted(first.values()), 50)),
                "last_p50_ms": loadgen.ms(loadgen.pct(sorted(last.values()), 50)),
                "fanout_span_p50_ms": loadgen.ms(loadgen.pct(spans, 50)),
            }
        )
    return out


async def run_room(
    setup_url: str,
    entries: list[Entry],
    tablets: int,
    *,
    target: str = "ours",
    username: str | None = None,
    password: str | None = None,
    presenter_url: str | None = None,
    server_pids: list[int] = (),
    other_pids: dict[str, int] | None = None,
    flips: int = 100,
    interval: float = 0.1,
    more_flips: list[tuple[int, float]] = (),
    vote: bool = False,
    join_threads: int = 8,
    checkin_threads: int = 8,
    setup_urls: list[str] | None = None,
    connect_concurrency: int = 50,
    checkin: str = "tablets",
    call_timeout: float = 30.0,
    phase_timeout: float = 240.0,
    profile: Path | None = None,
    after_connect=None,
    say=print,
) -> dict[str, Any]:
    """Set up a room with `tablets` seats, connect them over `entries`, flip, optionally vote; measure.

    `more_flips`: further flip phases `(count, interval)` on the same connected room, after the
    first one (e.g. a slower presenter), each analysed on its own in `out["more_flips"]`.
    """
    loop = asyncio.get_running_loop()
    out: dict[str, Any] = {
        "target": target,
        "tablets": tablets,
        "entries": [e.label or e.url for e in entries],
        "flips_requested": flips,
        "interval_s": interval,
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }
    say(f"setup {tablets} seats on {setup_url}")
    room = await loop.run_in_executor(
        None, lambda: api.setup_room(setup_url, tablets, target, username, password, threads=4)
    )
    t0 = time.perf_counter()
    spread = list(setup_urls or [setup_url])
    joined = await loop.run_in_executor(None, lambda: _join_all(spread, room.join_tokens, join_threads))
    out["join_s"] = round(time.perf_counter() - t0, 2)
    sessions = [(i, j["session_token"]) for i, j in enumerate(joined)]
    groups: list[BoundGroup] = []
    presenter: SioClient | None = None
    presenter_pages: list = []
    prof = None

    async def each(cmd: str, limit: float, **kw: Any) -> list[Any]:
        return list(await asyncio.gather(*(g.run(cmd, limit, **kw) for g in groups)))

    try:
        for k, e in enumerate(entries):
            groups.append(BoundGroup(e.url, sessions[k :: len(entries)], call_timeout, e.source))
        offsets = [0.0] * len(groups)  # perf_counter is CLOCK_MONOTONIC on Linux: one clock for all
        await each("hello", 60)
        if vote and checkin == "http":
            say("check-in by the organizer over HTTP (the staff's check-in route), before the room fills")
            t0 = time.perf_counter()
            out["checkin_ok"] = await loop.run_in_executor(
                None, lambda: _checkin_http(spread, room, joined, checkin_threads)
            )
            out["checkin_s"] = round(time.perf_counter() - t0, 2)
        elif vote:
            say("check-in, one tablet at a time per group")
            pre = await each("precheckin", phase_timeout, concurrency=10)
            out["checkin_ok"] = sum(r["ok"] for r in pre)
        rss0 = {p: loadgen.rss_kb(p) for p in server_pids}
        say("connect")
        res = await each("connect", phase_timeout, concurrency=connect_concurrency, timeout=call_timeout)
        connect_s = sorted(x for r in res for x in r["connect_s"])
        errors: Counter[str] = Counter()
        for r in res:
            errors.update(r["errors"])
        out["connect"] = {
            "connected": sum(r["connected"] for r in res),
            "errors": dict(errors),
            "p99_ms": loadgen.ms(loadgen.pct(connect_s, 99)),
        }
        presenter = SioClient(
            lambda c, name, data, t: (
                presenter_pages.append((data.get("seq"), data.get("page"), t))
                if name == "page" and isinstance(data, dict)
                else None
            ),
            ignore=frozenset({"attendance", "seat.status"}),
        )
        await presenter.connect(presenter_url or setup_url, room.presenter_auth(), timeout=call_timeout)
        await each("settle", phase_timeout, quiet=0.5, timeout=60.0)
        rss1 = {p: loadgen.rss_kb(p) for p in server_pids}
        if all(rss0.get(p) and rss1.get(p) for p in server_pids) and server_pids:
            grown = sum(rss1[p] - rss0[p] for p in server_pids)
            out["server_rss_kb"] = {
                "before": sum(rss0.values()),
                "connected": sum(rss1.values()),
                "per_tablet": round(grown / max(1, out["connect"]["connected"]), 1),
            }
        if after_connect is not None:
            after_connect()
            await asyncio.sleep(1.0)

        delivered = 0  # page events every tablet should hold so far (drain waits for them)

        async def flip_phase(n: int, every: float, prof_path: Path | None) -> dict[str, Any]:
            nonlocal delivered, prof
            say(f"flips: {n} every {every} s")
            calibrate_clock()
            await each("calibrate", 30)
            cpu0 = {p: cpu_s(p) for p in server_pids}
            others0 = {k: cpu_s(p) for k, p in (other_pids or {}).items()}
            if prof_path is not None and server_pids:
                prof = Profiler(server_pids[0], prof_path, n * every + 2)
                out["profile"] = str(prof_path) if prof.start() else "py-spy not installed"
            wall0 = time.perf_counter()
            records = await loadgen._present_all(presenter, room, n, every, call_timeout)
            delivered += sum(1 for f in records if f.error is None)
            await each("drain", phase_timeout, expected=delivered, timeout=15.0)
            wall = time.perf_counter() - wall0
            cpu1 = {p: cpu_s(p) for p in server_pids}
            others1 = {k: cpu_s(p) for k, p in (other_pids or {}).items()}
            if prof is not None:
                prof.stop()
                prof = None
            arrivals = await each("arrivals", phase_timeout)
            pages = [tp for r in arrivals for tp in r["pages"]]
            # Pages of an earlier phase are not in this phase's seq map: counted as "unknown", skipped.
            seq_map = loadgen._map_seqs(records, presenter_pages)
            merged = loadgen.analyse_flips(records, seq_map, pages)
            merged["by_entry"] = _by_entry(records, seq_map, arrivals, out["entries"])
            merged["interval_s"] = every
            merged["dropped_connections"] = sum(r["dropped"] for r in arrivals)
            if server_pids and all(cpu0.get(p) is not None and cpu1.get(p) is not None for p in server_pids):
                cpu = sum(cpu1[p] - cpu0[p] for p in server_pids)
                merged["server_cpu_s"] = round(cpu, 2)
                merged["server_cpu_pct"] = round(100 * cpu / wall, 1)
                merged["cpu_us_per_msg"] = round(1e6 * cpu / max(1, merged["received"]), 1)
            merged["other_cpu_pct"] = {
                k: round(100 * (others1[k] - others0[k]) / wall, 1)
                for k in others0
                if others0[k] is not None and others1.get(k) is not None
            }
            merged["loadavg"] = [round(x, 2) for x in os.getloadavg()]
            return merged

        out["flips"] = await flip_phase(flips, interval, profile)
        for n, every in more_flips:
            await asyncio.sleep(1.0)
            out.setdefault("more_flips", []).append(await flip_phase(n, every, None))
        if vote and target in ("ours", "node"):
            say("vote")
            opts = SimpleNamespace(
                call_timeout=call_timeout, quiet=0.5, phase_timeout=phase_timeout, revote_sample=10
            )
            out["vote"] = await loadgen._vote_phase(opts, room, presenter, each, offsets)
    finally:
        if prof is not None:  # a phase failed while py-spy was recording
            prof.stop()
        if presenter is not None:
            with contextlib.suppress(Exception, TimeoutError):
                async with asyncio.timeout(5):
                    await presenter.disconnect()
        for g in groups:
            with contextlib.suppress(Exception, TimeoutError):
                await g.run("close", 60)
        for g in groups:
            await g.stop()
    out["loadavg"] = [round(x, 2) for x in os.getloadavg()]
    return out


def row(r: dict[str, Any]) -> dict[str, Any]:
    """The figures a table shows."""
    f = r.get("flips") or {}
    v = r.get("vote") or {}
    return {
        "tablets": r["tablets"],
        "target": r["target"],
        "connected": (r.get("connect") or {}).get("connected"),
        "connect_p99_ms": (r.get("connect") or {}).get("p99_ms"),
        "p50_ms": f.get("p50_ms"),
        "p99_ms": f.get("p99_ms"),
        "max_ms": f.get("max_ms"),
        "missed": f.get("missed"),
        "out_of_order": f.get("out_of_order"),
        "received": f.get("received"),
        "server_cpu_pct": f.get("server_cpu_pct"),
        "cpu_us_per_msg": f.get("cpu_us_per_msg"),
        "kb_per_tablet": (r.get("server_rss_kb") or {}).get("per_tablet"),
        "vote_acks": v.get("acks"),
        "vote_last_ack_ms": v.get("last_ack_ms"),
        "vote_exact": v.get("count_exact"),
    }
