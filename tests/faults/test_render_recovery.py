"""A render job lost with its worker (SIGKILL, OOM, power) is rendered again, at once when its holder is surely dead.

`documents.jobs` keeps a lease on each render: `render_claim` names the holder (machine and boot, pid and
process start time, version, attempt) and `render_heartbeat` says when it last showed life. A new job takes
the lease when nobody holds it, when the holder's process is gone on this machine (at once), or when the
heartbeat is older than LEASE (a holder on another machine). A job refused by a holder that may be alive
looks again when that lease would run out. After MAX_ATTEMPTS interrupted renders the version fails
visibly. At start (and whenever the consumer replaces a dead worker process) the worker re-queues what a
dead holder left (`requeue_stale`). These tests put a document in the state a killed job leaves behind.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import pytest

from tests.conftest import make_pdf, make_settings


@pytest.fixture
def settings(tmp_path):
    # A file database: requeue_stale opens its own engine, as a worker process does.
    return make_settings(tmp_path, database_url=f"sqlite:///{tmp_path / 'db.sqlite'}")


@pytest.fixture
def dead_pid():
    """The pid of a process that has ended (and was reaped) on this machine."""
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait(30)
    return p.pid


@pytest.fixture
def live_pid():
    """A process that runs for the whole test (stopped by pid in teardown)."""
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield p.pid
    finally:
        p.kill()
        p.wait(10)


def _killed_mid_render(room, claim: str | None, heartbeat_age: dt.timedelta) -> int:
    """Upload a 4-page PDF and leave it as a worker killed after page 2 leaves it, held by `claim`."""
    from sqlalchemy import delete

    from meeting_server.core import db
    from meeting_server.core.db import utcnow
    from meeting_server.documents.models import Document, DocumentPage

    r = room.org.upload(f"/api/v1/meetings/{room.meeting['id']}/documents", make_pdf(4), "a.pdf")
    doc_id = r.get_json()["id"]
    with db.transaction() as s:
        d = s.get(Document, doc_id)
        s.execute(delete(DocumentPage).where(DocumentPage.document_id == doc_id, DocumentPage.n > 2))
        d.status, d.pages_done = "processing", 2
        d.render_claim, d.render_heartbeat = claim, utcnow() - heartbeat_age
    return doc_id


def _claim_of(doc_id: int) -> tuple[str | None, str]:
    from meeting_server.core import db
    from meeting_server.documents.models import Document

    with db.reader() as s:
        d = s.get(Document, doc_id)
        return d.render_claim, d.status


def _restart_worker(settings, **kw) -> int:
    from meeting_server.core import db
    from meeting_server.documents import jobs

    n = jobs.requeue_stale(settings, **kw)
    db.configure(settings.database_url)
    return n


def _version(room, doc_id: int) -> int:
    return room.org.get(f"/api/v1/documents/{doc_id}").get_json()["version"]


def _assert_ready(room, doc_id: int) -> None:
    doc = room.org.get(f"/api/v1/documents/{doc_id}").get_json()
    assert doc["status"] == "ready" and doc["page_count"] == 4 and len(doc["pages"]) == 4, doc
    for n in range(1, 5):
        assert room.org.get(f"/api/v1/documents/{doc_id}/pages/{n}").status_code == 200


def test_holder_names_fit_the_column_and_parse_back():
    from meeting_server.documents import jobs

    for version, attempt, pid in ((1, 1, None), (0xFFFF, 15, 4_194_304), (12345678, 255, 1)):
        name = jobs.holder(version, attempt, pid)
        assert len(name) <= 40, name
        h = jobs.parse_holder(name)
        assert h is not None and h["version"] == version and h["attempt"] == attempt
        assert h["pid"] == (pid or os.getpid())
    assert jobs.holder_state(jobs.holder(1, 1)) == "self"
    assert jobs.parse_holder("0123456789abcdef0123456789abcdef") is None  # an older server's job id
    assert jobs.holder_state("killed-job") == "unknown"


def test_restart_after_the_lease_renders_again(room, settings):
    doc_id = _killed_mid_render(room, "killed-job", heartbeat_age=dt.timedelta(minutes=5))
    assert _restart_worker(settings) == 1
    _assert_ready(room, doc_id)


def test_immediate_restart_renders_again(room, settings, dead_pid):
    """The holder's process is gone: its fresh lease is taken at once, not after LEASE."""
    from meeting_server.documents import jobs

    doc_id = _killed_mid_render(room, None, heartbeat_age=dt.timedelta(seconds=3))
    version = _version(room, doc_id)
    killed = jobs.holder(version, 1, dead_pid)
    _set_claim(doc_id, killed)
    assert jobs.holder_state(killed) == "dead"
    assert _restart_worker(settings) == 1
    _assert_ready(room, doc_id)


