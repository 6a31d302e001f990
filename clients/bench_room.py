"""Live-room benchmark: meeting-server against the Node reference, same client, same run.

    python -m clients.bench_room [--sizes 100,500,1000] [--flips 100] [--interval 0.1]
                                 [--targets node,ours] [--checkin storm|quiet] [--no-vote] [--out FILE]

For each size and target it starts a fresh server on a free loopback port (the Node
reference in ``clients/node_ref``, running ``npm ci`` there first if ``node_modules`` is
missing; ``meeting-server serve`` on a new data dir with a new organizer account), runs
``python -m clients.loadgen --json`` against it with ``--server-pid``, stops the server,
and at the end prints one comparison table (our p99 / Node p99, missed pages, KB per
tablet, vote). Every process it starts is stopped by pid in a ``finally``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
NODE_REF = ROOT / "clients" / "node_ref"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, never a proxy
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server pid {proc.pid} exited with {proc.returncode} before it was healthy")
        with contextlib.suppress(OSError):
            with opener.open(f"{url}/healthz", timeout=2) as resp:
                if resp.status == 200:
                    return
        time.sleep(0.2)
    raise TimeoutError(f"{url}/healthz not OK after {timeout:.0f} s")


def children_of(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (OSError, ValueError):
        return []


def descendants_of(pid: int, depth: int = 4) -> list[int]:
    """Children, grandchildren, ... (bounded depth) of ``pid``, parents first."""
    found, level = [], [pid]
    for _ in range(depth):
        level = [c for p in level for c in children_of(p)]
        if not level:
            break
        found += level
    return found


def stop_pid(pid: int, *, expect: str | None = None, grace: float = 10.0) -> None:
    """SIGTERM one process by pid, SIGKILL after ``grace``; if ``expect`` is given, only when its
    command line contains it (a recorded child pid may have been reused)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return
    if expect and expect not in cmdline:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


class Server:
    """A server process we started, with whatever children it started, all stopped by pid."""

    def __init__(self, target: str, url: str, proc: subprocess.Popen, workdir: Path | None, log: Path):
        self.target, self.url, self.proc, self.workdir, self.log = target, url, proc, workdir, log
        self.children: list[int] = []
        self.username = self.password = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        seen = set(self.children)
        self.children += [c for c in descendants_of(self.proc.pid) if c not in seen]
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for pid in self.children:
            stop_pid(pid, expect="meeting_server")
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()
        if self.workdir is not None:  # keep serve.log, drop the database and rendered pages
            shutil.rmtree(self.workdir / "data", ignore_errors=True)


def ensure_node_modules() -> None:
    if (NODE_REF / "node_modules" / "socket.io").is_dir():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not on PATH: cannot install clients/node_ref")
    print("bench: npm ci in clients/node_ref", file=sys.stderr, flush=True)
    subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_REF, check=True, timeout=600)


def start_node(logdir: Path) -> Server:
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is not on PATH")
    ensure_node_modules()
    log = logdir / "node.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [node, "server.js", "--host", "127.0.0.1", "--port", "0"],
            cwd=NODE_REF,
            stdout=subprocess.PIPE,
            stderr=err,
        )
    server = Server("node", "", proc, None, log)
    try:
        import selectors

        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            if not sel.select(30):
                raise TimeoutError("the Node reference printed no address in 30 s")
        server.url = json.loads(proc.stdout.readline())["listening"]
        wait_healthy(server.url, proc, 30)
    except BaseException:
        server.stop()
        raise
    return server


def meeting_server_cmd() -> list[str]:
    script = Path(sys.executable).parent / "meeting-server"
    return [str(script)] if script.exists() else [sys.executable, "-m", "meeting_server.cli"]


def ours_available() -> bool:
    return (ROOT / "meeting_server" / "cli.py").exists()


