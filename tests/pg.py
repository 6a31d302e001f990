"""A throwaway PostgreSQL database per test (skipped, or failed under CI, when PostgreSQL is absent)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

PG_ADMIN_URL = os.environ.get("MEETING_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def pg_available() -> bool:
    try:
        import psycopg2

        psycopg2.connect(PG_ADMIN_URL, connect_timeout=3).close()
        return True
    except Exception:
        return False


@contextmanager
def temp_database() -> Iterator[str]:
    import psycopg2

    name = f"meeting_test_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(PG_ADMIN_URL)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        base = PG_ADMIN_URL.rsplit("/", 1)[0]
        yield f"{base}/{name}"
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(name="settings")
def postgres_settings(tmp_path):
    """The `settings` fixture on a throwaway PostgreSQL database: a test module that imports it
    (`from tests.pg import postgres_settings  # noqa: F401`) runs its `app` on PostgreSQL."""
    from tests.conftest import make_settings, need

    need(pg_available(), "PostgreSQL is not reachable at " + PG_ADMIN_URL)
    with temp_database() as url:
        yield make_settings(tmp_path, database_url=url)
