"""The application factory."""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Any

from flask import Flask, jsonify, redirect, send_from_directory

from .config import Settings

#: Domain packages, each with `commands.py` (a CommandSet) and optionally `init_app(app)`.
DOMAINS = ("auth", "meetings", "roster", "agenda", "documents", "voting", "live", "attendance", "room", "annotations",
           "minutes", "archive")
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"


def create_app(settings: Settings | None = None, **overrides: Any) -> Flask:
    from .core import commands, db, http, sockets, storage, tasks
    from .extensions import socketio

    settings = settings or Settings.from_env()
    if overrides:
        from dataclasses import replace

        settings = replace(settings, **overrides)
    settings = settings.ensure_dirs()
    app = Flask("meeting_server", static_folder=None)
    app.config.update(
        SETTINGS=settings,
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=settings.max_upload_bytes + 1024 * 1024,
        JSON_AS_ASCII=False,
        TESTING=settings.testing,
    )
    app.json.ensure_ascii = False
    app.json.sort_keys = False
    logging.getLogger("meeting_server").setLevel(logging.INFO)

    from . import models  # noqa: F401  (every table on the metadata)
    from .auth import service as auth_service

    auth_service.HASH_METHOD = settings.password_hash_method
    db.configure(settings.database_url)
    storage.configure(settings.data_dir)
    tasks.configure(settings)

    commands.registry.__init__()  # a fresh registry per app (tests build many apps)
    modules = []
    for name in DOMAINS:
        mod = importlib.import_module(f"meeting_server.{name}.commands")
        commands.registry.add(mod.commands)
        modules.append(mod)
    http.register(app)

    from .core import mq

    socketio.init_app(
        app,
        async_mode=settings.async_mode,
        client_manager=mq.client_manager(settings.redis_url),  # Redis: publish first (core/mq.py)
        cors_allowed_origins=list(settings.cors_origins) or None,
        async_handlers=True,
        ping_interval=20,
        ping_timeout=20,
        max_http_buffer_size=2 * 1024 * 1024,
    )
    sockets.register(socketio)
    from .live.commands import init_socket

    init_socket(socketio)
    for mod in modules:
        init = getattr(mod, "init_app", None)
        if init:
            init(app)
    _register_pages(app)
    return app


def _register_pages(app: Flask) -> None:
    @app.get("/healthz")
    def healthz():
        return jsonify({"status": "ok"})

    @app.get("/api/v1/openapi.json")
    def openapi():
        from .core.openapi import build

        return jsonify(build())

    @app.get("/")
    def index():
        return redirect("/organizer/")

    @app.get("/<any(tablet, console, organizer):app_name>/")
    def front_end(app_name: str):
        return send_from_directory(STATIC_DIR / app_name, "index.html")

    @app.get("/tablet/sw.js")
    def tablet_service_worker():
        # The tablet's service worker must be served from within its scope (/tablet/).
        resp = send_from_directory(STATIC_DIR / "tablet", "sw.js", mimetype="text/javascript")
        resp.headers["Cache-Control"] = "no-cache"
        return resp

    @app.get("/static/<path:path>")
    def static_files(path: str):
        resp = send_from_directory(STATIC_DIR, path)
        resp.headers["Cache-Control"] = "no-cache"
        return resp

    @app.after_request
    def _headers(resp):
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("Referrer-Policy", "same-origin")
        resp.headers.setdefault("X-Frame-Options", "DENY")
        resp.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
            "connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'self'; form-action 'self'",
        )
        return resp
