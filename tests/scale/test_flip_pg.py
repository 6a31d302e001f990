"""The page flip's path through the command pipeline on PostgreSQL: what it sends to the database.

A flip is serialized by the meeting row lock, and each round trip it makes while holding that lock
holds up the next flip (on a loaded machine each one costs a scheduling delay of the database
process and then of ours). These tests record the statements of `present` on a throwaway
PostgreSQL database and check the pipeline's part of them:

- a command declared `durable=False` runs `SET LOCAL synchronous_commit = off` before the meeting
  row is locked, and only for its own transaction (the next transaction on the pooled connection
  is durable again); a durable command never sends it;
- the actor's session (or login token) and its seat (or user account) are read in one statement,
  after the meeting row is locked (so a revocation committed while the command waited is seen);
- the result is what a durable flip leaves: the meeting's page, an audit entry, a whole chain.
"""

from __future__ import annotations

import dataclasses
import re

import pytest
from sqlalchemy import event, text

from tests.conftest import add_attendee, create_meeting, make_pdf
from tests.pg import postgres_settings  # noqa: F401  (the app on a throwaway PostgreSQL database)

pytestmark = pytest.mark.integration


@pytest.fixture
def flip_room(app, organizer):
    """A started meeting with a presenter seat and a ready 5-page document, on PostgreSQL."""
    m = create_meeting(organizer)
    seat = add_attendee(organizer, m["id"], "主讲 Presenter", "presenter", "P1")
    r = organizer.upload(f"/api/v1/meetings/{m['id']}/documents", make_pdf(5), "deck.pdf", title="Deck")
    assert r.status_code == 202, r.get_json()
    doc = organizer.get(f"/api/v1/documents/{r.get_json()['id']}").get_json()
    assert doc["status"] == "ready", doc
    assert organizer.post(f"/api/v1/meetings/{m['id']}/start").status_code == 200
    joined = app.test_client().post("/api/v1/join", json={"token": seat["join_token"]})
    assert joined.status_code == 200, joined.get_json()
    return {
        "meeting_id": m["id"],
        "document_id": doc["id"],
        "org_auth": {"token": organizer.token, "meeting_id": m["id"]},
        "seat_auth": {"token": joined.get_json()["session_token"]},
    }


class Statements:
    """Every statement sent on the engine while recording (psycopg2's implicit BEGIN is not one)."""

    def __init__(self, engine):
        self.engine = engine
        self.all: list[str] = []

    def _record(self, conn, cursor, statement, parameters, context, executemany):
        self.all.append(" ".join(statement.split()))

    def __enter__(self) -> Statements:
        event.listen(self.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *exc) -> None:
        event.remove(self.engine, "before_cursor_execute", self._record)

    def index(self, pattern: str) -> int:
        hits = [i for i, s in enumerate(self.all) if re.search(pattern, s)]
        assert len(hits) == 1, f"{pattern!r} sent {len(hits)} times in {self.all}"
        return hits[0]


def _flip(cmd, actor, room, page: int) -> dict:
    from meeting_server.core.commands import execute

    return execute(cmd, actor, {"document_id": room["document_id"], "page": page}, {})


