"""archive members as hub_file rows of their own, linked to their archive's row

Before this revision a match found inside an archive was recorded on the archive's own file row,
the member named only in its evidence (``{"kind": "archive_member", "member": ...}``), so the
reverse look-up could not find members. Now each inspected member is a ``hub_file`` row:
``archive_file_id`` (its archive's row), ``member`` (its path inside the archive), ``path``
``"<archive path>!<member>"`` (unique in the repo as before), ``archive_info`` (what the archive's
index says of it; on an archive row, what the last read found). The upgrade moves the matches
recorded the old way onto member rows made from their evidence (size, hash forms), so nothing found
before is lost; the next sweep re-reads those archives once (their ``archive_info`` is empty).

Revision ID: 0008_members
Revises: 0007_sweepsec
Create Date: 2026-11-29 16:10:00
"""

import json
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0008_members"
down_revision = "0007_sweepsec"
branch_labels = None
depends_on = None

# Hash forms a member row keeps as file signals (as of this revision; the SHA256 has its own column).
SIGNAL_FORMS = {"autov1": 8, "autov3": 12, "autov3_full": 64, "crc32": 8, "blake3": 64}
BATCH = 500


def _columns() -> set[str]:
    return {c["name"] for c in sa.inspect(op.get_bind()).get_columns("hub_file")}


def upgrade() -> None:
    # No batch rebuild of hub_file on SQLite: dropping the old table with foreign keys on (they are,
    # and cannot be turned off inside the migration's transaction) would cascade-delete every match,
    # file signal and fingerprint. SQLite adds a column with its REFERENCES clause in place.
    sqlite = op.get_bind().dialect.name == "sqlite"
    have = _columns()
    if "archive_file_id" not in have:
        if sqlite:
            op.execute("ALTER TABLE hub_file ADD COLUMN archive_file_id INTEGER "
                       "REFERENCES hub_file (id) ON DELETE CASCADE")
        else:
            op.add_column("hub_file", sa.Column("archive_file_id", sa.Integer(), nullable=True))
            op.create_foreign_key("fk_hub_file_archive_file_id", "hub_file", "hub_file", ["archive_file_id"], ["id"],
                                  ondelete="CASCADE")
    if "member" not in have:
        op.add_column("hub_file", sa.Column("member", sa.Text(), nullable=True))
    if "archive_info" not in have:
        op.add_column("hub_file", sa.Column("archive_info", sa.JSON(), nullable=True))
    op.create_index("ix_hub_file_archive_file_id", "hub_file", ["archive_file_id"])
    _move_member_matches()


def _json(value):
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def _move_member_matches() -> None:
    """Matches recorded on an archive's row for one of its members move to that member's new row."""
    conn = op.get_bind()
    hub_file = sa.table("hub_file", sa.column("id", sa.Integer), sa.column("repo_pk", sa.Integer),
                        sa.column("path", sa.Text), sa.column("size", sa.BigInteger), sa.column("sha256", sa.String),
                        sa.column("hashes", sa.JSON), sa.column("status", sa.String),
                        sa.column("first_seen", sa.DateTime), sa.column("last_seen", sa.DateTime),
                        sa.column("archive_file_id", sa.Integer), sa.column("member", sa.Text))
    match = sa.table("match", sa.column("id", sa.Integer), sa.column("entry_id", sa.Integer),
                     sa.column("hub_file_id", sa.Integer), sa.column("tier", sa.Integer), sa.column("score", sa.Float),
                     sa.column("evidence", sa.JSON), sa.column("state", sa.String),
                     sa.column("created_at", sa.DateTime), sa.column("updated_at", sa.DateTime),
                     sa.column("scan_run_id", sa.Integer))
    file_signal = sa.table("file_signal", sa.column("hub_file_id", sa.Integer), sa.column("form", sa.String),
                           sa.column("value", sa.String))
    now = datetime.now(UTC).replace(tzinfo=None)
    last = 0
    while True:
        rows = conn.execute(sa.select(match.c.id, match.c.entry_id, match.c.hub_file_id, match.c.tier, match.c.score,
                                      match.c.evidence, match.c.state, match.c.created_at, match.c.scan_run_id)
                            .where(match.c.id > last).order_by(match.c.id).limit(BATCH)).all()
        if not rows:
            break
        last = rows[-1][0]
        for mid, eid, fid, tier, score, evidence, state, created, run_id in rows:
            evidence = _json(evidence)
            if not isinstance(evidence, list):
                continue
            members: dict[str, list] = {}
            for item in evidence:
                if isinstance(item, dict) and isinstance(item.get("member"), str) and item["member"]:
                    members.setdefault(item["member"], []).append(item)
            if not members:
                continue
            archive = conn.execute(sa.select(hub_file.c.repo_pk, hub_file.c.path, hub_file.c.status,
                                             hub_file.c.first_seen, hub_file.c.last_seen, hub_file.c.archive_file_id)
                                   .where(hub_file.c.id == fid)).first()
            if archive is None or archive.archive_file_id is not None:
                continue
            first = True
            for name, items in members.items():
                member_id = _member_row(conn, hub_file, file_signal, archive, fid, name, items)
                if member_id is None:
                    continue
                taken = conn.execute(sa.select(match.c.id).where(match.c.entry_id == eid,
                                                                 match.c.hub_file_id == member_id)).first()
                if taken is not None:
                    continue
                if first:
                    conn.execute(match.update().where(match.c.id == mid).values(hub_file_id=member_id, evidence=items))
                    first = False
                else:
                    conn.execute(match.insert().values(entry_id=eid, hub_file_id=member_id, tier=tier, score=score,
                                                       evidence=items, state=state, created_at=created or now,
                                                       updated_at=now, scan_run_id=run_id))


