"""sshs_legacy_hash is a training-save id, not AutoV1: rename its file signal form

File signals read from kohya's `sshs_legacy_hash` were stored as "hdr_autov1" and compared with the
entries' AutoV1, which the value never is (sd-scripts hashes an in-memory copy with only the ss_*
metadata). They are now the "sshs_legacy_hash" form, compared only with the same value learned by
an entry. Matches recorded earlier keep their evidence as it was (a reviewer's record).

Revision ID: 0006_realmatch
Revises: 0005_where
Create Date: 2026-11-29 14:10:00
"""

from alembic import op

revision = "0006_realmatch"
down_revision = "0005_where"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("UPDATE file_signal SET form = 'sshs_legacy_hash' WHERE form = 'hdr_autov1'")


def downgrade() -> None:
    op.execute("UPDATE file_signal SET form = 'hdr_autov1' WHERE form = 'sshs_legacy_hash'")
