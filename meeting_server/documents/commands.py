"""Routes of the documents domain: upload, versions, pages."""

from __future__ import annotations

from flask import Response, current_app, request, send_file

from ..core import rooms, storage, tasks
from ..core.commands import EVERYONE_IN_MEETING, ORGANIZER, CommandSet, Ctx
from ..core.db import utcnow
from ..core.errors import Forbidden, Invalid, NotFound
from . import schemas, service
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
    if not ctx.actor.is_seat:
        return None
    from ..roster.models import Attendee

    return ctx.s.get(Attendee, ctx.actor.id)


def _visible(ctx: Ctx) -> Document:
    d = ctx.obj
    if not service.visible_to(d, _seat_attendee(ctx)):
        raise NotFound("no such document")  # 404, not 403: its existence must not leak
    return d


def _queued(ctx: Ctx, d: Document) -> None:
    doc_id, version = d.id, d.version
    ctx.later(lambda: tasks.enqueue("render_document", doc_id, version))
    ctx.emit("document", service.document_json(d), to=rooms.staff(d.meeting_id))


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
    for k, v in changes.items():
        setattr(d, k, v)
    d.updated_at = utcnow()
    ctx.emit("documents.changed", {"document_id": d.id}, to=rooms.meeting(d.meeting_id))
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
    ctx.s.delete(d)
    ctx.emit("documents.changed", {"document_id": d.id, "deleted": True}, to=rooms.meeting(d.meeting_id))
    return {"ok": True}


def _page(ctx: Ctx, size: str) -> Response:
    d = _visible(ctx)
    try:
        n = int(ctx.params["n"])
    except (KeyError, ValueError):
        raise NotFound("no such page") from None
    page = service.get_page(ctx.s, d, n)
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
    """Page `n` (from 1) as a JPEG, about 1600 px on the long side; strong ETag, 304 on revalidation."""
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
    """Page `n` as a thumbnail JPEG (320 px on the long side)."""
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
