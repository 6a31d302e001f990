"""Polls and voting: set-up, the open -> closed -> published life cycle, ballots, results."""

from __future__ import annotations

import datetime as dt
import logging

from flask import Response
from pydantic import ValidationError

from ..core import rooms
from ..core.commands import CHAIRS, EVERYONE_IN_MEETING, ORGANIZER, CommandSet, Ctx
from ..core.db import utcnow
from ..core.errors import Conflict, Invalid, NotFound
from ..core.identity import VOTING_ROLES
from . import exports, progress, schemas, service, timers
from .models import Poll

log = logging.getLogger(__name__)
commands = CommandSet("voting")
commands.event(
    "poll",
    "A poll opened, closed, was published or cancelled (to everyone; new drafts to the staff): "
    '`{"id", "status", "title", "options", "voted", "eligible", …}`, never a tally while open.',
)
commands.event(
    "poll.result",
    'The result of a closed poll: `{"id", "tally", "outcome", …}`; to everyone, or to the chair and '
    "organizers until published.",
)
commands.event(
    "poll.progress", 'How many voted so far: `{"id", "voted", "eligible"}`; to everyone, coalesced.'
)
commands.event("poll.dismissed", 'The chair took the result off the screens: `{"id"}`; to everyone.')

VOTERS = frozenset(VOTING_ROLES)
POLL_COLUMNS = (
    "title", "options", "kind", "secret", "max_choices", "min_choices", "seats", "abstain_option",
    "allow_change", "weighted", "publish_on_close", "duration_s", "agenda_item_id",
)  # fmt: skip


@commands.loader("poll", "poll_id")
def _load(s, poll_id: int):
    return s.get(Poll, poll_id)


def _reveal(ctx: Ctx) -> bool:
    """Organizers and the chair see a closed poll's tally before it is published."""
    return ctx.actor.is_user or (ctx.actor.is_seat and ctx.actor.role == "chair")


def _apply(poll: Poll, f: schemas.PollFields) -> None:
    for name in POLL_COLUMNS:
        setattr(poll, name, getattr(f, name))
    poll.scale_min = f.scale.min if f.scale else None
    poll.scale_max = f.scale.max if f.scale else None
    poll.drop_extremes = bool(f.scale and f.scale.drop_extremes)
    poll.rule = f.rule.model_dump(mode="json") if f.rule is not None else None


def _fields_of(poll: Poll) -> dict:
    out = {name: getattr(poll, name) for name in POLL_COLUMNS}
    if poll.kind == "rating":
        out["scale"] = {"min": poll.scale_min, "max": poll.scale_max, "drop_extremes": poll.drop_extremes}
    out["rule"] = poll.rule
    return out


def _check_agenda_item(ctx: Ctx, item_id: int | None) -> None:
    if item_id is not None:
        from ..agenda.service import get_item

        get_item(ctx.s, ctx.meeting.id, item_id)


# -- set-up ------------------------------------------------------------------------------


@commands.command(
    "polls.create",
    roles={ORGANIZER},
    schema=schemas.PollCreate,
    resource="meeting",
    http=("POST", "/meetings/<int:meeting_id>/polls"),
    status=201,
)
def create(ctx: Ctx, p: schemas.PollCreate) -> dict:
    """Create a poll in draft: kind, options, secret or named, rule, countdown, …"""
    _check_agenda_item(ctx, p.agenda_item_id)
    poll = Poll(meeting_id=ctx.meeting.id)
    _apply(poll, p)
    ctx.s.add(poll)
    ctx.s.flush()
    out = service.poll_json(poll, s=ctx.s, reveal=True)
    ctx.emit("poll", out, to=rooms.staff(ctx.meeting.id))
    return out


@commands.command(
    "polls.list",
    roles=EVERYONE_IN_MEETING,
    resource="meeting",
    write=False,
    http=("GET", "/meetings/<int:meeting_id>/polls"),
)
def list_(ctx: Ctx, p) -> dict:
    """The meeting's polls (tallies as each client may see them)."""
    return {
        "polls": [
            service.poll_json(x, s=ctx.s, reveal=_reveal(ctx))
            for x in service.list_polls(ctx.s, ctx.meeting.id)
        ]
    }


