"""HTTP side of the pipeline: one Flask rule per command, JSON errors on /api."""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from . import db
from .commands import Command, execute, registry, unavailable
from .errors import AppError, Invalid, TooLarge, Unauthorized

log = logging.getLogger(__name__)
API_PREFIX = "/api/v1"


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthorized("use 'Authorization: Bearer <token>'", code="bad_token")
        return value.strip()
    # <img> tags and downloads cannot send headers: a GET may carry the token as a query parameter.
    if request.method == "GET":
        return request.args.get("access_token") or None
    return None


def current_actor():
    from ..auth.service import actor_for_token

    token = bearer_token()
    with db.reader() as s:
        return actor_for_token(s, token)


def _payload(cmd: Command):
    if cmd.multipart:
        try:
            return {k: v for k, v in request.form.items() if v != ""}
        except RequestEntityTooLarge:
            raise
    if request.method in ("GET", "HEAD", "DELETE"):
        return {k: v for k, v in request.args.items() if k not in ("access_token", "v", "size")}
    if not request.get_data(cache=True):
        return {}
    data = request.get_json(silent=True)
    if data is None:
        raise Invalid("the body must be JSON (Content-Type: application/json)", code="invalid_json")
    return data


def _view(cmd: Command):
    def view(**params):
        actor = current_actor()
        raw = _payload(cmd)
        files = request.files if cmd.multipart else None
        result = execute(cmd, actor, raw, params, files=files)
        if isinstance(result, Response):
            return result
        return jsonify(result), cmd.status

    view.__name__ = "cmd_" + cmd.name.replace(".", "_")
    return view


def flask_rule(path: str) -> str:
    return API_PREFIX + path


def register(app: Flask) -> None:
    bp = Blueprint("api", __name__, url_prefix=API_PREFIX)
    for cmd in registry.commands.values():
        if cmd.http:
            method, path = cmd.http
            bp.add_url_rule(path, endpoint=cmd.name.replace(".", "__"), view_func=_view(cmd), methods=[method])
    app.register_blueprint(bp)

    def wants_json() -> bool:
        return request.path.startswith("/api/") or request.path == "/healthz"

    @app.errorhandler(AppError)
    def _app_error(e: AppError):
        resp = jsonify(e.to_dict())
        if e.status == 429 and "retry_after" in e.details:
            resp.headers["Retry-After"] = str(e.details["retry_after"])
        return resp, e.status

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(e):
        limit = app.config.get("MAX_CONTENT_LENGTH") or 0
        err = TooLarge(f"the upload is larger than {limit // (1024 * 1024)} MB", code="too_large")
        return jsonify(err.to_dict()), 413

    @app.errorhandler(HTTPException)
    def _http_error(e: HTTPException):
        if not wants_json():
            return e
        code = {404: "not_found", 405: "method_not_allowed", 400: "invalid"}.get(e.code or 500, "http_error")
        return jsonify({"error": {"code": code, "message": e.description or e.name}}), e.code

    @app.errorhandler(Exception)
    def _internal(e: Exception):
        busy = unavailable(e)
        if busy is not None:  # the database is briefly gone: say so, and when to try again
            log.warning("database unavailable on %s %s: %s", request.method, request.path, e)
            resp = jsonify(busy.to_dict()) if wants_json() else Response("Service unavailable", mimetype="text/plain")
            resp.headers["Retry-After"] = str(busy.details["retry_after"])
            return resp, busy.status
        log.exception("unhandled error on %s %s", request.method, request.path)
        if not wants_json():
            return Response("Internal error", status=500)
        return jsonify({"error": {"code": "internal", "message": "the server failed; the error was logged"}}), 500
