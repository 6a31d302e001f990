"""Socket.IO room names, built in one place."""


def meeting(meeting_id: int) -> str:
    """Every connected client of a meeting."""
    return f"m{meeting_id}"


def staff(meeting_id: int) -> str:
    """Organizers, chair, presenter and secretary of a meeting: the console audience."""
    return f"m{meeting_id}:staff"


def organizers(meeting_id: int) -> str:
    return f"m{meeting_id}:org"


def chairs(meeting_id: int) -> str:
    """The chair and the organizers: who sees unpublished results."""
    return f"m{meeting_id}:chair"


def presenters(meeting_id: int) -> str:
    return f"m{meeting_id}:presenters"


def seat(attendee_id: int) -> str:
    """Every device holding one seat."""
    return f"a{attendee_id}"


def role(meeting_id: int, role_name: str) -> str:
    return f"m{meeting_id}:r:{role_name}"
