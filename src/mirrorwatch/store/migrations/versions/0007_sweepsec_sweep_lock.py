"""sweep_lock: one sweep per hub scope at a time, with a heartbeat

Revision ID: 0007_sweepsec
Revises: 0006_realmatch
Create Date: 2026-11-29 14:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_sweepsec"
down_revision = "0006_realmatch"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sweep_lock",
        sa.Column("scope_key", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("scope_key"),
    )


def downgrade() -> None:
    op.drop_table("sweep_lock")
