"""Settings, read once from the environment (see contract.md, "Server process")."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

ASYNC_MODES = ("eventlet", "gevent", "threading")


class SettingsError(ValueError):
    """A setting has a value the server cannot run with; the message says which and why."""


def _int(env: dict[str, str], name: str, default: int, minimum: int = 1) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    return value


def normalize_db_url(url: str) -> str:
    """PostgreSQL goes through psycopg2 (cooperative under eventlet; psycopg 3 blocks the loop)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix) :]
    return url


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    secret_key: str
    redis_url: str | None = None
    async_mode: str = "eventlet"
    #: Largest upload accepted, in bytes (413 beyond it).
    max_upload_bytes: int = 200 * 1024 * 1024
    #: Documents with more pages are refused with 422.
    max_pages: int = 2000
    #: Lifetime of an organizer login token.
    token_ttl_hours: int = 12
    #: Lifetime of a tablet session token.
    seat_session_ttl_hours: int = 72
    org_name: str = "示例单位 Example Organization"
    #: The organization's certificate and key (PEM/DER) that sign the minutes; unset: self-signed on first run.
    org_cert_file: Path | None = None
    org_key_file: Path | None = None
    #: A PNG seal image for the minutes' signature; unset: drawn from `org_name`.
    seal_image_file: Path | None = None
    #: IANA time zone the minutes print times in (stored times are UTC).
    timezone: str = "Asia/Shanghai"
    #: Days after a meeting ended that its materials (originals, pages, annotations) are kept; 0: for ever.
    materials_retention_days: int = 0
    #: Days after a meeting ended that the meeting and its sealed archive are kept; 0: for ever.
    archive_retention_days: int = 0
    public_url: str | None = None
    cors_origins: tuple[str, ...] = ()
    #: Run background jobs inline (tests) instead of in a worker process.
    tasks_immediate: bool = False
    testing: bool = False
    #: werkzeug password hash method; tests use a cheap one.
    password_hash_method: str = "scrypt"
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: Any) -> Settings:
        env = dict(os.environ if env is None else env)
        data_dir = Path(env.get("MEETING_DATA_DIR") or "./instance").resolve()
        db_url = env.get("MEETING_DATABASE_URL") or f"sqlite:///{data_dir / 'meeting.sqlite'}"
        if not db_url.startswith(("sqlite:", "postgresql:", "postgresql+psycopg2:", "postgres:")):
            raise SettingsError(
                f"MEETING_DATABASE_URL must be an sqlite:/// or postgresql:// URL, got {db_url!r}"
            )
        db_url = normalize_db_url(db_url)
        redis_url = env.get("MEETING_REDIS_URL") or None
        if redis_url and not redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise SettingsError(f"MEETING_REDIS_URL must be a redis:// URL, got {redis_url!r}")
        async_mode = env.get("MEETING_ASYNC_MODE") or "eventlet"
        if async_mode not in ASYNC_MODES:
            raise SettingsError(f"MEETING_ASYNC_MODE must be one of {', '.join(ASYNC_MODES)}, got {async_mode!r}")
        secret = env.get("MEETING_SECRET_KEY") or ""
        if secret and len(secret) < 16:
            raise SettingsError("MEETING_SECRET_KEY must be at least 16 characters long")
        cert, key = env.get("MEETING_ORG_CERT_FILE") or None, env.get("MEETING_ORG_KEY_FILE") or None
        if (cert is None) != (key is None):
            raise SettingsError("set both MEETING_ORG_CERT_FILE and MEETING_ORG_KEY_FILE, or neither")
        for name, value in (("MEETING_ORG_CERT_FILE", cert), ("MEETING_ORG_KEY_FILE", key),
                            ("MEETING_SEAL_IMAGE_FILE", env.get("MEETING_SEAL_IMAGE_FILE"))):
            if value and not Path(value).is_file():
                raise SettingsError(f"{name} must name a readable file, got {value!r}")
        tz = env.get("MEETING_TIMEZONE") or cls.timezone
        try:
            from zoneinfo import ZoneInfo

            ZoneInfo(tz)
        except (ValueError, LookupError):
            raise SettingsError(f"MEETING_TIMEZONE must be an IANA time zone such as Asia/Shanghai, got {tz!r}") from None
        materials_days = _int(env, "MEETING_MATERIALS_RETENTION_DAYS", 0, minimum=0)
        archive_days = _int(env, "MEETING_ARCHIVE_RETENTION_DAYS", 0, minimum=0)
        if materials_days and archive_days and archive_days < materials_days:
            raise SettingsError("MEETING_ARCHIVE_RETENTION_DAYS must not be shorter than MEETING_MATERIALS_RETENTION_DAYS")
        origins = tuple(o.strip() for o in (env.get("MEETING_CORS_ORIGINS") or "").split(",") if o.strip())
        settings = cls(
            data_dir=data_dir,
            database_url=db_url,
            secret_key=secret,
            redis_url=redis_url,
            async_mode=async_mode,
            max_upload_bytes=_int(env, "MEETING_MAX_UPLOAD_MB", 200) * 1024 * 1024,
            max_pages=_int(env, "MEETING_MAX_PAGES", 2000),
            token_ttl_hours=_int(env, "MEETING_TOKEN_TTL_HOURS", 12),
            seat_session_ttl_hours=_int(env, "MEETING_SEAT_SESSION_TTL_HOURS", 72),
            org_name=env.get("MEETING_ORG_NAME") or cls.org_name,
            org_cert_file=Path(cert) if cert else None,
            org_key_file=Path(key) if key else None,
            seal_image_file=Path(env["MEETING_SEAL_IMAGE_FILE"]) if env.get("MEETING_SEAL_IMAGE_FILE") else None,
            timezone=tz,
            materials_retention_days=materials_days,
            archive_retention_days=archive_days,
            public_url=(env.get("MEETING_PUBLIC_URL") or None),
            cors_origins=origins,
        )
        return replace(settings, **overrides) if overrides else settings

    def ensure_dirs(self) -> Settings:
        """Create the data dir and, when no secret key was given, a persistent random one."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for sub in ("blobs", "tmp", "keys"):
            (self.data_dir / sub).mkdir(exist_ok=True)
        if self.secret_key:
            return self
        key_file = self.data_dir / "keys" / "secret_key"
        if not key_file.exists():
            key_file.write_text(secrets.token_urlsafe(48))
            key_file.chmod(0o600)
        return replace(self, secret_key=key_file.read_text().strip())
