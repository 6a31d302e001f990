from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MOTION_OPTIONS = ["赞成 Yes", "反对 No", "弃权 Abstain"]
MAX_DURATION_S = 24 * 3600
#: Ids are 64-bit integers in the database; anything larger cannot name a row (and must not reach a query).
MAX_ID = 2**63 - 1


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Quorum(Strict):
    """At least `value` members present (`count`), or at least that share of all members (`fraction`)."""

    kind: Literal["count", "fraction"]
    value: float = Field(gt=0)

    @model_validator(mode="after")
    def _check(self):
        if self.kind == "count" and (self.value != int(self.value) or self.value > 100_000):
            raise ValueError("a quorum count is a whole number")
        if self.kind == "fraction" and self.value > 1:
            raise ValueError("a quorum fraction is at most 1")
        return self


class Rule(Strict):
    """Majority rule: votes for must be more than (`strict`) or at least `fraction` of `base`."""

    #: cast: the votes cast; present: voting members present at close; members: all voting members.
    base: Literal["cast", "present", "members"] = "cast"
    fraction: list[int] = Field(default_factory=lambda: [1, 2], min_length=2, max_length=2)
    strict: bool = True
    #: With base `cast`: leave abstentions and blank ballots out of the base (exclude) or count them (include).
    abstentions: Literal["exclude", "include"] = "exclude"
    #: "meeting" uses the meeting's quorum; or its own {kind, value}; null: none.
    quorum: Literal["meeting"] | Quorum | None = None

    @field_validator("fraction")
    @classmethod
    def _fraction(cls, v: list[int]) -> list[int]:
        num, den = v
        if not (1 <= num <= den <= 1000):
            raise ValueError("fraction is [numerator, denominator] with 1 <= numerator <= denominator")
        return v


class Scale(Strict):
    min: int = Field(default=0, ge=-1000, le=1000)
    max: int = Field(default=10, ge=-1000, le=1000)
    drop_extremes: bool = False

    @model_validator(mode="after")
    def _check(self):
        if self.max <= self.min:
            raise ValueError("scale.max must be larger than scale.min")
        return self


class PollFields(Strict):
    """Everything a poll is set up with; shared by create and update."""

    title: str = Field(min_length=1, max_length=300)
    options: list[str] = Field(default_factory=list, max_length=200)
    kind: Literal["motion", "single", "multiple", "election", "rating"] | None = None
    secret: bool = False
    max_choices: int | None = Field(default=None, ge=1, le=200)
    min_choices: int | None = Field(default=None, ge=0, le=200)
    #: Election: how many are elected (default 1).
    seats: int | None = Field(default=None, ge=1, le=200)
    #: Rating: integer scores from `min` to `max`; optionally drop each item's highest and lowest score.
    scale: Scale | None = None
    abstain_option: int | None = Field(default=None, ge=0)
    allow_change: bool = False
    weighted: bool = False
    publish_on_close: bool = True
    duration_s: int | None = Field(default=None, ge=1, le=MAX_DURATION_S)
    agenda_item_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    rule: Rule | None = None

    @model_validator(mode="after")
    def _check(self):
        normalize_fields(self)
        return self


