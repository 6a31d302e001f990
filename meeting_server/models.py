"""Every table, imported once so the metadata is complete (Alembic, tests)."""

import importlib
import importlib.util

from .core import audit  # noqa: F401
from .core.db import Base  # noqa: F401

#: Packages that may define tables in their `models.py`.
PACKAGES = ("auth", "meetings", "roster", "agenda", "documents", "voting", "live", "attendance", "room",
            "annotations", "minutes", "archive")

for _name in PACKAGES:
    if importlib.util.find_spec(f"meeting_server.{_name}.models") is not None:
        importlib.import_module(f"meeting_server.{_name}.models")
