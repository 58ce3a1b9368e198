"""exchange: entry status (active/withdrawn), change sequence and origin; bank uid and sequence
counter; scoped API tokens; subscriptions to other mirrorwatch feeds

Revision ID: 0008_exchange
Revises: 0008_notify
Create Date: 2026-11-29 16:10:00

Entries written before this revision get no sequence number here: the feed stamps every entry whose
`seq` is NULL (new, changed or never published) the first time it is read (services/exchange.py), so
this migration touches no entry row and runs in constant time on a million-entry bank.
"""

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0008_exchange"
down_revision = "0008_notify"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("bank", schema=None) as batch_op:
        batch_op.add_column(sa.Column("uid", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("change_seq", sa.BigInteger(), nullable=False, server_default="0"))
    conn = op.get_bind()
    bank = sa.table("bank", sa.column("id", sa.Integer), sa.column("uid", sa.String))
    for (bank_id,) in conn.execute(sa.select(bank.c.id)).all():
        conn.execute(sa.update(bank).where(bank.c.id == bank_id).values(uid=uuid.uuid4().hex))
    op.create_index("ix_bank_uid", "bank", ["uid"], unique=True)

    with op.batch_alter_table("entry", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status", sa.String(length=20), nullable=False, server_default="active"))
        batch_op.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("origin", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("origin_id", sa.String(length=200), nullable=True))
    op.create_index("ix_entry_bank_seq", "entry", ["bank_id", "seq"])

    with op.batch_alter_table("api_token", schema=None) as batch_op:
        batch_op.add_column(sa.Column("scope", sa.JSON(), nullable=True))

    op.create_table(
        "exchange_subscription",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bank_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("remote_bank", sa.String(length=32), nullable=True),
        sa.Column("cursor", sa.String(length=100), nullable=True),
        sa.Column("verify_key_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_sync_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["bank_id"], ["bank.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("bank_id", "url", name="uq_subscription_bank_url"),
    )


def downgrade() -> None:
    op.drop_table("exchange_subscription")
    with op.batch_alter_table("api_token", schema=None) as batch_op:
        batch_op.drop_column("scope")
    op.drop_index("ix_entry_bank_seq", table_name="entry")
    with op.batch_alter_table("entry", schema=None) as batch_op:
        batch_op.drop_column("origin_id")
        batch_op.drop_column("origin")
        batch_op.drop_column("seq")
        batch_op.drop_column("status")
    op.drop_index("ix_bank_uid", table_name="bank")
    with op.batch_alter_table("bank", schema=None) as batch_op:
        batch_op.drop_column("change_seq")
        batch_op.drop_column("uid")
