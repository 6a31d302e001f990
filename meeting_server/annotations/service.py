"""Annotations: checks and limits, upsert by client id, sharing, version carry-over, export.

Stored per seat, per document version, per page, in PDF points of the displayed page
(origin top-left, rotation applied: the space of `DocumentPage.pdf_width/pdf_height` and
of `render.export_annotated`).
"""

from __future__ import annotations

import json
import logging
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..core.db import iso, utcnow
from ..core.errors import Conflict, Invalid, NotFound, TooLarge
from ..documents.models import Document, DocumentPage
from ..documents.service import visible_to
from . import schemas
from .models import Annotation, AnnotationShow

log = logging.getLogger(__name__)

#: Points in one annotation, over all its strokes.
MAX_POINTS = 5000
#: Strokes in one pen or highlighter annotation.
MAX_STROKES = 100
#: Characters of a text or sticky note.
MAX_TEXT = 4000
#: Live annotations of one seat on one page.
MAX_PER_PAGE = 1000
#: How far outside the page a point may lie, as a fraction of the page's long side.
MARGIN = 0.05

KIND_FIELDS = {
    "pen": ("points", "strokes", "color", "width"),
    "highlighter": ("points", "strokes", "color", "width"),
    "highlight": ("rect", "points", "color"),
    "note": ("points", "rect", "text", "color"),
    "text": ("rect", "points", "text", "color", "font_size"),
}
PRESENTER_ROLES = frozenset({"chair", "presenter"})


def attendee_label(a: Any) -> dict[str, Any]:
    return {"id": a.id, "name": a.name, "seat": a.seat}


def annotation_json(a: Annotation, author: Any | None = None, *, with_data: bool = True) -> dict[str, Any]:
    out = {
        "id": a.client_id,
        "document_id": a.document_id,
        "attendee_id": a.attendee_id,
        "version": a.version,
        "drawn_version": a.drawn_version,
        "page": a.page,
        "kind": a.kind,
        **(a.data if with_data else {}),
        "shared": a.shared,
        "orphaned": a.orphaned,
        "rev": a.rev,
        "created_at": iso(a.created_at),
        "updated_at": iso(a.updated_at),
    }
    if author is not None:
        out["attendee"] = attendee_label(author)
    return out


# --------------------------------------------------------------------------- checks


def _bad(message: str, field: str, code: str = "invalid") -> Invalid:
    return Invalid(message, code=code, fields=[{"field": field, "problem": message}])


def _data(p: schemas.AnnotationSave, size: tuple[float, float] | None) -> dict[str, Any]:
    """Check one annotation against its kind, the limits and the page; returns what is stored."""
    raw = {k: getattr(p, k) for k in KIND_FIELDS[p.kind] if getattr(p, k) is not None}
    strokes: list[list[Any]] = []
    if "strokes" in raw:
        strokes = [list(s) for s in raw["strokes"]]
        raw.pop("points", None)
    elif "points" in raw:
        strokes = [list(raw["points"])]
    if p.kind in ("pen", "highlighter"):
        if not strokes:
            raise _bad(f"a {p.kind} annotation needs points or strokes", "points")
        if len(strokes) > MAX_STROKES:
            raise TooLarge(f"at most {MAX_STROKES} strokes in one annotation", code="too_many_strokes")
        if any(not s for s in strokes):
            raise _bad("a stroke needs at least one point", "strokes")
    elif p.kind in ("highlight", "note") and not strokes and "rect" not in raw:
        raise _bad(f"a {p.kind} needs rect or points", "rect")
    elif p.kind == "text":
        if not (p.text or "").strip():
            raise _bad("a text annotation needs text", "text")
        if not strokes and "rect" not in raw:
            raise _bad("a text annotation needs rect or points", "rect")
    total = sum(len(s) for s in strokes)
    if total > MAX_POINTS:
        raise TooLarge(
            f"at most {MAX_POINTS} points in one annotation (got {total}); split long strokes",
            code="too_many_points",
        )
    if p.text is not None and len(p.text) > MAX_TEXT:
        raise TooLarge(f"at most {MAX_TEXT} characters of text (got {len(p.text)})", code="text_too_long")
    if "rect" in raw:
        x0, y0, x1, y1 = raw["rect"]
        raw["rect"] = [min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)]
        if p.kind in ("highlight", "text") and (x0 == x1 or y0 == y1):
            raise _bad("rect is empty", "rect")
    if size and size[0] > 0 and size[1] > 0:
        w, h = size
        m = MARGIN * max(w, h)
        coords = [pt for s in strokes for pt in s]
        if "rect" in raw:
            coords += [tuple(raw["rect"][:2]), tuple(raw["rect"][2:])]
        for x, y in coords:
            if not (-m <= x <= w + m and -m <= y <= h + m):
                raise _bad(
                    f"point ({x:g}, {y:g}) is outside the page ({w:g} x {h:g} PDF points); coordinates are "
                    "PDF points from the top-left corner, not screen pixels",
                    "points",
                    code="out_of_page",
                )
    if "strokes" in raw:
        raw["strokes"] = [[list(pt) for pt in s] for s in strokes]
    if "points" in raw:
        raw["points"] = [list(pt) for pt in raw["points"]]
    return raw


