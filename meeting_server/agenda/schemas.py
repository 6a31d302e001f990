from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ItemCreate(Strict):
    title: str = Field(min_length=1, max_length=300)
    description: str = Field(default="", max_length=20000)
    duration_minutes: int | None = Field(default=None, ge=0, le=24 * 60)
    presenter_id: int | None = None
    #: 1-based position to insert at; default: the end.
    position: int | None = Field(default=None, ge=1)


class ItemUpdate(Strict):
    title: str | None = Field(default=None, min_length=1, max_length=300)
    description: str | None = Field(default=None, max_length=20000)
    duration_minutes: int | None = Field(default=None, ge=0, le=24 * 60)
    presenter_id: int | None = None


class Reorder(Strict):
    #: Every item id of the meeting, in the new order.
    order: list[int] = Field(max_length=1000)
