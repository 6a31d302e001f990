"""Routes of the roster: attendees, seats, QR codes, joining."""

from __future__ import annotations

from flask import Response, current_app, request
from sqlalchemy import select

from ..core import rooms
from ..core.commands import ORGANIZER, PUBLIC, CommandSet, Ctx
from ..core.errors import Invalid, TooLarge
from . import qr, schemas, service
from .models import Attendee, SeatSession

commands = CommandSet("roster")
commands.event("attendee", "An attendee was edited; to the room staff.")
commands.event(
    "session.revoked",
    "This seat's sessions were revoked (re-issued card, released seat, deleted attendee); to the seat.",
)
commands.event("seat.joined", "A device joined a seat; to the room staff.")


@commands.loader("attendee", "attendee_id")
def _load(s, attendee_id: int):
    return service.get_attendee(s, attendee_id)


def _base_url() -> str:
    settings = current_app.config["SETTINGS"]
    return settings.public_url or request.host_url


def _json(a: Attendee) -> dict:
    return service.attendee_json(a, with_token=True, base_url=_base_url())


def _revoked(ctx: Ctx, attendee_id: int) -> None:
    """Tell the seat's devices, then disconnect the ones on this process (after the commit)."""
    ctx.emit("session.revoked", {"attendee_id": attendee_id}, to=rooms.seat(attendee_id))

    def kick() -> None:
        from ..live.commands import kick_seat

        kick_seat(attendee_id)

    ctx.later(kick)


def _check_in_meeting(ctx: Ctx) -> Attendee:
    a = ctx.obj
    if a.meeting_id != int(ctx.params["meeting_id"]):
        from ..core.errors import NotFound

        raise NotFound("no such attendee")
    return a


@commands.command(
    "attendees.create",
    roles={ORGANIZER},
    schema=schemas.AttendeeCreate,
    resource="meeting",
    http=("POST", "/meetings/<int:meeting_id>/attendees"),
    status=201,
)
def create(ctx: Ctx, p: schemas.AttendeeCreate) -> dict:
    """Add an attendee with an optional seat and role; returns the join token and link."""
    a = service.add_attendee(ctx.s, ctx.meeting.id, **p.model_dump())
    return _json(a)


@commands.command(
    "attendees.list",
    roles={ORGANIZER},
    resource="meeting",
    write=False,
    http=("GET", "/meetings/<int:meeting_id>/attendees"),
)
def list_(ctx: Ctx, p) -> dict:
    """Every attendee of the meeting with seat, role, attendance and join link."""
    return {"attendees": [_json(a) for a in service.list_attendees(ctx.s, ctx.meeting.id)]}


@commands.command(
    "attendees.import",
    roles={ORGANIZER},
    resource="meeting",
    multipart=True,
    http=("POST", "/meetings/<int:meeting_id>/attendees/import"),
    status=201,
)
def import_(ctx: Ctx, p) -> dict:
    """Import attendees from a CSV file (UTF-8 or GBK); one bad row imports nothing."""
    f = (ctx.files or {}).get("file")
    if f is None:
        raise Invalid("send the CSV as the multipart field 'file'", code="file_missing")
    data = f.read(5 * 1024 * 1024 + 1)
    if len(data) > 5 * 1024 * 1024:
        raise TooLarge("an attendee list is at most 5 MB", code="too_large")
    added = service.import_csv(ctx.s, ctx.meeting.id, data)
    ctx.audit_data = {"imported": len(added), "filename": f.filename or ""}
    return {"imported": len(added), "attendees": [_json(a) for a in added]}


@commands.command(
    "attendees.get",
    roles={ORGANIZER},
    resource="attendee",
    write=False,
    http=("GET", "/meetings/<int:meeting_id>/attendees/<int:attendee_id>"),
)
def get(ctx: Ctx, p) -> dict:
    """One attendee."""
    return _json(_check_in_meeting(ctx))