def test_a_dead_holder_is_requeued_when_the_consumer_replaces_a_worker(room, settings, dead_pid, live_pid):
    """`requeue_stale(dead_only=True)` (after Huey replaced a dead worker process) takes only the dead holders'."""
    from meeting_server.documents import jobs

    dead_doc = _killed_mid_render(room, None, heartbeat_age=dt.timedelta(seconds=1))
    _set_claim(dead_doc, jobs.holder(_version(room, dead_doc), 1, dead_pid))
    live_doc = _killed_mid_render(room, None, heartbeat_age=dt.timedelta(seconds=1))
    live_claim = jobs.holder(_version(room, live_doc), 1, live_pid)
    _set_claim(live_doc, live_claim)
    assert _restart_worker(settings, dead_only=True) == 1
    _assert_ready(room, dead_doc)
    assert _claim_of(live_doc) == (live_claim, "processing")  # a live holder keeps its lease


def test_a_live_holder_keeps_its_lease_and_is_checked_again(room, settings, live_pid):
    """A job refused by a holder that may be alive is scheduled again for when the lease would run out."""
    from meeting_server.core import tasks
    from meeting_server.documents import jobs

    doc_id = _killed_mid_render(room, None, heartbeat_age=dt.timedelta(seconds=10))
    version = _version(room, doc_id)
    live_claim = jobs.holder(version, 1, live_pid)
    _set_claim(doc_id, live_claim)
    before = len(tasks.huey.scheduled())
    jobs.render_document(doc_id, version)
    assert _claim_of(doc_id) == (live_claim, "processing")
    scheduled = tasks.huey.scheduled()
    assert len(scheduled) == before + 1 and scheduled[-1].args == (doc_id, version)
    wait = (
        scheduled[-1].eta - dt.datetime.now(dt.UTC).replace(tzinfo=None)
    ).total_seconds()  # Huey: naive UTC
    assert 40 < wait <= 52, wait  # the 60 s lease minus the 10 s since the heartbeat, plus 1 s
    # Past its lease but still running here (a long conversion shows no heartbeat): not taken either,
    # neither by a job nor at a worker start; looked at again a whole lease later.
    _age_heartbeat(doc_id, dt.timedelta(minutes=5))
    jobs.render_document(doc_id, version)
    assert _claim_of(doc_id) == (live_claim, "processing")
    assert _restart_worker(settings) == 0
    scheduled = tasks.huey.scheduled()
    wait = (scheduled[-1].eta - dt.datetime.now(dt.UTC).replace(tzinfo=None)).total_seconds()
    assert len(scheduled) == before + 2 and 50 < wait <= 60, wait


def test_a_holder_on_another_machine_is_judged_by_its_heartbeat(room, settings):
    from meeting_server.documents import jobs

    doc_id = _killed_mid_render(room, None, heartbeat_age=dt.timedelta(seconds=5))
    version = _version(room, doc_id)
    remote = "fffff0" + jobs.holder(version, 1)[6:]  # same fields, another machine (or boot)
    if remote[:6] == jobs.holder(version, 1)[:6]:
        remote = "00000f" + remote[6:]
    _set_claim(doc_id, remote)
    assert jobs.holder_state(remote) == "unknown"
    assert _restart_worker(settings) == 0  # fresh: it may be rendering over there
    _age_heartbeat(doc_id, dt.timedelta(seconds=61))
    assert _restart_worker(settings) == 1
    _assert_ready(room, doc_id)


def test_an_older_versions_job_does_not_block_the_new_version(room, settings, live_pid):
    from meeting_server.documents import jobs

    doc_id = _killed_mid_render(room, None, heartbeat_age=dt.timedelta(seconds=1))
    version = _version(room, doc_id)
    _set_claim(doc_id, jobs.holder(version - 1 if version > 1 else version + 1, 1, live_pid))
    jobs.render_document(doc_id, version)
    _assert_ready(room, doc_id)


def test_a_render_interrupted_too_often_fails_visibly(room, settings, dead_pid):
    """A file that kills its worker every time (OOM) fails with a reason after MAX_ATTEMPTS, never loops."""
    from meeting_server.documents import jobs

    doc_id = _killed_mid_render(room, None, heartbeat_age=dt.timedelta(seconds=2))
    version = _version(room, doc_id)
    _set_claim(doc_id, jobs.holder(version, jobs.MAX_ATTEMPTS - 1, dead_pid))
    assert _restart_worker(settings) == 1  # attempt MAX_ATTEMPTS: rendered
    _assert_ready(room, doc_id)
    doc_id = _killed_mid_render(room, None, heartbeat_age=dt.timedelta(seconds=2))
    version = _version(room, doc_id)
    _set_claim(doc_id, jobs.holder(version, jobs.MAX_ATTEMPTS, dead_pid))
    assert _restart_worker(settings) == 1
    doc = room.org.get(f"/api/v1/documents/{doc_id}").get_json()
    assert doc["status"] == "failed" and "interrupted" in doc["error"], doc
    assert _claim_of(doc_id) == (None, "failed")


def _set_claim(doc_id: int, claim: str) -> None:
    from meeting_server.core import db
    from meeting_server.documents.models import Document

    with db.transaction() as s:
        s.get(Document, doc_id).render_claim = claim


def _age_heartbeat(doc_id: int, age: dt.timedelta) -> None:
    from meeting_server.core import db
    from meeting_server.core.db import utcnow
    from meeting_server.documents.models import Document

    with db.transaction() as s:
        s.get(Document, doc_id).render_heartbeat = utcnow() - age