def _member_row(conn, hub_file, file_signal, archive, archive_id: int, name: str, items: list) -> int | None:
    path = f"{archive.path}!{name}"
    row = conn.execute(sa.select(hub_file.c.id, hub_file.c.archive_file_id)
                       .where(hub_file.c.repo_pk == archive.repo_pk, hub_file.c.path == path)).first()
    if row is not None:
        return row.id if row.archive_file_id == archive_id else None  # (a plain file of that name: leave it)
    forms = {i["form"]: i["value"] for i in items if isinstance(i.get("form"), str) and isinstance(i.get("value"), str)}
    size = next((i["size"] for i in items if i.get("kind") == "archive_member" and isinstance(i.get("size"), int)), None)
    sha256 = forms.pop("sha256", None)
    conn.execute(hub_file.insert().values(
        repo_pk=archive.repo_pk, path=path, size=size, sha256=sha256 if sha256 and len(sha256) == 64 else None,
        hashes=forms, status=archive.status, first_seen=archive.first_seen, last_seen=archive.last_seen,
        archive_file_id=archive_id, member=name))
    new_id = conn.execute(sa.select(hub_file.c.id).where(hub_file.c.repo_pk == archive.repo_pk,
                                                         hub_file.c.path == path)).scalar_one()
    signals = [{"hub_file_id": new_id, "form": f, "value": v} for f, v in forms.items()
               if SIGNAL_FORMS.get(f) == len(v)]
    if signals:
        conn.execute(file_signal.insert(), signals)
    return new_id


def downgrade() -> None:
    # member rows (and their matches, by cascade) go; the old layout kept members only in evidence
    conn = op.get_bind()
    hub_file = sa.table("hub_file", sa.column("id", sa.Integer), sa.column("archive_file_id", sa.Integer))
    ids = [r[0] for r in conn.execute(sa.select(hub_file.c.id).where(hub_file.c.archive_file_id.isnot(None)))]
    for table in ("match", "file_signal", "fingerprint", "status_event"):
        t = sa.table(table, sa.column("hub_file_id", sa.Integer))
        for i in range(0, len(ids), BATCH):
            conn.execute(t.delete().where(t.c.hub_file_id.in_(ids[i : i + BATCH])))
    for i in range(0, len(ids), BATCH):
        conn.execute(hub_file.delete().where(hub_file.c.id.in_(ids[i : i + BATCH])))
    op.drop_index("ix_hub_file_archive_file_id", table_name="hub_file")
    if conn.dialect.name == "sqlite":
        # SQLite cannot drop a column a foreign key uses, and a batch rebuild would cascade-delete
        # every match (see upgrade): the emptied columns stay; upgrade adds them only when missing
        conn.execute(sa.text("UPDATE hub_file SET archive_info = NULL"))
        return
    op.drop_constraint("fk_hub_file_archive_file_id", "hub_file", type_="foreignkey")
    op.drop_column("hub_file", "archive_info")
    op.drop_column("hub_file", "member")
    op.drop_column("hub_file", "archive_file_id")
