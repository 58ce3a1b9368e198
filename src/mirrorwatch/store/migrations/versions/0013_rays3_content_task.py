"""content_task: content work handed to Ray, recorded pending and written once when done

Revision ID: 0008_rays3
Revises: 0008_repotypes
Create Date: 2026-11-29 16:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_rays3"
down_revision = "0008_repotypes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "content_task",
        sa.Column("content_key", sa.String(length=64), nullable=False),
        sa.Column("hub", sa.String(length=40), nullable=False),
        sa.Column("repo_id", sa.String(length=400), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("content_key"),
    )
    with op.batch_alter_table("content_task") as batch:
        batch.create_index("ix_content_task_repo", ["hub", "repo_id"])


def downgrade() -> None:
    with op.batch_alter_table("content_task") as batch:
        batch.drop_index("ix_content_task_repo")
    op.drop_table("content_task")