def _page_size(s: Session, d: Document, version: int, n: int) -> tuple[float, float]:
    row = s.scalar(
        select(DocumentPage).where(
            DocumentPage.document_id == d.id, DocumentPage.version == version, DocumentPage.n == n
        )
    )
    if row is None:
        if version == d.version and d.status == "processing" and (d.page_count is None or n <= d.page_count):
            raise Conflict("this page is still being prepared; try again shortly", code="page_not_ready")
        raise NotFound(f"page {n} does not exist in version {version}", code="no_such_page")
    return row.pdf_width, row.pdf_height


def _count_on_page(s: Session, attendee_id: int, d: Document, version: int, page: int) -> int:
    return (
        s.scalar(
            select(func.count())
            .select_from(Annotation)
            .where(
                Annotation.attendee_id == attendee_id,
                Annotation.document_id == d.id,
                Annotation.version == version,
                Annotation.page == page,
                Annotation.deleted_at.is_(None),
            )
        )
        or 0
    )


def _attach(a: Annotation, d: Document) -> None:
    """Move an annotation drawn on an older version onto the current one (orphaned if its page is gone)."""
    if a.version >= d.version or d.status != "ready" or not d.page_count:
        return
    a.version = d.version
    a.orphaned = a.page > d.page_count


def _get(s: Session, attendee_id: int, client_id: str) -> Annotation | None:
    return s.scalar(
        select(Annotation).where(Annotation.attendee_id == attendee_id, Annotation.client_id == client_id)
    )


# --------------------------------------------------------------------------- writes


def save_annotation(
    s: Session, d: Document, attendee: Any, p: schemas.AnnotationSave
) -> tuple[Annotation, bool]:
    """Insert or update by client id; returns (row, applied). A stale resend is not applied."""
    version = p.version or d.version
    if version > d.version:
        raise NotFound(f"the document has no version {version}", code="no_such_version")
    data = _data(p, _page_size(s, d, version, p.page))
    row = _get(s, attendee.id, p.id)
    if row is None:
        if _count_on_page(s, attendee.id, d, version, p.page) >= MAX_PER_PAGE:
            raise TooLarge(f"at most {MAX_PER_PAGE} annotations on one page", code="too_many_annotations")
        row = Annotation(
            meeting_id=d.meeting_id,
            document_id=d.id,
            attendee_id=attendee.id,
            client_id=p.id,
            version=version,
            drawn_version=version,
            page=p.page,
            kind=p.kind,
            data=data,
            rev=p.rev,
        )
        try:
            with s.begin_nested():  # the same id sent twice at the same moment (a resend)
                s.add(row)
        except IntegrityError:
            row = _get(s, attendee.id, p.id)
            if row is None:  # pragma: no cover - the other insert rolled back
                raise Conflict("try again", code="conflict") from None
        else:
            _attach(row, d)
            return row, True
    if row.document_id != d.id:
        raise Conflict(f"annotation id {p.id!r} belongs to another document", code="id_conflict")
    if (row.deleted_at is not None and p.rev <= row.rev) or p.rev < row.rev:
        return row, False
    if (row.deleted_at is not None or (row.version, row.page) != (version, p.page)) and _count_on_page(
        s, attendee.id, d, version, p.page
    ) >= MAX_PER_PAGE:
        raise TooLarge(f"at most {MAX_PER_PAGE} annotations on one page", code="too_many_annotations")
    row.version, row.drawn_version, row.page, row.kind, row.data = version, version, p.page, p.kind, data
    row.rev, row.orphaned, row.deleted_at, row.updated_at = p.rev, False, None, utcnow()
    _attach(row, d)
    return row, True


