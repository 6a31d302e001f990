"""Polls: their public view, casting ballots, closing and counting.

Domain functions here change data and flush; they never commit or emit (the
command pipeline, the vote batcher and the countdown timer do that).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from ..core.db import iso, utcnow
from ..core.errors import AppError, Conflict, Invalid
from ..core.identity import VOTING_ROLES
from . import counting
from .models import Ballot, NamedVote, Participation, Poll

# -- keys, receipts and tags ---------------------------------------------------------------

_B32_BACK = {c: i for i, c in enumerate("0123456789ABCDEFGHJKMNPQRSTVWXYZ")}


def voting_key(secret_key: str) -> bytes:
    """The server's voting key, derived from MEETING_SECRET_KEY (never stored in the database)."""
    return hmac.new(secret_key.encode(), b"meeting-server voting v1", hashlib.sha256).digest()


def current_key() -> bytes:
    from flask import current_app

    return voting_key(current_app.config["SECRET_KEY"])


def _mac(key: bytes, label: str, poll_id: int, ballot_id: str) -> bytes:
    msg = f"{label}\x00{poll_id}\x00{ballot_id}".encode()
    return hmac.digest(key, msg, "sha256")  # one-shot C path (hmac.new builds two hash objects in Python)


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def receipt_for(key: bytes, poll_id: int, ballot_id: str) -> str:
    """The receipt of a ballot: 80 bits, Crockford base32, `XXXX-XXXX-XXXX-XXXX`.

    (The same characters as `base64.b32encode(mac[:10])` translated to Crockford's alphabet, without
    the pure-Python base32 encoder: 80 bits are exactly 16 five-bit groups.)
    """
    n = int.from_bytes(_mac(key, "receipt", poll_id, ballot_id)[:10], "big")
    raw = "".join([_CROCKFORD[(n >> s) & 31] for s in range(75, -1, -5)])
    return f"{raw[0:4]}-{raw[4:8]}-{raw[8:12]}-{raw[12:16]}"


def tag_for(key: bytes, poll_id: int, ballot_id: str) -> str:
    """What a participation keeps to recognise a resend: unrelated to the receipt without ballot_id."""
    return _mac(key, "tag", poll_id, ballot_id)[:16].hex()


def normalize_receipt(code: str) -> str | None:
    """Accept lower case, spaces, no dashes, and the look-alikes O/I/L; None if it cannot be a receipt."""
    raw = "".join(ch for ch in code.upper() if ch not in "- ").translate(str.maketrans("OIL", "011"))
    if len(raw) != 16 or any(ch not in _B32_BACK for ch in raw):
        return None
    return "-".join(raw[i : i + 4] for i in range(0, 16, 4))


# -- reading -------------------------------------------------------------------------------


def list_polls(s: Session, meeting_id: int) -> list[Poll]:
    return list(s.scalars(select(Poll).where(Poll.meeting_id == meeting_id).order_by(Poll.id)))


def _voting_members(meeting_id: int):
    from ..roster.models import Attendee

    return (
        Attendee.meeting_id == meeting_id,
        Attendee.deleted.is_(False),
        Attendee.role.in_(sorted(VOTING_ROLES)),
    )


def _present(s: Session, p: Poll) -> tuple[int, float]:
    """(how many, total weight): voting members checked in now, plus anyone who already voted.

    Someone who voted and then left still counts as present for this poll. Two
    indexed queries (an OR over both sets would scan every attendee).
    """
    from ..roster.models import Attendee

    here = (
        (Attendee.deleted.is_(False)) & Attendee.role.in_(sorted(VOTING_ROLES)) & Attendee.present.is_(True)
    )
    n1, w1 = s.execute(
        select(func.count(), func.coalesce(func.sum(Attendee.vote_weight), 0)).where(
            Attendee.meeting_id == p.meeting_id, here
        )
    ).one()
    n2, w2 = s.execute(
        select(func.count(), func.coalesce(func.sum(Attendee.vote_weight), 0))
        .select_from(Participation)
        .join(Attendee, Attendee.id == Participation.attendee_id)
        .where(Participation.poll_id == p.id, ~here)
    ).one()
    return n1 + n2, float(w1 or 0) + float(w2 or 0)


