from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Audience(Strict):
    roles: list[Literal["attendee", "chair", "presenter", "secretary", "observer"]] = Field(default_factory=list, max_length=5)
    attendees: list[int] = Field(default_factory=list, max_length=5000)


class UploadForm(BaseModel):
    """Multipart text fields sent beside `file` (all optional)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    title: str | None = Field(default=None, max_length=300)
    agenda_item_id: int | None = None
    confidential: bool = False


class DocumentUpdate(Strict):
    title: str | None = Field(default=None, min_length=1, max_length=300)
    agenda_item_id: int | None = None
    position: int | None = Field(default=None, ge=0)
    confidential: bool | None = None
    #: Who may see it: null for everyone in the meeting.
    audience: Audience | None = None


class PageQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    v: int | None = None
    size: Literal["page", "thumb"] = "page"


class Empty(Strict):
    pass