def normalize_fields(p: Any) -> None:
    """Fill defaults per kind and refuse combinations that cannot work (raises ValueError)."""
    if p.kind is None:
        p.kind = "multiple" if (p.max_choices or 1) > 1 else "single"
    if p.kind == "motion":
        if not p.options:
            p.options = list(MOTION_OPTIONS)
            if p.abstain_option is None:
                p.abstain_option = 2
        if len(p.options) not in (2, 3):
            raise ValueError("a motion has the options yes, no and optionally abstain")
        if p.abstain_option is None and len(p.options) == 3:
            p.abstain_option = 2
        if p.abstain_option not in (None, 2):
            raise ValueError("a motion's abstain option is the third")
        p.max_choices = p.min_choices = 1
    if len(p.options) < (1 if p.kind == "rating" else 2):
        raise ValueError("a poll needs at least two options")
    if any(not o.strip() or len(o) > 300 for o in p.options):
        raise ValueError("options must be non-empty texts of at most 300 characters")
    if len(set(p.options)) != len(p.options):
        raise ValueError("options must differ")
    n = len(p.options)
    if p.abstain_option is not None and p.abstain_option >= n:
        raise ValueError("abstain_option is not an option index")
    if p.kind == "single":
        if (p.max_choices or 1) != 1:
            raise ValueError("a single-choice poll has max_choices 1")
        p.max_choices, p.min_choices = 1, 1 if p.min_choices is None else min(p.min_choices, 1)
    elif p.kind == "election":
        p.seats = p.seats or p.max_choices or 1
        if p.seats >= n:
            raise ValueError("an election needs more candidates than seats")
        p.max_choices = p.max_choices or p.seats
        if p.max_choices > p.seats:
            raise ValueError("in an election a voter chooses at most `seats` candidates")
    elif p.kind == "rating":
        p.scale = p.scale or Scale()
        p.max_choices, p.min_choices = n, 0
        if p.weighted:
            raise ValueError("rating polls are not weighted")
        if p.rule is not None and (p.rule.quorum is None):
            raise ValueError("a rating poll ranks items; its rule may only set a quorum")
    if p.kind != "rating" and p.scale is not None:
        raise ValueError("scale is for rating polls")
    if p.kind != "election" and p.seats is not None:
        raise ValueError("seats is for elections")
    p.max_choices = p.max_choices or 1
    if p.min_choices is None:
        p.min_choices = 1
    if p.max_choices > n:
        raise ValueError("max_choices is larger than the number of options")
    if p.min_choices > p.max_choices:
        raise ValueError("min_choices is larger than max_choices")
    if p.secret and p.weighted:
        raise ValueError(
            "a secret poll cannot be weighted: a ballot carrying a weight that only one attendee has "
            "would name its voter"
        )


class PollCreate(PollFields):
    pass


class PollUpdate(Strict):
    """Any field of a draft poll; the result must again be a valid poll."""

    title: str | None = Field(default=None, min_length=1, max_length=300)
    options: list[str] | None = Field(default=None, max_length=200)
    kind: Literal["motion", "single", "multiple", "election", "rating"] | None = None
    secret: bool | None = None
    max_choices: int | None = Field(default=None, ge=1, le=200)
    min_choices: int | None = Field(default=None, ge=0, le=200)
    seats: int | None = Field(default=None, ge=1, le=200)
    scale: Scale | None = None
    abstain_option: int | None = Field(default=None, ge=0)
    allow_change: bool | None = None
    weighted: bool | None = None
    publish_on_close: bool | None = None
    duration_s: int | None = Field(default=None, ge=1, le=MAX_DURATION_S)
    agenda_item_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    rule: Rule | None = None


class PollRef(Strict):
    """`{"poll_id"}` over Socket.IO; over HTTP the id is in the path."""

    poll_id: int | None = Field(default=None, ge=1, le=MAX_ID)


class PollOpen(PollRef):
    #: Countdown in seconds; the server closes the poll when it runs out (overrides the poll's own).
    duration_s: int | None = Field(default=None, ge=1, le=MAX_DURATION_S)


class PollCancel(PollRef):
    reason: str = Field(default="", max_length=500)


class Vote(PollRef):
    choices: list[Any] = Field(max_length=200)
    #: Client-chosen id of this ballot (use a random UUID): a resend with it gets the same receipt.
    ballot_id: str | int | None = None
    #: Secret polls with change allowed: the ballot_id of the ballot this one replaces.
    previous_ballot_id: str | int | None = None

    @field_validator("ballot_id", "previous_ballot_id")
    @classmethod
    def _id(cls, v: str | int | None) -> str | None:
        if v is None:
            return None
        v = str(v)
        if not 1 <= len(v) <= 128:
            raise ValueError("a ballot_id has 1 to 128 characters")
        return v


class ProxyVote(Vote):
    """A vote by hand, recorded by staff for an attendee (named polls only)."""

    attendee_id: int = Field(ge=1, le=MAX_ID)
    reason: str = Field(min_length=1, max_length=500)
