"""hub_repo.repo_type: a repo is addressed by (hub, repo type, repo id)

On Hugging Face a model, a dataset and a Space may share one id: the unique key of a hub repo
becomes (hub, repo_type, repo_id). Rows recorded before are model repos ("model", the server
default), except those of the local folder hub ("dir"), whose one repo type is "folder".

Revision ID: 0008_repotypes
Revises: 0008_exchange
Create Date: 2026-11-29 16:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_repotypes"
down_revision = "0008_exchange"
branch_labels = None
depends_on = None


def _no_cascades() -> None:
    """SQLite rebuilds hub_repo (batch mode): with foreign keys on, dropping the old table would delete
    every file, match and event of every repo (ON DELETE CASCADE). Database.migrate runs migrations
    with them off; anything else must too (refused here rather than losing rows)."""
    bind = op.get_bind()
    if bind.dialect.name == "sqlite" and bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise RuntimeError("0008_repotypes rebuilds hub_repo: run it with PRAGMA foreign_keys=OFF on SQLite "
                           "(Database.migrate does), or its files and matches would be deleted by cascade")


def upgrade() -> None:
    _no_cascades()
    with op.batch_alter_table("hub_repo", schema=None) as batch_op:
        batch_op.add_column(sa.Column("repo_type", sa.String(length=20), nullable=False, server_default="model"))
        batch_op.drop_constraint("uq_hub_repo", type_="unique")
        batch_op.create_unique_constraint("uq_hub_repo", ["hub", "repo_type", "repo_id"])
    op.execute("UPDATE hub_repo SET repo_type = 'folder' WHERE hub = 'dir'")


def downgrade() -> None:
    _no_cascades()
    # (a dataset or Space sharing its id with a model of the same hub cannot keep its row under the old
    # key: refused with the reason rather than deleting anything)
    clash = op.get_bind().exec_driver_sql(
        "SELECT count(*) FROM (SELECT hub, repo_id FROM hub_repo GROUP BY hub, repo_id HAVING count(*) > 1) AS t"
    ).scalar()
    if clash:
        raise RuntimeError(f"cannot downgrade 0008_repotypes: {clash} repo id(s) are recorded under two repo types")
    with op.batch_alter_table("hub_repo", schema=None) as batch_op:
        batch_op.drop_constraint("uq_hub_repo", type_="unique")
        batch_op.create_unique_constraint("uq_hub_repo", ["hub", "repo_id"])
        batch_op.drop_column("repo_type")
