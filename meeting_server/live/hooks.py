"""What happens in the room when the meeting ends."""

from __future__ import annotations

from ..core.commands import Ctx


def on_meeting_end(ctx: Ctx) -> None:
    """Withdraw confidential materials from every tablet (the organizer keeps access)."""
    from ..documents.service import list_documents, withdraw_document

    for d in list_documents(ctx.s, ctx.meeting.id):
        if d.confidential and d.withdrawn_at is None:
            # Each document's own audience is told: a seat outside it never learns its id.
            told = withdraw_document(ctx.s, d)
            ctx.emit("documents.withdrawn", {"document_ids": [d.id], "reason": "meeting_ended"}, to=told)
