"""The Alembic migrations build exactly the schema of the models, on SQLite and PostgreSQL."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from meeting_server import models  # noqa: F401
from meeting_server.core import migrate
from meeting_server.core.db import Base
from tests.conftest import need
from tests.pg import pg_available, temp_database


def _diff(url: str) -> list:
    from meeting_server.config import normalize_db_url

    migrate.upgrade(url)
    engine = create_engine(normalize_db_url(url))
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            return compare_metadata(ctx, Base.metadata)
    finally:
        engine.dispose()


def test_sqlite_migrations_match_models(tmp_path):
    assert _diff(f"sqlite:///{tmp_path / 'm.sqlite'}") == []


def test_postgres_migrations_match_models():
    need(pg_available(), "PostgreSQL is not reachable at 127.0.0.1:5432 (set MEETING_TEST_PG)")
    with temp_database() as url:
        assert _diff(url) == []


def test_postgres_app_round_trip(tmp_path):
    need(pg_available(), "PostgreSQL is not reachable at 127.0.0.1:5432 (set MEETING_TEST_PG)")
    from meeting_server import create_app
    from tests.conftest import Api, add_attendee, create_meeting, login, make_pdf, make_settings, make_user

    with temp_database() as url:
        migrate.upgrade(url)
        app = create_app(make_settings(tmp_path, database_url=url))
        try:
            make_user(app, "pg-org")
            org = login(app.test_client(), "pg-org")
            m = create_meeting(org, title="数据库 PostgreSQL")
            a = add_attendee(org, m["id"], "张伟", seat="1")
            r = org.upload(f"/api/v1/meetings/{m['id']}/documents", make_pdf(2), "x.pdf")
            assert r.status_code == 202
            assert org.get(f"/api/v1/documents/{r.get_json()['id']}").get_json()["status"] == "ready"
            joined = app.test_client().post("/api/v1/join", json={"token": a["join_token"]}).get_json()
            seat = Api(app.test_client(), joined["session_token"])
            assert seat.get(f"/api/v1/meetings/{m['id']}/agenda").status_code == 200
        finally:
            from meeting_server.core import db

            db.engine.dispose()
