"""Routes of the documents domain: upload, versions, pages, confidentiality, withdrawal.

Confidential documents: every route and event below answers or reaches only the clients
in the document's audience (others get 404, never 403, so its existence does not leak);
seats get per-seat watermarked page images (see watermarks.py), never the original file.
"""

from __future__ import annotations

from flask import Response, current_app, jsonify, request, send_file

from ..core import rooms, storage, tasks
from ..core.commands import EVERYONE_IN_MEETING, ORGANIZER, CommandSet, Ctx
from ..core.db import utcnow
from ..core.errors import Conflict, Forbidden, Invalid, NotFound, error_body
from . import schemas, service, watermarks
from .models import Document

commands = CommandSet("documents")
commands.event(
    "document", "A document's status or rendering progress changed (full document JSON); to the room staff."
)
commands.event(
    "documents.changed",
    'A document was added, edited, re-rendered or deleted: `{"document_id", …}`; to everyone, who refetch what they may see.',
)
commands.event(
    "documents.withdrawn",
    'Documents withdrawn from tablets: `{"document_ids", "reason"}`; tablets purge them from their caches.',
)


@commands.loader("document", "document_id")
def _load(s, document_id: int):
    return s.get(Document, document_id)


def _settings():
    return current_app.config["SETTINGS"]


def _seat_attendee(ctx: Ctx):
    """The attendee behind a seat actor, or None for organizers."""
    return service.seat_attendee(ctx.s, ctx.actor)


def _visible(ctx: Ctx) -> Document:
    d = ctx.obj
    if not service.visible_to(d, _seat_attendee(ctx)):
        raise NotFound("no such document")  # 404, not 403: its existence must not leak
    return d


def _queued(ctx: Ctx, d: Document) -> None:
    doc_id, version = d.id, d.version
    ctx.later(lambda: tasks.enqueue("render_document", doc_id, version))
    ctx.emit("document", service.document_json(d), to=service.audience_rooms(ctx.s, d, group="staff"))


@commands.command(
    "documents.upload",
    roles={ORGANIZER},
    resource="meeting",
    multipart=True,
    schema=schemas.UploadForm,
    http=("POST", "/meetings/<int:meeting_id>/documents"),
    status=202,
)
def upload(ctx: Ctx, form: schemas.UploadForm) -> dict:
    """Upload a PDF, Word/PowerPoint/Excel file or image (multipart field `file`; optional `title`, `agenda_item_id`)."""
    info = service.accept_file(
        ctx.s, _settings(), (ctx.files or {}).get("file"), max_pages=_settings().max_pages
    )
    d = service.create_document(
        ctx.s, ctx.meeting.id, info, form.title, form.agenda_item_id, form.confidential
    )
    ctx.audit_data = {"document_id": d.id, "title": d.title, "sha256": info["sha"], "kind": info["kind"]}
    _queued(ctx, d)
    return service.document_json(d)


@commands.command(
    "documents.replace",
    roles={ORGANIZER},
    resource="document",
    multipart=True,
    schema=schemas.Empty,
    http=("POST", "/documents/<int:document_id>/replace"),
    status=202,
)
def replace(ctx: Ctx, p) -> dict:
    """Replace a document's file with a new version; the id stays, `version` grows."""
    d = ctx.obj
    info = service.accept_file(
        ctx.s, _settings(), (ctx.files or {}).get("file"), max_pages=_settings().max_pages
    )
    service.replace_file(d, info)
    ctx.audit_data = {"document_id": d.id, "version": d.version, "sha256": info["sha"]}
    _queued(ctx, d)
    return service.document_json(d)


@commands.command(
    "documents.get",
    roles=EVERYONE_IN_MEETING,
    resource="document",
    write=False,
    http=("GET", "/documents/<int:document_id>"),
)
def get(ctx: Ctx, p) -> dict:
    """A document's status (`processing` | `ready` | `failed`), page count and progress."""
    d = _visible(ctx)
    out = service.document_json(d)
    if d.status == "ready":
        out["pages"] = service.page_sizes(ctx.s, d)
    return out


