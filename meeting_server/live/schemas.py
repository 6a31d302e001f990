from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Fraction = Annotated[float, Field(ge=0, le=1)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Exact(BaseModel):
    """For relayed events: no coercion ("yes" is not a boolean, "1" is not a number)."""

    model_config = ConfigDict(extra="forbid", strict=True)


Point = Annotated[list[Fraction], Field(min_length=2, max_length=2)]


class View(Strict):
    """The presenter's zoom and scroll, in page fractions (0..1)."""

    zoom: float = Field(default=1.0, ge=0.25, le=8)
    x: Fraction = 0.0
    y: Fraction = 0.0


class Present(Strict):
    document_id: int
    page: int = Field(ge=1)
    view: View | None = None


class SetView(Strict):
    zoom: float = Field(default=1.0, ge=0.25, le=8)
    x: Fraction = 0.0
    y: Fraction = 0.0


class Activate(Strict):
    #: The agenda item to make current; null: none.
    item_id: int | None


class FollowLock(Strict):
    locked: bool


class Empty(Strict):
    pass


class Pointer(Exact):
    x: Fraction
    y: Fraction
    #: False hides the pointer.
    visible: bool = True
    document_id: int | None = None
    page: int | None = Field(default=None, ge=1)


class Ink(Exact):
    """A piece of a temporary stroke: points in page fractions; `done` ends the stroke."""

    stroke_id: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.:-]+$")
    points: list[Point] = Field(min_length=1, max_length=200)
    color: str = Field(default="#e53935", pattern=r"^#[0-9a-fA-F]{6}$")
    width: float = Field(default=3.0, ge=0.5, le=40)
    done: bool = False
    document_id: int | None = None
    page: int | None = Field(default=None, ge=1)


class InkClear(Exact):
    #: One stroke; omitted: every stroke of the sender.
    stroke_id: str | None = Field(default=None, min_length=1, max_length=40)


class SeatStatus(Exact):
    """A tablet's own report: whether it follows the presenter and what it shows."""

    following: bool
    document_id: int | None = None
    page: int | None = Field(default=None, ge=1)
    #: Battery level 0..1 where the browser tells it.
    battery: Fraction | None = None
    charging: bool | None = None