@commands.command(
    "attendees.update",
    roles={ORGANIZER},
    schema=schemas.AttendeeUpdate,
    resource="attendee",
    http=("PATCH", "/meetings/<int:meeting_id>/attendees/<int:attendee_id>"),
)
def update(ctx: Ctx, p: schemas.AttendeeUpdate) -> dict:
    """Edit an attendee's name, seat, role, organization or vote weight."""
    a = _check_in_meeting(ctx)
    service.update_attendee(ctx.s, a, p.model_dump(exclude_unset=True))
    ctx.emit("attendee", service.attendee_json(a), to=rooms.staff(a.meeting_id))
    return _json(a)


@commands.command(
    "attendees.delete",
    roles={ORGANIZER},
    resource="attendee",
    http=("DELETE", "/meetings/<int:meeting_id>/attendees/<int:attendee_id>"),
)
def delete(ctx: Ctx, p) -> dict:
    """Remove an attendee; their devices are logged out."""
    a = _check_in_meeting(ctx)
    a.deleted = True
    a.join_token = "deleted-" + a.join_token
    service.revoke_sessions(ctx.s, a.id)
    _revoked(ctx, a.id)
    return {"ok": True}


@commands.command(
    "attendees.reissue",
    roles={ORGANIZER},
    resource="attendee",
    http=("POST", "/meetings/<int:meeting_id>/attendees/<int:attendee_id>/reissue"),
)
def reissue(ctx: Ctx, p) -> dict:
    """Issue a new join token (a lost seat card); every device holding the seat is logged out."""
    a = _check_in_meeting(ctx)
    service.reissue_token(ctx.s, a)
    ctx.audit_data = {"attendee_id": a.id}
    _revoked(ctx, a.id)
    return _json(a)


@commands.command(
    "attendees.sessions",
    roles={ORGANIZER},
    resource="attendee",
    write=False,
    http=("GET", "/meetings/<int:meeting_id>/attendees/<int:attendee_id>/sessions"),
)
def sessions(ctx: Ctx, p) -> dict:
    """The devices that hold this seat."""
    a = _check_in_meeting(ctx)
    rows = ctx.s.scalars(select(SeatSession).where(SeatSession.attendee_id == a.id).order_by(SeatSession.id))
    return {"sessions": [service.session_json(x) for x in rows]}


@commands.command(
    "attendees.release",
    roles={ORGANIZER},
    resource="attendee",
    http=("POST", "/meetings/<int:meeting_id>/attendees/<int:attendee_id>/release"),
)
def release(ctx: Ctx, p) -> dict:
    """Log out every device holding this seat, so another device may take it."""
    a = _check_in_meeting(ctx)
    n = service.revoke_sessions(ctx.s, a.id)
    _revoked(ctx, a.id)
    return {"revoked": n}


@commands.command(
    "attendees.revoke_session",
    roles={ORGANIZER},
    resource="attendee",
    http=("POST", "/meetings/<int:meeting_id>/attendees/<int:attendee_id>/sessions/<int:session_id>/revoke"),
)
def revoke_session(ctx: Ctx, p) -> dict:
    """Log out one device of a seat (the others stay)."""
    a = _check_in_meeting(ctx)
    sess = service.revoke_session(ctx.s, a, int(ctx.params["session_id"]))
    ctx.emit("session.revoked", {"attendee_id": a.id, "session_id": sess.id}, to=rooms.seat(a.id))

    def kick() -> None:
        from ..live.commands import kick_session

        kick_session(a.id, sess.id)

    ctx.later(kick)
    return service.session_json(sess)


