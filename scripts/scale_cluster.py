#!/usr/bin/env python3
"""Start the scaled-out shape on loopback and keep it running until Ctrl-C (for trying things by hand).

    .venv/bin/python scripts/scale_cluster.py [--procs 3] [--workers 1] [--no-nginx] [--serve-args "..."]

A throwaway PostgreSQL database (MEETING_TEST_PG, default postgresql://postgres@127.0.0.1:5432/test),
our own redis-server on a free port, `--procs` x `meeting-server serve --no-worker`, `--workers`
x `meeting-server worker`, and nginx with docs/deploy/nginx-meeting-server.conf on a free loopback
port (`nginx -p <tmpdir> -c <generated conf> -g 'daemon off;'`). Prints the URLs, the organizer
login and the environment to point `meeting-server` commands at the same database and Redis.
On Ctrl-C (or SIGTERM) every process is stopped by pid and the database dropped; SCALE_KEEP=1
keeps the temp dir (logs).
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.scale.cluster import ORGANIZER, Cluster, missing  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--procs", type=int, default=3)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--no-nginx", dest="nginx", action="store_false")
    p.add_argument("--serve-args", default="")
    p.add_argument("--hours", type=float, default=8.0, help="stop by itself after this long")
    opts = p.parse_args()
    gaps = missing()
    if gaps:
        print("scale_cluster: " + "; ".join(gaps), file=sys.stderr)
        return 2
    cluster = Cluster(
        procs=opts.procs, workers=opts.workers, nginx=opts.nginx, serve_args=shlex.split(opts.serve_args)
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        cluster.start()
        print(f"front door : {cluster.url}")
        for sp in cluster.servers:
            print(f"process    : {sp.url}  (pid {sp.proc.pid}, log {sp.log_path})")
        print(f"organizer  : {ORGANIZER[0]} / {ORGANIZER[1]}")
        print(f"temp dir   : {cluster.workdir}")
        print("environment:")
        for k in ("MEETING_DATABASE_URL", "MEETING_REDIS_URL", "MEETING_DATA_DIR", "MEETING_SECRET_KEY"):
            print(f"  export {k}={shlex.quote(cluster.env[k])}")
        print("Ctrl-C stops everything.", flush=True)
        deadline = time.monotonic() + opts.hours * 3600
        while time.monotonic() < deadline:
            time.sleep(1)
            dead = [sp.port for sp in cluster.servers if sp.proc is None or sp.proc.poll() is not None]
            if dead:
                print(f"scale_cluster: process(es) on {dead} exited; see the logs", file=sys.stderr)
                break
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