def _voted(s: Session, p: Poll) -> int:
    return s.scalar(select(func.count()).select_from(Participation).where(Participation.poll_id == p.id)) or 0


def counts(s: Session, p: Poll) -> dict[str, Any]:
    """`voted` and `eligible` (voting members present, or who voted), live while open, frozen at close."""
    if p.status == "closed" and p.snapshot:
        return {"voted": p.snapshot["voted"], "eligible": p.snapshot["present"]}
    return {"voted": _voted(s, p), "eligible": _present(s, p)[0]}


def take_snapshot(s: Session, p: Poll, now: dt.datetime) -> dict[str, Any]:
    from ..roster.models import Attendee

    members = s.execute(
        select(func.count(), func.coalesce(func.sum(Attendee.vote_weight), 0)).where(
            *_voting_members(p.meeting_id)
        )
    ).one()
    present, present_weight = _present(s, p)
    snap: dict[str, Any] = {"at": iso(now), "members": members[0], "present": present, "voted": _voted(s, p)}
    if p.weighted:
        snap["members_weight"] = float(members[1])
        snap["present_weight"] = present_weight
        snap["voted_weight"] = float(
            s.scalar(select(func.coalesce(func.sum(NamedVote.weight), 0)).where(NamedVote.poll_id == p.id))
            or 0
        )
    return snap


def is_expired(p: Poll, now: dt.datetime | None = None) -> bool:
    return p.status == "open" and p.closes_at is not None and (now or utcnow()) >= p.closes_at


def poll_json(p: Poll, *, s: Session | None = None, reveal: bool = False) -> dict[str, Any]:
    """A poll as clients see it; the tally only once closed, and for tablets only once published."""
    out: dict[str, Any] = {
        "id": p.id,
        "meeting_id": p.meeting_id,
        "agenda_item_id": p.agenda_item_id,
        "title": p.title,
        "kind": p.kind,
        "options": p.options,
        "secret": p.secret,
        "max_choices": p.max_choices,
        "min_choices": p.min_choices,
        "seats": p.seats,
        "scale": (
            {"min": p.scale_min, "max": p.scale_max, "drop_extremes": p.drop_extremes}
            if p.kind == "rating"
            else None
        ),
        "abstain_option": p.abstain_option,
        "allow_change": p.allow_change,
        "weighted": p.weighted,
        "publish_on_close": p.publish_on_close,
        "rule": p.rule,
        "status": p.status,
        "round": p.round,
        "previous_id": p.previous_id,
        "duration_s": p.duration_s,
        "closes_at": iso(p.closes_at),
        "published": p.published_at is not None,
        "created_at": iso(p.created_at),
        "opened_at": iso(p.opened_at),
        "closed_at": iso(p.closed_at),
        "published_at": iso(p.published_at),
        "cancelled_at": iso(p.cancelled_at),
        "cancel_reason": p.cancel_reason,
        "voted": 0,
        "eligible": 0,
    }
    if p.status == "open" and p.closes_at is not None:
        out["closes_in_s"] = max(0.0, round((p.closes_at - utcnow()).total_seconds(), 1))
    if p.status == "closed" and p.snapshot:
        out.update(voted=p.snapshot["voted"], eligible=p.snapshot["present"])
    elif s is not None and p.status != "draft":
        out.update(counts(s, p))
    if p.status == "closed" and p.result is not None and (reveal or p.published_at is not None):
        out["tally"] = p.result["tally"]
        out["result"] = result_payload(p)
    return out


