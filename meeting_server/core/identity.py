"""Who is acting: an organizer account or a seat (attendee) session."""

from __future__ import annotations

from dataclasses import dataclass

#: Attendee roles (contract.md). Voting roles may vote; staff roles may run the room.
SEAT_ROLES = ("attendee", "chair", "presenter", "secretary", "observer")
VOTING_ROLES = frozenset({"attendee", "chair", "presenter"})
USER_ROLES = ("admin", "organizer")


@dataclass(frozen=True)
class Actor:
    kind: str  # "user" | "seat" | "anonymous"
    id: int | None = None  # user id or attendee id
    name: str = ""
    role: str = ""  # admin/organizer for users; an attendee role for seats
    meeting_id: int | None = None  # a seat's meeting, or the meeting an organizer socket watches
    session_id: int | None = None  # the seat session / login token row

    @property
    def is_user(self) -> bool:
        return self.kind == "user"

    @property
    def is_seat(self) -> bool:
        return self.kind == "seat"

    @property
    def is_admin(self) -> bool:
        return self.kind == "user" and self.role == "admin"

    def audit_label(self) -> dict:
        return {"kind": self.kind, "id": self.id, "name": self.name, "role": self.role}


ANONYMOUS = Actor(kind="anonymous")
