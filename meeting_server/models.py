"""Every table, imported once so the metadata is complete (Alembic, tests)."""

from .agenda.models import AgendaItem  # noqa: F401
from .auth.models import ApiToken, User  # noqa: F401
from .core.audit import AuditEntry  # noqa: F401
from .core.db import Base  # noqa: F401
from .documents.models import Document, DocumentPage  # noqa: F401
from .meetings.models import Meeting  # noqa: F401
from .roster.models import Attendee, SeatSession  # noqa: F401
from .voting.models import Poll  # noqa: F401
