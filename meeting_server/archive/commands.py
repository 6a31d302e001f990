"""Routes and events of the records layer: audit log, archive, the server's public keys."""

from __future__ import annotations

import time
from typing import Any, Literal

from flask import Response, jsonify, send_file
from pydantic import BaseModel, ConfigDict, Field

from ..core import db, rooms, storage, tasks
from ..core.chain import canonical_json
from ..core.commands import ORGANIZER, PUBLIC, CommandSet, Ctx
from ..core.errors import Conflict, error_body
from . import service
from .models import ArchiveBuild

commands = CommandSet("archive")
commands.event(
    "archive.progress",
    'An archive build moved on: `{"id", "meeting_id", "status", "progress", "step", …}`; to the organizers.',
)

#: How long `GET …/archive` waits for the worker before answering 202.
ARCHIVE_WAIT_SECONDS = 5.0
RETRY_AFTER = 2


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AuditQuery(Strict):
    #: Entries after this seq (paging); 0: from the first.
    after: int = Field(default=0, ge=0)
    limit: int = Field(default=500, ge=1, le=5000)
    format: Literal["json", "jsonl"] = "json"


class ArchiveQuery(Strict):
    #: Wait at most this many seconds for the worker before answering 202.
    wait: float | None = Field(default=None, ge=0, le=60)
    #: Build again after a failed build.
    retry: bool = False


class Empty(Strict):
    pass


# --------------------------------------------------------------------------- audit log


@commands.command(
    "audit.list",
    roles={ORGANIZER},
    schema=AuditQuery,
    resource="meeting",
    write=False,
    http=("GET", "/meetings/<int:meeting_id>/audit"),
)
def audit_list(ctx: Ctx, p: AuditQuery) -> Any:
    """The meeting's hash-chained audit log, paged (`?after=seq&limit=`), as JSON or JSONL (`?format=jsonl`)."""
    from ..core.audit import AuditEntry

    q = ctx.s.query(AuditEntry).filter(AuditEntry.meeting_id == ctx.meeting.id, AuditEntry.seq > p.after)
    rows = [e.as_record() for e in q.order_by(AuditEntry.seq).limit(p.limit)]
    head = {"seq": ctx.meeting.audit_seq or 0, "hash": ctx.meeting.audit_head}
    more = bool(rows) and rows[-1]["seq"] < head["seq"]
    if p.format == "jsonl":
        resp = Response(b"".join(canonical_json(r) + b"\n" for r in rows), mimetype="application/x-ndjson")
        resp.headers["X-Audit-Head"] = head["hash"] or ""
        resp.headers["X-Audit-Seq"] = str(head["seq"])
        if more:
            resp.headers["X-Next-After"] = str(rows[-1]["seq"])
        return resp
    return {
        "meeting_id": ctx.meeting.id,
        "head": head,
        "entries": rows,
        "next_after": rows[-1]["seq"] if more else None,
    }


@commands.command(
    "audit.verify",
    roles={ORGANIZER},
    schema=Empty,
    resource="meeting",
    write=False,
    http=("GET", "/meetings/<int:meeting_id>/audit/verify"),
)
def audit_verify(ctx: Ctx, p) -> dict:
    """Check the stored chain from the first entry to the meeting's head; names the first bad entry."""
    return service.check_audit(ctx.s, ctx.meeting)


# --------------------------------------------------------------------------- keys


@commands.command("keys.get", roles={PUBLIC}, write=False, http=("GET", "/keys"))
def keys_get(ctx: Ctx, p) -> dict:
    """The server's Ed25519 archive key (base64, hex, PEM) and the organization certificate's fingerprint."""
    return service.keys_json()


# --------------------------------------------------------------------------- archive


def _zip_response(b: ArchiveBuild) -> Response:
    resp = send_file(
        storage.get().path(b.sha256),
        mimetype="application/zip",
        as_attachment=True,
        download_name=f"meeting-{b.meeting_id}-archive-{b.audit_seq}.zip",
        etag=b.sha256,
        conditional=True,
        max_age=0,
    )
    resp.headers["X-Archive-Sealed"] = "true" if b.sealed else "false"
    resp.headers["X-Audit-Head"] = b.audit_head
    return resp


