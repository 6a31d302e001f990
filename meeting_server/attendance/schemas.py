from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ..meetings.schemas import Quorum


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Empty(Strict):
    pass


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
