"""Routes and events of the annotations domain.

Saving and erasing are frequent and private: they are declared `write=False`, so a stroke
neither locks the meeting row nor enters the audit log (a seat's private notes are not a
meeting record); they still run in one transaction, and are refused once the meeting has
ended. Sharing, showing and exporting are meeting acts: audited like every write.
"""

from __future__ import annotations

from collections import defaultdict

from flask import Response, jsonify, send_file

from ..core import rooms, storage, tasks
from ..core.commands import (
    CLOSED_STATUSES,
    EVERYONE_IN_MEETING,
    ORGANIZER,
    PRESENTERS,
    SEATS,
    CommandSet,
    Ctx,
)
from ..core.db import iso
from ..core.errors import Conflict, Forbidden, Invalid, NotFound, Unprocessable, error_body
from ..documents.models import Document
from ..documents.service import audience_rooms, seat_attendee, visible_to
from . import schemas, service
from .models import AnnotationExport, AnnotationShow

commands = CommandSet("annotations")
commands.event(
    "annotation",
    'This seat\'s annotations changed on another of its devices: `{"document_id", "saved": [...], "deleted": [ids]}` '
    '(or `{"document_id", "version", "reload": true}` after a new version); to the seat\'s devices.',
)
commands.event(
    "annotation.shared",
    'A seat shared (or edited shared) annotations: `{"document_id", "attendee", "annotations": [...]}`; to the room '
    "or the presenters, within the document's audience.",
)
commands.event(
    "annotation.unshared",
    'Shared annotations were made private, re-targeted or erased: `{"document_id", "attendee_id", "ids"}`.',
)
commands.event(
    "annotation.shown",
    'The presenter shows a seat\'s shared annotations to everyone: `{"document_id", "attendee", "annotations", '
    '"shown_by", "at"}`; `document_id` null: hidden. To the document\'s audience.',
)

RETRY_AFTER = 1


@commands.loader("annotation_export", "export_id")
def _load_export(s, export_id: int):
    return s.get(AnnotationExport, export_id)


def init_app(app) -> None:
    from ..live import state

    state.contributors["annotations"] = service.state_part


# --------------------------------------------------------------------------- helpers


def _document(ctx: Ctx):
    """The command's document and the acting seat (None: organizer); 404 outside its audience."""
    d = ctx.obj
    att = seat_attendee(ctx.s, ctx.actor)
    if not visible_to(d, att):
        raise NotFound("no such document")  # 404, not 403: its existence must not leak
    return d, att


def _open(ctx: Ctx) -> None:
    if ctx.meeting.status in CLOSED_STATUSES:
        raise Conflict("the meeting has ended; nothing can be changed", code="meeting_ended")


def _retry_later(code: str, message: str) -> Response:
    resp = jsonify(error_body(code, message))
    resp.status_code = 409
    resp.headers["Retry-After"] = str(RETRY_AFTER)
    return resp


def _tell_own_devices(ctx: Ctx, d: Document, att, saved=(), deleted=()) -> None:
    ctx.emit(
        "annotation",
        {"document_id": d.id, "saved": [service.annotation_json(r) for r in saved], "deleted": list(deleted)},
        to=rooms.seat(att.id),
        skip_sid=ctx.sid,
    )


def _tell_shares(ctx: Ctx, d: Document, att, gone: dict[str, list[str]], shared: dict[str, list]) -> None:
    """`gone`: share target -> ids no longer shared there; `shared`: target -> rows now shared there."""
    for target, ids in gone.items():
        if target != "private" and ids:
            msg = {"document_id": d.id, "attendee_id": att.id, "ids": ids}
            ctx.emit("annotation.unshared", msg, to=service.share_rooms(ctx.s, d, target))
    for target, rows in shared.items():
        if target != "private" and rows:
            msg = {
                "document_id": d.id,
                "attendee": service.attendee_label(att),
                "annotations": [service.annotation_json(r) for r in rows],
            }
            ctx.emit("annotation.shared", msg, to=service.share_rooms(ctx.s, d, target))


def _refresh_shown(ctx: Ctx, d: Document, att, ids: set[str]) -> None:
    """Re-send what the presenter shows when the seat changed one of the shown annotations."""
    row = ctx.s.get(AnnotationShow, d.meeting_id)
    if row is not None and row.attendee_id == att.id and row.document_id == d.id and ids & set(row.ids):
        ctx.emit("annotation.shown", service.shown_json(ctx.s, row), to=audience_rooms(ctx.s, d))


# --------------------------------------------------------------------------- drawing


@commands.command(
    "annotation.save",
    roles=SEATS,
    schema=schemas.AnnotationSave,
    resource="document",
    write=False,
    socket=True,
)
def save(ctx: Ctx, p: schemas.AnnotationSave) -> dict:
    """Save one annotation (upsert by its client-made `id`); a resend is harmless, a stale `rev` ignored."""
    _open(ctx)
    d, att = _document(ctx)
    row, applied = service.save_annotation(ctx.s, d, att, p)
    if applied:
        _tell_own_devices(ctx, d, att, saved=[row])
        if row.shared != "private":
            _tell_shares(ctx, d, att, {}, {row.shared: [row]})
            _refresh_shown(ctx, d, att, {row.client_id})
    return {"annotation": service.annotation_json(row), "applied": applied}


