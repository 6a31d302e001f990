"""Many seats of one meeting join at the same instant on PostgreSQL: no deadlock, one session each.

`POST /api/v1/join` used to insert the seat session first (a key-share lock on the meeting row,
through its foreign key) and lock the meeting row for the audit chain afterwards: two joins holding
the key-share lock then waited for each other's update lock, and PostgreSQL aborted one of them
(40P01), which the command pipeline ran again. Now `join` locks the meeting row first. This test
starts the app on a throwaway PostgreSQL database (no cluster needed) and joins SEATS seats from as
many threads released together: every join answers 200 on its first run (the pipeline's "running
it again" warning never appears), each gets its own session, and the audit chain has one entry
per join, chained without a gap.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import make_settings, need
from tests.pg import PG_ADMIN_URL, pg_available, temp_database

pytestmark = pytest.mark.integration

SEATS = 50


@pytest.fixture
def pg_app(tmp_path):
    need(pg_available(), "PostgreSQL is not reachable at " + PG_ADMIN_URL)
    from meeting_server import create_app
    from meeting_server.core import db
    from meeting_server.core.db import Base

    with temp_database() as url:
        app = create_app(make_settings(tmp_path, database_url=url))
        Base.metadata.create_all(db.engine)
        try:
            yield app
        finally:
            db.engine.dispose()


def _room(app) -> tuple[int, list[str]]:
    """A started meeting with SEATS attendees; returns its id and the join tokens."""
    from tests.conftest import login, make_user

    make_user(app, "join-org")
    org = login(app.test_client(), "join-org")
    mid = org.post("/api/v1/meetings", {"title": "并发入座 Concurrent joins"}).get_json()["id"]
    tokens = []
    for i in range(SEATS):
        r = org.post(f"/api/v1/meetings/{mid}/attendees", {"name": f"代表{i:03d}", "seat": f"{i:03d}"})
        assert r.status_code == 201, r.get_json()
        tokens.append(r.get_json()["join_token"])
    r = org.post(f"/api/v1/meetings/{mid}/start")
    assert r.status_code == 200, r.get_json()
    return mid, tokens


def test_concurrent_joins_do_not_deadlock(pg_app, caplog):
    from meeting_server.core import audit, chain, db

    mid, tokens = _room(pg_app)
    start = threading.Barrier(SEATS, timeout=30)

    def join(token: str):
        client = pg_app.test_client()
        start.wait()  # all at once
        r = client.post("/api/v1/join", json={"token": token, "device": "tablet"})
        return r.status_code, r.get_json()

    caplog.set_level(logging.WARNING, logger="meeting_server")
    with ThreadPoolExecutor(SEATS) as ex:
        answers = list(ex.map(join, tokens, timeout=120))

    assert [code for code, _ in answers] == [200] * SEATS, [a for a in answers if a[0] != 200][:3]
    assert len({body["session_token"] for _, body in answers}) == SEATS
    retried = [r.getMessage() for r in caplog.records if "running it again" in r.getMessage()]
    assert retried == [], retried  # a deadlock (40P01) would have been retried by the pipeline

    with db.reader() as s:
        from meeting_server.roster.models import SeatSession

        sessions = s.query(SeatSession).filter(SeatSession.meeting_id == mid).count()
        entries = [e.as_record() for e in audit.entries(s, mid)]
    assert sessions == SEATS
    assert sum(1 for e in entries if e["command"] == "join") == SEATS
    ok, _, why = chain.verify_chain(entries)
    assert ok, why