def _building(b: dict[str, Any]) -> Response:
    from ..minutes.commands import building_response

    return building_response(
        {"status": "building", "progress": b["progress"], "step": b["step"], "build": b}, RETRY_AFTER
    )


def _failed(b: dict[str, Any]) -> Response:
    resp = jsonify(error_body("archive_failed", b["error"] or "the archive could not be built", build=b))
    resp.status_code = 422
    return resp


@commands.command(
    "archive.get",
    roles={ORGANIZER},
    schema=ArchiveQuery,
    resource="meeting",
    write=False,
    binary="application/zip",
    http=("GET", "/meetings/<int:meeting_id>/archive"),
)
def archive_get(ctx: Ctx, p: ArchiveQuery) -> Response:
    """The meeting's signed archive zip; 409 `meeting_not_ended` before the end, 202 with progress while built."""
    m = ctx.meeting
    if m.status not in ("ended", "archived"):
        raise Conflict("the archive is made once the meeting has ended", code="meeting_not_ended")
    # Lock the meeting row (PostgreSQL): two organizers asking at once make one build.
    ctx.s.refresh(m, with_for_update=True)
    b, enqueue = service.request_build(ctx.s, m, retry_failed=p.retry)
    if b.status == "ready":
        return _zip_response(b)
    if b.status == "failed":
        return _failed(service.build_json(b))
    body = service.build_json(b)
    resp = _building(body)
    build_id, meeting_id = b.id, m.id
    wait = ARCHIVE_WAIT_SECONDS if p.wait is None else p.wait
    ctx.later(lambda: _finish(resp, build_id, meeting_id, enqueue, wait))
    return resp


def _finish(resp: Response, build_id: int, meeting_id: int, enqueue: bool, wait: float) -> None:
    from ..minutes.commands import become, wait_for

    deadline = time.monotonic() + wait
    if enqueue:
        tasks.enqueue("build_archive", build_id)
        _watch(build_id, meeting_id)

    def load():
        with db.reader() as s:
            b = s.get(ArchiveBuild, build_id)
            if b is not None:
                s.expunge(b)
            return b

    b = wait_for(load, deadline, lambda r: r.status not in ("queued", "building"))
    if b is None:
        return
    if b.status == "ready" and b.sha256:
        become(resp, _zip_response(b))
    elif b.status == "failed":
        become(resp, _failed(service.build_json(b)))
    else:
        become(resp, _building(service.build_json(b)))


def _watch(build_id: int, meeting_id: int) -> None:
    """Without Redis a worker process cannot reach Socket.IO clients: relay its progress from the database."""
    st = tasks.settings
    if st is None or st.tasks_immediate or st.redis_url:
        return  # the job emits itself (inline, or through Redis)
    from ..extensions import socketio

    def loop() -> None:
        last = None
        for _ in range(3600):  # at most an hour at one look a second
            socketio.sleep(1.0)
            try:
                with db.reader() as s:
                    b = s.get(ArchiveBuild, build_id)
                    out = service.build_json(b) if b is not None else None
            except Exception:  # the database may be briefly busy; try again next second
                continue
            if out is None:
                return
            key = (out["state"], out["progress"], out["step"])
            if key != last:
                last = key
                socketio.emit("archive.progress", out, to=rooms.organizers(meeting_id))
            if out["state"] not in ("queued", "building"):
                return

    socketio.start_background_task(loop)


@commands.command(
    "archive.status",
    roles={ORGANIZER},
    schema=Empty,
    resource="meeting",
    write=False,
    http=("GET", "/meetings/<int:meeting_id>/archive/status"),
)
def archive_status(ctx: Ctx, p) -> dict:
    """The current archive build (status, progress, size, sealed), without starting one."""
    b = service.current_build(ctx.s, ctx.meeting)
    if b is None:
        return {"status": "none", "meeting_status": ctx.meeting.status}
    return {**service.build_json(b), "meeting_status": ctx.meeting.status}