@commands.command(
    "polls.get", roles=EVERYONE_IN_MEETING, resource="poll", write=False, http=("GET", "/polls/<int:poll_id>")
)
def get(ctx: Ctx, p) -> dict:
    """A poll with `status`, `voted`, `eligible`, and once closed its `tally` (tablets: once published)."""
    return service.poll_json(ctx.obj, s=ctx.s, reveal=_reveal(ctx))


@commands.command(
    "polls.update",
    roles={ORGANIZER},
    schema=schemas.PollUpdate,
    resource="poll",
    http=("PATCH", "/polls/<int:poll_id>"),
)
def update(ctx: Ctx, p: schemas.PollUpdate) -> dict:
    """Edit a poll while it is a draft (the whole poll is checked again)."""
    poll = ctx.obj
    if poll.status != "draft":
        raise Conflict("only a draft poll can be edited", code="poll_not_draft")
    merged = _fields_of(poll)
    changes = p.model_dump(exclude_unset=True)
    if "kind" in changes or "options" in changes:  # let the kind's defaults apply afresh
        for name in ("max_choices", "min_choices", "seats", "abstain_option"):
            merged.pop(name, None)
    merged.update(changes)
    try:
        fields = schemas.PollFields.model_validate(merged)
    except ValidationError as e:
        err = e.errors(include_url=False)[0]
        where = ".".join(str(x) for x in err["loc"])
        raise Invalid(f"{where}: {err['msg']}" if where else err["msg"], code="invalid") from None
    _check_agenda_item(ctx, fields.agenda_item_id)
    _apply(poll, fields)
    out = service.poll_json(poll, s=ctx.s, reveal=True)
    ctx.emit("poll", out, to=rooms.staff(ctx.meeting.id))
    return out


@commands.command("polls.delete", roles={ORGANIZER}, resource="poll", http=("DELETE", "/polls/<int:poll_id>"))
def delete(ctx: Ctx, p) -> dict:
    """Delete a draft poll."""
    if ctx.obj.status != "draft":
        raise Conflict("only a draft poll can be deleted; close or cancel it instead", code="poll_not_draft")
    ctx.s.delete(ctx.obj)
    return {"ok": True}


# -- life cycle -------------------------------------------------------------------------------


@commands.command(
    "poll.open",
    roles=CHAIRS,
    schema=schemas.PollOpen,
    resource="poll",
    http=("POST", "/polls/<int:poll_id>/open"),
    socket=True,
)
def open_(ctx: Ctx, p: schemas.PollOpen) -> dict:
    """Open a draft poll for voting, optionally with a countdown; everyone receives `poll`."""
    poll = ctx.obj
    if poll.status != "draft":
        raise Conflict(f"this poll is {poll.status}; only a draft can be opened", code="poll_not_draft")
    other = service.open_poll(ctx.s, ctx.meeting.id)
    if other is not None:
        raise Conflict(f"close poll {other.id} first: one poll is open at a time", code="another_poll_open")
    now = utcnow()
    poll.status = "open"
    poll.opened_at = now
    if p.duration_s is not None:
        poll.duration_s = p.duration_s
    poll.closes_at = now + dt.timedelta(seconds=poll.duration_s) if poll.duration_s else None
    ctx.s.flush()
    ctx.emit("poll", service.poll_json(poll, s=ctx.s), to=rooms.meeting(ctx.meeting.id))
    if poll.closes_at is not None:
        poll_id, closes_at = poll.id, poll.closes_at
        ctx.later(lambda: timers.arm(poll_id, closes_at))
    ctx.audit_data = {"poll_id": poll.id, "duration_s": poll.duration_s}
    return service.poll_json(poll, s=ctx.s, reveal=True)


