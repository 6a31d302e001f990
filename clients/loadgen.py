"""Live-room load generator: N tablets follow a presenter's page flips, then vote at once.

    python -m clients.loadgen --url http://127.0.0.1:PORT --target ours|node \\
        --tablets 1000 --flips 100 --interval 0.1 [--vote] [--server-pid PID] [--procs K] [--json]

Talks only the wire contract (contract.md): REST setup through ``clients.api``, the
live room through ``clients.eio``. Phases, each bounded in count and time:

1. setup: a room with N seats (``api.setup_room``), then ``POST /api/v1/join`` per seat;
2. connect: every tablet opens a Socket.IO connection (bounded concurrency), gets ``state``;
3. checkin: every tablet sends ``checkin``; the ``attendance`` storm that follows (one
   broadcast per check-in) is counted, not decoded, and waited out before flips;
4. flips: a presenter (organizer token + meeting_id) sends ``present`` every
   ``--interval`` seconds; each tablet stamps every ``page`` when its frame is read;
5. vote (``--vote``): ``poll.open``, every tablet votes at once, a few vote twice
   (``already_voted``) and resend with the same ballot_id (same receipt), ``poll.close``,
   and the server's count from ``GET /api/v1/polls/{id}``.

Latency is measured on one clock: ``time.perf_counter()`` is CLOCK_MONOTONIC on Linux,
shared by every process on the machine, so with ``--procs K`` the tablets' arrival
stamps in K worker processes compare directly with the presenter's send stamps in the
main process. On a platform where perf_counter is per process, each worker reports a
(wall clock, perf_counter) anchor and its stamps are shifted onto the main clock.

Only loopback targets (127.0.0.0/8, localhost, ::1) are accepted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import resource
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from clients import api
from clients.eio import ConnectError, SioClient, calibrate_clock, require_loopback

perf = time.perf_counter
SHARED_CLOCK = "CLOCK_MONOTONIC" in time.get_clock_info("perf_counter").implementation


def clock_anchor() -> tuple[int, float]:
    """(wall ns, perf s) sampled together; used only when perf_counter is not system-wide."""
    return time.time_ns(), perf()


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def rss_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def proc_cpu_s(pid: int | None) -> float | None:
    """User + system CPU seconds of process ``pid`` so far (from /proc/PID/stat)."""
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def pct(sorted_values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return None
    k = max(0, min(len(sorted_values) - 1, int(round(p / 100 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


def ms(x: float | None) -> float | None:
    return None if x is None else round(x * 1000, 2)


_T0 = perf()
VERBOSE = False
PHASE = "start"


def say(msg: str) -> None:
    """Note the phase; print it on stderr with --verbose."""
    global PHASE
    PHASE = msg
    if VERBOSE:
        print(f"[loadgen {perf() - _T0:7.2f}s] {msg}", file=sys.stderr, flush=True)


def err_name(exc: BaseException) -> str:
    if isinstance(exc, ConnectError):
        data = exc.data if isinstance(exc.data, dict) else {}
        return f"connect_error:{data.get('message', exc)}"
    return type(exc).__name__


# -- tablets -------------------------------------------------------------------------


@dataclass(slots=True)
class Tablet:
    index: int
    token: str
    client: SioClient | None = None
    connect_s: float | None = None
    state_t: float | None = None
    poll_t: float | None = None
    checked_in: bool | None = None  #: what the last ``state`` said
    pages: list[tuple[Any, float, float]] = field(default_factory=list)  #: (seq, t_rx, t_parse)
    other: int = 0


def _on_event(client: SioClient, name: str, data: Any, t: float) -> None:
    tab: Tablet = client.tag
    if name == "page":
        tab.pages.append((data.get("seq") if isinstance(data, dict) else None, client.rx_t, t))
    elif name == "state":
        tab.state_t = t
        me = data.get("me") if isinstance(data, dict) else None
        tab.checked_in = bool(me.get("checked_in")) if isinstance(me, dict) else None
    elif name == "poll":
        if tab.poll_t is None:
            tab.poll_t = t
    else:
        tab.other += 1


class TabletGroup:
    """Tablets driven by one asyncio loop. Each public coroutine is one phase command."""

    IGNORE = frozenset({"attendance"})

    def __init__(self, url: str, tokens: list[tuple[int, str]], call_timeout: float = 30.0):
        self.url = url
        self.tablets = [Tablet(i, tok) for i, tok in tokens]
        self.call_timeout = call_timeout

    def _live(self) -> list[Tablet]:
        return [t for t in self.tablets if t.client is not None and t.client.connected]

    async def hello(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "anchor": clock_anchor(), "shared_clock": SHARED_CLOCK}

    async def calibrate(self) -> int:
        """Refresh the wall-clock offset used for kernel receive stamps."""
        return calibrate_clock()

    async def connect(self, concurrency: int = 50, timeout: float = 30.0) -> dict[str, Any]:
        sem = asyncio.Semaphore(max(1, concurrency))
        errors: Counter[str] = Counter()

        async def one(tab: Tablet) -> None:
            async with sem:
                if _hopeless(errors, len(self._live())):
                    errors["skipped: the first connects all failed"] += 1
                    return
                client = SioClient(_on_event, ignore=self.IGNORE, tag=tab)
                t0 = perf()
                try:
                    await client.connect(self.url, {"token": tab.token}, timeout=timeout)
                except (Exception, TimeoutError) as exc:
                    errors[err_name(exc)] += 1
                    return
                tab.connect_s = perf() - t0
                tab.client = client

        t0 = perf()
        await asyncio.gather(*(one(t) for t in self.tablets))
        return {
            "connected": len(self._live()),
            "failed": sum(errors.values()),
            "errors": dict(errors),
            "seconds": perf() - t0,
            "connect_s": [t.connect_s for t in self.tablets if t.connect_s is not None],
        }

    async def precheckin(self, concurrency: int = 20, timeout: float = 30.0) -> dict[str, Any]:
        """Check every tablet in over its own short-lived connection, before the room fills up,
        so that each ``attendance`` broadcast reaches at most ``concurrency`` clients."""
        sem = asyncio.Semaphore(max(1, concurrency))
        errors: Counter[str] = Counter()

        done = 0

        async def one(tab: Tablet) -> None:
            nonlocal done
            async with sem:
                if _hopeless(errors, done):
                    errors["skipped: the first check-ins all failed"] += 1
                    return
                client = SioClient(lambda *_: None, ignore=self.IGNORE)
                try:
                    await client.connect(self.url, {"token": tab.token}, timeout=timeout)
                    ack = await client.call("checkin", {}, timeout=timeout)
                    if isinstance(ack, dict) and ack.get("ok"):
                        done += 1
                    else:
                        errors[_ack_code(ack)] += 1
                except (Exception, TimeoutError) as exc:
                    errors[err_name(exc)] += 1
                finally:
                    await client.disconnect()

        t0 = perf()
        await asyncio.gather(*(one(t) for t in self.tablets))
        return {
            "ok": len(self.tablets) - sum(errors.values()),
            "errors": dict(errors),
            "seconds": perf() - t0,
        }

    async def checkin(self, concurrency: int = 100) -> dict[str, Any]:
        sem = asyncio.Semaphore(max(1, concurrency))
        errors: Counter[str] = Counter()
        last_ack = 0.0

        async def one(tab: Tablet) -> None:
            nonlocal last_ack
            async with sem:
                try:
                    ack, _, t_ack = await tab.client.call_timed("checkin", {}, timeout=self.call_timeout)
                except (Exception, TimeoutError) as exc:
                    errors[err_name(exc)] += 1
                    return
                if isinstance(ack, dict) and ack.get("ok"):
                    last_ack = max(last_ack, t_ack)
                else:
                    errors[_ack_code(ack)] += 1

        t0 = perf()
        live = self._live()
        await asyncio.gather(*(one(t) for t in live))
        return {
            "ok": len(live) - sum(errors.values()),
            "errors": dict(errors),
            "t0": t0,
            "last_ack": last_ack,
        }

    def _received(self) -> int:
        return sum(t.client.received for t in self.tablets if t.client is not None)

    async def settle(self, quiet: float = 0.5, timeout: float = 60.0) -> dict[str, Any]:
        """Wait until no tablet has read a frame for ``quiet`` seconds (or ``timeout``)."""
        t0 = perf()
        last, since = self._received(), perf()
        while perf() - t0 < timeout:
            await asyncio.sleep(0.05)
            now = self._received()
            if now != last:
                last, since = now, perf()
            elif perf() - since >= quiet:
                break
        return {
            "seconds": perf() - t0,
            "received": last,
            "ignored": sum(t.client.ignored for t in self.tablets if t.client is not None),
            "state": sum(1 for t in self.tablets if t.state_t is not None),
            "state_checked_in": sum(1 for t in self.tablets if t.checked_in),
            "settled": perf() - since >= quiet,
        }

    async def drain(self, expected: int, timeout: float = 10.0) -> dict[str, Any]:
        """Wait until every live tablet has read ``expected`` page events (or ``timeout``)."""
        t0 = perf()
        while perf() - t0 < timeout:
            if all(len(t.pages) >= expected for t in self._live()):
                break
            await asyncio.sleep(0.02)
        return {"seconds": perf() - t0}

    async def vote(self, poll_id: Any, options: int = 3) -> dict[str, Any]:
        errors: Counter[str] = Counter()
        acks: list[tuple[int, float, float, str | None]] = []  # index, t_sent, t_ack, receipt

        async def one(tab: Tablet) -> None:
            body = {"poll_id": poll_id, "choices": [tab.index % options], "ballot_id": f"b-{tab.index}"}
            try:
                ack, t_sent, t_ack = await tab.client.call_timed("vote", body, timeout=self.call_timeout)
            except (Exception, TimeoutError) as exc:
                errors[err_name(exc)] += 1
                return
            if isinstance(ack, dict) and ack.get("ok"):
                acks.append((tab.index, t_sent, t_ack, ack.get("receipt")))
            else:
                errors[_ack_code(ack)] += 1

        live = self._live()
        await asyncio.gather(*(one(t) for t in live))
        return {
            "acks": acks,
            "errors": dict(errors),
            "poll_seen": sum(1 for t in live if t.poll_t is not None),
            "poll_t": [t.poll_t for t in live if t.poll_t is not None],
        }

    async def revote(self, poll_id: Any, indexes: list[int], receipts: dict[int, str]) -> dict[str, Any]:
        """A second vote (new ballot_id) must be refused; a resend (same ballot_id) gets the same receipt."""
        by_index = {t.index: t for t in self._live()}
        second: Counter[str] = Counter()
        resend_same = resend_total = 0
        for i in indexes:
            tab = by_index.get(i)
            if tab is None:
                continue
            body = {"poll_id": poll_id, "choices": [0], "ballot_id": f"second-{i}"}
            try:
                ack = await tab.client.call("vote", body, timeout=self.call_timeout)
                second[_ack_code(ack)] += 1
            except (Exception, TimeoutError) as exc:
                second[err_name(exc)] += 1
            if i in receipts:
                resend_total += 1
                body = {"poll_id": poll_id, "choices": [i % 3], "ballot_id": f"b-{i}"}
                with contextlib.suppress(Exception, TimeoutError):
                    ack = await tab.client.call("vote", body, timeout=self.call_timeout)
                    resend_same += bool(isinstance(ack, dict) and ack.get("receipt") == receipts[i])
        return {"second": dict(second), "resend_same": resend_same, "resend_total": resend_total}

    async def arrivals(self) -> dict[str, Any]:
        live = self._live()
        return {
            "pages": [t.pages for t in live],
            "live": len(live),
            "dropped": sum(1 for t in self.tablets if t.client is not None and not t.client.connected),
            "cpu_s": cpu_seconds(),
        }

    async def close(self) -> dict[str, Any]:
        clients = [t.client for t in self.tablets if t.client is not None]
        sem = asyncio.Semaphore(200)

        async def one(c: SioClient) -> None:
            async with sem:
                with contextlib.suppress(Exception, TimeoutError):
                    async with asyncio.timeout(5):
                        await c.disconnect()

        await asyncio.gather(*(one(c) for c in clients))
        return {"closed": len(clients), "cpu_s": cpu_seconds()}


def _hopeless(errors: Counter[str], successes: int) -> bool:
    """Stop trying once the first 10 attempts all failed: the server is not taking tablets."""
    return successes == 0 and sum(errors.values()) >= 10


def _ack_code(ack: Any) -> str:
    if isinstance(ack, dict):
        if ack.get("ok"):
            return "ok"
        err = ack.get("error")
        if isinstance(err, dict) and err.get("code"):
            return str(err["code"])
    return "bad_ack"


class LocalGroup:
    def __init__(self, group: TabletGroup):
        self.group = group

    async def run(self, cmd: str, limit: float, /, **kw: Any) -> Any:
        async with asyncio.timeout(limit):
            return await getattr(self.group, cmd)(**kw)

    async def stop(self) -> None:
        return None


class RemoteGroup:
    """A TabletGroup in a worker process, driven over a pipe (one command at a time)."""

    def __init__(self, url: str, tokens: list[tuple[int, str]], call_timeout: float):
        ctx = multiprocessing.get_context("spawn")  # never fork a process that has an event loop
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, url, tokens, call_timeout), daemon=True)
        self.proc.start()
        child.close()

    async def run(self, cmd: str, limit: float, /, **kw: Any) -> Any:
        self.conn.send((cmd, kw))
        ready = await asyncio.get_running_loop().run_in_executor(None, self.conn.poll, limit)
        if not ready:
            raise TimeoutError(f"worker {self.proc.pid} did not answer {cmd!r} in {limit:.0f} s")
        status, result = self.conn.recv()
        if status != "ok":
            raise RuntimeError(f"worker {self.proc.pid} failed {cmd!r}: {result}")
        return result

    async def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.send(("exit", {}))
        await asyncio.get_running_loop().run_in_executor(None, self.proc.join, 5)
        if self.proc.is_alive():
            self.proc.kill()  # by pid: this process is ours
            self.proc.join(2)
        self.conn.close()


def _worker_main(conn: Any, url: str, tokens: list[tuple[int, str]], call_timeout: float) -> None:
    raise_fd_limit()

    async def serve() -> None:
        group = TabletGroup(url, tokens, call_timeout)
        loop = asyncio.get_running_loop()
        try:
            while True:
                cmd, kw = await loop.run_in_executor(None, conn.recv)
                if cmd == "exit":
                    break
                try:
                    result = ("ok", await getattr(group, cmd)(**kw))
                except Exception as exc:  # reported to the parent, which decides
                    result = ("error", repr(exc))
                conn.send(result)
        finally:
            await group.close()

    try:
        asyncio.run(serve())
    except (EOFError, KeyboardInterrupt):
        pass


# -- the run --------------------------------------------------------------------------


@dataclass
class Flip:
    k: int
    page: int
    t_send: float = 0.0
    t_ack: float | None = None
    seq: Any = None
    error: str | None = None


async def _present_all(
    presenter: SioClient, room: api.Room, flips: int, interval: float, timeout: float
) -> list[Flip]:
    records = [Flip(k, (k % room.page_count) + 1) for k in range(flips)]

    async def one(f: Flip) -> None:
        body = {"document_id": room.document_id, "page": f.page}
        try:
            ack, f.t_send, f.t_ack = await presenter.call_timed("present", body, timeout=timeout)
        except (Exception, TimeoutError) as exc:
            f.error = err_name(exc)
            return
        if isinstance(ack, dict) and ack.get("ok"):
            seq = ack.get("seq")
            if seq is None and isinstance(ack.get("page"), dict):
                seq = ack["page"].get("seq")
            f.seq = seq
        else:
            f.error = _ack_code(ack)

    start = perf()
    pending = []
    for f in records:
        delay = start + f.k * interval - perf()
        if delay > 0:
            await asyncio.sleep(delay)
        pending.append(asyncio.ensure_future(one(f)))
    await asyncio.gather(*pending)
    return records


def _map_seqs(records: list[Flip], presenter_pages: list[tuple[Any, int, float]]) -> dict[Any, Flip]:
    """seq -> flip. From the ack when it carries ``seq``; otherwise match the presenter's own
    ``page`` events to the oldest unmatched flip of the same page sent before it arrived."""
    by_seq = {f.seq: f for f in records if f.seq is not None}
    unmatched = [f for f in records if f.seq is None and f.error is None]
    for seq, page, t in sorted(presenter_pages, key=lambda x: x[2]):
        if seq in by_seq:
            continue
        for f in unmatched:
            if f.page == page and f.t_send <= t:
                f.seq = seq
                by_seq[seq] = f
                unmatched.remove(f)
                break
    return by_seq


def analyse_flips(
    records: list[Flip], seq_map: dict[Any, Flip], pages: list[list[tuple[Any, float, float]]]
) -> dict[str, Any]:
    """Latency per delivery (flip sent -> kernel receive at a tablet, and -> parsed by the
    client), per flip (-> last tablet), missed, out-of-order and duplicate pages."""
    lat: list[float] = []
    read: list[float] = []
    last_per_flip: dict[Any, float] = {}
    received = out_of_order = duplicates = unknown = 0
    for tablet_pages in pages:
        seen: set[Any] = set()
        high = None
        for seq, t_rx, t_parse in tablet_pages:
            f = seq_map.get(seq)
            if f is None:
                unknown += 1
                continue
            if seq in seen:
                duplicates += 1
                continue
            seen.add(seq)
            if high is not None and seq < high:
                out_of_order += 1
            high = seq if high is None or seq > high else high
            received += 1
            d = t_rx - f.t_send
            lat.append(d)
            read.append(t_parse - f.t_send)
            if d > last_per_flip.get(seq, -1.0):
                last_per_flip[seq] = d
    lat.sort()
    read.sort()
    fan = sorted(last_per_flip.values())
    ok = [f for f in records if f.error is None]
    expected = len(ok) * len(pages)
    acks = sorted(f.t_ack - f.t_send for f in ok if f.t_ack is not None)
    return {
        "sent": len(records),
        "acked": len(ok),
        "errors": dict(Counter(f.error for f in records if f.error)),
        "mapped": len(seq_map),
        "expected": expected,
        "received": received,
        "missed": expected - received,
        "out_of_order": out_of_order,
        "duplicates": duplicates,
        "unknown": unknown,
        "p50_ms": ms(pct(lat, 50)),
        "p95_ms": ms(pct(lat, 95)),
        "p99_ms": ms(pct(lat, 99)),
        "max_ms": ms(lat[-1] if lat else None),
        "fanout_p50_ms": ms(pct(fan, 50)),
        "fanout_max_ms": ms(fan[-1] if fan else None),
        "read_p50_ms": ms(pct(read, 50)),
        "read_p99_ms": ms(pct(read, 99)),
        "read_max_ms": ms(read[-1] if read else None),
        "ack_p50_ms": ms(pct(acks, 50)),
        "ack_max_ms": ms(acks[-1] if acks else None),
    }


async def run(opts: argparse.Namespace, out: dict[str, Any]) -> dict[str, Any]:
    """Run every phase, filling ``out`` as it goes (so a failure still leaves partial results)."""
    require_loopback(opts.url)
    url = opts.url.rstrip("/")
    out.update(target=opts.target, url=url, tablets=opts.tablets, procs=opts.procs)
    out["flips_requested"] = opts.flips
    out["interval_s"] = opts.interval
    out["clock"] = (
        "perf_counter shared (CLOCK_MONOTONIC)" if SHARED_CLOCK else "perf_counter + wall-clock anchors"
    )
    out["loadavg_start"] = [round(x, 2) for x in os.getloadavg()]
    cpu0, wall0 = cpu_seconds(), perf()
    loop = asyncio.get_running_loop()

    # 1. setup and join
    say("setup")
    room = await loop.run_in_executor(
        None,
        lambda: api.setup_room(
            url, opts.tablets, opts.target, opts.username, opts.password, threads=opts.http_threads
        ),
    )
    out["setup_s"] = round(room.setup_seconds, 3)
    t0 = perf()
    joined = await loop.run_in_executor(
        None, lambda: api.join_many(url, room.join_tokens, threads=opts.http_threads)
    )
    out["join_s"] = round(perf() - t0, 3)
    sessions = [(i, j["session_token"]) for i, j in enumerate(joined)]

    # 2. tablet groups
    groups: list[LocalGroup | RemoteGroup] = []
    presenter: SioClient | None = None
    presenter_pages: list[tuple[Any, int, float]] = []
    try:
        if opts.procs <= 1:
            groups.append(LocalGroup(TabletGroup(url, sessions, opts.call_timeout)))
        else:
            for p in range(opts.procs):
                groups.append(RemoteGroup(url, sessions[p :: opts.procs], opts.call_timeout))
        offsets = []
        for g in groups:
            hello = await g.run("hello", 60)
            if SHARED_CLOCK and hello["shared_clock"]:
                offsets.append(0.0)
            else:  # shift the worker's perf stamps onto ours through the wall clock
                wall_w, perf_w = hello["anchor"]
                wall_m, perf_m = clock_anchor()
                offsets.append((perf_m - wall_m / 1e9) - (perf_w - wall_w / 1e9))

        rss_before = rss_kb(opts.server_pid) if opts.server_pid else None

        async def each(cmd: str, limit: float, /, **kw: Any) -> list[Any]:
            return await asyncio.gather(*(g.run(cmd, limit, **kw) for g in groups))

        pre = None
        if opts.checkin == "quiet":
            say("check in one by one")
            res = await each("precheckin", opts.phase_timeout, concurrency=20, timeout=opts.call_timeout)
            errors = Counter()
            for r in res:
                errors.update(r["errors"])
            pre = {"ok": sum(r["ok"] for r in res), "errors": dict(errors)}
            pre["seconds"] = round(max(r["seconds"] for r in res), 3)

        # 3. connect
        say("connect")
        res = await each(
            "connect", opts.phase_timeout, concurrency=opts.connect_concurrency, timeout=opts.call_timeout
        )
        connect_s = sorted(x for r in res for x in r["connect_s"])
        errors: Counter[str] = Counter()
        for r in res:
            errors.update(r["errors"])
        connected = sum(r["connected"] for r in res)
        out["connect"] = {
            "connected": connected,
            "failed": sum(r["failed"] for r in res),
            "errors": dict(errors),
            "seconds": round(max(r["seconds"] for r in res), 3),
            "p50_ms": ms(pct(connect_s, 50)),
            "p99_ms": ms(pct(connect_s, 99)),
            "max_ms": ms(connect_s[-1] if connect_s else None),
        }
        presenter = SioClient(
            lambda c, name, data, t: (
                presenter_pages.append((data.get("seq"), data.get("page"), t))
                if name == "page" and isinstance(data, dict)
                else None
            ),
            ignore=TabletGroup.IGNORE,
        )
        await presenter.connect(url, room.presenter_auth(), timeout=opts.call_timeout)
        settle = await each("settle", opts.phase_timeout, quiet=0.3, timeout=30.0)
        out["connect"]["state"] = sum(s["state"] for s in settle)
        rss_connected = rss_kb(opts.server_pid) if opts.server_pid else None
        out["server_rss_kb"] = {"before": rss_before, "connected": rss_connected}
        if rss_before and rss_connected and connected:
            out["server_rss_kb"]["per_tablet"] = round((rss_connected - rss_before) / connected, 1)
        if opts.target == "node":
            with contextlib.suppress(Exception):
                out["node_mem"] = await loop.run_in_executor(None, api.node_mem, url)

        # 4. checkin, then wait out the attendance broadcasts
        say("checkin")
        if opts.checkin == "storm":
            t_go = perf()
            res = await each("checkin", opts.phase_timeout, concurrency=opts.checkin_concurrency)
            errors = Counter()
            for r in res:
                errors.update(r["errors"])
            last = max(
                (r["last_ack"] + off for r, off in zip(res, offsets, strict=True) if r["last_ack"]),
                default=None,
            )
            settle = await each("settle", opts.phase_timeout, quiet=opts.quiet, timeout=opts.settle_timeout)
            out["checkin"] = {
                "mode": "storm",
                "ok": sum(r["ok"] for r in res),
                "errors": dict(errors),
                "last_ack_s": None if last is None else round(last - t_go, 3),
                "settle_s": round(perf() - t_go, 3),
                "settled": all(s["settled"] for s in settle),
                "attendance_events": sum(s["ignored"] for s in settle),
            }
        elif pre is not None:
            out["checkin"] = {
                "mode": "quiet",
                **pre,
                "state_checked_in": sum(s["state_checked_in"] for s in settle),
            }
        if opts.server_pid:
            out["server_rss_kb"]["checked_in"] = rss_kb(opts.server_pid)

        # 5. flips
        say("flips")
        if opts.flips > 0:
            calibrate_clock()
            await each("calibrate", 30)
            cpu_f, wall_f, srv_f = cpu_seconds(), perf(), proc_cpu_s(opts.server_pid)
            records = await _present_all(presenter, room, opts.flips, opts.interval, opts.call_timeout)
            acked = sum(1 for f in records if f.error is None)
            await each("drain", opts.phase_timeout, expected=acked, timeout=opts.drain)
            arrivals = await each("arrivals", opts.phase_timeout)
            seq_map = _map_seqs(records, presenter_pages)
            pages = []
            for r, off in zip(arrivals, offsets, strict=True):
                if off:
                    r["pages"] = [[(s, t + off, u + off) for s, t, u in tp] for tp in r["pages"]]
                pages.extend(r["pages"])
            merged = analyse_flips(records, seq_map, pages)
            merged["dropped_connections"] = sum(r["dropped"] for r in arrivals)
            merged["main_cpu_pct"] = round(100 * (cpu_seconds() - cpu_f) / max(1e-9, perf() - wall_f), 1)
            srv = proc_cpu_s(opts.server_pid)
            if srv is not None and srv_f is not None and merged["received"]:
                merged["server_cpu_pct"] = round(100 * (srv - srv_f) / max(1e-9, perf() - wall_f), 1)
                # CPU per delivered page: far less sensitive than latency to other load on the machine
                merged["server_cpu_us_per_page"] = round(1e6 * (srv - srv_f) / merged["received"], 1)
            out["flips"] = merged

        # 6. vote
        say("vote")
        if opts.vote:
            out["vote"] = await _vote_phase(opts, room, presenter, each, offsets)
    finally:
        if presenter is not None:
            with contextlib.suppress(Exception, TimeoutError):
                async with asyncio.timeout(5):
                    await presenter.disconnect()
        closing = []
        for g in groups:
            with contextlib.suppress(Exception, TimeoutError):
                closing.append(await g.run("close", 60))
        for g in groups:
            await g.stop()
    out["client_cpu_s"] = round(cpu_seconds() - cpu0 + sum(c["cpu_s"] for c in closing if opts.procs > 1), 2)
    out["wall_s"] = round(perf() - wall0, 2)
    return out


async def _vote_phase(opts, room, presenter, each, offsets) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    try:
        ack = await presenter.call("poll.open", {"poll_id": room.poll_id}, timeout=opts.call_timeout)
    except (Exception, TimeoutError) as exc:
        return {"error": f"poll.open failed: {err_name(exc)}"}
    if not (isinstance(ack, dict) and ack.get("ok")):
        return {"error": f"poll.open refused: {ack}"}
    await asyncio.sleep(opts.quiet)  # let the `poll` broadcast land before the ballots go out
    t_go = perf()
    res = await each("vote", opts.phase_timeout, poll_id=room.poll_id)
    acks = []
    errors: Counter[str] = Counter()
    for r, off in zip(res, offsets, strict=True):
        acks.extend((i, s + off, a + off, rc) for i, s, a, rc in r["acks"])
        errors.update(r["errors"])
    receipts = {i: rc for i, _, _, rc in acks if isinstance(rc, str) and rc}
    ack_times = sorted(a - s for _, s, a, _ in acks)
    expected_tally = [0, 0, 0]
    for i, *_ in acks:
        expected_tally[i % 3] += 1
    out: dict[str, Any] = {
        "acks": len(acks),
        "receipts": len(receipts),
        "unique_receipts": len(set(receipts.values())),
        "errors": dict(errors),
        "last_ack_ms": ms(max((a for _, _, a, _ in acks), default=t_go) - t_go),
        "ack_p50_ms": ms(pct(ack_times, 50)),
        "ack_p99_ms": ms(pct(ack_times, 99)),
        "poll_seen": sum(r["poll_seen"] for r in res),
    }
    sample = sorted(receipts)[: opts.revote_sample]
    rv = await each("revote", opts.phase_timeout, poll_id=room.poll_id, indexes=sample, receipts=receipts)
    second: Counter[str] = Counter()
    for r in rv:
        second.update(r["second"])
    out["second_vote"] = dict(second)
    out["resend_same_receipt"] = f"{sum(r['resend_same'] for r in rv)}/{sum(r['resend_total'] for r in rv)}"
    try:
        ack = await presenter.call("poll.close", {"poll_id": room.poll_id}, timeout=opts.call_timeout)
    except (Exception, TimeoutError) as exc:
        ack = {"error": err_name(exc)}
    out["closed"] = bool(isinstance(ack, dict) and ack.get("ok"))
    try:
        poll = await loop.run_in_executor(
            None, api.get_poll, room.base_url, room.organizer_token, room.poll_id
        )
    except Exception as exc:  # reported, not fatal: the flips are already measured
        poll = {"error": repr(exc)}
    out["server_voted"] = poll.get("voted")
    out["server_tally"] = poll.get("tally")
    out["expected_tally"] = expected_tally
    out["count_exact"] = poll.get("voted") == len(acks) and (
        poll.get("tally") is None or list(poll.get("tally")) == expected_tally
    )
    return out


# -- CLI ----------------------------------------------------------------------------------


def _fmt(x: Any, unit: str = "") -> str:
    return "-" if x is None else f"{x}{unit}"


def render(r: dict[str, Any]) -> str:
    lines = [
        f"target {r.get('target')}  {r.get('url')}  tablets {r.get('tablets')}  procs {r.get('procs')}"
        f"  clock: {r.get('clock')}"
    ]
    row = lines.append
    if r.get("error"):
        row(f"  ERROR        {r['error']}")
    row(f"  setup        {r.get('setup_s')} s   join {r.get('join_s')} s")
    c = r.get("connect")
    if c:
        row(
            f"  connect      {c['connected']}/{r['tablets']} in {c['seconds']} s   p50 {_fmt(c['p50_ms'], ' ms')}"
            f"   p99 {_fmt(c['p99_ms'], ' ms')}   max {_fmt(c['max_ms'], ' ms')}   state {c.get('state')}"
            + (f"   errors {c['errors']}" if c["errors"] else "")
        )
    k = r.get("checkin")
    if k and k.get("mode") == "quiet":
        row(
            f"  checkin      one by one before connecting: {k['ok']} ok in {k['seconds']} s,"
            f" state says checked in: {k['state_checked_in']}"
            + (f"   errors {k['errors']}" if k["errors"] else "")
        )
    elif k:
        row(
            f"  checkin      {k['ok']} ok, last ack {_fmt(k['last_ack_s'], ' s')}, attendance events"
            f" {k['attendance_events']} settled in {k['settle_s']} s"
            + (f"   errors {k['errors']}" if k["errors"] else "")
        )
    f = r.get("flips")
    if f:
        row(
            f"  flips        {f['acked']}/{f['sent']} acked every {r['interval_s']} s; present ack"
            f" p50 {_fmt(f['ack_p50_ms'])} max {_fmt(f['ack_max_ms'])} ms; CPU: loadgen {f.get('main_cpu_pct')} %,"
            f" server {_fmt(f.get('server_cpu_pct'), ' %')} ({_fmt(f.get('server_cpu_us_per_page'), ' µs')} per page delivered)"
            + (f"  errors {f['errors']}" if f["errors"] else "")
        )
        row(
            f"  flip latency p50 {_fmt(f['p50_ms'])}  p95 {_fmt(f['p95_ms'])}  p99 {_fmt(f['p99_ms'])}"
            f"  max {_fmt(f['max_ms'])} ms  (send -> kernel receive at each tablet)"
        )
        row(
            f"  read by us   p50 {_fmt(f['read_p50_ms'])}  p99 {_fmt(f['read_p99_ms'])}  max {_fmt(f['read_max_ms'])} ms"
            f"  (send -> parsed by this client; the gap is client lag)"
        )
        row(
            f"  fan-out      last tablet per flip: p50 {_fmt(f['fanout_p50_ms'])}  max {_fmt(f['fanout_max_ms'])} ms"
        )
        row(
            f"  delivery     missed {f['missed']} of {f['expected']}  out-of-order {f['out_of_order']}"
            f"  duplicates {f['duplicates']}  dropped connections {f['dropped_connections']}"
        )
    v = r.get("vote")
    if v:
        if "error" in v:
            row(f"  vote         {v['error']}")
        else:
            row(
                f"  vote         {v['acks']} acks, {v['receipts']} receipts ({v['unique_receipts']} unique),"
                f" last ack {v['last_ack_ms']} ms, p99 {v['ack_p99_ms']} ms"
                + (f"  errors {v['errors']}" if v["errors"] else "")
            )
            row(f"  second vote  {v['second_vote']}   resend same receipt {v['resend_same_receipt']}")
            row(
                f"  count        server voted {v['server_voted']} tally {v['server_tally']}"
                f" expected {v['expected_tally']}  exact {'yes' if v['count_exact'] else 'NO'}"
            )
    m = r.get("server_rss_kb") or {}
    if m.get("before"):
        row(
            f"  server RSS   before {m['before']} KB  connected {m.get('connected')} KB  checked in {m.get('checked_in')} KB"
            f"  -> {_fmt(m.get('per_tablet'))} KB/tablet"
        )
    row(
        f"  client       {r.get('client_cpu_s')} s CPU over {r.get('wall_s')} s wall;"
        f" load average at start {r.get('loadavg_start')}"
    )
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m clients.loadgen", description=__doc__.split("\n")[0])
    p.add_argument("--url", required=True, help="server base URL, loopback only (http://127.0.0.1:PORT)")
    p.add_argument("--target", choices=("ours", "node"), default="ours")
    p.add_argument("--tablets", type=int, default=100)
    p.add_argument("--flips", type=int, default=100)
    p.add_argument("--interval", type=float, default=0.1, help="seconds between flips")
    p.add_argument("--vote", action="store_true", help="open a poll and have every tablet vote at once")
    p.add_argument(
        "--server-pid", type=int, help="report this process's RSS (VmRSS) before and after connecting"
    )
    p.add_argument("--procs", type=int, default=1, help="split tablets across K worker processes")
    p.add_argument("--username", default=os.environ.get("BENCH_USERNAME", "bench"))
    p.add_argument("--password", default=os.environ.get("BENCH_PASSWORD", "bench-password"))
    p.add_argument(
        "--checkin",
        choices=("storm", "quiet", "none"),
        default="storm",
        help="storm: every connected tablet checks in (one attendance broadcast each, N*N frames);"
        " quiet: each checks in alone before the room fills up; none: no check-in (no vote either)",
    )
    p.add_argument("--connect-concurrency", type=int, default=50)
    p.add_argument("--checkin-concurrency", type=int, default=100)
    p.add_argument(
        "--http-threads", type=int, default=8, help="concurrent HTTP requests during setup and join"
    )
    p.add_argument("--call-timeout", type=float, default=30.0, help="seconds to wait for one connect or ack")
    p.add_argument("--phase-timeout", type=float, default=240.0, help="seconds one phase may take")
    p.add_argument(
        "--settle-timeout", type=float, default=120.0, help="seconds to wait out the attendance storm"
    )
    p.add_argument("--quiet", type=float, default=0.5, help="seconds without frames that count as settled")
    p.add_argument(
        "--drain", type=float, default=10.0, help="seconds to wait for the last pages after the last flip"
    )
    p.add_argument(
        "--revote-sample", type=int, default=10, help="tablets that try a second vote and a resend"
    )
    p.add_argument("--timeout", type=float, default=300.0, help="overall time limit, seconds")
    p.add_argument("--verbose", "-v", action="store_true", help="print each phase as it starts, on stderr")
    p.add_argument(
        "--json", action="store_true", help="print one JSON line on stdout (the table goes to stderr)"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    global VERBOSE
    opts = parser().parse_args(argv)
    VERBOSE = opts.verbose
    try:
        require_loopback(opts.url)
    except ValueError as exc:
        print(f"loadgen: {exc}", file=sys.stderr)
        return 2
    if not (
        1 <= opts.tablets <= 20000 and 0 <= opts.flips <= 100000 and opts.interval >= 0 and opts.procs >= 1
    ):
        print(
            "loadgen: --tablets 1..20000, --flips 0..100000, --interval >= 0, --procs >= 1", file=sys.stderr
        )
        return 2
    raise_fd_limit()

    out: dict[str, Any] = {}

    async def bounded() -> None:
        cm = asyncio.timeout(opts.timeout)
        try:
            async with cm:
                await run(opts, out)
        except TimeoutError:
            if not cm.expired():
                raise
            out["error"] = f"overall timeout of {opts.timeout:.0f} s reached during {PHASE}"

    try:
        asyncio.run(bounded())
    except Exception as exc:  # report what was measured before the failure, then fail
        out["error"] = f"{PHASE}: {err_name(exc)}: {exc}"[:1000]
    if "error" in out:
        print(f"loadgen: {out['error']}", file=sys.stderr, flush=True)
    print(render(out), file=sys.stderr if opts.json else sys.stdout, flush=True)
    if opts.json:
        print(json.dumps(out, ensure_ascii=False), flush=True)
    return 1 if "error" in out else 0


if __name__ == "__main__":
    sys.exit(main())