def delete_annotations(
    s: Session, d: Document, attendee: Any, ids: list[str], rev: int
) -> tuple[list[Annotation], list[str]]:
    """The eraser: delete by client id; returns (rows deleted now, ids ignored as stale or foreign).

    An unknown id leaves a tombstone, so a save of it that arrives late (sent before the
    delete, handled after it) does not bring the stroke back.
    """
    rows = {
        r.client_id: r
        for r in s.scalars(
            select(Annotation).where(Annotation.attendee_id == attendee.id, Annotation.client_id.in_(ids))
        )
    }
    now = utcnow()
    deleted, ignored = [], []
    for cid in dict.fromkeys(ids):
        r = rows.get(cid)
        if r is None:
            try:
                with s.begin_nested():
                    s.add(
                        Annotation(
                            meeting_id=d.meeting_id,
                            document_id=d.id,
                            attendee_id=attendee.id,
                            client_id=cid,
                            version=d.version,
                            drawn_version=d.version,
                            page=0,
                            kind="",
                            data={},
                            rev=rev,
                            deleted_at=now,
                        )
                    )
            except IntegrityError:
                ignored.append(cid)
        elif r.document_id != d.id or (r.deleted_at is None and rev < r.rev):
            ignored.append(cid)
        elif r.deleted_at is None:
            r.deleted_at, r.rev, r.updated_at = now, max(r.rev, rev), now
            deleted.append(r)
    return deleted, ignored


def share_annotations(
    s: Session, d: Document, attendee: Any, to: str, ids: list[str] | None = None, page: int | None = None
) -> list[tuple[Annotation, str]]:
    """Set who sees some of a seat's annotations; returns (row, previous share) of those changed."""
    q = select(Annotation).where(
        Annotation.attendee_id == attendee.id, Annotation.document_id == d.id, Annotation.deleted_at.is_(None)
    )
    if ids is not None:
        rows = list(s.scalars(q.where(Annotation.client_id.in_(ids))))
        missing = set(ids) - {r.client_id for r in rows}
        if missing:
            raise NotFound(f"no such annotation: {sorted(missing)[:5]}", code="no_such_annotation")
    else:
        rows = list(
            s.scalars(
                q.where(
                    Annotation.page == page, Annotation.version == d.version, Annotation.orphaned.is_(False)
                )
            )
        )
    changed = []
    now = utcnow()
    for r in rows:
        if r.shared != to:
            changed.append((r, r.shared))
            r.shared, r.updated_at = to, now
    return changed


# --------------------------------------------------------------------------- reads


def carry_over(s: Session, d: Document) -> list[int]:
    """Attach annotations of older versions to the current one; returns the seats concerned.

    Where the page number still exists the annotation moves to it; where it does not, the
    annotation is kept and marked `orphaned` (and re-attached if a later version has the
    page again). Idempotent: run when a version becomes ready, and lazily before lists.
    """
    if d.status != "ready" or not d.page_count:
        return []
    older = (Annotation.document_id == d.id, Annotation.version < d.version)
    seats = list(s.scalars(select(Annotation.attendee_id).where(*older).distinct()))
    if seats:
        s.execute(
            update(Annotation)
            .where(*older, Annotation.page <= d.page_count)
            .values(version=d.version, orphaned=False)
        )
        s.execute(
            update(Annotation)
            .where(*older, Annotation.page > d.page_count)
            .values(version=d.version, orphaned=True)
        )
    return seats


def on_version_ready(doc_id: int, version: int) -> None:
    """Called by the render job once `version` is ready; never raises (lists carry over lazily too)."""
    from ..core import db, rooms, tasks

    try:
        with db.transaction() as s:
            d = s.get(Document, doc_id)
            if d is None or d.version != version:
                return
            seats = carry_over(s, d)
        for aid in seats:
            tasks.notify(
                "annotation", {"document_id": doc_id, "version": version, "reload": True}, rooms.seat(aid)
            )
    except Exception:
        log.exception("carrying annotations of document %s over to version %s failed", doc_id, version)


