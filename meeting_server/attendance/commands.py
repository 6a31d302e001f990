"""Check-in and check-out (self and by the staff), the attendance history, the quorum rule."""

from __future__ import annotations

from ..core import group, rooms
from ..core.commands import CHAIRS, ORGANIZER, ROOM_STAFF, SEATS, CommandSet, Ctx
from ..core.db import iso
from ..core.errors import NotFound
from ..roster.models import Attendee
from . import broadcast, schemas, service
from .models import AttendanceRecord

commands = CommandSet("attendance")
commands.event(
    "attendance",
    'Attendance counts changed: `{"present", "expected", "seq", "quorum"?}`; to everyone in the meeting.',
)
commands.event(
    "seat.checkin",
    "A seat checked in or out (itself or by the staff); to the room staff and to that seat's devices.",
)

#: Who may check a seat in or out on its behalf (代签).
PROXY_ROLES = frozenset({ORGANIZER, "secretary"})


def _changed(ctx: Ctx, a: Attendee, rec: AttendanceRecord | None, checked_in: bool) -> None:
    mid = ctx.meeting.id
    broadcast.changed(ctx, service.bump(ctx.s, ctx.meeting))
    flags = service.me_part(ctx.s, ctx.meeting, a)
    msg = {
        "attendee_id": a.id,
        "seat": a.seat,
        "name": a.name,
        "checked_in": checked_in,
        "at": iso(rec.in_at if checked_in else rec.out_at) if rec else iso(a.checked_out_at),
        "method": (rec.in_method if checked_in else rec.out_method) if rec else "self",
        "reason": (rec.in_reason if checked_in else rec.out_reason) if rec else "",
        "by": ctx.actor.name,
        "record_id": rec.id if rec else None,
        "checked_in_at": flags["checked_in_at"],
        "late": flags["late"],
        "left_early": flags["left_early"],
    }
    ctx.emit("seat.checkin", msg, to=[rooms.staff(mid), rooms.seat(a.id)])


def _target(ctx: Ctx) -> Attendee:
    a = ctx.obj
    if "meeting_id" in ctx.params and a.meeting_id != int(ctx.params["meeting_id"]):
        raise NotFound("no such attendee")
    return a


@commands.command("checkin", roles=SEATS, schema=schemas.Checkin, socket=True)
def checkin(ctx: Ctx, p: schemas.Checkin) -> dict:
    """Check this seat in; idempotent. Everyone gets the new `attendance`.

    With `signature` (the finger signature for the attendance sheet) the strokes are kept for the
    minutes; the audit entry records their SHA-256. Signing again (already in) replaces the signature.
    """
    a = ctx.s.get(Attendee, ctx.actor.id)
    rec = service.check_in(ctx.s, ctx.meeting, a, ctx.actor)
    digest = None
    if p.signature is not None:
        strokes = [[list(pt) for pt in stroke] for stroke in p.signature.strokes]
        digest = service.save_signature(ctx.s, ctx.meeting, a, strokes, p.signature.pad_aspect())
    if rec is None and digest is None:
        ctx.skip_audit = True
    else:
        ctx.audit_data = {"late": rec.late} if rec is not None else {"already_in": True}
        if digest is not None:
            ctx.audit_data["signature_sha256"] = digest
        if rec is not None:
            _changed(ctx, a, rec, True)
    cur = service.open_record(ctx.s, a.id)
    return {
        "checked_in_at": iso(a.checked_in_at),
        "entered_at": iso(cur.in_at) if cur else None,
        # a signature sent now is on file (saved, or the same as the one kept); else look
        "signed": p.signature is not None or service.has_signature(ctx.s, a.id),
    }


@commands.command("checkout", roles=SEATS, schema=schemas.Empty, socket=True)
def checkout(ctx: Ctx, p) -> dict:
    """Check this seat out (leaving the room); idempotent. A later `checkin` is a re-entry."""
    a = ctx.s.get(Attendee, ctx.actor.id)
    rec = service.check_out(ctx.s, ctx.meeting, a, ctx.actor)
    if rec is None:
        ctx.skip_audit = True
    else:
        ctx.audit_data = {"early": rec.early}
        _changed(ctx, a, rec, False)
    return {"checked_out_at": iso(a.checked_out_at)}


@commands.command(
    "checkin.proxy",
    roles=PROXY_ROLES,
    schema=schemas.ProxyCheckin,
    resource="attendee",
    socket=True,
    http=("POST", "/meetings/<int:meeting_id>/attendees/<int:attendee_id>/checkin"),
)
def checkin_proxy(ctx: Ctx, p: schemas.ProxyCheckin) -> dict:
    """Check a seat in on its behalf (代签), with the reason; the history records who did it."""
    a = _target(ctx)
    rec = service.check_in(ctx.s, ctx.meeting, a, ctx.actor, method="proxy", reason=p.reason)
    if rec is None:
        ctx.skip_audit = True
    else:
        ctx.audit_data = {"attendee_id": a.id, "reason": p.reason, "late": rec.late}
        _changed(ctx, a, rec, True)
    return {
        "attendee_id": a.id,
        "checked_in": True,
        "checked_in_at": iso(a.checked_in_at),
        "changed": rec is not None,
    }


@commands.command(
    "checkout.proxy",
    roles=PROXY_ROLES,
    schema=schemas.ProxyCheckout,
    resource="attendee",
    socket=True,
    http=("POST", "/meetings/<int:meeting_id>/attendees/<int:attendee_id>/checkout"),
)
def checkout_proxy(ctx: Ctx, p: schemas.ProxyCheckout) -> dict:
    """Check a seat out on its behalf (it left without its tablet), with an optional reason."""
    a = _target(ctx)
    rec = service.check_out(ctx.s, ctx.meeting, a, ctx.actor, method="proxy", reason=p.reason)
    if rec is None:
        ctx.skip_audit = True
    else:
        ctx.audit_data = {"attendee_id": a.id, "reason": p.reason, "early": rec.early}
        _changed(ctx, a, rec, False)
    return {
        "attendee_id": a.id,
        "checked_in": False,
        "checked_out_at": iso(a.checked_out_at),
        "changed": rec is not None,
    }


@commands.command(
    "attendance.list",
    roles=ROOM_STAFF,
    schema=schemas.Empty,
    resource="meeting",
    write=False,
    socket=True,
    http=("GET", "/meetings/<int:meeting_id>/attendance"),
)
def attendance_list(ctx: Ctx, p) -> dict:
    """Counts, quorum, and every attendee with late/left-early flags and the full in/out history."""
    return {"attendance": service.counts(ctx.s, ctx.meeting), "attendees": service.report(ctx.s, ctx.meeting)}


@commands.command(
    "quorum.set",
    roles=CHAIRS,
    schema=schemas.SetQuorum,
    resource="meeting",
    socket=True,
    http=("POST", "/meetings/<int:meeting_id>/quorum"),
)
def quorum_set(ctx: Ctx, p: schemas.SetQuorum) -> dict:
    """Set or clear the meeting's quorum rule; everyone gets the new `attendance`."""
    ctx.meeting.quorum = p.rule.model_dump() if p.rule else None
    counts = service.bump(ctx.s, ctx.meeting)
    ctx.emit("attendance", counts, to=rooms.meeting(ctx.meeting.id))
    return {"attendance": counts}


def init_app(app) -> None:
    broadcast.reset()  # per app: meeting ids start again in every test database
    # A hall checking in at once: the seats' own check-ins and check-outs share transactions
    # (core/group.py; each in its own savepoint, every ack after the commit). Both are idempotent.
    group.enable("checkin", "checkout")