@commands.command(
    "attendees.allow_takeover",
    roles={ORGANIZER},
    resource="attendee",
    http=("POST", "/meetings/<int:meeting_id>/attendees/<int:attendee_id>/allow-takeover"),
)
def allow_takeover(ctx: Ctx, p) -> dict:
    """Single-device rule: let the next device joining with `takeover: true` replace the current one (once, 10 min)."""
    a = _check_in_meeting(ctx)
    g = service.allow_takeover(ctx.s, a, ctx.actor.name)
    from ..core.db import iso

    ctx.audit_data = {"attendee_id": a.id}
    return {"attendee_id": a.id, "expires_at": iso(g.expires_at)}


@commands.command(
    "attendees.qr_png",
    roles={ORGANIZER},
    resource="attendee",
    write=False,
    binary="image/png",
    http=("GET", "/meetings/<int:meeting_id>/attendees/<int:attendee_id>/qr.png"),
)
def qr_png(ctx: Ctx, p) -> Response:
    """The seat's join link as a PNG QR code."""
    a = _check_in_meeting(ctx)
    return Response(
        qr.qr_png(service.join_url(_base_url(), a.join_token)),
        mimetype="image/png",
        headers={"Cache-Control": "no-store"},
    )


@commands.command(
    "attendees.qr_svg",
    roles={ORGANIZER},
    resource="attendee",
    write=False,
    binary="image/svg+xml",
    http=("GET", "/meetings/<int:meeting_id>/attendees/<int:attendee_id>/qr.svg"),
)
def qr_svg(ctx: Ctx, p) -> Response:
    """The seat's join link as an SVG QR code."""
    a = _check_in_meeting(ctx)
    return Response(
        qr.qr_svg(service.join_url(_base_url(), a.join_token)),
        mimetype="image/svg+xml",
        headers={"Cache-Control": "no-store"},
    )


@commands.command(
    "attendees.cards",
    roles={ORGANIZER},
    resource="meeting",
    write=False,
    binary="application/pdf",
    http=("GET", "/meetings/<int:meeting_id>/seat-cards.pdf"),
)
def cards(ctx: Ctx, p) -> Response:
    """A printable A4 PDF of seat cards (name, seat, role, QR code) for every attendee."""
    base = _base_url()
    items = [
        {"name": a.name, "seat": a.seat, "role": a.role, "join_url": service.join_url(base, a.join_token)}
        for a in service.list_attendees(ctx.s, ctx.meeting.id)
    ]
    pdf = qr.seat_cards_pdf(ctx.meeting.title, items, current_app.config["SETTINGS"].org_name)
    return Response(
        pdf,
        mimetype="application/pdf",
        headers={
            "Content-Disposition": f'inline; filename="seat-cards-{ctx.meeting.id}.pdf"',
            "Cache-Control": "no-store",
        },
    )


@commands.command("join", roles={PUBLIC}, schema=schemas.Join, write=False, http=("POST", "/join"))
def join(ctx: Ctx, p: schemas.Join) -> dict:
    """Exchange a seat's join token for a tablet session token."""
    settings = current_app.config["SETTINGS"]
    token, a, sess, took_over = service.join(
        ctx.s,
        p.token,
        device=p.device or request.headers.get("User-Agent", ""),
        address=request.remote_addr or "",
        ttl_hours=settings.seat_session_ttl_hours,
        takeover=p.takeover,
    )
    from ..core import audit
    from ..meetings.models import Meeting

    meeting = ctx.s.get(Meeting, a.meeting_id)  # locked and fresh already: service.join locks it first
    audit.append(
        ctx.s,
        meeting,
        {"kind": "seat", "id": a.id, "name": a.name, "role": a.role},
        "join",
        {"session_id": sess.id, "device": sess.user_agent[:80], "took_over": took_over},
    )
    if took_over:
        _revoked(ctx, a.id)
    ctx.emit("seat.joined", {"attendee_id": a.id, "session_id": sess.id}, to=rooms.staff(a.meeting_id))
    return {
        "session_token": token,
        "meeting_id": a.meeting_id,
        "attendee": {"id": a.id, "name": a.name, "seat": a.seat, "role": a.role},
    }
