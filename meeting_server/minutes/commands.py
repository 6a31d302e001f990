"""Routes and events of the minutes domain: the editor, its status, the PDF.

Minutes are written during and after the meeting, so every write here is
`allow_ended=True`; once the meeting is `archived` the pipeline refuses them
all. Saves are audited with a hash of the text (the text itself is in the
revision rows), so the log stays small while binding every word.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from flask import Response, jsonify, send_file

from ..core import db, rooms, storage, tasks
from ..core.chain import canonical_json
from ..core.commands import ORGANIZER, ROOM_STAFF, CommandSet, Ctx
from ..core.db import utcnow
from ..core.errors import error_body
from . import schemas, service
from .models import MinutesPdf

commands = CommandSet("minutes")
commands.event(
    "minutes",
    'The minutes\' status changed: `{"meeting_id", "status", "saves", "history"}`; to the staff.',
)
commands.event(
    "minutes.saved",
    'Someone saved an agenda item\'s notes: `{"meeting_id", "item": {…}}`; to the staff (not the saving client).',
)

#: Who writes the minutes.
WRITERS = frozenset({ORGANIZER, "secretary"})
#: Who approves them, or returns them for changes.
APPROVERS = frozenset({ORGANIZER, "chair"})
#: Who may download the minutes PDF.
READERS = frozenset({ORGANIZER, "chair", "secretary"})
#: How long `GET …/minutes` waits for the worker before answering 202.
PDF_WAIT_SECONDS = 20.0
#: A PDF "building" for longer than this without finishing is built again (dead worker).
PDF_STALE_SECONDS = 180.0
RETRY_AFTER = 2


def _text_sha(notes: str, decisions: list[str]) -> str:
    return hashlib.sha256(canonical_json([notes, decisions])).hexdigest()


def _status_changed(ctx: Ctx) -> dict[str, Any]:
    out = service.summary(ctx.s, ctx.meeting.id)
    ctx.emit("minutes", out, to=rooms.staff(ctx.meeting.id))
    return out


# --------------------------------------------------------------------------- editor


@commands.command(
    "minutes.get",
    roles=ROOM_STAFF,
    schema=schemas.Empty,
    resource="meeting",
    write=False,
    socket=True,
    http=("GET", "/meetings/<int:meeting_id>/minutes/items"),
)
def get(ctx: Ctx, p) -> dict:
    """The minutes being written: status, approval history and each agenda item's notes and decisions."""
    return service.minutes_json(ctx.s, ctx.meeting)


@commands.command(
    "minutes.save",
    roles=WRITERS,
    schema=schemas.MinutesSave,
    resource="meeting",
    allow_ended=True,
    socket=True,
    http=("POST", "/meetings/<int:meeting_id>/minutes/items"),
)
def save(ctx: Ctx, p: schemas.MinutesSave) -> dict:
    """Save one agenda item's notes and decisions as a new revision (409 `revision_conflict` if stale)."""
    item, rev, duplicate = service.save_item(
        ctx.s,
        ctx.meeting,
        ctx.actor,
        agenda_item_id=p.agenda_item_id or service.GENERAL,
        notes=p.notes,
        decisions=p.decisions,
        base_revision=p.base_revision,
        client_revision_id=p.client_revision_id,
    )
    body = {"item": service.item_json(item), "revision": rev.revision, "duplicate": duplicate}
    if duplicate:
        ctx.skip_audit = True
        body["item"]["revision"] = item.revision
        return body
    ctx.audit_data = {
        "agenda_item_id": item.agenda_item_id,
        "revision": rev.revision,
        "base_revision": rev.base_revision,
        "client_revision_id": rev.client_revision_id,
        "text_sha256": _text_sha(rev.notes, list(rev.decisions)),
        "chars": len(rev.notes),
        "decisions": len(rev.decisions),
    }
    ctx.emit(
        "minutes.saved",
        {"meeting_id": ctx.meeting.id, "item": body["item"]},
        to=rooms.staff(ctx.meeting.id),
        skip_sid=ctx.sid,
    )
    return body


