"""Benchmark: N tablets vote at once; time until the last durable ack.

    .venv/bin/python tests/bench/bench_vote.py [--tablets 1000] [--runs 3] [--no-node] [--json FILE]
        [--profile DIR]

For each target, in the same run:

* ``ours``: a real ``meeting-server serve`` (eventlet, SQLite file in a temporary data dir,
  no worker), set up over the REST contract. Each run opens a fresh secret motion, every
  tablet sends ``vote`` at once, and the clock stops at the last ack (kernel receive time
  of its bytes). An ack means the ballot is committed (WAL). Then the poll is closed and
  the server's tally compared with what was sent.
* ``node``: the in-memory Socket.IO reference in ``clients/node_ref`` (when it and ``node``
  exist): the same burst, counting in memory, nothing written anywhere.

Tablets are ``clients.eio.SioClient`` connections, all in this process, on loopback
(tests/voting/crowd.py). Seats are checked in beforehand (ours: by staff over HTTP; node:
over short-lived connections) so that no ``attendance`` storm is in flight during the
burst. Not collected by pytest; prints figures for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from clients import api  # noqa: E402
from clients.loadgen import raise_fd_limit  # noqa: E402
from tests.voting import crowd  # noqa: E402


def expected_tally(acks: list) -> list[int]:
    out = [0, 0, 0]
    for i, a in enumerate(acks):
        if isinstance(a, dict) and a.get("ok"):
            out[i % 3] += 1
    return out


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def summary(res: dict) -> dict:
    return {k: v for k, v in res.items() if k != "acks"}


# -- ours ----------------------------------------------------------------------------------


class Profiler:
    """py-spy (PyPI) sampling the server during each burst only (`--profile DIR`): raw collapsed stacks."""

    def __init__(self, out_dir: str | None, pid: int):
        self.out_dir, self.pid, self.proc = out_dir, pid, None

    def start(self, name: str) -> None:
        if not self.out_dir:
            return
        exe = Path(sys.executable).with_name("py-spy")
        Path(self.out_dir).mkdir(parents=True, exist_ok=True)
        out = Path(self.out_dir) / f"{name}.txt"
        self.proc = subprocess.Popen([str(exe), "record", "-p", str(self.pid), "-r", "500", "-f", "raw",
                                      "--nolineno", "-o", str(out)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)  # fmt: skip
        time.sleep(0.5)  # py-spy attaches

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None


def run_ours(n: int, runs: int, show_log: bool = False, profile: str | None = None) -> dict:
    from tests.live.server import ORG_PASSWORD, ORG_USER, LiveServer

    tmp = Path(tempfile.mkdtemp(prefix="bench-vote-"))
    srv = LiveServer(tmp / "data")
    out: dict = {"target": "meeting-server (eventlet, SQLite WAL)", "tablets": n, "runs": []}
    try:
        srv.prepare().start()
        token = srv.login(ORG_USER, ORG_PASSWORD)
        room = crowd.setup(srv, n, token, "表决基准 Vote bench")
        polls = [
            srv.ok("POST", f"/api/v1/meetings/{room.meeting_id}/polls",
                   {"title": f"Motion {r + 1}", "kind": "motion", "secret": True}, token, 201)["id"]
            for r in range(runs)
        ]  # fmt: skip

        async def main():
            clients = await crowd.connect_all(srv.url, room.sessions)
            try:
                prof = Profiler(profile, srv.proc.pid)
                for r, pid in enumerate(polls):
                    srv.ok("POST", f"/api/v1/polls/{pid}/open", {}, token)
                    await asyncio.sleep(1.0)  # let the `poll` broadcast land
                    prof.start(f"ours-{r + 1}")
                    cpu0 = cpu_s(srv.proc.pid)
                    res = await crowd.burst(clients, [crowd.ballot(pid, i) for i in range(n)])
                    res["server_cpu_ms"] = round((cpu_s(srv.proc.pid) - cpu0) * 1000)
                    prof.stop()
                    got = srv.ok("GET", f"/api/v1/polls/{pid}", None, token)
                    closed = srv.ok("POST", f"/api/v1/polls/{pid}/close", {}, token)
                    res = summary(res) | {
                        "load": round(os.getloadavg()[0], 1),
                        "server_voted_after_last_ack": got["voted"],
                        "server_tally": closed["tally"],
                        "expected_tally": expected_tally(res["acks"]),
                    }
                    res["exact"] = res["server_tally"] == res["expected_tally"] and got["voted"] == res["ok"]
                    out["runs"].append(res)
                    print(json.dumps({"ours": res}), flush=True)
                    await asyncio.sleep(0.5)
            finally:
                await crowd.close_all(clients)

        asyncio.run(main())
    finally:
        srv.stop()
        if show_log:
            print(srv.log(), file=sys.stderr)
        shutil.rmtree(tmp, ignore_errors=True)
    return out


# -- node reference --------------------------------------------------------------------------


async def checkin_quietly(url: str, sessions: list[str], chunk: int = 50) -> None:
    """(node: no staff check-in route) check in over short-lived connections, so broadcasts reach few clients."""
    for i in range(0, len(sessions), chunk):
        group = await crowd.connect_all(url, sessions[i : i + chunk])
        acks = await asyncio.gather(*(c.call("checkin", {}, timeout=60) for c in group))
        assert all(isinstance(a, dict) and a.get("ok") for a in acks), acks[:3]
        await crowd.close_all(group)


def run_node(n: int, runs: int) -> dict | None:
    node = shutil.which("node")
    script = REPO / "clients" / "node_ref" / "server.js"
    if not node or not script.exists() or not (script.parent / "node_modules").exists():
        return None
    proc = subprocess.Popen([node, str(script), "--host", "127.0.0.1", "--port", "0"], stdout=subprocess.PIPE,
                            text=True, start_new_session=True)  # fmt: skip
    out: dict = {"target": "Node.js socket.io reference (in memory)", "tablets": n, "runs": []}
    try:
        url = json.loads(proc.stdout.readline())["listening"]
        for _ in range(runs):
            room = api.setup_room(url, n, "node")
            sessions = [j["session_token"] for j in api.join_many(url, room.join_tokens)]

            async def main(room=room, sessions=sessions):
                await checkin_quietly(url, sessions)
                clients = await crowd.connect_all(url, sessions)
                extra = {"meeting_id": room.meeting_id}
                chair = (await crowd.connect_all(url, [room.organizer_token], extra=extra))[0]
                try:
                    ack = await chair.call("poll.open", {"poll_id": room.poll_id})
                    assert ack.get("ok"), ack
                    await asyncio.sleep(1.0)
                    cpu0 = cpu_s(proc.pid)
                    res = await crowd.burst(clients, [crowd.ballot(room.poll_id, i) for i in range(n)])
                    res["server_cpu_ms"] = round((cpu_s(proc.pid) - cpu0) * 1000)
                    ack = await chair.call("poll.close", {"poll_id": room.poll_id})
                    res = summary(res) | {
                        "load": round(os.getloadavg()[0], 1),
                        "server_tally": ack["poll"]["tally"],
                        "expected_tally": expected_tally(res["acks"]),
                    }
                    res["exact"] = res["server_tally"] == res["expected_tally"]
                    return res
                finally:
                    await crowd.close_all([*clients, chair])

            res = asyncio.run(main())
            out["runs"].append(res)
            print(json.dumps({"node": res}), flush=True)
    finally:
        try:
            os.killpg(proc.pid, 15)
        except ProcessLookupError:
            pass
        proc.wait(10)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tablets", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-node", action="store_true")
    ap.add_argument("--json", default=None, help="write the results here")
    ap.add_argument("--show-log", action="store_true", help="print the end of the server's log")
    ap.add_argument("--profile", default=None, help="py-spy raw stacks of each burst into this directory")
    args = ap.parse_args(argv)
    raise_fd_limit()
    load = os.getloadavg()
    results = {"tablets": args.tablets, "cpus": os.cpu_count(), "load_before": [round(x, 2) for x in load]}
    results["ours"] = run_ours(args.tablets, args.runs, args.show_log, args.profile)
    if not args.no_node:
        results["node"] = run_node(args.tablets, args.runs)
    results["load_after"] = [round(x, 2) for x in os.getloadavg()]
    text = json.dumps(results, indent=2, ensure_ascii=False)
    print(text)
    if args.json:
        Path(args.json).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
