from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["attendee", "chair", "presenter", "secretary", "observer"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class AttendeeCreate(Strict):
    name: str = Field(min_length=1, max_length=120)
    seat: str | None = Field(default=None, max_length=40)
    role: Role = "attendee"
    organization: str = Field(default="", max_length=200)
    vote_weight: float = Field(default=1.0, gt=0, le=1_000_000)


class AttendeeUpdate(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=120)
    seat: str | None = Field(default=None, max_length=40)
    role: Role | None = None
    organization: str | None = Field(default=None, max_length=200)
    vote_weight: float | None = Field(default=None, gt=0, le=1_000_000)


class Join(Strict):
    token: str = Field(min_length=8, max_length=200)
    device: str = Field(default="", max_length=200)
    #: Take the seat over from another device (only where the organizer allows it).
    takeover: bool = False


class Empty(Strict):
    pass


class SessionRef(Strict):
    session_id: int