@commands.command(
    "minutes.revisions",
    roles=ROOM_STAFF,
    schema=schemas.Revisions,
    resource="meeting",
    write=False,
    socket=True,
    http=("GET", "/meetings/<int:meeting_id>/minutes/revisions"),
)
def revisions(ctx: Ctx, p: schemas.Revisions) -> dict:
    """Every saved revision, newest first (`?agenda_item_id=`, `?limit=`, `?before=` a revision id)."""
    rows = service.revisions(ctx.s, ctx.meeting.id, p.agenda_item_id, p.limit, p.before)
    return {
        "revisions": [{"id": r.id, **service.revision_json(r)} for r in rows],
        "next_before": rows[-1].id if len(rows) == p.limit else None,
    }


@commands.command(
    "minutes.submit",
    roles=WRITERS,
    schema=schemas.Empty,
    resource="meeting",
    allow_ended=True,
    socket=True,
    http=("POST", "/meetings/<int:meeting_id>/minutes/submit"),
)
def submit(ctx: Ctx, p) -> dict:
    """The secretary hands the draft to the chair (draft -> submitted)."""
    service.submit(ctx.s, ctx.meeting, ctx.actor)
    ctx.audit_data = {
        "status": "submitted",
        "content_sha256": service.content_sha256(service.items_in_order(ctx.s, ctx.meeting.id)),
    }
    return _status_changed(ctx)


@commands.command(
    "minutes.reopen",
    roles=APPROVERS,
    schema=schemas.MinutesNote,
    resource="meeting",
    allow_ended=True,
    socket=True,
    http=("POST", "/meetings/<int:meeting_id>/minutes/reopen"),
)
def reopen(ctx: Ctx, p: schemas.MinutesNote) -> dict:
    """The chair returns submitted minutes for changes, with a note (submitted -> draft)."""
    service.reopen(ctx.s, ctx.meeting, ctx.actor, p.note)
    ctx.audit_data = {"status": "draft", "note": p.note}
    return _status_changed(ctx)


@commands.command(
    "minutes.approve",
    roles=APPROVERS,
    schema=schemas.Empty,
    resource="meeting",
    allow_ended=True,
    socket=True,
    http=("POST", "/meetings/<int:meeting_id>/minutes/approve"),
)
def approve(ctx: Ctx, p) -> dict:
    """The chair approves the submitted minutes of an ended meeting; the archive then seals the meeting."""
    service.approve(ctx.s, ctx.meeting, ctx.actor)
    ctx.audit_data = {
        "status": "approved",
        "content_sha256": service.content_sha256(service.items_in_order(ctx.s, ctx.meeting.id)),
    }
    meeting_id = ctx.meeting.id
    ctx.later(lambda: _build_sealed_archive(meeting_id))
    return _status_changed(ctx)


def _build_sealed_archive(meeting_id: int) -> None:
    """After approval: build the archive now, so that it is ready (and the meeting sealed) when asked for."""
    from ..archive import service as archive
    from ..meetings.models import Meeting

    with db.transaction() as s:
        m = s.get(Meeting, meeting_id)
        if m is None:
            return
        b, enqueue = archive.request_build(s, m)
        build_id = b.id
    if enqueue:
        tasks.enqueue("build_archive", build_id)


# --------------------------------------------------------------------------- the PDF


def become(placeholder: Response, other: Response) -> None:
    """Turn the response already handed to the pipeline into `other` (decided after the commit)."""
    placeholder.status_code = other.status_code
    placeholder.headers = other.headers
    placeholder.response = other.response
    placeholder.direct_passthrough = other.direct_passthrough
    for fn in getattr(other, "_on_close", []):
        placeholder.call_on_close(fn)


def building_response(body: dict[str, Any], retry_after: int = RETRY_AFTER) -> Response:
    resp = jsonify(body)
    resp.status_code = 202
    resp.headers["Retry-After"] = str(retry_after)
    return resp


