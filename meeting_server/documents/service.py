"""Documents: upload checks, versions, visibility and page lookup."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..core import storage
from ..core.db import iso, utcnow
from ..core.errors import AppError, Invalid, NotFound, TooLarge, Unprocessable, Unsupported
from .models import Document, DocumentPage

OFFICE_KINDS = {"docx", "pptx", "xlsx", "doc", "ppt", "xls", "odt", "odp", "ods", "ole"}
IMAGE_KINDS = {"png", "jpeg"}


def document_json(d: Document) -> dict[str, Any]:
    return {
        "id": d.id,
        "meeting_id": d.meeting_id,
        "title": d.title,
        "agenda_item_id": d.agenda_item_id,
        "position": d.position,
        "version": d.version,
        "status": d.status,
        "error": d.error,
        "page_count": d.page_count,
        "pages_done": d.pages_done,
        "kind": d.kind,
        "filename": d.filename,
        "size": d.original_size,
        "confidential": d.confidential,
        "audience": d.audience,
        "withdrawn": d.withdrawn_at is not None,
        "created_at": iso(d.created_at),
        "updated_at": iso(d.updated_at),
        "pages_url": f"/api/v1/documents/{d.id}/pages/{{n}}?v={d.version}",
        "thumbs_url": f"/api/v1/documents/{d.id}/thumbs/{{n}}?v={d.version}",
    }


def list_documents(s: Session, meeting_id: int) -> list[Document]:
    return list(
        s.scalars(
            select(Document).where(Document.meeting_id == meeting_id).order_by(Document.position, Document.id)
        )
    )


def visible_to(d: Document, attendee: Any | None) -> bool:
    """Whether a seat may see a document at all (None: an organizer, who sees everything)."""
    if attendee is None:
        return True
    if d.withdrawn_at is not None:
        return False
    aud = d.audience
    if not aud or (not aud.get("roles") and not aud.get("attendees")):
        return True
    return attendee.role in (aud.get("roles") or []) or attendee.id in (aud.get("attendees") or [])


def _render_error(e: Exception) -> AppError:
    status = getattr(e, "status", 422)
    code = getattr(e, "code", "unprocessable")
    message = getattr(e, "message", str(e))
    cls = {413: TooLarge, 415: Unsupported}.get(status, Unprocessable)
    return cls(message, code=code)


def check_upload(path: Path, max_pages: int) -> tuple[str, int | None]:
    """Detect the type from content and refuse what cannot be processed; returns (kind, pages)."""
    from . import render

    try:
        if path.stat().st_size == 0:
            raise Unprocessable("the file is empty", code="empty_file")
        kind = render.sniff(path)
        pages = None
        if kind == "pdf":
            pages = render.inspect_pdf(path, max_pages)
        elif kind in IMAGE_KINDS:
            render.check_image(path)
            pages = 1
        elif kind in OFFICE_KINDS:
            if not render.converter_available():
                raise Unsupported(
                    "Word, PowerPoint and Excel files need LibreOffice on the server: apt-get install "
                    "libreoffice-writer-nogui libreoffice-impress-nogui libreoffice-calc-nogui fonts-noto-cjk",
                    code="converter_missing",
                )
            render.check_zip(path)
        else:
            raise Unsupported(f"files of type {kind} are not supported", code="unsupported_type")
        return kind, pages
    except AppError:
        raise
    except render.DocumentError as e:
        raise _render_error(e) from None


def store_upload(file_storage, settings) -> tuple[Path, str, int, str]:
    """Spool an uploaded file to the tmp dir: (path, sha256, size, safe filename)."""
    if file_storage is None:
        raise Invalid("send the document as the multipart field 'file'", code="file_missing")
    try:
        path, sha, size = storage.get().save_stream(file_storage.stream, settings.max_upload_bytes)
    except OverflowError:
        raise TooLarge(
            f"the file is larger than {settings.max_upload_bytes // (1024 * 1024)} MB", code="too_large"
        ) from None
    except OSError as e:
        raise AppError(
            "the server could not store the file (disk full?)", code="storage_failed", status=507
        ) from e
    return path, sha, size, safe_filename(file_storage.filename or "")


def safe_filename(name: str) -> str:
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if c.isprintable() and c not in '<>:"|?*')
    return name.strip(" .")[:200] or "document"


def accept_file(s: Session, settings, file_storage, *, max_pages: int) -> dict[str, Any]:
    """Check and store an uploaded file; nothing is kept when it is refused."""
    path, sha, size, filename = store_upload(file_storage, settings)
    try:
        kind, pages = check_upload(path, max_pages)
        storage.get().put_file(path, move=True)
    finally:
        path.unlink(missing_ok=True)
    return {"kind": kind, "pages": pages, "sha": sha, "size": size, "filename": filename}


def create_document(
    s: Session,
    meeting_id: int,
    info: dict[str, Any],
    title: str | None,
    agenda_item_id: int | None,
    confidential: bool,
) -> Document:
    if agenda_item_id is not None:
        from ..agenda.service import get_item

        get_item(s, meeting_id, agenda_item_id)
    count = len(list_documents(s, meeting_id))
    d = Document(
        meeting_id=meeting_id,
        agenda_item_id=agenda_item_id,
        title=title or Path(info["filename"]).stem or "文档 Document",
        position=count + 1,
        status="processing",
        page_count=info["pages"],
        filename=info["filename"],
        kind=info["kind"],
        original_sha256=info["sha"],
        original_size=info["size"],
        confidential=confidential,
    )
    s.add(d)
    s.flush()
    return d


def replace_file(d: Document, info: dict[str, Any]) -> None:
    d.version += 1
    d.status = "processing"
    d.error = None
    d.page_count = info["pages"]
    d.pages_done = 0
    d.kind = info["kind"]
    d.filename = info["filename"]
    d.original_sha256 = info["sha"]
    d.original_size = info["size"]
    d.pdf_sha256 = None
    d.updated_at = utcnow()


def get_page(s: Session, d: Document, n: int) -> DocumentPage:
    page = s.scalar(
        select(DocumentPage).where(
            DocumentPage.document_id == d.id, DocumentPage.version == d.version, DocumentPage.n == n
        )
    )
    if page is None:
        if d.status == "processing" and d.page_count and 1 <= n <= d.page_count:
            from ..core.errors import Conflict

            raise Conflict("this page is still being prepared; try again shortly", code="page_not_ready")
        raise NotFound("no such page")
    return page


def page_sizes(s: Session, d: Document) -> list[dict[str, Any]]:
    rows = s.scalars(
        select(DocumentPage)
        .where(DocumentPage.document_id == d.id, DocumentPage.version == d.version)
        .order_by(DocumentPage.n)
    )
    return [
        {"n": p.n, "width": p.width, "height": p.height, "pdf_width": p.pdf_width, "pdf_height": p.pdf_height}
        for p in rows
    ]


def cleanup_tmp(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


# --------------------------------------------------------------------------- audience
# Who may see a document decides where every event about it goes. Rooms are built per seat
# from the database (not from role rooms joined at connect time), so a seat whose role was
# changed after it connected never receives what its new role may not see.

#: Seat roles of the console audience (`rooms.staff`) and of the presenter (`rooms.presenters`).
GROUP_ROLES = {
    "staff": frozenset({"chair", "presenter", "secretary"}),
    "presenters": frozenset({"chair", "presenter"}),
}


def is_restricted(d: Document) -> bool:
    """Whether some seats of the meeting may not see `d` (an audience is set, or it was withdrawn)."""
    aud = d.audience or {}
    return d.withdrawn_at is not None or bool(aud.get("roles") or aud.get("attendees"))


def seat_attendee(s: Session, actor: Any) -> Any | None:
    """The attendee behind a seat actor; None for organizers."""
    if not actor.is_seat:
        return None
    from ..roster.models import Attendee

    return s.get(Attendee, actor.id)


def visible_to_actor(s: Session, d: Document, actor: Any) -> bool:
    """`visible_to` for an actor: organizers see everything of their meeting."""
    return visible_to(d, seat_attendee(s, actor))


def audience_attendees(s: Session, d: Document) -> list[Any]:
    """The meeting's (not deleted) seats that may see `d`."""
    from ..roster.service import list_attendees

    return [a for a in list_attendees(s, d.meeting_id) if visible_to(d, a)]


