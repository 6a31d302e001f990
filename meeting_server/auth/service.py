"""Organizer accounts and tokens; resolving any bearer token to an Actor."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from ..core import tokens
from ..core.db import utcnow
from ..core.errors import Conflict, Unauthorized
from ..core.identity import ANONYMOUS, Actor
from .models import ApiToken, User

#: Password hashing method (werkzeug); tests lower the cost through settings.
HASH_METHOD = "scrypt"


def create_user(
    s: Session, username: str, password: str, role: str = "organizer", display_name: str = ""
) -> User:
    if s.scalar(select(User).where(User.username == username)) is not None:
        raise Conflict(f"user {username!r} exists already", code="user_exists")
    user = User(
        username=username,
        password_hash=generate_password_hash(password, method=HASH_METHOD),
        role=role,
        display_name=display_name,
    )
    s.add(user)
    s.flush()
    return user


def set_password(s: Session, user: User, password: str) -> None:
    user.password_hash = generate_password_hash(password, method=HASH_METHOD)


def login(s: Session, username: str, password: str, ttl_hours: int) -> tuple[str, ApiToken, User]:
    user = s.scalar(select(User).where(User.username == username))
    if user is None or user.disabled or not check_password_hash(user.password_hash, password):
        raise Unauthorized("wrong user name or password", code="bad_credentials")
    token = tokens.new_token(tokens.USER_PREFIX)
    row = ApiToken(
        user_id=user.id, token_hash=tokens.digest(token), expires_at=utcnow() + dt.timedelta(hours=ttl_hours)
    )
    s.add(row)
    s.flush()
    return token, row, user


def revoke_token(s: Session, token_id: int) -> None:
    row = s.get(ApiToken, token_id)
    if row is not None and row.revoked_at is None:
        row.revoked_at = utcnow()


def actor_for_token(s: Session, token: str | None) -> Actor:
    """Resolve a bearer token of either kind; raise Unauthorized for a bad one."""
    if not token:
        return ANONYMOUS
    now = utcnow()
    if token.startswith(tokens.USER_PREFIX):
        row = s.scalar(select(ApiToken).where(ApiToken.token_hash == tokens.digest(token)))
        if row is None or row.revoked_at is not None or row.expires_at <= now:
            raise Unauthorized("the login has expired or was revoked; log in again", code="bad_token")
        user = s.get(User, row.user_id)
        if user is None or user.disabled:
            raise Unauthorized("this account is disabled", code="bad_token")
        return Actor("user", user.id, user.display_name or user.username, user.role, session_id=row.id)
    if token.startswith(tokens.SEAT_PREFIX):
        from ..roster.models import Attendee, SeatSession

        sess = s.scalar(select(SeatSession).where(SeatSession.token_hash == tokens.digest(token)))
        att = s.get(Attendee, sess.attendee_id) if _live_session(sess, now) else None
        return _seat_actor(sess, att, now)
    raise Unauthorized("unknown token", code="bad_token")


def _live_session(sess, now: dt.datetime) -> bool:
    return sess is not None and sess.revoked_at is None and sess.expires_at > now


def _seat_actor(sess, att, now: dt.datetime) -> Actor:
    """The seat behind a seat session (loaded with its attendee), or Unauthorized: one rule for both paths."""
    if not _live_session(sess, now):
        raise Unauthorized("this tablet's session has ended; scan the seat's QR code again", code="bad_token")
    if att is None or att.deleted:
        raise Unauthorized("this seat no longer exists", code="bad_token")
    return Actor("seat", att.id, att.name, att.role, att.meeting_id, session_id=sess.id)


def actors_for_seat_tokens(s: Session, seat_tokens: list[str]) -> dict[str, Actor | Unauthorized]:
    """Resolve many seat tokens with one query (a hall reconnecting at once): token -> Actor, or the
    Unauthorized that `actor_for_token` would raise for it. Every token must start with the seat prefix."""
    from ..roster.models import Attendee, SeatSession

    now = utcnow()
    by_digest = {tokens.digest(t): t for t in seat_tokens}
    rows = s.execute(
        select(SeatSession, Attendee)
        .outerjoin(Attendee, Attendee.id == SeatSession.attendee_id)
        .where(SeatSession.token_hash.in_(list(by_digest)))
    ).all()
    found = {sess.token_hash: (sess, att) for sess, att in rows}
    out: dict[str, Actor | Unauthorized] = {}
    for digest, token in by_digest.items():
        sess, att = found.get(digest, (None, None))
        try:
            out[token] = _seat_actor(sess, att, now)
        except Unauthorized as e:
            out[token] = e
    return out
