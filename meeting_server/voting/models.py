from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from ..core.db import Base, utcnow


class Poll(Base):
    __tablename__ = "polls"

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    agenda_item_id: Mapped[int | None] = mapped_column(ForeignKey("agenda_items.id", ondelete="SET NULL"))
    title: Mapped[str] = mapped_column(String(300))
    #: motion | single | multiple | election | rating
    kind: Mapped[str] = mapped_column(String(20), default="single")
    options: Mapped[list]
    secret: Mapped[bool] = mapped_column(default=False)
    max_choices: Mapped[int] = mapped_column(default=1)
    min_choices: Mapped[int] = mapped_column(default=1)
    publish_on_close: Mapped[bool] = mapped_column(default=True)
    #: Majority rule and quorum, e.g. {"base": "cast", "fraction": [1, 2], "strict": true, ...}.
    rule: Mapped[dict | None]
    #: draft | open | closed | cancelled
    status: Mapped[str] = mapped_column(String(20), default="draft")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    opened_at: Mapped[dt.datetime | None]
    closed_at: Mapped[dt.datetime | None]
    published_at: Mapped[dt.datetime | None]

    def __repr__(self) -> str:
        return f"<Poll {self.id} {self.title!r} {self.status}>"
