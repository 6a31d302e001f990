"""After a secret poll, the database alone gives no way to link a voter to a choice."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import DateTime, inspect, select, text

from meeting_server.core import db
from tests.conftest import need
from tests.voting.conftest import ballot_id, close_poll, make_poll, open_poll, vote

HEX32 = re.compile(r"^[0-9a-f]{32}$")


def _run_secret_poll(hall) -> tuple[dict, list[dict]]:
    p = make_poll(hall.room, kind="motion", secret=True, allow_change=True)
    open_poll(hall.room, p["id"])
    acks = []
    for i, t in enumerate(hall.tablets):
        bid = ballot_id()
        acks.append(vote(t, p["id"], [i % 3], ballot_id=bid) | {"ballot_id": bid})
    # one voter changes their mind: the old ballot must go without a trace that joins it to them
    changed = vote(
        hall.tablets[1], p["id"], [0], ballot_id=ballot_id(), previous_ballot_id=acks[1]["ballot_id"]
    )
    assert changed["ok"]
    acks[1] = changed
    close_poll(hall.room, p["id"])
    return p, acks


def _all_values(s, skip: set[str]) -> list[tuple[str, str, object]]:
    out = []
    for table in db.Base.metadata.sorted_tables:
        if table.name in skip:
            continue
        for row in s.execute(select(table)).mappings():
            for col, value in row.items():
                out.append((table.name, col, value))
    return out


def test_database_cannot_link_voter_and_choice(hall):
    from meeting_server.core import audit
    from meeting_server.voting.models import Ballot, NamedVote, Participation

    p, acks = _run_secret_poll(hall)
    ballots_t = Ballot.__table__
    # 1. no column of the ballot table refers to a voter, a time or an order
    assert set(ballots_t.c.keys()) == {"key", "poll_id", "choices", "receipt"}
    assert [fk.column.table.name for fk in ballots_t.foreign_keys] == ["polls"]
    assert not any(isinstance(c.type, DateTime) for c in ballots_t.c)
    assert not ballots_t.c.key.autoincrement or ballots_t.c.key.type.python_type is str
    # and the participation table holds no choice and no receipt
    assert set(Participation.__table__.c.keys()) == {
        "id",
        "poll_id",
        "attendee_id",
        "voted_at",
        "ballot_tag",
        "changes",
    }
    with db.reader() as s:
        rows = s.execute(select(Ballot).where(Ballot.poll_id == p["id"])).scalars().all()
        parts = s.execute(select(Participation).where(Participation.poll_id == p["id"])).scalars().all()
        assert len(rows) == len(parts) == 5
        assert sorted(r.receipt for r in rows) == sorted(a["receipt"] for a in acks)
        assert all(HEX32.match(r.key) for r in rows)
        # 2. no hidden order: the table has no rowid, and its natural order is the random keys' order
        with pytest.raises(Exception, match="rowid"):
            s.execute(text("SELECT rowid FROM poll_ballots")).all()
        # (stored in the primary key's B-tree; the only secondary index orders by receipt, an HMAC)
        natural = [k for (k,) in s.execute(text("SELECT key FROM poll_ballots NOT INDEXED"))]
        assert len(natural) == 5 and natural == sorted(natural)
        # 3. the resend tags that could join a participation to a ballot (given the client's ballot_id) are gone
        assert all(x.ballot_tag is None for x in parts)
        assert s.scalar(select(NamedVote).where(NamedVote.poll_id == p["id"])) is None
        # 4. nothing of a ballot appears anywhere else: not its key, not its receipt, not in the audit log
        secrets_ = {r.key for r in rows} | {r.receipt for r in rows}
        for table, col, value in _all_values(s, {"poll_ballots"}):
            blob = str(value)
            assert not any(x in blob for x in secrets_), (table, col)
        votes = [e.data for e in audit.entries(s, hall.mid) if e.command == "vote"]
        votes += [v for e in audit.entries(s, hall.mid) if e.command == "vote.batch" for v in e.data["votes"]]
        assert len(votes) == 6  # five votes and one change, each naming only who voted in which poll
        assert all(set(v) <= {"poll_id", "changed", "attendee_id", "name"} for v in votes), votes
        # 5. the only column ballots and participations share is the poll
        shared = set(ballots_t.c.keys()) & set(Participation.__table__.c.keys())
        assert shared == {"poll_id"}


def test_ballot_keys_are_redrawn_at_close(hall):
    from meeting_server.voting.models import Ballot

    p = make_poll(hall.room, kind="motion", secret=True)
    open_poll(hall.room, p["id"])
    for t in hall.tablets:
        assert vote(t, p["id"], [0])["ok"]
    with db.reader() as s:
        before = set(s.scalars(select(Ballot.key).where(Ballot.poll_id == p["id"])))
    close_poll(hall.room, p["id"])
    with db.reader() as s:
        after = set(s.scalars(select(Ballot.key).where(Ballot.poll_id == p["id"])))
    assert len(after) == 5 and not before & after


def test_postgres_ballots_share_one_transaction_and_key_order(tmp_path):
    """PostgreSQL remembers each row's transaction (xmin) and place (ctid); the close rewrites both."""
    from tests.pg import pg_available, temp_database

    need(pg_available(), "PostgreSQL is not reachable at 127.0.0.1:5432 (set MEETING_TEST_PG)")
    from meeting_server import create_app
    from meeting_server.core.db import Base
    from tests.conftest import add_attendee, create_meeting, login, make_settings, make_user
    from tests.voting.conftest import Hall, tablet

    with temp_database() as url:
        app = create_app(make_settings(tmp_path, database_url=url))
        try:
            for (
                table
            ) in Base.metadata.sorted_tables:  # one by one: another domain's broken table must not stop us
                try:
                    table.create(db.engine, checkfirst=True)
                except Exception:
                    assert not table.name.startswith("poll"), table.name
            make_user(app, "pg-org")
            org = login(app.test_client(), "pg-org")
            m = create_meeting(org)
            from tests.conftest import Room

            room = Room(app, org, m, {})
            members = [add_attendee(org, m["id"], f"M{i}", seat=str(i)) for i in range(4)]
            hall = Hall(room, members, [tablet(room, a) for a in members])
            p = make_poll(room, kind="motion", secret=True)
            open_poll(room, p["id"])
            for t in hall.tablets:
                assert vote(t, p["id"], [0])["ok"]
            with db.reader() as s:
                xmins = {x for (x,) in s.execute(text("SELECT xmin::text FROM poll_ballots"))}
            assert len(xmins) == 4  # while open, each ballot still carries its own transaction
            close_poll(room, p["id"])
            with db.reader() as s:
                rows = s.execute(text("SELECT xmin::text, key FROM poll_ballots ORDER BY ctid")).all()
            assert len({x for x, _ in rows}) == 1
            assert [k for _, k in rows] == sorted(k for _, k in rows)
        finally:
            db.engine.dispose()


def test_inspector_sees_without_rowid(app):
    # the model asks SQLite for a WITHOUT ROWID table (an Alembic migration must keep it)
    from meeting_server.voting.models import Ballot

    assert Ballot.__table__.dialect_options["sqlite"]["with_rowid"] is False
    with db.engine.connect() as conn:
        sql = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = 'poll_ballots'").scalar()
    assert "WITHOUT ROWID" in sql
    assert "poll_ballots" in inspect(db.engine).get_table_names()
