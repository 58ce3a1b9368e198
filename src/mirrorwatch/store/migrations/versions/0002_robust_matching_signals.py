"""robust matching signals

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 02:18:00.584256
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "file_signal",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("hub_file_id", sa.Integer(), nullable=False),
        sa.Column("form", sa.String(length=40), nullable=False),
        sa.Column("value", sa.String(length=300), nullable=False),
        sa.ForeignKeyConstraint(["hub_file_id"], ["hub_file.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("hub_file_id", "form", "value", name="uq_file_signal"),
    )
    with op.batch_alter_table("file_signal", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_file_signal_hub_file_id"), ["hub_file_id"], unique=False)
        batch_op.create_index("ix_file_signal_value_form", ["value", "form"], unique=False)

    op.create_table(
        "fingerprint",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=True),
        sa.Column("hub_file_id", sa.Integer(), nullable=True),
        sa.Column("origin", sa.String(length=200), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["entry_id"], ["entry.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["hub_file_id"], ["hub_file.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("fingerprint", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_fingerprint_entry_id"), ["entry_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_fingerprint_hub_file_id"), ["hub_file_id"], unique=False)


def downgrade() -> None:
    op.drop_table("fingerprint")
    op.drop_table("file_signal")
