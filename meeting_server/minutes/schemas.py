from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: Longest notes of one agenda item (characters of Markdown).
MAX_NOTES = 200_000
MAX_DECISIONS = 200
MAX_DECISION = 4000


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MinutesSave(Strict):
    #: The agenda item; 0 or null: the meeting's general notes.
    agenda_item_id: int | None = Field(default=None, ge=0)
    notes: str = Field(default="", max_length=MAX_NOTES)
    decisions: list[str] = Field(default_factory=list, max_length=MAX_DECISIONS)
    #: The revision the editor started from (0 for a new item); a stale one gets 409 revision_conflict.
    base_revision: int = Field(ge=0)
    #: Made by the client, unique per save: a resend after a timeout returns the first answer.
    client_revision_id: str | None = Field(default=None, min_length=1, max_length=64)

    @field_validator("decisions")
    @classmethod
    def _decisions(cls, v: list[str]) -> list[str]:
        out = [d.strip() for d in v]
        if any(len(d) > MAX_DECISION for d in out):
            raise ValueError(f"a decision is at most {MAX_DECISION} characters")
        return [d for d in out if d]


class MinutesNote(Strict):
    note: str = Field(default="", max_length=2000)


class Revisions(Strict):
    agenda_item_id: int | None = Field(default=None, ge=0)
    limit: int = Field(default=100, ge=1, le=1000)
    before: int | None = Field(default=None, ge=1)


class MinutesPdfQuery(Strict):
    lang: Literal["zh", "en"] | None = None
    #: Wait at most this many seconds for the worker before answering 202.
    wait: float | None = Field(default=None, ge=0, le=60)


class Empty(Strict):
    pass
