"""Routes of the auth domain: login, logout, accounts."""

from __future__ import annotations

from flask import current_app

from ..core.commands import ADMIN, ANY_USER, PUBLIC, CommandSet, Ctx
from ..core.db import iso
from . import schemas, service
from .models import User

commands = CommandSet("auth")


def user_json(u: User) -> dict:
    return {
        "id": u.id,
        "username": u.username,
        "role": u.role,
        "display_name": u.display_name,
        "created_at": iso(u.created_at),
    }


@commands.command(
    "auth.login", roles={PUBLIC}, schema=schemas.Login, write=False, http=("POST", "/auth/login")
)
def login(ctx: Ctx, p: schemas.Login) -> dict:
    """Log in with user name and password; returns a bearer token."""
    from .ratelimit import limiter

    limiter.check(p.username)
    try:
        token, row, user = service.login(
            ctx.s, p.username, p.password, current_app.config["SETTINGS"].token_ttl_hours
        )
    except Exception:
        limiter.fail(p.username)
        raise
    limiter.success(p.username)
    return {"token": token, "expires_at": iso(row.expires_at), "user": user_json(user)}


@commands.command(
    "auth.logout", roles={ANY_USER}, schema=schemas.Empty, write=False, http=("POST", "/auth/logout")
)
def logout(ctx: Ctx, p) -> dict:
    """Revoke the token used for this request."""
    service.revoke_token(ctx.s, ctx.actor.session_id)
    return {"ok": True}


@commands.command("auth.me", roles={ANY_USER}, write=False, http=("GET", "/auth/me"))
def me(ctx: Ctx, p) -> dict:
    """The logged-in account."""
    return user_json(ctx.s.get(User, ctx.actor.id))


@commands.command(
    "users.create", roles={ADMIN}, schema=schemas.UserCreate, http=("POST", "/users"), status=201
)
def create_user(ctx: Ctx, p: schemas.UserCreate) -> dict:
    """Create an organizer or admin account (admins only)."""
    return user_json(service.create_user(ctx.s, p.username, p.password, p.role, p.display_name))


@commands.command("users.list", roles={ADMIN}, write=False, http=("GET", "/users"))
def list_users(ctx: Ctx, p) -> dict:
    """Every account (admins only)."""
    from sqlalchemy import select

    return {"users": [user_json(u) for u in ctx.s.scalars(select(User).order_by(User.id))]}
