"""hub_repo.repo_type: a repo is addressed by (hub, repo type, repo id)

On Hugging Face a model, a dataset and a Space may share one id: the unique key of a hub repo
becomes (hub, repo_type, repo_id). Rows recorded before are model repos ("model", the server
default), except those of the local folder hub ("dir"), whose one repo type is "folder".

Revision ID: 0008_repotypes
Revises: 0007_sweepsec
Create Date: 2026-11-29 16:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_repotypes"
down_revision = "0007_sweepsec"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("hub_repo", schema=None) as batch_op:
        batch_op.add_column(sa.Column("repo_type", sa.String(length=20), nullable=False, server_default="model"))
        batch_op.drop_constraint("uq_hub_repo", type_="unique")
        batch_op.create_unique_constraint("uq_hub_repo", ["hub", "repo_type", "repo_id"])
    op.execute("UPDATE hub_repo SET repo_type = 'folder' WHERE hub = 'dir'")


def downgrade() -> None:
    # (two repos of different types under one id cannot both stay: the non-model ones go)
    op.execute("DELETE FROM hub_repo WHERE repo_type NOT IN ('model', 'folder')")
    with op.batch_alter_table("hub_repo", schema=None) as batch_op:
        batch_op.drop_constraint("uq_hub_repo", type_="unique")
        batch_op.create_unique_constraint("uq_hub_repo", ["hub", "repo_id"])
        batch_op.drop_column("repo_type")
