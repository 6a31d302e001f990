"""`meeting-server` console commands.

Nothing heavy is imported at module level: `serve` monkey-patches with
eventlet before Flask or SQLAlchemy are imported.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys


def _settings():
    from .config import Settings, SettingsError

    try:
        return Settings.from_env()
    except SettingsError as e:
        print(f"meeting-server: bad setting: {e}", file=sys.stderr)
        raise SystemExit(2) from None


def _raise_fd_limit() -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


#: Any fixed number: the PostgreSQL advisory lock that serializes schema migrations.
MIGRATION_LOCK = 0x6D656574  # "meet"


def _migrate(url: str) -> None:
    """Bring the schema up to date; on PostgreSQL one process at a time.

    Several `serve` and `worker` processes (systemd starts them together) would otherwise run
    the same migration at once and all but one fail on "relation already exists".
    """
    from .core import migrate

    if not url.startswith("postgresql"):
        migrate.upgrade(url)
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    from .config import normalize_db_url

    engine = create_engine(normalize_db_url(url), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK})
            try:
                migrate.upgrade(url)
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK})
    finally:
        engine.dispose()


def cmd_serve(args) -> int:
    settings = _settings()
    mode = args.async_mode or settings.async_mode
    if mode == "eventlet":
        import warnings

        warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
        import eventlet

        eventlet.monkey_patch()
    elif mode == "gevent":
        from gevent import monkey

        monkey.patch_all()
    from dataclasses import replace

    settings = replace(settings, async_mode=mode).ensure_dirs()
    _raise_fd_limit()
    _migrate(settings.database_url)
    from .app import create_app

    app = create_app(settings)
    from .extensions import socketio

    worker = None if args.no_worker else WorkerSupervisor()

    def stop(*_a):
        if worker:
            worker.stop()
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.demo:
        from . import demo

        info = demo.ensure_demo(settings)
        base = settings.public_url or f"http://{_display_host(args.host)}:{args.port}"
        demo.print_welcome(base, info)
    from .live import watcher

    watcher.start(app)
    if worker:
        worker.start(socketio)
    if args.gc == "tuned":
        start_gc_tuning(socketio)
    print(f"meeting-server: listening on http://{args.host}:{args.port} ({mode})", flush=True)
    try:
        if mode == "eventlet":
            _serve_eventlet(app, args.host, args.port, args.backlog)
        elif mode == "threading":
            socketio.run(app, host=args.host, port=args.port, allow_unsafe_werkzeug=True)
        else:
            socketio.run(app, host=args.host, port=args.port, log_output=False)
    finally:
        stop()
    return 0


class WorkerSupervisor:
    """`serve`'s embedded `meeting-server worker`: started, watched, and started again when it dies.

    A worker killed (OOM, crash, an operator's SIGKILL) comes back after WORKER_BACKOFF[n] seconds,
    n counting the deaths in a row (a worker that ran WORKER_STABLE seconds resets it). The new
    worker re-queues the renders the dead one held at once: their leases name a dead holder
    (`documents.jobs.holder`).
    """

    def __init__(self, argv: list[str] | None = None):
        self.argv = argv or [sys.executable, "-m", "meeting_server.cli", "worker"]
        self.proc: subprocess.Popen | None = None
        self.started_at = 0.0
        self.deaths = 0
        self.restarts = 0
        self.stopping = False
        self.spawn()

    def spawn(self) -> None:
        import time

        self.proc = subprocess.Popen(self.argv, env=os.environ.copy())
        self.started_at = time.monotonic()

    def start(self, socketio) -> None:
        socketio.start_background_task(self.watch, socketio.sleep)

    def check(self, now: float) -> float | None:
        """One look at the worker: None while it runs, else how long to wait before starting another."""
        if self.stopping or self.proc is None or self.proc.poll() is None:
            return None
        code = self.proc.returncode
        self.deaths = 1 if now - self.started_at >= WORKER_STABLE else self.deaths + 1
        delay = WORKER_BACKOFF[min(self.deaths, len(WORKER_BACKOFF)) - 1]
        print(
            f"meeting-server: the worker (pid {self.proc.pid}) stopped with {code}; starting another in {delay:g} s",
            file=sys.stderr,
            flush=True,
        )
        return delay

    def watch(self, sleep, rounds: int | None = None) -> None:
        import time

        n = 0
        while not self.stopping and (rounds is None or n < rounds):
            n += 1
            delay = self.check(time.monotonic())
            if delay is None:
                sleep(WORKER_POLL)
                continue
            sleep(delay)
            if not self.stopping:
                self.spawn()
                self.restarts += 1

    def stop(self) -> None:
        self.stopping = True
        w = self.proc
        if w and w.poll() is None:
            w.terminate()
            try:
                w.wait(5)
            except subprocess.TimeoutExpired:
                w.kill()


#: Seconds between looks at the embedded worker, and the waits before starting it again.
WORKER_POLL = 0.5
WORKER_BACKOFF = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
WORKER_STABLE = 60.0


def _serve_eventlet(app, host: str, port: int, backlog: int) -> None:
    """`socketio.run` for eventlet, with a listen backlog fit for a hall reconnecting at once.

    `socketio.run` listens with eventlet's default backlog of 50: when a thousand tablets come
    back together (Wi-Fi restored, a server restarted) the kernel drops the SYNs beyond it and
    those tablets retry 1, 3, 7 s later.
    """
    import eventlet
    import eventlet.wsgi
    from eventlet.green import socket as gsocket

    family, _type, _proto, _name, addr = gsocket.getaddrinfo(host, port)[0]
    sock = eventlet.listen(addr, family, backlog=backlog)
    # max_size: eventlet's default caps a server at 1024 concurrent connections.
    eventlet.wsgi.server(sock, app, log_output=False, max_size=100_000, protocol=_small_buffer_protocol())


#: Read and write buffer of each HTTP connection (eventlet's defaults: 8 KiB and 16 KiB).
HTTP_RBUFSIZE = 1024
HTTP_WBUFSIZE = 2048


def _small_buffer_protocol():
    """eventlet's HttpProtocol with small buffers: a tablet's connection is a websocket for hours.

    `HttpProtocol.setup` makes a buffered reader (8 KiB) and writer (16 KiB) per connection,
    allocated up front and kept while the connection lives; once the socket is upgraded the
    websocket reads and writes the raw socket and never touches them, so each tablet held about
    25 KB for nothing (docs/benchmarks.md, "Memory per tablet"). Small buffers only mean more
    `recv`/`send` calls for large HTTP bodies, which bypass a buffer smaller than the data anyway
    (uploads, downloads); header lines longer than the buffer are still read whole.
    """
    import functools

    import eventlet.wsgi

    class SmallBufferHttpProtocol(eventlet.wsgi.HttpProtocol):
        """Also lets a websocket take its connection over (`environ["meeting.detach"]`, core/wsconn.py).

        Once taken over, the socket is read from hub callbacks, not by this green thread: the request
        ends, this green thread returns and its stack is freed, and neither `finish` nor
        `eventlet.wsgi.server` (which shuts down and closes `conn_state[1]` when the green thread
        ends) may close the socket.
        """

        rbufsize = HTTP_RBUFSIZE
        wbufsize = HTTP_WBUFSIZE

        def get_environ(self):
            env = super().get_environ()
            # Not a bound method: the environ would hold this object and this object the environ
            # (a cycle per HTTP request, left to the collector).
            env["meeting.detach"] = functools.partial(_detach, self.conn_state)
            return env

        def finish(self):
            if self.conn_state[1] is not _DETACHED:
                return super().finish()
            for f in (self.wfile, self.rfile):  # the buffers go; the socket stays open
                try:
                    f.close()
                except OSError:
                    pass
            self.connection = self.request = self.environ = None
            return None

    return SmallBufferHttpProtocol


class _Detached:
    """Stands in for a socket a websocket took over, so `eventlet.wsgi.server` does not close it."""

    def shutdown(self, *_a) -> None:
        pass

    def close(self) -> None:
        pass


_DETACHED = _Detached()


def _detach(conn_state: list) -> bool:
    """`environ["meeting.detach"]`: the websocket owns the connection's socket from now on."""
    conn_state[1] = _DETACHED  # eventlet.wsgi.server's [address, socket, state] of this connection
    return True


# -- garbage collector ----------------------------------------------------------------------
#: gen0 threshold once tuned (CPython's default is 700): a room's broadcasts allocate many
#: short-lived containers; fewer, larger young collections cost less in all.
GC_THRESHOLDS = (50_000, 20, 20)
#: The keeper freezes again once this many more (or fewer) clients are connected and the count
#: has held still for one check.
GC_REFREEZE_DELTA = 100
GC_CHECK_SECONDS = 10.0


def tune_gc() -> None:
    """After start-up: move everything alive (code, settings, caches) out of the collector's sight.

    `gc.freeze()` puts every tracked object in a permanent generation that collections never
    walk, so a full collection costs what the room allocated since, not what was imported.
    """
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def start_gc_tuning(socketio) -> None:
    """`tune_gc()` now and the keeper in the background (gunicorn: call it from `post_worker_init`)."""
    tune_gc()
    socketio.start_background_task(_gc_keeper, socketio)


def _gc_keeper(socketio, checks: int | None = None) -> None:
    """Freeze again when the room has filled up (or emptied) and holds still.

    A connected tablet's objects live as long as its connection: once the hall is seated, they
    are frozen too. When the room grew, it only freezes: no collection first (a `gc.collect(1)`
    there was measured pausing the server 260-350 ms in the middle of page flips; the few young
    garbage objects it would have freed are frozen and leak until the next unfreeze below, which
    is cheap beside such a pause). When many tablets have left, unfreeze and collect once, so
    cycles left by the departed are freed, then freeze what remains.
    """
    import gc

    from .core.sockets import connections

    frozen_at = prev = len(connections)
    n = 0
    while checks is None or n < checks:
        n += 1
        socketio.sleep(GC_CHECK_SECONDS)
        now = len(connections)
        if now == prev and abs(now - frozen_at) >= GC_REFREEZE_DELTA:
            if now < frozen_at:
                gc.unfreeze()
                gc.collect()
            gc.freeze()
            frozen_at = now
        prev = now


def _display_host(host: str) -> str:
    if host in ("0.0.0.0", "::", ""):
        import socket

        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.connect(("192.0.2.1", 9))  # no packet is sent: picks the LAN address
                return s.getsockname()[0]
        except OSError:
            return "127.0.0.1"
    return host


def cmd_worker(args) -> int:
    settings = _settings().ensure_dirs()
    # Rendering must never slow the room: on a shared machine the event loop gets the CPU first.
    os.nice(args.nice)
    from .core import tasks

    _migrate(settings.database_url)
    huey = tasks.configure(settings)
    from .documents import jobs

    jobs.requeue_stale(settings)
    consumer = _consumer_class()(
        huey,
        workers=args.workers,
        worker_type="process",
        periodic=False,
        check_worker_health=True,
        health_check_interval=2.0,
        max_delay=1.0,  # idle polling back-off: jobs start within a second
    )
    consumer.settings = settings
    consumer.run()
    return 0


def _consumer_class():
    """Huey's consumer, which also re-queues the renders of a worker process it had to replace."""
    from huey.consumer import Consumer

    class WorkerConsumer(Consumer):
        settings = None

        def check_worker_health(self):
            healthy = super().check_worker_health()
            if (
                not healthy and self.settings is not None
            ):  # a worker process died (OOM, crash) and was replaced
                from .documents import jobs

                try:
                    jobs.requeue_stale(self.settings, dead_only=True)
                except Exception:  # the database may be briefly away: the next death or start looks again
                    self._logger.exception("could not re-queue the renders of a dead worker")
            return healthy

    return WorkerConsumer


def cmd_create_user(args) -> int:
    settings = _settings().ensure_dirs()
    from .auth import service
    from .core import db
    from .core.errors import AppError

    _migrate(settings.database_url)
    db.configure(settings.database_url)
    if len(args.password) < 8:
        print("meeting-server: the password must have at least 8 characters", file=sys.stderr)
        return 2
    try:
        with db.transaction() as s:
            user = service.create_user(s, args.username, args.password, role=args.role)
            print(f"created {user.role} {user.username!r} (id {user.id})")
    except AppError as e:
        print(f"meeting-server: {e.message}", file=sys.stderr)
        return 1
    return 0


def cmd_demo(args) -> int:
    settings = _settings().ensure_dirs()
    from . import demo

    _migrate(settings.database_url)
    info = demo.ensure_demo(settings, force_new=True)
    demo.print_welcome(settings.public_url or "http://127.0.0.1:8000", info)
    return 0


def cmd_db(args) -> int:
    settings = _settings()
    if args.action == "upgrade":
        if settings.database_url.startswith("sqlite"):
            settings.ensure_dirs()
        _migrate(settings.database_url)
        print("database schema is up to date")
    return 0


def cmd_verify(args) -> int:
    from .archive.verify import main as verify_main

    argv = [args.archive]
    if args.public_key:
        argv += ["--public-key", args.public_key]
    return verify_main(argv)


def cmd_purge(args) -> int:
    import datetime as dt

    settings = _settings().ensure_dirs()
    from .archive.service import purge_expired
    from .core import db, storage, tasks

    _migrate(settings.database_url)
    db.configure(settings.database_url)
    storage.configure(settings.data_dir)
    tasks.configure(settings)
    now = None
    if args.now:
        try:
            now = dt.datetime.fromisoformat(args.now.replace("Z", "+00:00"))
        except ValueError:
            print(f"meeting-server: --now must be an ISO 8601 time, got {args.now!r}", file=sys.stderr)
            return 2
        if now.tzinfo is None:
            now = now.replace(tzinfo=dt.UTC)
    done = purge_expired(settings, now=now, dry_run=args.dry_run)
    print(f"retention: {len(done)} meeting(s) {'would be ' if args.dry_run else ''}affected")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="meeting-server", description="Paperless meeting server")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="run the server (HTTP, Socket.IO and a background worker)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--async-mode", choices=["eventlet", "gevent", "threading"], default=None)
    s.add_argument("--demo", action="store_true", help="seed a demo meeting and print where to open it")
    s.add_argument(
        "--no-worker",
        action="store_true",
        help="do not start a worker (run `meeting-server worker` yourself)",
    )
    s.add_argument(
        "--backlog",
        type=int,
        default=2048,
        help="listen backlog (eventlet): connections the kernel queues while a hall reconnects",
    )
    s.add_argument(
        "--gc",
        choices=["tuned", "default"],
        default="tuned",
        help="tuned: freeze what start-up allocated and what a seated room holds, higher thresholds",
    )
    s.set_defaults(func=cmd_serve)
    w = sub.add_parser("worker", help="run background jobs (rendering, conversion, archives)")
    w.add_argument("--workers", type=int, default=2)
    w.add_argument("--nice", type=int, default=10, help="CPU priority offset of background work (default 10)")
    w.set_defaults(func=cmd_worker)
    c = sub.add_parser("create-user", help="create an account (role admin by default)")
    c.add_argument("username")
    c.add_argument("--password", required=True)
    c.add_argument("--role", choices=["admin", "organizer"], default="admin")
    c.set_defaults(func=cmd_create_user)
    d = sub.add_parser("demo", help="seed a demo meeting with Chinese and English content")
    d.set_defaults(func=cmd_demo)
    dbp = sub.add_parser("db", help="database schema")
    dbp.add_argument("action", choices=["upgrade"])
    dbp.set_defaults(func=cmd_db)
    v = sub.add_parser("verify", help="verify a meeting archive offline")
    v.add_argument("archive")
    v.add_argument("--public-key", default=None)
    v.set_defaults(func=cmd_verify)
    pg = sub.add_parser("purge", help="apply the retention settings: delete expired materials and meetings")
    pg.add_argument("--dry-run", action="store_true", help="only print what would be deleted")
    pg.add_argument("--now", default=None, help="judge ages as of this ISO 8601 time (default: now)")
    pg.set_defaults(func=cmd_purge)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