@commands.command(
    "documents.list",
    roles=EVERYONE_IN_MEETING,
    resource="meeting",
    write=False,
    http=("GET", "/meetings/<int:meeting_id>/documents"),
)
def list_(ctx: Ctx, p) -> dict:
    """The meeting's documents this client may see."""
    att = _seat_attendee(ctx)
    return {
        "documents": [
            service.document_json(d)
            for d in service.list_documents(ctx.s, ctx.meeting.id)
            if service.visible_to(d, att)
        ]
    }


@commands.command(
    "documents.update",
    roles={ORGANIZER},
    schema=schemas.DocumentUpdate,
    resource="document",
    http=("PATCH", "/documents/<int:document_id>"),
)
def update(ctx: Ctx, p: schemas.DocumentUpdate) -> dict:
    """Edit a document's title, agenda item, order, confidentiality or audience."""
    d = ctx.obj
    changes = p.model_dump(exclude_unset=True)
    if "agenda_item_id" in changes and changes["agenda_item_id"] is not None:
        from ..agenda.service import get_item

        get_item(ctx.s, d.meeting_id, changes["agenda_item_id"])
    if "audience" in changes:
        changes["audience"] = p.audience.model_dump() if p.audience is not None else None
        service.check_audience(ctx.s, d.meeting_id, changes["audience"])
    before = {a.id for a in service.audience_attendees(ctx.s, d)}
    for k, v in changes.items():
        setattr(d, k, v)
    d.updated_at = utcnow()
    lost = before - {a.id for a in service.audience_attendees(ctx.s, d)}
    # Only those who may see it now hear of it; those who just lost it purge it.
    ctx.emit("documents.changed", {"document_id": d.id}, to=service.audience_rooms(ctx.s, d))
    if lost:
        ctx.emit(
            "documents.withdrawn",
            {"document_ids": [d.id], "reason": "audience_changed"},
            to=[rooms.seat(aid) for aid in sorted(lost)],
        )
    return service.document_json(d)


@commands.command(
    "documents.delete",
    roles={ORGANIZER},
    resource="document",
    http=("DELETE", "/documents/<int:document_id>"),
)
def delete(ctx: Ctx, p) -> dict:
    """Delete a document from a meeting in preparation."""
    d = ctx.obj
    if ctx.meeting.status != "draft":
        raise Invalid(
            "a document of a meeting that has started is withdrawn, not deleted", code="meeting_started"
        )
    told = service.audience_rooms(ctx.s, d)
    ctx.s.delete(d)
    ctx.emit("documents.changed", {"document_id": d.id, "deleted": True}, to=told)
    return {"ok": True}


@commands.command(
    "documents.withdraw",
    roles={ORGANIZER},
    resource="document",
    schema=schemas.Empty,
    allow_ended=True,
    http=("POST", "/documents/<int:document_id>/withdraw"),
)
def withdraw(ctx: Ctx, p) -> dict:
    """Withdraw a document from every tablet: they purge it, its pages are refused to them; organizers keep it."""
    d = ctx.obj
    if d.withdrawn_at is not None:
        ctx.skip_audit = True  # idempotent
        return service.document_json(d)
    told = service.withdraw_document(ctx.s, d)
    ctx.audit_data = {"document_id": d.id, "title": d.title}
    ctx.emit("documents.withdrawn", {"document_ids": [d.id], "reason": "withdrawn"}, to=told)
    return service.document_json(d)


def _retry_later(code: str, message: str) -> Response:
    """409 with Retry-After, as a response (not raised): what the request recorded is committed."""
    resp = jsonify(error_body(code, message))
    resp.status_code = 409
    resp.headers["Retry-After"] = str(watermarks.RETRY_AFTER)
    return resp