@commands.command(
    "poll.close",
    roles=CHAIRS,
    schema=schemas.PollRef,
    resource="poll",
    http=("POST", "/polls/<int:poll_id>/close"),
    socket=True,
    allow_ended=True,
)
def close(ctx: Ctx, p) -> dict:
    """Close the poll and count: everyone gets `poll`; `poll.result` goes to everyone, or only to the chair
    and organizers when the poll has `publish_on_close: false`."""
    poll = ctx.obj
    result = service.close(ctx.s, poll, ctx.meeting)
    mid = ctx.meeting.id
    ctx.emit("poll", service.poll_json(poll, s=ctx.s), to=rooms.meeting(mid))
    ctx.emit(
        "poll.result",
        service.result_payload(poll),
        to=rooms.meeting(mid) if poll.published_at else rooms.chairs(mid),
    )
    ctx.audit_data = {
        "poll_id": poll.id,
        "tally": result["tally"],
        "cast": result["cast"],
        "outcome": result["outcome"]["result"],
        "snapshot": result["snapshot"],
        "ballots_sha256": result["ballots_sha256"],
    }
    if "weighted_tally" in result:
        ctx.audit_data["weighted_tally"] = result["weighted_tally"]
    return service.poll_json(poll, s=ctx.s, reveal=True)


def close_open_polls(ctx: Ctx) -> list[int]:
    """`meetings.end` closes every poll still open, as `poll.close` would (called by that command).

    Each is counted against the attendance snapshot taken now, gets its own `poll.close` audit entry
    (actor: whoever ended the meeting), and the room gets `poll` and `poll.result` (to everyone, or to
    the chair and organizers when the poll is not published on close), queued before the `meeting`
    event that ends the meeting. Returns the ids closed.
    """
    from sqlalchemy import select

    from ..core import audit
    from ..core.commands import registry

    cmd = registry.get("poll.close")
    closed = []
    open_polls = ctx.s.scalars(
        select(Poll).where(Poll.meeting_id == ctx.meeting.id, Poll.status == "open").order_by(Poll.id)
    )
    for poll in list(open_polls):
        sub = Ctx(s=ctx.s, actor=ctx.actor, command=cmd, meeting=ctx.meeting, obj=poll)
        cmd.fn(sub, schemas.PollRef(poll_id=poll.id))
        audit.append(ctx.s, ctx.meeting, ctx.actor, cmd.name, {**sub.audit_data, "reason": "meeting_ended"})
        for e in sub.emits:
            ctx.emit(e.event, e.data, to=e.to)
        closed.append(poll.id)
    return closed


@commands.command(
    "poll.publish",
    roles=CHAIRS,
    schema=schemas.PollRef,
    resource="poll",
    http=("POST", "/polls/<int:poll_id>/publish"),
    socket=True,
    allow_ended=True,
)
def publish(ctx: Ctx, p) -> dict:
    """Show a closed poll's result to the room: everyone receives `poll.result` (idempotent)."""
    poll = ctx.obj
    if poll.status != "closed":
        raise Conflict("only a closed poll has a result to publish", code="poll_not_closed")
    if poll.published_at is None:
        poll.published_at = utcnow()
        mid = ctx.meeting.id
        ctx.emit("poll", service.poll_json(poll, s=ctx.s), to=rooms.meeting(mid))
        ctx.emit("poll.result", service.result_payload(poll), to=rooms.meeting(mid))
        ctx.audit_data = {"poll_id": poll.id}
    else:
        ctx.skip_audit = True
    return service.poll_json(poll, s=ctx.s, reveal=True)


@commands.command(
    "poll.cancel",
    roles=CHAIRS,
    schema=schemas.PollCancel,
    resource="poll",
    http=("POST", "/polls/<int:poll_id>/cancel"),
    socket=True,
    allow_ended=True,
)
def cancel(ctx: Ctx, p: schemas.PollCancel) -> dict:
    """Cancel a draft or open poll: no result; its ballots stay on record. Everyone receives `poll`."""
    poll = ctx.obj
    if poll.status not in ("draft", "open"):
        raise Conflict(f"a {poll.status} poll cannot be cancelled", code="poll_not_cancellable")
    poll.status = "cancelled"
    poll.cancelled_at = utcnow()
    poll.cancel_reason = p.reason or None
    poll.closes_at = None
    ctx.emit("poll", service.poll_json(poll, s=ctx.s), to=rooms.meeting(ctx.meeting.id))
    ctx.audit_data = {"poll_id": poll.id, "reason": p.reason}
    return service.poll_json(poll, s=ctx.s, reveal=True)


