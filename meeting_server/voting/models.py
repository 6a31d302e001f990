"""Polls, who took part, and the ballots.

Three tables keep the three facts apart:

* `poll_participations`: *who* voted (both kinds). The unique (poll, attendee)
  pair is what makes voting exactly-once. Never a choice.
* `poll_ballots`: *what* was chosen in a secret poll. No voter, no time, no
  order: the primary key is a random 128-bit value and on SQLite the table is
  `WITHOUT ROWID`, so not even the hidden rowid records arrival order.
* `poll_named_votes`: the choice *with* the voter, for named (roll-call) polls.

See docs/protocol.md ("Secret ballots: what is stored") for the reasoning.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..core.db import Base, utcnow


class Poll(Base):
    __tablename__ = "polls"

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    agenda_item_id: Mapped[int | None] = mapped_column(ForeignKey("agenda_items.id", ondelete="SET NULL"))
    title: Mapped[str] = mapped_column(String(300))
    #: motion | single | multiple | election | rating
    kind: Mapped[str] = mapped_column(String(20), default="single")
    options: Mapped[list]
    secret: Mapped[bool] = mapped_column(default=False)
    max_choices: Mapped[int] = mapped_column(default=1)
    min_choices: Mapped[int] = mapped_column(default=1)
    #: Election: how many candidates are elected.
    seats: Mapped[int | None]
    #: Rating: the allowed integer scores, and whether each item drops its highest and lowest score.
    scale_min: Mapped[int | None]
    scale_max: Mapped[int | None]
    drop_extremes: Mapped[bool] = mapped_column(default=False)
    #: Index of the option that means "abstain" (motion: 2), if any.
    abstain_option: Mapped[int | None]
    #: Last press wins: a voter may change the vote until the poll closes.
    allow_change: Mapped[bool] = mapped_column(default=False)
    #: Count each vote with the attendee's `vote_weight` (named polls only).
    weighted: Mapped[bool] = mapped_column(default=False)
    publish_on_close: Mapped[bool] = mapped_column(default=True)
    #: Majority rule and quorum, e.g. {"base": "cast", "fraction": [1, 2], "strict": true, ...}.
    rule: Mapped[dict | None]
    #: Countdown set when opened; the server closes the poll at `closes_at`.
    duration_s: Mapped[int | None]
    closes_at: Mapped[dt.datetime | None]
    #: A revote is a new poll: round 2, 3, ... pointing back to the round it repeats.
    round: Mapped[int] = mapped_column(default=1)
    previous_id: Mapped[int | None] = mapped_column(ForeignKey("polls.id", ondelete="SET NULL"))
    #: draft | open | closed | cancelled
    status: Mapped[str] = mapped_column(String(20), default="draft")
    #: Attendance when the poll closed: {"at", "members", "present", "voted", ...weights}.
    snapshot: Mapped[dict | None]
    #: The result computed once at close (tally, outcome); never recomputed.
    result: Mapped[dict | None]
    cancel_reason: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    opened_at: Mapped[dt.datetime | None]
    closed_at: Mapped[dt.datetime | None]
    published_at: Mapped[dt.datetime | None]
    cancelled_at: Mapped[dt.datetime | None]
    #: The chair took the result off the room's screens.
    dismissed_at: Mapped[dt.datetime | None]

    def __repr__(self) -> str:
        return f"<Poll {self.id} {self.title!r} {self.kind} {self.status}>"


class Participation(Base):
    """That an attendee voted in a poll (never what they chose)."""

    __tablename__ = "poll_participations"
    __table_args__ = (UniqueConstraint("poll_id", "attendee_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    poll_id: Mapped[int] = mapped_column(ForeignKey("polls.id", ondelete="CASCADE"))
    attendee_id: Mapped[int] = mapped_column(ForeignKey("attendees.id", ondelete="CASCADE"), index=True)
    voted_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    #: HMAC of the client's ballot_id: recognises a resend or a change. Erased when a secret poll closes.
    ballot_tag: Mapped[str | None] = mapped_column(String(64))
    #: How many times the vote was changed (last press wins).
    changes: Mapped[int] = mapped_column(default=0)

    def __repr__(self) -> str:
        return f"<Participation poll={self.poll_id} attendee={self.attendee_id}>"


class Ballot(Base):
    """One secret ballot: a random key, the poll, the choices and the receipt. Nothing else."""

    __tablename__ = "poll_ballots"
    __table_args__ = (UniqueConstraint("poll_id", "receipt"), {"sqlite_with_rowid": False})

    #: 128 random bits (hex); unrelated to arrival order.
    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    poll_id: Mapped[int] = mapped_column(ForeignKey("polls.id", ondelete="CASCADE"))
    choices: Mapped[list]
    #: The code the voter got; the archive publishes receipt -> choices.
    receipt: Mapped[str] = mapped_column(String(24))

    def __repr__(self) -> str:
        return f"<Ballot poll={self.poll_id} {self.receipt}>"


class NamedVote(Base):
    """The choice of one voter in a named (roll-call) poll."""

    __tablename__ = "poll_named_votes"
    __table_args__ = (
        UniqueConstraint("poll_id", "attendee_id", name="uq_poll_named_votes_poll_attendee"),
        UniqueConstraint("poll_id", "receipt", name="uq_poll_named_votes_poll_receipt"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    poll_id: Mapped[int] = mapped_column(ForeignKey("polls.id", ondelete="CASCADE"))
    attendee_id: Mapped[int] = mapped_column(ForeignKey("attendees.id", ondelete="CASCADE"), index=True)
    choices: Mapped[list]
    weight: Mapped[float] = mapped_column(default=1.0)
    receipt: Mapped[str] = mapped_column(String(24))
    #: A vote by hand recorded by staff: {"kind", "id", "name", "role"}, with the reason.
    recorded_by: Mapped[dict | None]
    reason: Mapped[str | None] = mapped_column(String(500))
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<NamedVote poll={self.poll_id} attendee={self.attendee_id} {self.choices}>"
