"""pg_trgm name index on PostgreSQL (entry.name_norm, GIN); nothing on SQLite (FTS5 stays)

Revision ID: 0008_pgscale
Revises: 0008_rays3
Create Date: 2026-11-29 16:00:00

The extension is created when the database role may create it (pg_trgm is a trusted extension: a
role with CREATE on the database may, since PostgreSQL 13). When it cannot be, the migration says so
and the name search keeps its substring path (bank/search.py looks for the index, Database.has_trgm).
"""

import logging

from alembic import op
from sqlalchemy import text

revision = "0008_pgscale"
down_revision = "0008_rays3"
branch_labels = None
depends_on = None

INDEX = "ix_entry_name_trgm"
log = logging.getLogger("mirrorwatch.migrations")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    have = bind.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")).first()
    if not have:
        try:
            with bind.begin_nested():
                bind.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
        except Exception as exc:  # no privilege, extension not installed on the server
            reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
            log.warning("pg_trgm is not available (%s): name search stays on substring scans. A database "
                        "superuser can add it later: CREATE EXTENSION pg_trgm; CREATE INDEX %s ON entry "
                        "USING gin (name_norm gin_trgm_ops);", reason, INDEX)
            return
    bind.execute(text(f"CREATE INDEX IF NOT EXISTS {INDEX} ON entry USING gin (name_norm gin_trgm_ops)"))


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    bind.execute(text(f"DROP INDEX IF EXISTS {INDEX}"))