def list_for_seat(
    s: Session, d: Document, attendee_id: int | None, page: int | None = None
) -> list[Annotation]:
    """Live annotations of one seat (None: every seat) on a document, any version, orphans included."""
    q = select(Annotation).where(Annotation.document_id == d.id, Annotation.deleted_at.is_(None))
    if attendee_id is not None:
        q = q.where(Annotation.attendee_id == attendee_id)
    if page is not None:
        q = q.where(Annotation.page == page)
    return list(s.scalars(q.order_by(Annotation.attendee_id, Annotation.page, Annotation.id)))


def authors(s: Session, rows: list[Annotation]) -> dict[int, Any]:
    from ..roster.models import Attendee

    ids = {r.attendee_id for r in rows}
    return {a.id: a for a in s.scalars(select(Attendee).where(Attendee.id.in_(ids)))} if ids else {}


def shared_with(
    s: Session, d: Document, viewer: Any | None, page: int | None = None
) -> list[tuple[Annotation, Any]]:
    """Other seats' annotations shared with `viewer` (a seat, or None for an organizer)."""
    allowed = {"room", "presenter"}
    if viewer is not None and viewer.role not in PRESENTER_ROLES:
        allowed = {"room"}
    q = select(Annotation).where(
        Annotation.document_id == d.id, Annotation.deleted_at.is_(None), Annotation.shared.in_(allowed)
    )
    if viewer is not None:
        q = q.where(Annotation.attendee_id != viewer.id)
    if page is not None:
        q = q.where(Annotation.page == page)
    rows = list(s.scalars(q.order_by(Annotation.attendee_id, Annotation.page, Annotation.id)))
    people = authors(s, rows)
    return [
        (r, people[r.attendee_id])
        for r in rows
        if not people[r.attendee_id].deleted and visible_to(d, people[r.attendee_id])
    ]


def share_rooms(s: Session, d: Document, share: str) -> list[str]:
    """Who receives an annotation shared as `share`."""
    from ..documents.service import audience_rooms

    if share == "room":
        return audience_rooms(s, d)
    if share == "presenter":
        return audience_rooms(s, d, group="presenters")
    return []


# --------------------------------------------------------------------------- showing


def show(s: Session, meeting_id: int, d: Document, author: Any, ids: list[str], actor: Any) -> AnnotationShow:
    rows = list(
        s.scalars(
            select(Annotation).where(
                Annotation.attendee_id == author.id,
                Annotation.document_id == d.id,
                Annotation.client_id.in_(ids),
                Annotation.deleted_at.is_(None),
                Annotation.shared != "private",
            )
        )
    )
    missing = set(ids) - {r.client_id for r in rows}
    if missing:
        # 404 whether it is unknown or private: a private annotation's existence does not leak.
        raise NotFound(f"no such shared annotation: {sorted(missing)[:5]}", code="no_such_annotation")
    row = s.get(AnnotationShow, meeting_id)
    if row is None:
        row = AnnotationShow(
            meeting_id=meeting_id, document_id=d.id, attendee_id=author.id, ids=list(ids), shown_by={}
        )
        s.add(row)
    row.document_id, row.attendee_id, row.ids = d.id, author.id, list(dict.fromkeys(ids))
    row.shown_by, row.at = actor.audit_label(), utcnow()
    return row


def shown_json(s: Session, row: AnnotationShow) -> dict[str, Any]:
    """What everyone sees: the seat, and its shown annotations as they are now (still shared)."""
    from ..roster.models import Attendee

    author = s.get(Attendee, row.attendee_id)
    rows = list(
        s.scalars(
            select(Annotation).where(
                Annotation.attendee_id == row.attendee_id,
                Annotation.document_id == row.document_id,
                Annotation.client_id.in_(row.ids),
                Annotation.deleted_at.is_(None),
                Annotation.shared != "private",
            )
        )
    )
    return {
        "document_id": row.document_id,
        "attendee": attendee_label(author) if author else None,
        "annotations": [annotation_json(r) for r in rows],
        "shown_by": {"name": row.shown_by.get("name"), "role": row.shown_by.get("role")},
        "at": iso(row.at),
    }


HIDDEN = {"document_id": None, "attendee": None, "annotations": []}


