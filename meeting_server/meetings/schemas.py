from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Quorum(Strict):
    kind: Literal["count", "fraction"]
    value: float = Field(gt=0)

    @model_validator(mode="after")
    def _check(self):
        if self.kind == "fraction" and self.value > 1:
            raise ValueError("a fraction quorum is at most 1")
        if self.kind == "count" and self.value != int(self.value):
            raise ValueError("a count quorum is a whole number")
        return self


class MeetingCreate(Strict):
    title: str = Field(min_length=1, max_length=300)
    starts_at: dt.datetime | None = None
    location: str = Field(default="", max_length=300)
    description: str = Field(default="", max_length=20000)
    language: Literal["zh", "en"] = "zh"
    quorum: Quorum | None = None
    single_device: bool = False


class MeetingUpdate(Strict):
    title: str | None = Field(default=None, min_length=1, max_length=300)
    starts_at: dt.datetime | None = None
    location: str | None = Field(default=None, max_length=300)
    description: str | None = Field(default=None, max_length=20000)
    language: Literal["zh", "en"] | None = None
    quorum: Quorum | None = None
    single_device: bool | None = None


class Empty(Strict):
    pass
