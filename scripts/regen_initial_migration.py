"""Regenerate the single initial migration from the models.

Only while nothing has been released: once a release exists, every schema
change gets a new Alembic revision instead (`meeting_server.core.migrate.revision`).
"""

import tempfile
from pathlib import Path

from meeting_server.core import migrate

versions = migrate.MIGRATIONS / "versions"
for old in versions.glob("*.py"):
    old.unlink()
with tempfile.TemporaryDirectory() as d:
    migrate.revision(f"sqlite:///{Path(d) / 'empty.sqlite'}", "initial schema")
print(sorted(p.name for p in versions.glob("*.py")))
