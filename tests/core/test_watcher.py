"""The embedded progress watcher tells organizers what the worker did (read from the database)."""

from meeting_server.core import rooms
from meeting_server.core.db import utcnow
from meeting_server.live import watcher


def test_watcher_reports_each_change_once(room_with_doc):
    doc = room_with_doc.document
    sent = []

    def emit(event, data, to):
        sent.append((event, data["id"] if "id" in data else data["document_id"], to))

    seen: dict = {}
    since = watcher.poll_once(seen, utcnow().replace(year=2000), emit)
    mid = room_with_doc.meeting["id"]
    assert ("document", doc["id"], rooms.staff(mid)) in sent
    assert ("documents.changed", doc["id"], rooms.meeting(mid)) in sent
    sent.clear()
    watcher.poll_once(seen, since, emit)
    assert sent == []