@pytest.mark.parametrize("who", ["organizer", "seat"])
def test_a_non_durable_flip_relaxes_only_its_own_commit(app, flip_room, who):
    from meeting_server.core import audit, chain, db
    from meeting_server.core.commands import registry
    from meeting_server.core.sockets import authenticate
    from meeting_server.meetings.models import Meeting

    actor = authenticate(flip_room["org_auth" if who == "organizer" else "seat_auth"])
    cmd = dataclasses.replace(registry.get("present"), durable=False)
    with Statements(db.engine) as st:
        out = _flip(cmd, actor, flip_room, 3)
    relax = st.index(r"^SET LOCAL synchronous_commit = off$")
    lock = st.index(r"^SELECT meetings\..* FOR UPDATE$")
    assert relax < lock, st.all  # outside the lock
    if who == "organizer":
        both = st.index(r"^SELECT api_tokens\..*, users\..* FROM api_tokens JOIN users ON users\.id = ")
        assert not [s for s in st.all if re.match(r"^SELECT users\.", s)], st.all  # not read again
    else:
        both = st.index(r"^SELECT seat_sessions\..*, attendees\..* FROM seat_sessions JOIN attendees ON ")
        alone = [s for s in st.all if re.match(r"^SELECT seat_sessions\..* FROM seat_sessions WHERE", s)]
        assert not alone, st.all  # not read again on its own
    assert lock < both, st.all  # read after the lock: a revocation committed meanwhile is seen

    # SET LOCAL ended with the commit: every pooled connection is durable again.
    for _ in range(3):
        with db.reader() as s:
            assert s.execute(text("SHOW synchronous_commit")).scalar() == "on"
    with db.reader() as s:
        m = s.get(Meeting, flip_room["meeting_id"])
        assert (m.current_document_id, m.current_page, m.page_seq) == (
            flip_room["document_id"],
            3,
            out["seq"],
        )
        records = [e.as_record() for e in audit.entries(s, m.id)]
    assert records[-1]["command"] == "present" and records[-1]["data"]["page"] == 3
    ok, _, why = chain.verify_chain(records)
    assert ok, why


def test_a_durable_command_sends_no_set(app, flip_room):
    from meeting_server.core import db
    from meeting_server.core.commands import registry
    from meeting_server.core.sockets import authenticate

    cmd = dataclasses.replace(registry.get("present"), durable=True)
    with Statements(db.engine) as st:
        _flip(cmd, authenticate(flip_room["seat_auth"]), flip_room, 2)
    assert not [s for s in st.all if "synchronous_commit" in s], st.all
    st.index(r"^SELECT meetings\..* FOR UPDATE$")


def test_a_revoked_seat_is_refused_in_one_read(app, organizer, flip_room):
    """The joined read still tells a revoked session apart (and a flip from it changes nothing)."""
    from meeting_server.core import db
    from meeting_server.core.commands import registry
    from meeting_server.core.errors import Unauthorized
    from meeting_server.core.sockets import authenticate
    from meeting_server.meetings.models import Meeting
    from meeting_server.roster.models import SeatSession

    actor = authenticate(flip_room["seat_auth"])
    with db.transaction() as s:
        s.get(SeatSession, actor.session_id).revoked_at = db.utcnow()
    cmd = dataclasses.replace(registry.get("present"), durable=False)
    with pytest.raises(Unauthorized, match="session has ended"):
        _flip(cmd, actor, flip_room, 4)
    with db.reader() as s:
        assert s.get(Meeting, flip_room["meeting_id"]).current_page != 4


def test_many_row_updates_go_in_pages(app, flip_room, monkeypatch):
    """An UPDATE with many parameter sets (the presence loop's last-seen flush) is sent 100 rows a round trip."""
    import datetime as dt

    from sqlalchemy import bindparam

    from meeting_server.core import db
    from meeting_server.core.sockets import authenticate
    from meeting_server.roster.models import SeatSession

    extras = db.engine.dialect._psycopg2_extras
    real = extras.execute_batch
    pages: list[int] = []

    def counting(cursor, sql, argslist, page_size=100):
        argslist = list(argslist)
        pages.extend(min(page_size, len(argslist) - i) for i in range(0, len(argslist), page_size))
        return real(cursor, sql, argslist, page_size=page_size)

    monkeypatch.setattr(extras, "execute_batch", counting)
    sid = authenticate(flip_room["seat_auth"]).session_id
    seen = dt.datetime(2031, 5, 6, 7, 8, 9, tzinfo=dt.UTC)
    rows = [{"sid_": 10_000_000 + k, "seen": seen} for k in range(249)] + [{"sid_": sid, "seen": seen}]
    table = SeatSession.__table__
    stmt = table.update().where(table.c.id == bindparam("sid_")).values(last_seen_at=bindparam("seen"))
    with db.transaction() as s:
        s.connection().execute(stmt, rows)
    assert pages == [100, 100, 50]
    with db.reader() as s:
        assert s.get(SeatSession, sid).last_seen_at == seen