def wait_for(load, deadline: float, done) -> Any:
    """Poll `load()` (a short read) until `done(row)` or the deadline; sleeps cooperatively."""
    from ..extensions import socketio

    delay = 0.05
    while True:
        row = load()
        if row is None or done(row) or time.monotonic() >= deadline:
            return row
        socketio.sleep(delay)
        delay = min(delay * 1.5, 0.5)


def _pdf_response(row: MinutesPdf, meeting_id: int) -> Response:
    resp = send_file(
        storage.get().path(row.sha256),
        mimetype="application/pdf",
        as_attachment=False,
        download_name=f"minutes-{meeting_id}-{row.lang}.pdf",
        etag=row.sha256,
        conditional=True,
        max_age=0,
    )
    resp.headers["X-Minutes-Status"] = "draft" if row.draft else "final"
    return resp


@commands.command(
    "minutes.pdf",
    roles=READERS,
    schema=schemas.MinutesPdfQuery,
    resource="meeting",
    write=False,
    binary="application/pdf",
    http=("GET", "/meetings/<int:meeting_id>/minutes"),
)
def pdf(ctx: Ctx, p: schemas.MinutesPdfQuery) -> Response:
    """The minutes as a signed PDF in the meeting's language (`?lang=zh|en`); 202 while the worker builds it."""
    from ..archive import service as archive

    m = ctx.meeting
    lang = p.lang or (m.language if m.language in ("zh", "en") else "zh")
    identity = archive.identity()
    key = service.state_key(ctx.s, m, lang, identity)
    row = service.find_by_state(ctx.s, m.id, lang, key)
    if row is not None and row.status == "ready" and row.sha256 and storage.get().exists(row.sha256):
        return _pdf_response(row, m.id)  # nothing changed since: no need to assemble the data
    data = service.minutes_data(ctx.s, m, lang, tasks.settings.timezone if tasks.settings else "UTC")
    h = service.input_hash(data, lang, identity)
    row = service.find_pdf(ctx.s, m.id, lang, h)
    if row is not None and row.status == "ready" and row.sha256 and storage.get().exists(row.sha256):
        row.state_key = key
        return _pdf_response(row, m.id)
    enqueue = False
    if row is None:
        row = MinutesPdf(
            meeting_id=m.id, lang=lang, input_hash=h, state_key=key, status="queued", draft=data.draft
        )
        ctx.s.add(row)
        ctx.s.flush()
        enqueue = True
    elif row.status in ("failed", "ready") or (
        row.status in ("queued", "building")
        and (utcnow() - (row.started_at or row.created_at)).total_seconds() > PDF_STALE_SECONDS
    ):
        row.status, row.error, row.created_at, row.started_at = "queued", None, utcnow(), None
        enqueue = True
    row.state_key = key
    pdf_id, meeting_id = row.id, m.id
    wait = PDF_WAIT_SECONDS if p.wait is None else p.wait
    resp = building_response({"status": "building", "progress": 0.0, "minutes_pdf": service.pdf_json(row)})
    ctx.later(lambda: _finish(resp, pdf_id, meeting_id, enqueue, wait))
    return resp


def _finish(resp: Response, pdf_id: int, meeting_id: int, enqueue: bool, wait: float) -> None:
    """After the commit: hand the job to the worker and wait a little for it."""
    deadline = time.monotonic() + wait
    if enqueue:
        tasks.enqueue("build_minutes", pdf_id)

    def load():
        with db.reader() as s:
            row = s.get(MinutesPdf, pdf_id)
            if row is not None:
                s.expunge(row)
            return row

    row = wait_for(load, deadline, lambda r: r.status in ("ready", "failed"))
    if row is None:
        return
    if row.status == "ready" and row.sha256:
        become(resp, _pdf_response(row, meeting_id))
    elif row.status == "failed":
        err = jsonify(error_body("minutes_failed", row.error or "the minutes could not be built; try again"))
        err.status_code = 422
        become(resp, err)
    else:
        become(
            resp,
            building_response(
                {
                    "status": "building",
                    "progress": 0.5 if row.status == "building" else 0.0,
                    "minutes_pdf": service.pdf_json(row),
                }
            ),
        )
