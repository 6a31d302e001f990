"""What happens in the room when the meeting ends."""

from __future__ import annotations

from ..core import rooms
from ..core.commands import Ctx
from ..core.db import utcnow


def on_meeting_end(ctx: Ctx) -> None:
    """Withdraw confidential materials from every tablet (the organizer keeps access)."""
    from ..documents.service import list_documents

    withdrawn = []
    for d in list_documents(ctx.s, ctx.meeting.id):
        if d.confidential and d.withdrawn_at is None:
            d.withdrawn_at = utcnow()
            withdrawn.append(d.id)
    if withdrawn:
        ctx.emit("documents.withdrawn", {"document_ids": withdrawn, "reason": "meeting_ended"}, to=rooms.meeting(ctx.meeting.id))
