from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class PollCreate(Strict):
    title: str = Field(min_length=1, max_length=300)
    options: list[str] = Field(default_factory=list, max_length=200)
    kind: Literal["motion", "single", "multiple", "election", "rating"] | None = None
    secret: bool = False
    max_choices: int | None = Field(default=None, ge=1, le=200)
    min_choices: int | None = Field(default=None, ge=0, le=200)
    publish_on_close: bool = True
    agenda_item_id: int | None = None
    rule: dict | None = None

    @model_validator(mode="after")
    def _check(self):
        if self.kind is None:
            self.kind = "multiple" if (self.max_choices or 1) > 1 else "single"
        if self.kind == "motion" and not self.options:
            self.options = ["赞成 Yes", "反对 No", "弃权 Abstain"]
        if len(self.options) < (1 if self.kind == "rating" else 2):
            raise ValueError("a poll needs at least two options")
        if any(not o.strip() or len(o) > 300 for o in self.options):
            raise ValueError("options must be non-empty texts of at most 300 characters")
        if len(set(self.options)) != len(self.options):
            raise ValueError("options must differ")
        if self.max_choices is not None and self.max_choices > len(self.options):
            raise ValueError("max_choices is larger than the number of options")
        return self


class PollUpdate(Strict):
    title: str | None = Field(default=None, min_length=1, max_length=300)
    options: list[str] | None = Field(default=None, min_length=2, max_length=200)
    secret: bool | None = None
    max_choices: int | None = Field(default=None, ge=1, le=200)
    publish_on_close: bool | None = None
