from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ServiceKind = Literal["water", "tea", "paper", "pen", "technician", "other"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Empty(Strict):
    pass


class SpeakerRequest(Strict):
    #: What the speaker wants to say, shown to the chair.
    note: str = Field(default="", max_length=200)


class SpeakerAdd(Strict):
    attendee_id: int
    note: str = Field(default="", max_length=200)


class SpeakerOrder(Strict):
    #: Every waiting request id, once, in the new order.
    order: list[int] = Field(max_length=1000)


class SpeakerGrant(Strict):
    #: The request to grant; omitted: the first in the queue.
    request_id: int | None = None
    #: Speaking time; 0: no limit.
    duration_seconds: int = Field(default=180, ge=0, le=4 * 3600)


class SpeakerExtend(Strict):
    #: Seconds to add to (or, negative, take from) the current speech.
    seconds: int = Field(ge=-4 * 3600, le=4 * 3600)


class SpeakerRef(Strict):
    request_id: int


class ServiceCall(Strict):
    kind: ServiceKind
    note: str = Field(default="", max_length=200)


class ServiceRef(Strict):
    call_id: int


class ServiceList(Strict):
    status: Literal["open", "all"] = "open"


class Announce(Strict):
    text: str = Field(min_length=1, max_length=1000)
    level: Literal["info", "urgent"] = "info"
    #: One seat; omitted: the whole room.
    attendee_id: int | None = None


class AnnouncementRef(Strict):
    announcement_id: int


class Nameplate(Strict):
    on: bool
    #: One seat; omitted: every seat (and per-seat settings are reset).
    attendee_id: int | None = None