def result_payload(p: Poll) -> dict[str, Any]:
    """The `poll.result` event and the `result` of a revealed poll."""
    r = dict(p.result or {})
    return {
        "id": p.id,
        "title": p.title,
        "kind": p.kind,
        "round": p.round,
        "options": p.options,
        "secret": p.secret,
        "published": p.published_at is not None,
        "closed_at": iso(p.closed_at),
        **r,
    }


def open_poll(s: Session, meeting_id: int) -> Poll | None:
    return s.scalar(
        select(Poll).where(Poll.meeting_id == meeting_id, Poll.status == "open").order_by(Poll.id.desc())
    )


def open_poll_json(s: Session, meeting_id: int, attendee=None, actor=None) -> dict[str, Any] | None:
    p = open_poll(s, meeting_id)
    if p is None:
        return None
    if is_expired(p):  # a restart or a lost timer: close it now (after this read)
        from . import timers

        timers.close_soon(p.id)
    return poll_json(p, s=s)


def my_vote(s: Session, p: Poll, attendee: Any) -> dict[str, Any]:
    """This seat's own status in `p`: voted?, the receipt (named polls only: a secret one is not findable)."""
    from ..roster.models import Attendee  # noqa: F401  (typing only)

    part = s.scalar(
        select(Participation).where(Participation.poll_id == p.id, Participation.attendee_id == attendee.id)
    )
    out: dict[str, Any] = {
        "poll_id": p.id,
        "voted": part is not None,
        "receipt": None,
        "can_vote": attendee.role in VOTING_ROLES and not attendee.deleted,
        "checked_in": bool(attendee.present),
        "can_change": bool(p.allow_change),
    }
    if part is not None and not p.secret:
        nv = s.scalar(
            select(NamedVote).where(NamedVote.poll_id == p.id, NamedVote.attendee_id == attendee.id)
        )
        if nv is not None:
            out["receipt"] = nv.receipt
            out["choices"] = nv.choices
    return out


def latest_result(s: Session, meeting_id: int, reveal: bool) -> dict[str, Any] | None:
    """The result still on the room's screens: the newest closed poll not dismissed (published, or for staff)."""
    q = select(Poll).where(
        Poll.meeting_id == meeting_id, Poll.status == "closed", Poll.dismissed_at.is_(None)
    )
    if not reveal:
        q = q.where(Poll.published_at.is_not(None))
    p = s.scalar(q.order_by(Poll.closed_at.desc(), Poll.id.desc()))
    return result_payload(p) if p is not None and p.result is not None else None


# -- casting -------------------------------------------------------------------------------


class PollExpired(Conflict):
    """The countdown ran out; the caller closes the poll after its transaction."""

    code = "poll_not_open"


