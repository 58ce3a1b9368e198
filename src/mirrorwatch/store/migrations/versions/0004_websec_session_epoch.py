"""session epoch per account: web sessions revocable server-side (sign-out, password change, admin)

Revision ID: 0004_websec
Revises: 0003_hubport
Create Date: 2026-11-29 13:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_websec"
down_revision = "0003_hubport"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.add_column(sa.Column("session_epoch", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.drop_column("session_epoch")
