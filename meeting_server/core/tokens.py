"""Opaque bearer tokens: random, prefixed by kind, stored only as SHA-256."""

from __future__ import annotations

import hashlib
import secrets

USER_PREFIX = "org_"
SEAT_PREFIX = "seat_"


def new_token(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_join_token() -> str:
    """The seat card's secret: unguessable (160 bits), short enough for a QR code."""
    return secrets.token_urlsafe(20)