def audience_rooms(s: Session, d: Document, group: str | None = None) -> list[str]:
    """Socket.IO rooms reaching exactly the clients allowed to see `d`.

    ``group`` narrows the seats to the console audience (``"staff"``) or to the chair and
    presenter (``"presenters"``); organizers are always included.
    """
    from ..core import rooms

    mid = d.meeting_id
    if not is_restricted(d):
        return [{None: rooms.meeting, "staff": rooms.staff, "presenters": rooms.presenters}[group](mid)]
    roles = GROUP_ROLES.get(group) if group else None
    return [rooms.organizers(mid)] + [
        rooms.seat(a.id) for a in audience_attendees(s, d) if roles is None or a.role in roles
    ]


#: Fields of a `page`-like message that say what is shown; blanked for seats that may not see it.
SHOWN_FIELDS = ("document_id", "page", "view")


def page_event_targets(
    s: Session, meeting_id: int, document_id: int | None, msg: dict[str, Any]
) -> list[tuple[list[str], dict[str, Any]]]:
    """Where a message naming the shown document goes: ``[(rooms, payload), …]``.

    For `page` (and `view`, `agenda.current`, `follow.lock`, which carry the same `current`
    block): clients allowed to see the document get ``msg``; the other seats get the same
    message with ``document_id``, ``page`` and ``view`` set to null, so they neither learn
    the document's id nor its page, yet still see the `seq` move on. Emit each pair::

        for to, data in page_event_targets(ctx.s, m.id, m.current_document_id, msg):
            ctx.emit("page", data, to=to)
    """
    from ..core import rooms

    d = s.get(Document, document_id) if document_id is not None else None
    if d is None or d.meeting_id != meeting_id or not is_restricted(d):
        return [([rooms.meeting(meeting_id)], msg)]
    from ..roster.service import list_attendees

    seats = list_attendees(s, meeting_id)  # one query for both groups: this runs on every page flip
    allowed = [rooms.organizers(meeting_id)] + [rooms.seat(a.id) for a in seats if visible_to(d, a)]
    others = [rooms.seat(a.id) for a in seats if not visible_to(d, a)]
    out = [(allowed, msg)]
    if others:
        out.append((others, {**msg, **{k: None for k in SHOWN_FIELDS if k in msg}}))
    return out


def check_audience(s: Session, meeting_id: int, audience: dict[str, Any] | None) -> None:
    """Named attendees of an audience must be seats of this meeting (400 otherwise)."""
    if not audience or not audience.get("attendees"):
        return
    from ..roster.models import Attendee

    wanted = set(audience["attendees"])
    found = set(
        s.scalars(
            select(Attendee.id).where(
                Attendee.id.in_(wanted), Attendee.meeting_id == meeting_id, Attendee.deleted.is_(False)
            )
        )
    )
    if wanted - found:
        raise Invalid(
            f"audience.attendees: not attendees of this meeting: {sorted(wanted - found)}",
            fields=[{"field": "audience.attendees", "problem": "unknown attendee"}],
        )


def withdraw_document(s: Session, d: Document) -> list[str]:
    """Withdraw `d` from every tablet; returns the rooms that could see it (to tell them)."""
    told = audience_rooms(s, d)
    if d.withdrawn_at is None:
        d.withdrawn_at = utcnow()
        d.updated_at = d.withdrawn_at
    return told