@commands.command(
    "poll.dismiss",
    roles=CHAIRS,
    schema=schemas.PollRef,
    resource="poll",
    http=("POST", "/polls/<int:poll_id>/dismiss"),
    socket=True,
)
def dismiss(ctx: Ctx, p) -> dict:
    """Take a shown result off the room's screens; everyone receives `poll.dismissed`."""
    poll = ctx.obj
    if poll.status != "closed":
        raise Conflict("only a closed poll's result can be dismissed", code="poll_not_closed")
    if poll.dismissed_at is None:
        poll.dismissed_at = utcnow()
        ctx.emit("poll.dismissed", {"id": poll.id}, to=rooms.meeting(ctx.meeting.id))
    else:
        ctx.skip_audit = True
    return {"id": poll.id, "dismissed": True}


@commands.command(
    "poll.revote",
    roles=CHAIRS,
    schema=schemas.PollRef,
    resource="poll",
    http=("POST", "/polls/<int:poll_id>/revote"),
    socket=True,
    status=201,
)
def revote(ctx: Ctx, p) -> dict:
    """Repeat a closed or cancelled poll as a new round (a new draft poll); the earlier round stays on record."""
    old = ctx.obj
    if old.status not in ("closed", "cancelled"):
        raise Conflict("only a closed or cancelled poll can be repeated", code="poll_not_closed")
    poll = Poll(meeting_id=old.meeting_id)
    for name in POLL_COLUMNS + ("scale_min", "scale_max", "drop_extremes", "rule"):
        setattr(poll, name, getattr(old, name))
    poll.round = old.round + 1
    poll.previous_id = old.id
    ctx.s.add(poll)
    ctx.s.flush()
    out = service.poll_json(poll, s=ctx.s, reveal=True)
    ctx.emit("poll", out, to=rooms.staff(ctx.meeting.id))
    ctx.audit_data = {"poll_id": old.id, "new_poll_id": poll.id, "round": poll.round}
    return out


# -- ballots -------------------------------------------------------------------------------


def _after_vote(ctx: Ctx, poll: Poll, data: dict | None) -> None:
    if data is None:
        ctx.skip_audit = True
        return
    ctx.audit_data = data
    poll_id, meeting_id = poll.id, poll.meeting_id
    ctx.later(lambda: progress.touch(poll_id, meeting_id))


@commands.command(
    "vote",
    roles=VOTERS,
    schema=schemas.Vote,
    resource="poll",
    http=("POST", "/polls/<int:poll_id>/votes"),
)
def vote(ctx: Ctx, p: schemas.Vote) -> dict:
    """Cast this seat's ballot; the answer carries the receipt once the ballot is committed.

    Over Socket.IO `vote` is handled by the vote batcher (voting/batcher.py), which
    runs the same checks and writes many ballots in one transaction.
    """
    from ..roster.models import Attendee

    poll = ctx.obj
    attendee = ctx.s.get(Attendee, ctx.actor.id)
    try:
        ack, data = service.cast(
            ctx.s,
            poll,
            attendee,
            p.choices,
            p.ballot_id,
            service.current_key(),
            previous_ballot_id=p.previous_ballot_id,
        )
    except service.PollExpired:
        timers.close_soon(poll.id, delay=0.2)
        raise
    _after_vote(ctx, poll, data)
    return ack