@commands.command(
    "annotation.delete",
    roles=SEATS,
    schema=schemas.AnnotationDelete,
    resource="document",
    write=False,
    socket=True,
)
def delete(ctx: Ctx, p: schemas.AnnotationDelete) -> dict:
    """The eraser: delete annotations by id; idempotent (unknown ids leave a tombstone)."""
    _open(ctx)
    d, att = _document(ctx)
    deleted, ignored = service.delete_annotations(ctx.s, d, att, p.ids, p.rev)
    if deleted:
        _tell_own_devices(ctx, d, att, deleted=[r.client_id for r in deleted])
        gone: dict[str, list[str]] = defaultdict(list)
        for r in deleted:
            gone[r.shared].append(r.client_id)
        _tell_shares(ctx, d, att, gone, {})
        _refresh_shown(ctx, d, att, {r.client_id for r in deleted})
    return {"deleted": [r.client_id for r in deleted], "ignored": ignored}


@commands.command(
    "annotation.share", roles=SEATS, schema=schemas.AnnotationShare, resource="document", socket=True
)
def share(ctx: Ctx, p: schemas.AnnotationShare) -> dict:
    """Share annotations (`ids`, or every one on `page`) with the room or the presenter, or make them private."""
    d, att = _document(ctx)
    changed = service.share_annotations(ctx.s, d, att, p.to, ids=p.ids, page=p.page)
    if not changed:
        ctx.skip_audit = True
        return {"changed": []}
    gone: dict[str, list[str]] = defaultdict(list)
    for r, old in changed:
        gone[old].append(r.client_id)
    rows = [r for r, _ in changed]
    _tell_own_devices(ctx, d, att, saved=rows)
    _tell_shares(ctx, d, att, gone, {p.to: rows})
    _refresh_shown(ctx, d, att, {r.client_id for r in rows})
    ctx.audit_data = {"document_id": d.id, "to": p.to, "ids": [r.client_id for r in rows]}
    return {"changed": [r.client_id for r in rows]}


@commands.command(
    "annotation.show", roles=PRESENTERS, schema=schemas.AnnotationShow, resource="document", socket=True
)
def show(ctx: Ctx, p: schemas.AnnotationShow) -> dict:
    """Show one seat's shared annotations to everyone who may see the document."""
    from ..roster.models import Attendee

    d, _ = _document(ctx)
    author = ctx.s.get(Attendee, p.attendee_id)
    if author is None or author.meeting_id != d.meeting_id or author.deleted:
        raise NotFound("no such attendee")
    row = service.show(ctx.s, d.meeting_id, d, author, p.ids, ctx.actor)
    msg = service.shown_json(ctx.s, row)
    ctx.emit("annotation.shown", msg, to=audience_rooms(ctx.s, d))
    return {"shown": msg}


@commands.command("annotation.hide", roles=PRESENTERS, schema=schemas.Empty, resource="meeting", socket=True)
def hide(ctx: Ctx, p) -> dict:
    """Stop showing annotations."""
    row = ctx.s.get(AnnotationShow, ctx.meeting.id)
    if row is None:
        ctx.skip_audit = True
        return {}
    d = ctx.s.get(Document, row.document_id)
    told = audience_rooms(ctx.s, d) if d is not None else [rooms.meeting(ctx.meeting.id)]
    ctx.s.delete(row)
    ctx.emit("annotation.shown", {**service.HIDDEN, "shown_by": None, "at": None}, to=told)
    return {}


# --------------------------------------------------------------------------- reading


@commands.command(
    "annotations.list",
    roles=EVERYONE_IN_MEETING,
    schema=schemas.ListQuery,
    resource="document",
    write=False,
    http=("GET", "/documents/<int:document_id>/annotations"),
)
def list_(ctx: Ctx, p: schemas.ListQuery) -> dict:
    """A seat's own annotations on a document (organizers: `?attendee_id=`, default every seat), orphans included."""
    d, att = _document(ctx)
    if att is not None and p.attendee_id not in (None, att.id):
        raise Forbidden("a seat lists its own annotations; shared ones are at /annotations/shared")
    service.carry_over(ctx.s, d)
    rows = service.list_for_seat(ctx.s, d, att.id if att is not None else p.attendee_id, p.page)
    people = service.authors(ctx.s, rows) if att is None else {}
    return {
        "document_id": d.id,
        "version": d.version,
        "annotations": [service.annotation_json(r, people.get(r.attendee_id)) for r in rows],
    }


@commands.command(
    "annotations.shared",
    roles=EVERYONE_IN_MEETING,
    schema=schemas.ListQuery,
    resource="document",
    write=False,
    http=("GET", "/documents/<int:document_id>/annotations/shared"),
)
def shared(ctx: Ctx, p: schemas.ListQuery) -> dict:
    """Other seats' annotations shared with this client (the room's; the presenter's too for chair, presenter, organizers)."""
    d, att = _document(ctx)
    service.carry_over(ctx.s, d)
    return {
        "document_id": d.id,
        "version": d.version,
        "annotations": [service.annotation_json(r, a) for r, a in service.shared_with(ctx.s, d, att, p.page)],
    }


