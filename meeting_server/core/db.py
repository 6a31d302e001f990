"""Database engine and sessions (plain SQLAlchemy 2, no Flask context needed).

Write transactions on SQLite start with BEGIN IMMEDIATE: the write lock is
taken up front, so two writers never deadlock on a lock upgrade, and a
transaction never yields to another green thread while holding it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import JSON, DateTime, MetaData, create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps naive values)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None:
            if value.tzinfo is None:
                value = value.replace(tzinfo=dt.UTC)
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        return value.replace(tzinfo=dt.UTC) if value is not None else None


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dt.datetime: UTCDateTime(), dict: JSON, list: JSON}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if value else None


engine: Engine | None = None
SessionLocal: sessionmaker[Session] | None = None


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        memory = url in ("sqlite://", "sqlite:///:memory:")
        kwargs: dict = {"connect_args": {"check_same_thread": False, "timeout": 15}}
        if memory:
            kwargs["poolclass"] = StaticPool
        eng = create_engine(url, **kwargs)

        @event.listens_for(eng, "connect")
        def _sqlite_connect(dbapi_conn, _rec):
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            if not memory:
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=15000")
            cur.close()

        @event.listens_for(eng, "begin")
        def _sqlite_begin(conn):
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return eng
    from ..config import normalize_db_url

    url = normalize_db_url(url)
    kwargs = {}
    if url.startswith("postgresql+psycopg2://"):
        # UPDATE/DELETE with many parameter sets (the presence loop's last-seen flush of every
        # tablet of the process) as pages of 100 statements per round trip (psycopg2's
        # execute_batch) instead of one round trip per row: 1,000 tablets' flush was 10 % of the
        # presenter's process during flips (py-spy). INSERTs keep SQLAlchemy's multi-row VALUES.
        # The executemany's total rowcount is then not known (nothing here reads it).
        kwargs["executemany_mode"] = "values_plus_batch"
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20, **kwargs)


def configure(url: str) -> Engine:
    global engine, SessionLocal
    if engine is not None:
        engine.dispose()
    engine = make_engine(url)
    SessionLocal = sessionmaker(engine, expire_on_commit=False)
    return engine


@contextmanager
def transaction() -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    assert SessionLocal is not None, "database not configured"
    with SessionLocal() as s, s.begin():
        yield s


def commit_without_flush(s: Session) -> None:
    """This transaction's COMMIT returns without waiting for its WAL to reach the disk (PostgreSQL).

    `SET LOCAL synchronous_commit = off`: for this transaction only (it ends with the COMMIT or
    ROLLBACK, so a pooled connection never keeps it). The database stays consistent after a crash;
    only the last such commits (up to three times `wal_writer_delay`, 0.6 s by default) may be
    lost, and never one that a later durable commit followed, since the WAL is flushed in order.
    On SQLite nothing to do: WAL mode with `synchronous=NORMAL` never waits for the disk at commit.
    """
    if s.get_bind().dialect.name == "postgresql":
        s.execute(text("SET LOCAL synchronous_commit = off"))


@contextmanager
def reader() -> Iterator[Session]:
    assert SessionLocal is not None, "database not configured"
    with SessionLocal() as s:
        yield s