@commands.command(
    "poll.vote_for",
    roles={ORGANIZER, "secretary"},
    schema=schemas.ProxyVote,
    resource="poll",
    http=("POST", "/polls/<int:poll_id>/proxy-votes"),
    socket=True,
)
def vote_for(ctx: Ctx, p: schemas.ProxyVote) -> dict:
    """Record the vote of an attendee who votes by hand (named polls only; the reason is logged)."""
    from ..roster.models import Attendee

    poll = ctx.obj
    if poll.secret:
        raise Conflict("a vote by hand can only be recorded in a named poll", code="poll_is_secret")
    a = ctx.s.get(Attendee, p.attendee_id)
    if a is None or a.meeting_id != ctx.meeting.id or a.deleted:
        raise NotFound("no such attendee")
    if a.role not in VOTING_ROLES:
        raise Conflict(f"the role {a.role} does not vote", code="not_a_voter")
    ack, data = service.cast(
        ctx.s,
        poll,
        a,
        p.choices,
        p.ballot_id,
        service.current_key(),
        previous_ballot_id=p.previous_ballot_id,
        recorded_by=ctx.actor.audit_label(),
        reason=p.reason,
    )
    if data is not None:
        data.update(attendee_id=a.id, reason=p.reason, by_hand=True)
    _after_vote(ctx, poll, data)
    return {**ack, "attendee_id": a.id}


# -- results ---------------------------------------------------------------------------------


def _closed(poll: Poll) -> Poll:
    if poll.status != "closed":
        raise Conflict("results exist once the poll is closed", code="poll_not_closed")
    return poll


@commands.command(
    "polls.results_json",
    roles=CHAIRS,
    resource="poll",
    write=False,
    http=("GET", "/polls/<int:poll_id>/results.json"),
)
def results_json(ctx: Ctx, p) -> dict:
    """The result with every ballot: voters and choices (named) or receipts and choices (secret)."""
    return exports.results_json(ctx.s, _closed(ctx.obj))


@commands.command(
    "polls.results_csv",
    roles=CHAIRS,
    resource="poll",
    write=False,
    binary="text/csv",
    http=("GET", "/polls/<int:poll_id>/results.csv"),
)
def results_csv(ctx: Ctx, p) -> Response:
    """The same as CSV (UTF-8 with BOM): totals, then every ballot."""
    poll = _closed(ctx.obj)
    return Response(
        exports.results_csv(ctx.s, poll),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="poll-{poll.id}-results.csv"',
            "Cache-Control": "no-store",
        },
    )


@commands.command(
    "polls.receipt",
    roles=EVERYONE_IN_MEETING,
    resource="poll",
    write=False,
    http=("GET", "/polls/<int:poll_id>/receipts/<code>"),
)
def receipt(ctx: Ctx, p) -> dict:
    """Check a receipt: is this ballot among those counted? The choices once the result is public."""
    poll = ctx.obj
    code = service.normalize_receipt(str(ctx.params.get("code", "")))
    found = service.find_receipt(ctx.s, poll, code) if code else None
    if found is None:
        raise NotFound("no ballot has this receipt in this poll", code="receipt_not_found")
    out = {
        "poll_id": poll.id,
        "receipt": code,
        "status": poll.status,
        "counted": poll.status == "closed",
        "found": True,
    }
    if poll.status == "closed" and (poll.published_at is not None or _reveal(ctx)):
        out["choices"] = found["choices"]
    return out


# -- wiring ----------------------------------------------------------------------------------


def _state_part(s, meeting, actor, attendee) -> dict:
    p = service.open_poll(s, meeting.id)
    reveal = actor.is_user or (attendee is not None and attendee.role == "chair")
    return {
        "my_vote": service.my_vote(s, p, attendee) if p is not None and attendee is not None else None,
        "poll_result": service.latest_result(s, meeting.id, reveal),
    }


def _startup_sweep() -> None:
    from ..extensions import socketio

    socketio.sleep(0.5)
    try:
        n = timers.sweep()
        if n:
            log.info("closed %d poll(s) whose countdown ran out while the server was down", n)
    except Exception:  # a fresh database may not have its tables yet
        log.warning("poll countdown sweep failed", exc_info=True)


def init_app(app) -> None:
    from ..extensions import socketio
    from ..live import state
    from . import batcher

    socketio.server.on("vote", batcher.handler(app))
    batcher.install(app, socketio.server)
    state.contributors["voting"] = _state_part
    timers.new_generation()
    progress.reset()
    progress.configure(app.config["SETTINGS"].redis_url)
    if not app.config["SETTINGS"].testing:
        socketio.start_background_task(_startup_sweep)
