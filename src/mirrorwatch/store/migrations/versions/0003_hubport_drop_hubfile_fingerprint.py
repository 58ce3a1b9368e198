"""drop hub_file.fingerprint (superseded by the fingerprint table; never written)

Revision ID: 0003_hubport
Revises: 0002
Create Date: 2026-11-29 13:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_hubport"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("hub_file", schema=None) as batch_op:
        batch_op.drop_column("fingerprint")


def downgrade() -> None:
    with op.batch_alter_table("hub_file", schema=None) as batch_op:
        batch_op.add_column(sa.Column("fingerprint", sa.LargeBinary(), nullable=True))
