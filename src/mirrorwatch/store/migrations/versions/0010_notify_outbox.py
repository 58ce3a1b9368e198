"""notify: event outbox, notification channels, deliveries

Revision ID: 0008_notify
Revises: 0008_watch
Create Date: 2026-11-29 16:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_notify"
down_revision = "0008_watch"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notify_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("bank_id", sa.Integer(), nullable=True),
        sa.Column("match_id", sa.Integer(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["bank_id"], ["bank.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_notify_event_bank_id", "notify_event", ["bank_id"])
    op.create_index("ix_notify_event_match_id", "notify_event", ["match_id"])
    op.create_table(
        "notify_channel",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bank_id", sa.Integer(), nullable=False),
        sa.Column("transport", sa.String(length=20), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("kinds", sa.JSON(), nullable=False),
        sa.Column("digest_s", sa.Integer(), nullable=True),
        sa.Column("next_digest_at", sa.DateTime(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("include_names", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("secret", sa.String(length=100), nullable=True),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["bank_id"], ["bank.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_notify_channel_bank_id", "notify_channel", ["bank_id"])
    op.create_table(
        "notify_delivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("match_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("claimed_by", sa.String(length=200), nullable=True),
        sa.Column("claimed_until", sa.DateTime(), nullable=True),
        sa.Column("batch", sa.String(length=64), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["channel_id"], ["notify_channel.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["event_id"], ["notify_event.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel_id", "event_id", name="uq_notify_delivery"),
    )
    op.create_index("ix_notify_delivery_event_id", "notify_delivery", ["event_id"])
    op.create_index("ix_notify_delivery_due", "notify_delivery", ["status", "next_attempt_at"])
    op.create_index("ix_notify_delivery_order", "notify_delivery", ["channel_id", "match_id", "status", "event_id"])


def downgrade() -> None:
    op.drop_table("notify_delivery")
    op.drop_table("notify_channel")
    op.drop_table("notify_event")
