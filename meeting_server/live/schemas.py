from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class View(Strict):
    """The presenter's zoom and scroll, in page fractions (0..1)."""

    zoom: float = Field(default=1.0, ge=0.25, le=8)
    x: float = Field(default=0.0, ge=0, le=1)
    y: float = Field(default=0.0, ge=0, le=1)


class Present(Strict):
    document_id: int
    page: int = Field(ge=1)
    view: View | None = None


class Empty(Strict):
    pass