@dataclass
class VoteCache:
    """What one transaction has loaded and is about to write, by (poll_id, attendee_id).

    Votes add plain rows (`SimpleNamespace`) here; `flush` inserts them with one
    multi-row INSERT per table. Rows loaded from the database are ORM objects
    and are changed in place (a change of vote).
    """

    parts: dict[tuple[int, int], Any] = field(default_factory=dict)
    named: dict[tuple[int, int], Any] = field(default_factory=dict)
    #: New rows, inserted by `flush`; secret ballots by (poll_id, receipt).
    new_parts: list[SimpleNamespace] = field(default_factory=list)
    new_named: list[SimpleNamespace] = field(default_factory=list)
    new_ballots: dict[tuple[int, str], SimpleNamespace] = field(default_factory=dict)
    #: The secret ballot of each participation cast in this transaction: (poll_id, attendee_id) -> its key
    #: in `new_ballots` (kept here only, never written: it links a voter to a ballot).
    owner: dict[tuple[int, int], tuple[int, str]] = field(default_factory=dict)
    specs: dict[int, counting.Spec] = field(default_factory=dict)

    def spec(self, p: Poll) -> counting.Spec:
        if p.id not in self.specs:
            self.specs[p.id] = counting.Spec.of(p)
        return self.specs[p.id]

    def part(self, s: Session, poll_id: int, attendee_id: int) -> Any:
        k = (poll_id, attendee_id)
        if k not in self.parts:
            self.parts[k] = s.scalar(
                select(Participation).where(
                    Participation.poll_id == poll_id, Participation.attendee_id == attendee_id
                )
            )
        return self.parts[k]

    def named_vote(self, s: Session, poll_id: int, attendee_id: int) -> Any:
        k = (poll_id, attendee_id)
        if k not in self.named:
            self.named[k] = s.scalar(
                select(NamedVote).where(NamedVote.poll_id == poll_id, NamedVote.attendee_id == attendee_id)
            )
        return self.named[k]

    def preload(self, s: Session, pairs: set[tuple[int, int]]) -> None:
        """Load every participation and named vote of `pairs` in two queries."""
        if not pairs:
            return
        poll_ids = {p for p, _ in pairs}
        att_ids = {a for _, a in pairs}
        for k in pairs:
            self.parts.setdefault(k, None)
            self.named.setdefault(k, None)
        for row in s.scalars(
            select(Participation).where(
                Participation.poll_id.in_(poll_ids), among(s, Participation.attendee_id, att_ids)
            )
        ):
            self.parts[(row.poll_id, row.attendee_id)] = row
        for row in s.scalars(
            select(NamedVote).where(NamedVote.poll_id.in_(poll_ids), among(s, NamedVote.attendee_id, att_ids))
        ):
            self.named[(row.poll_id, row.attendee_id)] = row

    def flush(self, s: Session) -> None:
        """Insert the new rows: one statement per table, ballots in the order of their random keys."""
        # Core INSERTs of the tables (not the ORM's bulk path, which costs more per row than the write):
        # executemany on SQLite, batched multi-row VALUES (insertmanyvalues) on PostgreSQL.
        if self.new_parts:
            s.execute(Participation.__table__.insert(), [vars(r) for r in self.new_parts])
        if self.new_ballots:
            rows = sorted((vars(r) for r in self.new_ballots.values()), key=lambda r: r["key"])
            s.execute(Ballot.__table__.insert(), rows)
        if self.new_named:
            s.execute(NamedVote.__table__.insert(), [vars(r) for r in self.new_named])
        self.new_parts, self.new_named, self.new_ballots, self.owner = [], [], {}, {}

    def flush_new(self, s: Session, *, on_conflict: bool = True) -> set[tuple[int, int]]:
        """Insert the new rows without any lock held before; returns the (poll_id, attendee_id) pairs *lost*.

        A participation another transaction inserted meanwhile (the same seat through another server
        process) is not overwritten: `INSERT … ON CONFLICT DO NOTHING` skips it (on PostgreSQL after
        waiting for that transaction to end), RETURNING tells which rows went in, and the ballot or
        named vote of a lost participation is not written. The caller decides those votes again.
        Rows go in sorted by (poll_id, attendee_id), so two batches inserting the same seats wait on
        each other in one order and never deadlock.

        `on_conflict=False` (SQLite: one writer at a time, which read everything after the previous
        writer committed, so nothing can be lost) is `flush`: plain executemany INSERTs.
        """
        if not on_conflict:
            self.flush(s)
            return set()
        lost: set[tuple[int, int]] = set()
        if self.new_parts:
            rows = sorted((vars(r) for r in self.new_parts), key=lambda r: (r["poll_id"], r["attendee_id"]))
            t = Participation.__table__
            stmt = (
                _dialect_insert(s, t)
                .on_conflict_do_nothing(index_elements=["poll_id", "attendee_id"])
                .returning(t.c.poll_id, t.c.attendee_id)
            )
            won = {(p, a) for p, a in s.execute(stmt, rows)}
            lost = {(r["poll_id"], r["attendee_id"]) for r in rows} - won
        if lost:
            for k in lost:
                ballot = self.owner.get(k)
                if ballot is not None:
                    self.new_ballots.pop(ballot, None)
            self.new_named = [r for r in self.new_named if (r.poll_id, r.attendee_id) not in lost]
        self.new_parts = []
        if self.new_ballots:
            rows = sorted((vars(r) for r in self.new_ballots.values()), key=lambda r: r["key"])
            s.execute(Ballot.__table__.insert(), rows)
        if self.new_named:
            rows = sorted((vars(r) for r in self.new_named), key=lambda r: (r["poll_id"], r["attendee_id"]))
            s.execute(NamedVote.__table__.insert(), rows)
        self.new_named, self.new_ballots, self.owner = [], {}, {}
        return lost


