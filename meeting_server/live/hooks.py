"""What happens in the room when the meeting ends."""

from __future__ import annotations

from ..core.commands import Ctx


def on_meeting_end(ctx: Ctx) -> None:
    """Withdraw confidential materials from every tablet (the organizer keeps access); end the current speech."""
    from ..documents.service import list_documents, withdraw_document

    _end_speech(ctx)

    for d in list_documents(ctx.s, ctx.meeting.id):
        if d.confidential and d.withdrawn_at is None:
            # Each document's own audience is told: a seat outside it never learns its id.
            told = withdraw_document(ctx.s, d)
            ctx.emit("documents.withdrawn", {"document_ids": [d.id], "reason": "meeting_ended"}, to=told)


def _end_speech(ctx: Ctx) -> None:
    """A speech still running when the meeting ends ends with it (its end time is on record)."""
    from ..core import rooms
    from ..room import service

    r = service.current_speaker(ctx.s, ctx.meeting.id)
    if r is not None:
        service.end_speech(r)
        ctx.emit("speakers", service.bump_speakers(ctx.s, ctx.meeting.id), to=rooms.meeting(ctx.meeting.id))