def state_part(s: Session, meeting: Any, actor: Any, attendee: Any | None) -> dict[str, Any]:
    """`state.annotations`: this seat's annotation count per visible document, and what is shown.

    The annotations themselves are fetched over HTTP (`GET /documents/{id}/annotations`):
    a seat can hold thousands of strokes, too many for every connect.
    """
    counts: dict[str, int] = {}
    if attendee is not None:
        rows = s.execute(
            select(Annotation.document_id, func.count())
            .where(Annotation.attendee_id == attendee.id, Annotation.deleted_at.is_(None))
            .group_by(Annotation.document_id)
        ).all()
        docs = (
            {d.id: d for d in s.scalars(select(Document).where(Document.id.in_([r[0] for r in rows])))}
            if rows
            else {}
        )
        counts = {
            str(doc_id): n for doc_id, n in rows if doc_id in docs and visible_to(docs[doc_id], attendee)
        }
    shown = None
    row = s.get(AnnotationShow, meeting.id)
    if row is not None:
        d = s.get(Document, row.document_id)
        if d is not None and visible_to(d, attendee):
            shown = shown_json(s, row)
    return {"annotations": {"counts": counts, "shown": shown}}


# --------------------------------------------------------------------------- export


def export_items(rows: list[Annotation]) -> list[dict[str, Any]]:
    """Annotations in the shape `render.export_annotated` takes."""
    return [{"page": r.page, "kind": r.kind, **r.data} for r in rows]


def author_name(a: Any) -> str:
    return f"{a.name} ({a.seat})" if a.seat else a.name


def attached_rows(s: Session, d: Document, attendee_id: int) -> list[Annotation]:
    """A seat's annotations that belong in an annotated copy of the current version."""
    return [r for r in list_for_seat(s, d, attendee_id) if r.version == d.version and not r.orphaned]


def annotated_pdf(s: Session, d: Document, attendee: Any) -> bytes:
    """One seat's annotated copy of the current version (CPU work: call it in a worker)."""
    from ..core import storage
    from ..documents import render

    if d.status != "ready" or not d.pdf_sha256:
        raise Conflict("the document is not ready yet", code="document_not_ready")
    carry_over(s, d)
    rows = attached_rows(s, d, attendee.id)
    return render.export_annotated(
        storage.get().path(d.pdf_sha256), export_items(rows), author_name(attendee)
    )


def _segment(text: str, default: str) -> str:
    """One safe path segment of an archive name (see archive.bundle.check_name)."""
    s = unicodedata.normalize("NFC", text or "")
    s = "".join("_" if ch in '/\\:*?"<>|' or unicodedata.category(ch)[0] == "C" else ch for ch in s)
    s = s.strip().lstrip(".").strip()[:80]
    return s or default


@dataclass
class CopyJob:
    """One seat's annotated copy of one document: what `render.write_annotated` needs.

    ``raw`` holds each annotation as ``(page, kind, data as stored JSON text)``: decoding the
    strokes (a million floats in a large meeting) is left to the process that draws them.
    """

    path: str  # archive path, e.g. annotations/003-Title/A012-Name-42.pdf
    pdf: str  # the document's current PDF in blob storage
    raw: list[tuple[int, str, str]]
    author: str

    @property
    def cost(self) -> int:
        """An estimate of the work (the size of the strokes' JSON), for sharing copies out."""
        return sum(len(r[2]) for r in self.raw) + 20_000

    def items(self) -> list[dict[str, Any]]:
        return decode_items(self.raw)


def decode_items(raw: list[tuple[int, str, str]]) -> list[dict[str, Any]]:
    """`CopyJob.raw` in the shape `render.export_annotated` takes."""
    return [{"page": page, "kind": kind, **json.loads(data)} for page, kind, data in raw]


@dataclass
class ExportPlan:
    """Every seat's annotated copies of a meeting, and the lines of ``annotations.json``."""

    copies: list[CopyJob]
    body: dict[str, Any]
    lines: list[str]

    def json_bytes(self, errors: list[dict[str, Any]]) -> bytes:
        """``annotations.json``: one annotation per line (readable; ``indent`` would make json use its
        pure-Python encoder, about a minute for the 20,000 strokes of a large meeting)."""
        body = dict(self.body, errors=list(errors))
        head = ",\n".join(f"{_dump(k)}:{_dump(v)}" for k, v in body.items())
        lines = ",\n".join(self.lines)
        return f'{{{head},\n"annotations":[\n{lines}\n]}}\n'.encode()