def start_ours(logdir: Path, serve_args: list[str] = (), server_env: dict[str, str] | None = None) -> Server:
    """`serve_args`: extra `serve` options (e.g. `--gc=default`); `server_env`: extra environment of
    the server (e.g. `MEETING_DIRECT_SEND=0`), for before/after runs of one change."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-ours-", dir=logdir))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEETING_")}
    env.update(MEETING_DATA_DIR=str(workdir / "data"), MEETING_SECRET_KEY=secrets.token_urlsafe(24))
    env.update(server_env or {})
    username, password = "bench", secrets.token_hex(12)
    subprocess.run(
        [*meeting_server_cmd(), "create-user", username, f"--password={password}"],
        env=env,
        cwd=workdir,
        check=True,
        timeout=120,
        capture_output=True,
    )
    port = free_port()
    log = workdir / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*meeting_server_cmd(), "serve", "--host", "127.0.0.1", "--port", str(port), *serve_args],
            env=env,
            cwd=workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server("ours", f"http://127.0.0.1:{port}", proc, workdir, log)
    server.username, server.password = username, password
    try:
        wait_healthy(server.url, proc, 90)
        server.children = descendants_of(proc.pid)
    except BaseException:
        server.stop()
        raise
    return server


def run_loadgen(server: Server, n: int, opts: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "clients.loadgen", "--url", server.url, "--target", server.target]
    cmd += ["--tablets", str(n), "--flips", str(opts.flips), "--interval", str(opts.interval)]
    cmd += [
        "--server-pid",
        str(server.pid),
        "--checkin",
        opts.checkin,
        "--json",
        "--timeout",
        str(opts.run_timeout),
    ]
    cmd += ["--procs", str(opts.procs)]
    if opts.vote:
        cmd.append("--vote")
    env = dict(os.environ)
    if server.username:  # through the environment, not the command line
        env.update(BENCH_USERNAME=server.username, BENCH_PASSWORD=server.password)
    print(f"bench: {server.target} N={n}: {' '.join(cmd)}", file=sys.stderr, flush=True)
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=opts.run_timeout + 60)
    except subprocess.TimeoutExpired:
        stop_pid(proc.pid, grace=5)
        out, err = proc.communicate(timeout=10)
        return {"target": server.target, "tablets": n, "error": "loadgen did not finish in time"}
    finally:
        if proc.poll() is None:
            stop_pid(proc.pid, grace=5)
    sys.stderr.write(err.decode(errors="replace"))
    lines = out.decode().strip().splitlines()
    try:
        result = json.loads(lines[-1])
    except (IndexError, ValueError):
        return {"target": server.target, "tablets": n, "error": f"loadgen exited {proc.returncode}"}
    if proc.returncode != 0:
        result.setdefault("error", f"loadgen exited {proc.returncode}")
    return result


def _g(r: dict[str, Any] | None, *path: str) -> Any:
    for p in path:
        if not isinstance(r, dict):
            return None
        r = r.get(p)
    return r


def comparison(results: list[dict[str, Any]]) -> str:
    by = {(r["target"], r["tablets"]): r for r in results}
    sizes = sorted({r["tablets"] for r in results})
    head = (
        "| tablets | target | flip p50 | p95 | p99 | max (ms) | fan-out p50 (ms) | missed | out of order "
        "| server CPU µs/page | connect p99 (ms) | KB/tablet | check-in (s) | vote: last ack (ms) | count exact "
        "| load avg | p99 ours/node |"
    )
    lines = [head, "|" + " --- |" * 17]
    for n in sizes:
        node, ours = by.get(("node", n)), by.get(("ours", n))
        ratio = None
        if _g(node, "flips", "p99_ms") and _g(ours, "flips", "p99_ms"):
            ratio = round(ours["flips"]["p99_ms"] / node["flips"]["p99_ms"], 2)
        for name, r in (("node", node), ("ours", ours)):
            if r is None:
                continue
            if "error" in r and not r.get("flips"):
                lines.append(f"| {n} | {name} | {r['error'][:200]} |" + " |" * 15)
                continue
            f = r.get("flips") or {}
            k = r.get("checkin") or {}
            cells = [
                n,
                name,
                f.get("p50_ms"),
                f.get("p95_ms"),
                f.get("p99_ms"),
                f.get("max_ms"),
                f.get("fanout_p50_ms"),
                f.get("missed"),
                f.get("out_of_order"),
                f.get("server_cpu_us_per_page"),
                _g(r, "connect", "p99_ms"),
                _g(r, "server_rss_kb", "per_tablet"),
                k.get("settle_s", k.get("seconds")),
                _g(r, "vote", "last_ack_ms") or _g(r, "vote", "error"),
                _g(r, "vote", "count_exact"),
                (r.get("loadavg_start") or [None])[0],
                ratio if name == "ours" else "",
            ]
            lines.append("| " + " | ".join("-" if c is None else str(c) for c in cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m clients.bench_room", description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="100,500,1000", help="tablet counts, comma-separated")
    p.add_argument("--targets", default="node,ours", help="node, ours or both (comma-separated)")
    p.add_argument("--flips", type=int, default=100)
    p.add_argument("--interval", type=float, default=0.1)
    p.add_argument("--checkin", choices=("storm", "quiet", "none"), default="quiet")
    p.add_argument("--no-vote", dest="vote", action="store_false")
    p.add_argument("--procs", type=int, default=1, help="loadgen worker processes")
    p.add_argument(
        "--run-timeout", type=float, default=300.0, help="loadgen's overall limit per run, seconds"
    )
    p.add_argument("--out", type=Path, help="also write all results as JSON here")
    p.add_argument(
        "--serve-arg", action="append", default=[], help="extra `serve` option, e.g. --serve-arg=--gc=default"
    )
    p.add_argument(
        "--server-env",
        action="append",
        default=[],
        help="KEY=VALUE for our server, e.g. MEETING_DIRECT_SEND=0",
    )
    opts = p.parse_args(argv)
    sizes = [int(x) for x in opts.sizes.split(",") if x.strip()]
    targets = [t.strip() for t in opts.targets.split(",") if t.strip()]
    if "ours" in targets and not ours_available():
        print(
            "bench: meeting_server/cli.py is not in the tree yet; running the Node reference only",
            file=sys.stderr,
        )
        targets = [t for t in targets if t != "ours"]
    results: list[dict[str, Any]] = []
    logdir = Path(tempfile.mkdtemp(prefix="bench-room-"))
    running: list[Server] = []
    try:
        for n in sizes:
            for target in targets:
                try:
                    server = (
                        start_node(logdir)
                        if target == "node"
                        else start_ours(
                            logdir, opts.serve_arg, dict(kv.split("=", 1) for kv in opts.server_env)
                        )
                    )
                except Exception as exc:  # one target failing to start must not lose the others' results
                    detail = getattr(exc, "stderr", None) or b""
                    msg = f"server did not start: {exc!r} {detail.decode(errors='replace')[-300:]}"
                    print(f"bench: {target} N={n}: {msg}", file=sys.stderr, flush=True)
                    results.append({"target": target, "tablets": n, "error": msg})
                    continue
                running.append(server)
                try:
                    results.append(run_loadgen(server, n, opts))
                finally:
                    server.stop()
                    running.remove(server)
                time.sleep(1)  # let sockets in TIME_WAIT and the last process exits settle
    finally:
        for server in running:
            server.stop()
    print(comparison(results))
    if opts.out:
        opts.out.write_text(json.dumps(results, indent=1, ensure_ascii=False))
    print(f"bench: logs in {logdir}", file=sys.stderr)
    return 0 if all("error" not in r for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
