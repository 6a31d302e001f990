from __future__ import annotations

import math
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..meetings.schemas import Quorum


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Empty(Strict):
    pass


#: A point of a finger stroke: `[x, y]` or `[x, y, ms]`, x and y in 0..1 of the pad, ms since the first touch.
Point = Annotated[list[float], Field(min_length=2, max_length=3)]

#: Bounds of one signature: generous for a real name, small enough that a tablet cannot flood the database.
MAX_STROKES = 200
MAX_POINTS = 8000


class FingerSignature(BaseModel):
    """What the tablet's signing pad sends (static/tablet/signature.js); unknown keys are ignored."""

    model_config = ConfigDict(extra="ignore")

    strokes: list[Annotated[list[Point], Field(min_length=1, max_length=MAX_POINTS)]] = Field(
        min_length=1, max_length=MAX_STROKES
    )
    #: The pad's size in CSS pixels (its aspect is what the minutes need) or the aspect itself.
    width: float | None = Field(default=None, gt=0, le=100_000)
    height: float | None = Field(default=None, gt=0, le=100_000)
    aspect: float | None = Field(default=None, gt=0.05, le=50)

    @field_validator("strokes")
    @classmethod
    def _points(cls, strokes: list[list[list[float]]]) -> list[list[list[float]]]:
        if sum(len(s) for s in strokes) > MAX_POINTS:
            raise ValueError(f"a signature has at most {MAX_POINTS} points")
        for stroke in strokes:
            for p in stroke:
                if not all(math.isfinite(v) for v in p):
                    raise ValueError("points must be finite numbers")
                if not (0 <= p[0] <= 1 and 0 <= p[1] <= 1):
                    raise ValueError("x and y must be within 0..1 of the pad")
                if len(p) == 3 and not (0 <= p[2] <= 3_600_000):
                    raise ValueError("the time of a point must be 0..3,600,000 ms")
        return strokes

    def pad_aspect(self) -> float:
        if self.aspect:
            return float(self.aspect)
        if self.width and self.height:
            return max(0.05, min(50.0, self.width / self.height))
        return 3.0


class Checkin(Strict):
    #: The attendee's finger signature for the attendance sheet (optional).
    signature: FingerSignature | None = None


class ProxyCheckin(Strict):
    #: From the path over HTTP; required over Socket.IO.
    attendee_id: int | None = None
    #: Why the staff check this seat in (代签): recorded in the history and the audit log.
    reason: str = Field(min_length=1, max_length=300)


class ProxyCheckout(Strict):
    attendee_id: int | None = None
    reason: str = Field(default="", max_length=300)


class SetQuorum(Strict):
    #: `{"kind": "count", "value": 10}` or `{"kind": "fraction", "value": 0.5}`; null: no quorum rule.
    rule: Quorum | None
