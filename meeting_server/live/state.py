"""The `state` snapshot a client gets on connect: enough to draw the whole screen."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..core.db import iso, utcnow
from ..core.identity import Actor

#: Other domains add parts of the snapshot, by name: fn(session, meeting, actor, attendee) -> dict.
contributors: dict[str, Callable[..., dict[str, Any]]] = {}


def attendance(s: Session, meeting: Any) -> dict[str, Any]:
    """`{"present", "expected", "quorum"?, "seq"}` (kept here for callers of the first version)."""
    from ..attendance.service import counts

    return counts(s, meeting)


def current(meeting: Any) -> dict[str, Any]:
    return {
        "document_id": meeting.current_document_id,
        "page": meeting.current_page,
        "seq": meeting.page_seq,
        "agenda_item_id": meeting.current_agenda_item_id,
        "view": meeting.current_view,
        "follow_lock": meeting.follow_lock,
    }


def seats(s: Session, meeting: Any) -> list[dict[str, Any]]:
    """Every seat of the meeting with presence (memory), attendance and last seen (database)."""
    from ..attendance.service import flags
    from ..roster.models import SeatSession
    from ..roster.service import list_attendees
    from . import presence

    live = presence.current.snapshot(meeting.id)
    q = (
        select(SeatSession.attendee_id, func.max(SeatSession.last_seen_at))
        .where(SeatSession.meeting_id == meeting.id)
        .group_by(SeatSession.attendee_id)
    )
    seen_db = {aid: t for aid, t in s.execute(q)}
    att_flags = flags(s, meeting)
    out = []
    for a in list_attendees(s, meeting.id):
        p = live.get(a.id) or {}
        last_seen = p.get("last_seen") or iso(seen_db.get(a.id))
        out.append(
            {
                "attendee_id": a.id,
                "name": a.name,
                "seat": a.seat,
                "role": a.role,
                "online": bool(p.get("online")),
                "devices": p.get("devices") or 0,
                "following": p.get("following"),
                "document_id": p.get("document_id"),
                "page": p.get("page"),
                "battery": p.get("battery"),
                "charging": p.get("charging"),
                "last_seen": last_seen,
                "checked_in": a.present,
                **att_flags.get(a.id, {"late": False, "left_early": False}),
            }
        )
    return out


def _frozen_key(value: Any) -> Any:
    """A hashable stand-in for a bound value (lists and sets from IN clauses); TypeError if none."""
    if isinstance(value, list | tuple):
        return tuple(_frozen_key(v) for v in value)
    if isinstance(value, set | frozenset):
        return frozenset(_frozen_key(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _frozen_key(v)) for k, v in value.items()))
    hash(value)
    return value


def share_reads(s: Session) -> dict[Any, Any]:
    """Within this read-only session, run each SELECT (same SQL, same bound values) once.

    For the connect batcher's round: the parts other domains contribute to every seat's snapshot
    ask the same questions for every seat of a meeting (the speakers' queue, the open poll, the
    latest result, the room state); per-seat questions carry the seat's id as a bound value and
    stay per seat. The round's session begins after every connection in it joined its rooms, so a
    shared answer is as fresh for each of them as its own query would have been (the rooms-first
    rule of `on_connect`). Only for a session that writes nothing. Returns the memo of the
    statements asked more than once (the first time a statement runs as usual; the second time its
    result is kept for the rest of the round).
    """
    from sqlalchemy import event

    memo: dict[Any, Any] = {}
    seen: set[Any] = set()

    def on_execute(state: Any) -> Any:
        if not state.is_select:
            return None
        ck = state.statement._generate_cache_key()
        if ck is None:
            return None
        try:
            key = (
                ck.key,
                _frozen_key([b.effective_value for b in ck.bindparams]),
                _frozen_key(state.parameters or {}),
                _frozen_key(dict(state.local_execution_options)),
            )
        except TypeError:  # a value that cannot be compared safely: run it
            return None
        frozen = memo.get(key)
        if frozen is None:
            # Freezing a result costs about as much as reading it: only a statement asked a second
            # time is kept (most per-seat statements are asked once a round).
            if key not in seen:
                seen.add(key)
                return None
            frozen = memo[key] = state.invoke_statement().freeze()
        return frozen()

    event.listen(s, "do_orm_execute", on_execute)
    return memo


def prefetch(s: Session, actors: list[Actor], memo: dict[str, Any]) -> None:
    """Load the attendee rows of a round's seats with one query (`build` then finds them in the
    session's identity map instead of one query a seat)."""
    from ..roster.models import Attendee

    ids = [a.id for a in actors if a.is_seat]
    if ids:
        s.scalars(select(Attendee).where(Attendee.id.in_(ids))).all()


def build(s: Session, meeting: Any, actor: Actor, memo: dict[str, Any] | None = None) -> dict[str, Any]:
    """The snapshot for `actor`. `memo`: a dict shared by the builds of one read transaction (the
    connect batcher's round): what is the same for every client (the documents, the attendance counts,
    the agenda for one set of visible documents) is read once per round."""
    from ..agenda.service import agenda_json
    from ..attendance.service import me_part
    from ..documents.service import document_json, list_documents, visible_to
    from ..roster.models import Attendee
    from ..voting.service import open_poll_json

    memo = {} if memo is None else memo
    attendee = s.get(Attendee, actor.id) if actor.is_seat else None
    if "documents" not in memo:
        memo["documents"] = list_documents(s, meeting.id)
    docs = [d for d in memo["documents"] if visible_to(d, attendee)]
    visible = {d.id for d in docs}
    agenda_key = ("agenda", frozenset(visible))
    if agenda_key not in memo:
        memo[agenda_key] = agenda_json(s, meeting.id, visible_docs=visible)
    if "attendance" not in memo:
        memo["attendance"] = attendance(s, meeting)
    if "poll" not in memo:  # the open poll as everyone sees it (no per-seat part: that is `my_vote`)
        memo["poll"] = open_poll_json(s, meeting.id)
    cur = current(meeting)
    if cur["document_id"] is not None and cur["document_id"] not in visible:
        cur = {**cur, "document_id": None, "page": None, "view": None}
    if attendee is not None:
        me = {
            "attendee_id": attendee.id,
            "name": attendee.name,
            "seat": attendee.seat,
            "role": attendee.role,
            "organization": attendee.organization,
            **me_part(s, meeting, attendee),
        }
    else:
        me = {
            "attendee_id": None,
            "user_id": actor.id,
            "name": actor.name,
            "role": "organizer",
            "checked_in": False,
        }
    out = {
        "meeting": {
            "id": meeting.id,
            "title": meeting.title,
            "status": meeting.status,
            "location": meeting.location,
            "starts_at": iso(meeting.starts_at),
            "started_at": iso(meeting.started_at),
            "language": meeting.language,
        },
        "current": cur,
        "poll": copy.deepcopy(memo["poll"]),
        "attendance": copy.deepcopy(memo["attendance"]),
        "me": me,
        "agenda": copy.deepcopy(memo[agenda_key]),
        "documents": [document_json(d) for d in docs],
        "server_time": iso(utcnow()),
    }
    for fn in contributors.values():
        out.update(fn(s, meeting, actor, attendee))
    return out