def _dump(v: Any) -> str:
    return json.dumps(v, ensure_ascii=False, separators=(",", ":"))


def _json_line(a: Annotation, author: Any | None, data: str) -> str:
    """`annotation_json` as one JSON line, its ``data`` spliced in as stored (never decoded and
    encoded again; a JSON object's keys may come in any order)."""
    head = _dump(annotation_json(a, author, with_data=False))
    body = data.strip()
    if not (body.startswith("{") and body.endswith("}")):
        raise ValueError(f"annotation {a.id}: stored data is not a JSON object")
    if body[1:-1].strip() == "":
        return head
    return head[:-1] + "," + body[1:]


def export_plan(s: Session, meeting_id: int) -> ExportPlan:
    """Read (once, no rendering) what every seat's annotated copies of a meeting are made of.

    One copy per (document, seat) with annotations on the document's current version;
    annotations that cannot be drawn (orphaned, or a document that is not ready) are in
    ``annotations/annotations.json`` only. The annotations' data is read as stored text.
    """
    from sqlalchemy import Text, cast
    from sqlalchemy.orm import defer

    from ..core import storage
    from ..documents.service import list_documents
    from ..roster.models import Attendee

    store = storage.get()
    docs = list_documents(s, meeting_id)
    people = {
        a.id: a
        for a in s.scalars(select(Attendee).where(Attendee.meeting_id == meeting_id).order_by(Attendee.id))
    }
    out_docs, lines, copies = [], [], []
    for d in docs:
        carry_over(s, d)
        rows = s.execute(
            select(Annotation, cast(Annotation.data, Text))
            .options(defer(Annotation.data))
            .where(Annotation.document_id == d.id, Annotation.deleted_at.is_(None))
            .order_by(Annotation.attendee_id, Annotation.page, Annotation.id)
        ).all()
        out_docs.append(
            {
                "id": d.id,
                "title": d.title,
                "version": d.version,
                "status": d.status,
                "page_count": d.page_count,
                "confidential": d.confidential,
            }
        )
        lines += [_json_line(r, people.get(r.attendee_id), data) for r, data in rows]
        if d.status != "ready" or not d.pdf_sha256:
            continue
        folder = f"annotations/{d.id:03d}-{_segment(d.title, 'document')}"
        mine: dict[int, list[tuple[int, str, str]]] = {}
        for r, data in rows:
            if r.version == d.version and not r.orphaned:
                mine.setdefault(r.attendee_id, []).append((r.page, r.kind, data))
        for aid, raw in mine.items():
            a = people[aid]
            copies.append(
                CopyJob(
                    path=f"{folder}/{_segment(a.seat or 'seat', 'seat')}-{_segment(a.name, 'attendee')}-{a.id}.pdf",
                    pdf=str(store.path(d.pdf_sha256)),
                    raw=raw,
                    author=author_name(a),
                )
            )
    body = {
        "meeting_id": meeting_id,
        "coordinates": "PDF points of the displayed page, origin top-left",
        "documents": out_docs,
    }
    return ExportPlan(copies, body, lines)


def iter_export_all(s: Session, meeting_id: int) -> Iterator[tuple[str, bytes]]:
    """Every seat's annotations of a meeting: one annotated PDF per (document, seat), then JSON.

    Yields ``(path, bytes)`` one file at a time (each PDF is a full copy of its document),
    so a caller writing a zip holds one PDF in memory at a time. Annotations that cannot be
    drawn (orphaned, or a document that is not ready) are in ``annotations/annotations.json``
    only; a PDF that fails is listed there under ``errors``. (The archive job builds the
    same copies from `export_plan` in two processes, see `archive.copies`.)
    """
    from ..documents import render

    plan = export_plan(s, meeting_id)
    errors = []
    for job in plan.copies:
        try:
            yield job.path, render.export_annotated(job.pdf, job.items(), job.author)
        except render.DocumentError as e:
            log.warning("annotated copy %s failed: %s", job.path, e)
            errors.append({"path": job.path, "error": e.message})
    yield "annotations/annotations.json", plan.json_bytes(errors)


def export_all(s: Session, meeting_id: int) -> dict[str, bytes]:
    """Every seat's annotations for the archive: ``{path: bytes}`` (see `iter_export_all`).

    CPU work (one PDF per seat and document): call it from a worker, as the archive job does.
    """
    return dict(iter_export_all(s, meeting_id))
