from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: A coordinate in PDF points; NaN and infinities are refused.
Coord = Annotated[float, Field(allow_inf_nan=False)]
Point = tuple[Coord, Coord]
ClientId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
Kind = Literal["pen", "highlighter", "highlight", "text", "note"]
ShareTo = Literal["private", "room", "presenter"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AnnotationSave(Strict):
    """One annotation, upserted by its client-made `id` (size limits are checked by the service)."""

    document_id: int
    id: ClientId
    #: The document version the tablet displays (default: the current one).
    version: int | None = Field(default=None, ge=1)
    page: int = Field(ge=1)
    kind: Kind
    #: One stroke (pen, highlighter), the anchor of a note or text, or a highlight's extent.
    points: list[Point] | None = None
    #: Several strokes in one pen or highlighter annotation.
    strokes: list[list[Point]] | None = None
    #: [x0, y0, x1, y1] of a highlight or a text box.
    rect: tuple[Coord, Coord, Coord, Coord] | None = None
    color: str | None = Field(default=None, pattern=r"^#[0-9a-fA-F]{6}$")
    width: float | None = Field(default=None, gt=0, le=100)
    text: str | None = None
    font_size: float | None = Field(default=None, ge=4, le=144)
    #: The client's revision of this annotation: a lower one than stored is stale and ignored.
    rev: int = Field(default=0, ge=0, le=2**53)


class AnnotationDelete(Strict):
    document_id: int
    ids: list[ClientId] = Field(min_length=1, max_length=500)
    rev: int = Field(default=0, ge=0, le=2**53)


class AnnotationShare(Strict):
    """Share some annotations (`ids`) or all of a page's (`page`) with the room or the presenter."""

    document_id: int
    to: ShareTo
    ids: list[ClientId] | None = Field(default=None, min_length=1, max_length=1000)
    page: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one_target(self) -> AnnotationShare:
        if (self.ids is None) == (self.page is None):
            raise ValueError("give either ids or page")
        return self


class AnnotationShow(Strict):
    document_id: int
    attendee_id: int
    ids: list[ClientId] = Field(min_length=1, max_length=500)


class Empty(Strict):
    pass


class ListQuery(BaseModel):
    """Query parameters of the list routes."""

    model_config = ConfigDict(extra="ignore")
    page: int | None = Field(default=None, ge=1)
    #: Organizers: whose annotations (default: every seat's).
    attendee_id: int | None = None


class ExportRequest(Strict):
    #: Organizers: whose annotated copy (required for an organizer).
    attendee_id: int | None = None