def _watermarked(ctx: Ctx, d: Document, n: int, size: str) -> Response:
    """A seat's own watermarked copy of a confidential page; its first request queues it."""
    aid = ctx.actor.id
    row = watermarks.lookup(ctx.s, d, n, size, aid)
    if row is None or row.sha256 is None:
        pages = watermarks.request(ctx.s, d, n, size, aid)
        if pages:
            doc_id, version = d.id, d.version
            ctx.later(lambda: watermarks.enqueue(doc_id, version, aid, size, pages))
        return _retry_later(
            "page_not_ready", "this seat's copy of the page is being prepared; try again shortly"
        )
    watermarks.log_first_view(ctx.s, d, row, ctx.actor)
    resp = send_file(
        storage.get().path(row.sha256), mimetype="image/jpeg", etag=row.sha256, conditional=True, max_age=None
    )
    # Never in a browser cache that outlives withdrawal; the tablet keeps its own purgeable copy.
    resp.headers["Cache-Control"] = "private, no-store"
    return resp


def _page(ctx: Ctx, size: str) -> Response:
    d = _visible(ctx)
    try:
        n = int(ctx.params["n"])
    except (KeyError, ValueError):
        raise NotFound("no such page") from None
    try:
        page = service.get_page(ctx.s, d, n)
    except Conflict as e:
        if e.code != "page_not_ready":
            raise
        return _retry_later(e.code, e.message)
    if d.confidential and ctx.actor.is_seat:
        return _watermarked(ctx, d, n, size)
    sha = page.image_sha256 if size == "page" else page.thumb_sha256
    path = storage.get().path(sha)
    resp = send_file(path, mimetype="image/jpeg", etag=sha, conditional=True, max_age=None)
    # A versioned URL never changes content; an unversioned one must be revalidated.
    if request.args.get("v") == str(d.version):
        resp.headers["Cache-Control"] = "private, max-age=31536000, immutable"
    else:
        resp.headers["Cache-Control"] = "private, no-cache"
    return resp


@commands.command(
    "documents.page",
    roles=EVERYONE_IN_MEETING,
    resource="document",
    write=False,
    binary="image/jpeg",
    http=("GET", "/documents/<int:document_id>/pages/<int:n>"),
)
def page(ctx: Ctx, p) -> Response:
    """Page `n` (from 1) as a JPEG, about 1600 px on the long side; strong ETag, 304 on revalidation.

    Confidential documents: a seat gets its own watermarked copy (409 `page_not_ready` with
    Retry-After until the worker made it); its first view of each page is audited.
    """
    return _page(ctx, "page")


@commands.command(
    "documents.thumb",
    roles=EVERYONE_IN_MEETING,
    resource="document",
    write=False,
    binary="image/jpeg",
    http=("GET", "/documents/<int:document_id>/thumbs/<int:n>"),
)
def thumb(ctx: Ctx, p) -> Response:
    """Page `n` as a thumbnail JPEG (320 px on the long side); watermarked per seat like pages."""
    return _page(ctx, "thumb")


@commands.command(
    "documents.original",
    roles=EVERYONE_IN_MEETING,
    resource="document",
    write=False,
    binary="application/octet-stream",
    http=("GET", "/documents/<int:document_id>/original"),
)
def original(ctx: Ctx, p) -> Response:
    """The file as uploaded (never for confidential documents: those are view-only)."""
    d = _visible(ctx)
    if d.confidential and ctx.actor.is_seat:
        raise Forbidden("this document is view-only", code="view_only")
    mimetypes = {"pdf": "application/pdf", "png": "image/png", "jpeg": "image/jpeg"}
    return send_file(
        storage.get().path(d.original_sha256),
        mimetype=mimetypes.get(d.kind, "application/octet-stream"),
        as_attachment=True,
        download_name=d.filename or f"document-{d.id}",
        etag=d.original_sha256,
        conditional=True,
    )
