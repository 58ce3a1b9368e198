"""reverse look-up: every stored hash form of a swept file as a file signal (backfill)

Files swept before this revision kept their hash forms other than the SHA256 only in the
``hub_file.hashes`` JSON, which no index reaches; the reverse look-up (``mirrorwatch where``,
``GET /api/files``) reads them from ``file_signal`` (indexed by value and form). The sweep now
writes them there as it stores a file; this fills them in for files already swept.

Revision ID: 0005_where
Revises: 0004_websec
Create Date: 2026-11-29 14:20:00
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0005_where"
down_revision = "0004_websec"
branch_labels = None
depends_on = None

# The stored hash forms but the SHA256 (its own column), with their hex lengths, as of this revision
# (a migration does not read the live registry: it must do the same thing whenever it runs).
FORMS = {"autov1": 8, "autov3": 12, "autov3_full": 64, "crc32": 8, "blake3": 64}
# Forms no file signal held before this revision (the content tier already stored the AutoV3s).
NEW_FORMS = ("autov1", "crc32", "blake3")
BATCH = 2000


def upgrade() -> None:
    conn = op.get_bind()
    hub_file = sa.table("hub_file", sa.column("id", sa.Integer), sa.column("hashes", sa.JSON))
    file_signal = sa.table("file_signal", sa.column("hub_file_id", sa.Integer), sa.column("form", sa.String),
                           sa.column("value", sa.String))
    last = 0
    while True:
        rows = conn.execute(
            sa.select(hub_file.c.id, hub_file.c.hashes).where(hub_file.c.id > last).order_by(hub_file.c.id).limit(BATCH)
        ).all()
        if not rows:
            break
        last = rows[-1][0]
        wanted = []
        for fid, hashes in rows:
            if isinstance(hashes, str):
                try:
                    hashes = json.loads(hashes)
                except ValueError:
                    continue
            if not isinstance(hashes, dict):
                continue
            for form, length in FORMS.items():
                v = hashes.get(form)
                if isinstance(v, str) and len(v) == length and all(c in "0123456789abcdef" for c in v):
                    wanted.append((fid, form, v))
        if not wanted:
            continue
        ids = sorted({w[0] for w in wanted})
        have = set(conn.execute(sa.select(file_signal.c.hub_file_id, file_signal.c.form, file_signal.c.value)
                                .where(file_signal.c.hub_file_id.in_(ids))).all())
        new = [{"hub_file_id": f, "form": form, "value": v} for f, form, v in wanted if (f, form, v) not in have]
        if new:
            conn.execute(file_signal.insert(), new)


def downgrade() -> None:
    file_signal = sa.table("file_signal", sa.column("form", sa.String))
    op.get_bind().execute(file_signal.delete().where(file_signal.c.form.in_(NEW_FORMS)))