def among(s: Session, col, values) -> Any:
    """`col IN (values)`; on PostgreSQL `col = ANY(%(array)s)`: one bound array instead of a parameter each.

    (A batch asks for a thousand seats at a time: expanding and binding a thousand parameters per
    query cost more than the query.)
    """
    values = list(values)
    if s.get_bind().dialect.name == "postgresql":
        from sqlalchemy import any_, literal
        from sqlalchemy.dialects.postgresql import ARRAY

        return col == any_(literal(values, ARRAY(col.type)))
    return col.in_(values)


def _dialect_insert(s: Session, table):
    """`INSERT` with PostgreSQL's or SQLite's ON CONFLICT clause (both dialects have it)."""
    if s.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


def check_choices(p: Poll, choices: Any, spec: counting.Spec | None = None) -> list:
    spec = spec or counting.Spec.of(p)
    try:
        out = counting.normalize(spec, choices)
        if p.kind != "rating":
            counting.check_count(out, p.min_choices, p.max_choices)
    except counting.BadChoices as e:
        raise Invalid(str(e), code="invalid", fields=[{"field": "choices", "problem": str(e)}]) from None
    return out


def cast(
    s: Session,
    p: Poll,
    attendee: Any,
    choices: Any,
    ballot_id: str | None,
    key: bytes,
    *,
    previous_ballot_id: str | None = None,
    recorded_by: dict | None = None,
    reason: str | None = None,
    cache: VoteCache | None = None,
    now: dt.datetime | None = None,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Record one vote. Returns (what the ack adds, what the audit log records or None for a resend).

    Every check runs before anything is written, so a refused vote leaves the
    session untouched (the vote batcher relies on this). New rows wait in `cache`
    until `cache.flush(s)`; without a cache, they are flushed before returning.
    """
    if cache is None:
        cache = VoteCache()
        out = cast(
            s,
            p,
            attendee,
            choices,
            ballot_id,
            key,
            previous_ballot_id=previous_ballot_id,
            recorded_by=recorded_by,
            reason=reason,
            cache=cache,
            now=now,
        )
        cache.flush(s)
        return out
    now = now or utcnow()
    part = cache.part(s, p.id, attendee.id)
    tag = tag_for(key, p.id, ballot_id) if ballot_id is not None else None
    if part is not None and tag is not None and part.ballot_tag == tag:
        # A resend of the ballot already stored: the same receipt, nothing written.
        receipt = receipt_for(key, p.id, ballot_id)
        stored = _stored_choices(s, p, attendee.id, receipt, cache)
        if stored is not None and stored != check_choices(p, choices):
            raise Conflict("this ballot_id was already used for other choices", code="ballot_id_reused")
        return {"receipt": receipt, "resent": True}, None
    if p.status != "open":
        raise Conflict("this poll is not open for voting", code="poll_not_open")
    if is_expired(p, now):
        raise PollExpired("the time for this poll has run out")
    if not attendee.present:
        raise Conflict("check in first: only members present may vote", code="not_checked_in")
    norm = check_choices(p, choices, cache.spec(p))
    server_chosen = ballot_id is None
    if server_chosen:
        ballot_id = secrets.token_urlsafe(16)
        tag = tag_for(key, p.id, ballot_id)
    receipt = receipt_for(key, p.id, ballot_id)
    weight = float(attendee.vote_weight) if p.weighted else 1.0
    audit: dict[str, Any] = {"poll_id": p.id}
    if part is not None:
        if not p.allow_change:
            raise Conflict("you have already voted in this poll", code="already_voted")
        # A change names the ballot it replaces, so a late resend of an older ballot cannot undo it;
        # in a secret poll only the voter can name it: its ballot_id gives the old receipt.
        if previous_ballot_id is None or part.ballot_tag != tag_for(key, p.id, previous_ballot_id):
            raise Conflict(
                "you have already voted; to change your vote send previous_ballot_id (your current ballot)",
                code="already_voted",
            )
        if p.secret:
            old = receipt_for(key, p.id, previous_ballot_id)
            if cache.new_ballots.pop((p.id, old), None) is None:  # else: cast earlier in this transaction
                s.execute(delete(Ballot).where(Ballot.poll_id == p.id, Ballot.receipt == old))
            _add_ballot(cache, p.id, norm, receipt, attendee.id)
        else:
            nv = cache.named_vote(s, p.id, attendee.id)
            nv.choices, nv.receipt, nv.weight, nv.updated_at = norm, receipt, weight, now
            nv.recorded_by, nv.reason = recorded_by, reason
        part.ballot_tag = tag
        part.changes += 1
        audit["changed"] = True
    else:
        part = SimpleNamespace(poll_id=p.id, attendee_id=attendee.id, voted_at=now, ballot_tag=tag, changes=0)
        cache.new_parts.append(part)
        cache.parts[(p.id, attendee.id)] = part
        if p.secret:
            _add_ballot(cache, p.id, norm, receipt, attendee.id)
        else:
            nv = SimpleNamespace(
                poll_id=p.id,
                attendee_id=attendee.id,
                choices=norm,
                weight=weight,
                receipt=receipt,
                recorded_by=recorded_by,
                reason=reason,
                updated_at=now,
            )
            cache.new_named.append(nv)
            cache.named[(p.id, attendee.id)] = nv
    if not p.secret:
        audit["choices"] = norm
        if p.weighted:
            audit["weight"] = weight
    ack: dict[str, Any] = {"receipt": receipt}
    if server_chosen:
        ack["ballot_id"] = ballot_id
    return ack, audit


def _add_ballot(cache: VoteCache, poll_id: int, choices: list, receipt: str, attendee_id: int) -> None:
    row = SimpleNamespace(key=secrets.token_hex(16), poll_id=poll_id, choices=choices, receipt=receipt)
    cache.new_ballots[(poll_id, receipt)] = row
    cache.owner[(poll_id, attendee_id)] = (poll_id, receipt)


def _stored_choices(s: Session, p: Poll, attendee_id: int, receipt: str, cache: VoteCache) -> list | None:
    if p.secret:
        pending = cache.new_ballots.get((p.id, receipt))
        if pending is not None:
            return pending.choices
        return s.scalar(select(Ballot.choices).where(Ballot.poll_id == p.id, Ballot.receipt == receipt))
    nv = cache.named_vote(s, p.id, attendee_id)
    return nv.choices if nv is not None else None


# -- closing and counting ------------------------------------------------------------------


def ballots(s: Session, p: Poll) -> list[tuple[list, float]]:
    if p.secret:
        return [(c, 1.0) for c in s.scalars(select(Ballot.choices).where(Ballot.poll_id == p.id))]
    return [
        (c, w)
        for c, w in s.execute(select(NamedVote.choices, NamedVote.weight).where(NamedVote.poll_id == p.id))
    ]


def ballots_digest(s: Session, p: Poll) -> tuple[str, int]:
    """SHA-256 over the sorted (receipt, choices) list: the audit log pins what the archive publishes."""
    if p.secret:
        rows = sorted(
            [r, c] for r, c in s.execute(select(Ballot.receipt, Ballot.choices).where(Ballot.poll_id == p.id))
        )
    else:
        rows = sorted(
            [r, a, c, w]
            for r, a, c, w in s.execute(
                select(NamedVote.receipt, NamedVote.attendee_id, NamedVote.choices, NamedVote.weight).where(
                    NamedVote.poll_id == p.id
                )
            )
        )
    data = json.dumps(rows, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return hashlib.sha256(data).hexdigest(), len(rows)


def compute_result(
    p: Poll, pairs: list[tuple[list, float]], snapshot: dict[str, Any], meeting_quorum
) -> dict[str, Any]:
    spec = counting.Spec.of(p)
    c = counting.count(spec, pairs)
    outcome = counting.evaluate(spec, c, counting.Snapshot.of(snapshot), meeting_quorum, p.options)
    num = counting._num
    out: dict[str, Any] = {
        "tally": list(c.tally),
        "cast": c.cast,
        "blank": c.blank,
        "abstain": c.abstain,
        "eligible": snapshot["present"],
        "present": snapshot["present"],
        "members": snapshot["members"],
        "snapshot": snapshot,
        "outcome": outcome,
    }
    if p.kind == "rating":
        out["scores"] = c.scores
    else:
        out["percent"] = [round(100 * v / c.cast, 2) if c.cast else 0 for v in c.tally]
    if p.weighted:
        out["weighted_tally"] = [num(v) for v in c.weighted]
        out["cast_weight"] = num(c.cast_weight)
        out["abstain_weight"] = num(c.abstain_weight)
        out["blank_weight"] = num(c.blank_weight)
    return out


def close(s: Session, p: Poll, meeting: Any, now: dt.datetime | None = None) -> dict[str, Any]:
    """open -> closed: freeze attendance, count once, store the result; secret polls forget resend tags."""
    now = now or utcnow()
    if p.status != "open":
        raise Conflict("this poll is not open", code="poll_not_open")
    s.flush()
    snap = take_snapshot(s, p, now)
    if p.secret:
        _forget_links(s, p)
    digest, n = ballots_digest(s, p)
    result = compute_result(p, ballots(s, p), snap, meeting.quorum)
    result["ballots_sha256"] = digest
    result["ballots"] = n
    p.snapshot = snap
    p.result = result
    p.status = "closed"
    p.closed_at = now
    if p.publish_on_close:
        p.published_at = now
    return result


def _forget_links(s: Session, p: Poll) -> None:
    """Erase the resend tags and rewrite every ballot with a fresh random key in one statement.

    Whatever the storage engine kept about when each ballot row was written (a
    PostgreSQL row's xmin and ctid, page placement) is replaced by one rewrite
    in key order, in the closing transaction.
    """
    s.execute(update(Participation).where(Participation.poll_id == p.id).values(ballot_tag=None))
    rows = [
        {"poll_id": p.id, "choices": c, "receipt": r}
        for c, r in s.execute(select(Ballot.choices, Ballot.receipt).where(Ballot.poll_id == p.id))
    ]
    s.execute(delete(Ballot).where(Ballot.poll_id == p.id))
    for row in rows:
        row["key"] = secrets.token_hex(16)
    rows.sort(key=lambda r: r["key"])
    if rows:
        s.execute(insert(Ballot), rows)


def find_receipt(s: Session, p: Poll, code: str) -> dict[str, Any] | None:
    """The ballot behind a receipt: {"choices"} (secret), or the named vote."""
    if p.secret:
        c = s.scalar(select(Ballot.choices).where(Ballot.poll_id == p.id, Ballot.receipt == code))
        return None if c is None else {"choices": c}
    nv = s.scalar(select(NamedVote).where(NamedVote.poll_id == p.id, NamedVote.receipt == code))
    return None if nv is None else {"choices": nv.choices, "attendee_id": nv.attendee_id}


def error_ack(e: AppError) -> dict[str, Any]:
    return {"ok": False, **e.to_dict()}
