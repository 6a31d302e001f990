"""The one command pipeline shared by HTTP routes and Socket.IO events.

Each command declares its name, payload schema, who may run it, which
resource it acts on and whether it writes. `execute` then owns the whole
life cycle: validate, authorize, refuse writes to an ended meeting, run the
domain function inside one transaction (which also appends the audit
record), commit, broadcast, and only then answer.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import bindparam, select
from sqlalchemy.exc import DataError, DBAPIError
from sqlalchemy.orm import Session

from . import db, group
from .db import utcnow
from .errors import AppError, Conflict, Forbidden, Invalid, NotFound, Unauthorized
from .identity import SEAT_ROLES, Actor

log = logging.getLogger(__name__)

# Permission names a command may list in `roles`, besides the seat roles.
ORGANIZER = "organizer"  #: the meeting's owner, or any admin
ANY_USER = "user"  #: any logged-in organizer account (not tied to a meeting)
ADMIN = "admin"
PUBLIC = "public"  #: no credentials needed
SEATS = frozenset(SEAT_ROLES)
ROOM_STAFF = frozenset({ORGANIZER, "chair", "presenter", "secretary"})
PRESENTERS = frozenset({ORGANIZER, "chair", "presenter"})
CHAIRS = frozenset({ORGANIZER, "chair"})
EVERYONE_IN_MEETING = frozenset({ORGANIZER, *SEAT_ROLES})

#: Meeting statuses in which writes are refused (unless a command allows it).
CLOSED_STATUSES = frozenset({"ended", "archived"})


@dataclass(frozen=True)
class Command:
    name: str
    fn: Callable[..., Any]
    roles: frozenset[str]
    schema: type[BaseModel] | None = None
    #: Name of a registered resource loader; the id comes from the path or payload.
    resource: str | None = None
    write: bool = True
    http: tuple[str, str] | None = None  # (METHOD, "/meetings/<int:meeting_id>/agenda")
    status: int = 200
    socket: bool = False
    #: Still allowed once the meeting has ended (minutes, archive); never once archived.
    allow_ended: bool = False
    summary: str = ""
    #: The HTTP body is multipart/form-data (file upload).
    multipart: bool = False
    #: The HTTP answer is not JSON (an image, a PDF, a zip).
    binary: str | None = None
    #: False: the commit need not wait for the disk (PostgreSQL `synchronous_commit = off` for this
    #: transaction only). For presentation state a later write replaces anyway (a page flip): the
    #: answer and the broadcast leave without the WAL flush, and the meeting row lock is released
    #: sooner. A crash of the database server may lose the last such commits (well under a second's
    #: worth), never part of one, and never one that a later durable commit followed: the WAL is
    #: flushed in order, so the audit chain stays whole. Never for votes, check-ins or anything a
    #: client is told is kept.
    durable: bool = True


@dataclass(frozen=True)
class Loader:
    """Loads a resource by id; returns the object, whose `meeting_id` scopes it."""

    name: str
    param: str
    fn: Callable[[Session, Any], Any]


class CommandSet:
    """The commands of one domain package, registered with the app in `create_app`."""

    def __init__(self, domain: str):
        self.domain = domain
        self.commands: list[Command] = []
        self.loaders: list[Loader] = []
        #: Server -> client events this domain emits: name -> one-line description.
        self.events: dict[str, str] = {}

    def event(self, name: str, description: str) -> None:
        """Declare a server -> client event; emitting an undeclared one is a bug."""
        self.events[name] = description

    def command(self, name: str, *, roles: frozenset[str] | set[str], **kw: Any):
        def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
            self.commands.append(
                Command(
                    name=name,
                    fn=fn,
                    roles=frozenset(roles),
                    summary=kw.pop("summary", None) or (fn.__doc__ or "").strip().split("\n")[0],
                    **kw,
                )
            )
            return fn

        return deco

    def loader(self, name: str, param: str):
        def deco(fn: Callable[[Session, Any], Any]) -> Callable[[Session, Any], Any]:
            self.loaders.append(Loader(name, param, fn))
            return fn

        return deco


class Registry:
    def __init__(self) -> None:
        self.commands: dict[str, Command] = {}
        self.loaders: dict[str, Loader] = {}
        self.events: dict[str, str] = {}

    def add(self, cs: CommandSet) -> None:
        for loader in cs.loaders:
            if loader.name in self.loaders:
                raise ValueError(f"resource loader {loader.name!r} registered twice")
            self.loaders[loader.name] = loader
        for name, description in cs.events.items():
            if name in self.events:
                raise ValueError(f"event {name!r} declared twice")
            self.events[name] = description
        for cmd in cs.commands:
            if cmd.name in self.commands:
                raise ValueError(f"command {cmd.name!r} registered twice")
            if cmd.resource and cmd.resource != "meeting" and cmd.resource not in self.loaders:
                raise ValueError(f"command {cmd.name!r} names unknown resource {cmd.resource!r}")
            self.commands[cmd.name] = cmd

    def get(self, name: str) -> Command:
        return self.commands[name]


registry = Registry()


@dataclass
class Emit:
    event: str
    data: Any
    to: str | list[str] | None
    skip_sid: str | None = None


@dataclass
class Ctx:
    """What a domain function gets: the session, the actor and what was resolved."""

    s: Session
    actor: Actor
    command: Command
    meeting: Any = None
    obj: Any = None
    params: dict[str, Any] = field(default_factory=dict)
    files: Any = None
    sid: str | None = None
    emits: list[Emit] = field(default_factory=list)
    after_commit: list[Callable[[], None]] = field(default_factory=list)
    #: What the audit record says; defaults to the payload. Set to {} to hide details.
    audit_data: dict[str, Any] | None = None
    skip_audit: bool = False

    def emit(self, event: str, data: Any, to: str | list[str] | None, skip_sid: str | None = None) -> None:
        """Queue a broadcast; it is sent only after the transaction commits."""
        if event not in registry.events:
            raise RuntimeError(f"event {event!r} is not declared by any domain")
        self.emits.append(Emit(event, data, to, skip_sid))

    def later(self, fn: Callable[[], None]) -> None:
        self.after_commit.append(fn)


def validate(cmd: Command, raw: Any) -> BaseModel | None:
    if cmd.schema is None:
        return None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise Invalid("payload must be a JSON object", code="invalid")
    try:
        return cmd.schema.model_validate(raw)
    except ValidationError as e:
        problems = [
            {"field": ".".join(str(p) for p in err["loc"]) or "(body)", "problem": err["msg"]}
            for err in e.errors(include_url=False, include_context=False, include_input=False)
        ]
        first = problems[0] if problems else {"field": "", "problem": "invalid"}
        raise Invalid(f"{first['field']}: {first['problem']}", code="invalid", fields=problems) from None


#: Ids beyond a 64-bit signed integer cannot exist in any database we support.
MAX_ID = 2**63 - 1


def _coerce_id(value: Any) -> int:
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise NotFound("no such item") from None
    if not 0 < n <= MAX_ID:
        raise NotFound("no such item")
    return n


def resolve(cmd: Command, s: Session, actor: Actor, params: dict[str, Any], payload: BaseModel | None):
    from ..meetings.models import Meeting

    obj = None
    meeting_id = None
    if cmd.resource == "meeting":
        raw = params.get("meeting_id", getattr(payload, "meeting_id", None))
        meeting_id = _coerce_id(raw) if raw is not None else actor.meeting_id
    elif cmd.resource:
        loader = registry.loaders[cmd.resource]
        raw = params.get(loader.param, getattr(payload, loader.param, None))
        if raw is None:
            raise Invalid(
                f"{loader.param} is required", fields=[{"field": loader.param, "problem": "required"}]
            )
        obj = loader.fn(s, _coerce_id(raw))
        if obj is None:
            raise NotFound(f"no such {cmd.resource}")
        meeting_id = obj.meeting_id
    elif actor.meeting_id is not None and cmd.socket:
        meeting_id = actor.meeting_id
    meeting = None
    if meeting_id is not None:
        meeting = s.get(Meeting, meeting_id, with_for_update=cmd.write or None)
        if meeting is None or meeting.deleted_at is not None:
            raise NotFound("no such meeting")
    return meeting, obj


def authorize(cmd: Command, actor: Actor, meeting: Any, s: Session) -> Actor:
    """Raise unless `actor` may run `cmd` on `meeting`; returns the fresh actor."""
    roles = cmd.roles
    if PUBLIC in roles:
        return actor
    if actor.kind == "anonymous":
        raise Unauthorized("log in or join the meeting first")
    if actor.is_user:
        actor = _fresh_user(s, actor)
        if ANY_USER in roles or (ADMIN in roles and actor.is_admin):
            return actor
        if ORGANIZER in roles and meeting is not None:
            if actor.is_admin or meeting.owner_id == actor.id:
                return actor
            raise Forbidden("this meeting belongs to another organizer")
        raise Forbidden("organizer accounts cannot do this")
    # A seat: it only ever sees its own meeting, and its role is read fresh.
    if meeting is None or actor.meeting_id != meeting.id:
        # The loader's own words: a seat cannot tell another meeting's item from a missing one.
        raise NotFound(f"no such {cmd.resource or 'item'}")
    from ..roster.models import Attendee, SeatSession

    sess, att = _pair(s, SeatSession, actor.session_id, Attendee, actor.id)
    # A socket lives longer than its token: revocation and expiry are checked at each command.
    if sess is None or sess.revoked_at is not None or sess.expires_at <= utcnow():
        raise Unauthorized(
            "this tablet's session has ended (revoked or expired); scan the seat's QR code again"
        )
    if att is None or att.deleted:
        raise Unauthorized("this seat no longer exists")
    if att.role not in roles:
        raise Forbidden(f"the role {att.role} may not do this")
    return Actor("seat", att.id, att.name, att.role, att.meeting_id, actor.session_id)


@functools.cache
def _pair_statement(a_model: Any, b_model: Any) -> Any:
    """`SELECT a, b FROM a JOIN b ON b.id = :b_id WHERE a.id = :a_id`, built once per pair of models.

    Reusing the statement object spares building it and computing its cache key at each command
    (SQLAlchemy memoizes the key on the object): less CPU than the two `s.get` it replaces. An
    explicit JOIN, not a bare cross join, which SQLAlchemy warns about.
    """
    return (
        select(a_model, b_model)
        .join(b_model, b_model.id == bindparam("b_id"))
        .where(a_model.id == bindparam("a_id"))
    )


def _pair(s: Session, a_model: Any, a_id: int | None, b_model: Any, b_id: int) -> tuple[Any, Any]:
    """Two rows by primary key in one round trip (the actor's session or token, and its seat or user).

    Read after the meeting row is locked, like the two `s.get` calls it replaces: a revocation
    committed while this command waited for the lock is seen. When either row is missing, the two
    are looked up apart, so the caller tells which one is gone exactly as before.
    """
    if not a_id:
        return None, s.get(b_model, b_id)
    row = s.execute(_pair_statement(a_model, b_model), {"a_id": a_id, "b_id": b_id}).first()
    if row is not None:
        return row[0], row[1]
    return s.get(a_model, a_id), s.get(b_model, b_id)


def _fresh_user(s: Session, actor: Actor) -> Actor:
    """An organizer's login, re-read: a console socket must not outlive a logout, expiry or a disabled account."""
    if actor.session_id is None:
        return actor  # an actor made by the server itself (scripts, the demo), not a client's token
    from ..auth.models import ApiToken, User

    row, user = _pair(s, ApiToken, actor.session_id, User, actor.id)
    if row is None or row.revoked_at is not None or row.expires_at <= utcnow():
        raise Unauthorized("the login has expired or was revoked; log in again", code="bad_token")
    if user is None or user.disabled:
        raise Unauthorized("this account is disabled", code="bad_token")
    return replace(actor, role=user.role) if user.role != actor.role else actor


def execute(
    cmd: Command,
    actor: Actor,
    raw: Any,
    params: dict[str, Any] | None = None,
    *,
    files: Any = None,
    sid: str | None = None,
) -> Any:
    params = params or {}
    if actor.kind == "anonymous" and PUBLIC not in cmd.roles:
        # Before validation and before any lookup: no answer may tell an anonymous caller whether an id exists.
        raise Unauthorized("log in or join the meeting first")
    payload = validate(cmd, raw)
    if sid is not None and cmd.name in group.GROUPED and group.enabled():
        return group.run(cmd, actor, payload, params, sid)
    for attempt in range(RETRIES + 1):
        try:
            return _execute(cmd, actor, payload, params, files, sid)
        except (OverflowError, DataError) as e:
            # A number or text the database cannot hold (e.g. an id past 64 bits): bad input, not a crash.
            raise Invalid("a value in the request is out of range", code="out_of_range") from e
        except DBAPIError as e:
            if attempt == RETRIES or cmd.multipart or not retryable(e):
                raise
            log.warning("%s: %s; running it again", cmd.name, type(e.orig).__name__)
            # Apart, or the two would likely meet again (green threads: this sleep yields).
            time.sleep(random.uniform(0.01, 0.05) * (attempt + 1))
    raise AssertionError("unreachable")


#: PostgreSQL aborts one of two transactions that wait on each other (40P01) or cannot be
#: serialized (40001). Nothing was emitted or answered yet (that happens after the commit), so
#: the command simply runs again from the start. Uploads are not retried (their stream is read).
RETRY_SQLSTATES = frozenset({"40P01", "40001"})
RETRIES = 3


def retryable(e: DBAPIError) -> bool:
    return getattr(e.orig, "pgcode", None) in RETRY_SQLSTATES


def _execute(
    cmd: Command, actor: Actor, payload: BaseModel | None, params: dict[str, Any], files: Any, sid: str | None
) -> Any:
    with db.transaction() as s:
        if cmd.write and not cmd.durable:
            db.commit_without_flush(s)  # before the meeting row is locked: one round trip, outside the lock
        ctx, result = apply(s, cmd, actor, payload, params, files, sid)
    publish(ctx)
    return result


def apply(
    s: Session,
    cmd: Command,
    actor: Actor,
    payload: BaseModel | None,
    params: dict[str, Any],
    files: Any = None,
    sid: str | None = None,
) -> tuple[Ctx, Any]:
    """Resolve, authorize and run `cmd` in the open transaction `s`, with its audit entry.

    Nothing is sent: the caller commits, then calls `publish(ctx)`.
    """
    from . import audit

    meeting, obj = resolve(cmd, s, actor, params, payload)
    actor = authorize(cmd, actor, meeting, s)
    if cmd.write and meeting is not None:
        if meeting.status == "archived" or (meeting.status in CLOSED_STATUSES and not cmd.allow_ended):
            raise Conflict("the meeting has ended; nothing can be changed", code="meeting_ended")
    ctx = Ctx(s=s, actor=actor, command=cmd, meeting=meeting, obj=obj, params=params, files=files, sid=sid)
    result = cmd.fn(ctx, payload)
    if cmd.write and meeting is not None and not ctx.skip_audit:
        data = ctx.audit_data
        if data is None:
            data = payload.model_dump(mode="json") if payload is not None else {}
            data.update({k: v for k, v in params.items() if k != "meeting_id"})
        audit.append(s, meeting, actor, cmd.name, data)
    return ctx, result


def publish(ctx: Ctx) -> None:
    """After the commit: the command's broadcasts, then its after-commit steps."""
    from ..extensions import socketio

    for e in ctx.emits:
        socketio.emit(e.event, e.data, to=e.to, skip_sid=e.skip_sid)
    for fn in ctx.after_commit:
        try:
            fn()
        except Exception:  # the commit stands; a failed side job is logged, not undone
            log.exception("after-commit step of %s failed", ctx.command.name)


def run(name: str, actor: Actor, raw: Any = None, params: dict[str, Any] | None = None, **kw: Any) -> Any:
    return execute(registry.get(name), actor, raw, params, **kw)


def unavailable(e: BaseException) -> AppError | None:
    """The database is unreachable (restarting, refusing connections, pool exhausted): a clear, retryable error."""
    from sqlalchemy.exc import InterfaceError, OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    if (
        isinstance(e, PoolTimeout)
        or (isinstance(e, DBAPIError) and e.connection_invalidated)
        or (
            # SQLite also reports schema mistakes ("no such table") as OperationalError: those stay bugs.
            isinstance(e, OperationalError | InterfaceError) and "no such" not in str(e.orig)
        )
    ):
        return AppError(
            "the database is not reachable right now; try again in a moment",
            code="unavailable",
            status=503,
            retry_after=2,
        )
    return None


def ack_error(e: Exception) -> dict[str, Any]:
    if isinstance(e, AppError):
        return {"ok": False, **e.to_dict()}
    busy = unavailable(e)
    if busy is not None:
        log.warning("command failed: %s", e)
        return {"ok": False, **busy.to_dict()}
    log.exception("command failed", exc_info=e)
    return {"ok": False, "error": {"code": "internal", "message": "the server could not do this; try again"}}
