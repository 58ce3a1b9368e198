"""Index for merging name-only rows at import: entries without Civitai ids, by bank and name

Revision ID: 0009_stream10m
Revises: 0008_pgscale
Create Date: 2026-11-29 19:10:00

The streaming importer (bank/importer.py) looks a batch's identity keys up in the database instead of
holding the whole bank in memory. A row with nothing but a name merges into the entry of that
normalised name that has no Civitai id: this partial index answers it (empty for banks whose entries
all have ids). Its key is the name's first 200 characters (an index entry has a size limit on
PostgreSQL; the query compares the whole name too).
"""

from alembic import op
from sqlalchemy import text

revision = "0009_stream10m"
down_revision = "0008_pgscale"
branch_labels = None
depends_on = None

INDEX = "ix_entry_bank_name_unkeyed"


def upgrade() -> None:
    op.get_bind().execute(text(
        f"CREATE INDEX IF NOT EXISTS {INDEX} ON entry (bank_id, substr(name_norm, 1, 200)) "
        "WHERE civitai_version_id IS NULL AND civitai_model_id IS NULL"))


def downgrade() -> None:
    op.get_bind().execute(text(f"DROP INDEX IF EXISTS {INDEX}"))