# --------------------------------------------------------------------------- export


def export_json(e: AnnotationExport) -> dict:
    out = {
        "id": e.id,
        "meeting_id": e.meeting_id,
        "document_id": e.document_id,
        "attendee_id": e.attendee_id,
        "kind": "pdf" if e.document_id is not None else "zip",
        "status": e.status,
        "size": e.size,
        "error": e.error,
        "created_at": iso(e.created_at),
        "finished_at": iso(e.finished_at),
        "status_url": f"/api/v1/annotation-exports/{e.id}",
        "file_url": f"/api/v1/annotation-exports/{e.id}/file" if e.status == "ready" else None,
    }
    return out


def _queue(ctx: Ctx, e: AnnotationExport) -> dict:
    ctx.s.add(e)
    ctx.s.flush()
    export_id = e.id
    ctx.later(lambda: tasks.enqueue("export_annotations", export_id))
    ctx.audit_data = {"export_id": e.id, "document_id": e.document_id, "attendee_id": e.attendee_id}
    return export_json(e)


@commands.command(
    "annotations.export",
    roles=EVERYONE_IN_MEETING,
    schema=schemas.ExportRequest,
    resource="document",
    allow_ended=True,
    status=202,
    http=("POST", "/documents/<int:document_id>/annotations/export"),
)
def export(ctx: Ctx, p: schemas.ExportRequest) -> dict:
    """Build an annotated PDF of a document with a seat's annotations (a seat: its own) in the background."""
    from ..roster.models import Attendee

    d, att = _document(ctx)
    if att is not None:
        if d.confidential:
            raise Forbidden(
                "this document is view-only; its annotations are listed over HTTP", code="view_only"
            )
        if p.attendee_id not in (None, att.id):
            raise Forbidden("a seat exports its own annotations")
        author = att
    else:
        if p.attendee_id is None:
            raise Invalid("attendee_id is required for an organizer", code="attendee_required")
        author = ctx.s.get(Attendee, p.attendee_id)
        if author is None or author.meeting_id != d.meeting_id:
            raise NotFound("no such attendee")
    if d.status != "ready":
        raise Conflict("the document is not ready yet", code="document_not_ready")
    return _queue(
        ctx,
        AnnotationExport(
            meeting_id=d.meeting_id,
            document_id=d.id,
            attendee_id=author.id,
            requester_attendee_id=att.id if att is not None else None,
            filename=f"{d.title}-{author.seat or author.id}-annotated.pdf",
        ),
    )


@commands.command(
    "annotations.export_meeting",
    roles={ORGANIZER},
    schema=schemas.Empty,
    resource="meeting",
    allow_ended=True,
    status=202,
    http=("POST", "/meetings/<int:meeting_id>/annotations/export"),
)
def export_meeting(ctx: Ctx, p) -> dict:
    """Build a zip of every seat's annotations: one annotated PDF per document and seat, and JSON."""
    m = ctx.meeting
    return _queue(ctx, AnnotationExport(meeting_id=m.id, filename=f"meeting-{m.id}-annotations.zip"))


def _export(ctx: Ctx) -> AnnotationExport:
    e = ctx.obj
    if ctx.actor.is_seat:
        if e.requester_attendee_id != ctx.actor.id:
            raise NotFound("no such export")
        d = ctx.s.get(Document, e.document_id) if e.document_id is not None else None
        if d is None or not visible_to(d, seat_attendee(ctx.s, ctx.actor)):
            raise NotFound("no such export")
    return e


@commands.command(
    "annotations.export_status",
    roles=EVERYONE_IN_MEETING,
    resource="annotation_export",
    write=False,
    http=("GET", "/annotation-exports/<int:export_id>"),
)
def export_status(ctx: Ctx, p) -> dict:
    """An export's `status` (`queued` | `running` | `ready` | `failed`) and, once ready, its `file_url`."""
    return export_json(_export(ctx))


@commands.command(
    "annotations.export_file",
    roles=EVERYONE_IN_MEETING,
    resource="annotation_export",
    write=False,
    binary="application/pdf",
    http=("GET", "/annotation-exports/<int:export_id>/file"),
)
def export_file(ctx: Ctx, p) -> Response:
    """The exported file (PDF or zip); 409 `export_not_ready` with Retry-After until it is built."""
    e = _export(ctx)
    if e.status in ("queued", "running"):
        return _retry_later("export_not_ready", "the export is being built; try again shortly")
    if e.status != "ready" or not e.sha256:
        raise Unprocessable(e.error or "the export failed", code="export_failed")
    return send_file(
        storage.get().path(e.sha256),
        mimetype="application/pdf" if e.document_id is not None else "application/zip",
        as_attachment=True,
        download_name=e.filename or f"annotations-{e.id}",
        etag=e.sha256,
        conditional=True,
    )
