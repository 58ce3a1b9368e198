"""Migration 0008_members on SQLite (batch mode) and PostgreSQL, with rows already there: matches
recorded the old way (on the archive's row, the member named in the evidence) move onto member rows
made from their evidence; plain files and their matches are left as they were; downgrade goes back."""

from __future__ import annotations

from datetime import datetime

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from mirrorwatch.services.where import where
from mirrorwatch.store.db import MIGRATIONS, Database
from pgdb import fresh_pg

SHA_MEMBER = "ab" * 32
SHA_PLAIN = "cd" * 32
CRC_MEMBER = "0badcafe"
NOW = datetime(2026, 11, 1, 12, 0, 0)


def _alembic(db: Database, target: str, *, down: bool) -> None:
    """An Alembic step in one transaction, foreign keys off on SQLite (as Database.migrate runs them:
    0008_repotypes rebuilds hub_repo)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    sqlite = db.engine.dialect.name == "sqlite"
    with db.engine.connect() as conn:
        raw = conn.connection.dbapi_connection if sqlite else None
        if raw is not None:
            raw.execute("PRAGMA foreign_keys=OFF")
        try:
            with conn.begin():
                if raw is not None:
                    conn.exec_driver_sql("BEGIN")
                cfg.attributes["connection"] = conn
                (command.downgrade if down else command.upgrade)(cfg, target)
        finally:
            if raw is not None:
                raw.execute("PRAGMA foreign_keys=ON")


def _old_layout_rows(db: Database) -> None:
    """Rows as a sweep before 0008 left them: a zip's member match on the zip's own row."""
    evidence = ('[{"tier": 1, "kind": "archive_member", "member": "pack/a.safetensors", "archive": "pack.zip", '
                '"lead": "crc32 + size", "size": 40069, "confirmed": "member read alone, every hash form computed"}, '
                f'{{"tier": 1, "kind": "hash", "form": "crc32", "value": "{CRC_MEMBER}", "member": "pack/a.safetensors"}}, '
                f'{{"tier": 1, "kind": "hash", "form": "sha256", "value": "{SHA_MEMBER}", "member": "pack/a.safetensors"}}]')
    plain_ev = f'[{{"tier": 1, "kind": "hash", "form": "sha256", "value": "{SHA_PLAIN}"}}]'
    with db.engine.begin() as c:
        c.execute(text("INSERT INTO bank (id, name, created_at) VALUES (1, 'b', :t)"), {"t": NOW})
        for eid, name in ((1, "Person A"), (2, "Person B")):
            c.execute(text("INSERT INTO entry (id, bank_id, key, name, name_norm, created_at, updated_at) "
                           "VALUES (:i, 1, :k, :n, :n, :t, :t)"), {"i": eid, "k": f"n:{name}", "n": name, "t": NOW})
        c.execute(text("INSERT INTO hub_repo (id, hub, repo_id, gated, disabled, status, first_seen, last_seen) "
                       "VALUES (1, 'hf', 'archivist-3/pack', false, false, 'live', :t, :t)"), {"t": NOW})
        for fid, path, sha in ((1, "pack.zip", "ef" * 32), (2, "plain.safetensors", SHA_PLAIN)):
            c.execute(text("INSERT INTO hub_file (id, repo_pk, path, size, sha256, hashes, status, first_seen, "
                           "last_seen) VALUES (:i, 1, :p, 1000, :s, '{}', 'present', :t, :t)"),
                      {"i": fid, "p": path, "s": sha, "t": NOW})
        for mid, eid, fid, score, ev, state in ((1, 1, 1, 1.0, evidence, "confirmed"), (2, 2, 2, 1.0, plain_ev, "new")):
            c.execute(text("INSERT INTO match (id, entry_id, hub_file_id, tier, score, evidence, state, created_at, "
                           "updated_at) VALUES (:i, :e, :f, 1, :s, :ev, :st, :t, :t)"),
                      {"i": mid, "e": eid, "f": fid, "s": score, "ev": ev, "st": state, "t": NOW})
        if c.dialect.name == "postgresql":  # (ids given above: move the sequences past them)
            for table in ("bank", "entry", "hub_repo", "hub_file", "match"):
                c.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"))


def _check(db: Database) -> None:
    with db.engine.connect() as c:
        members = c.execute(text("SELECT id, path, member, archive_file_id, size, sha256, status FROM hub_file "
                                 "WHERE archive_file_id IS NOT NULL")).all()
        assert [tuple(r)[1:] for r in members] == [
            ("pack.zip!pack/a.safetensors", "pack/a.safetensors", 1, 40069, SHA_MEMBER, "present")]
        moved = c.execute(text("SELECT hub_file_id, state FROM match WHERE id = 1")).one()
        assert tuple(moved) == (members[0][0], "confirmed")  # the reviewer's decision kept
        assert tuple(c.execute(text("SELECT hub_file_id FROM match WHERE id = 2")).one()) == (2,)
        assert c.execute(text("SELECT archive_file_id, member FROM hub_file WHERE id = 2")).one() == (None, None)
    # the reverse look-up finds the member by its CRC-32 and its SHA256
    assert [(f.path, f.member) for f in where(db, CRC_MEMBER, form="crc32").files] == [("pack.zip", "pack/a.safetensors")]
    assert [f.member for f in where(db, SHA_MEMBER).files] == ["pack/a.safetensors"]


def _run(db: Database) -> None:
    _alembic(db, "0007_sweepsec", down=True)
    _old_layout_rows(db)
    _alembic(db, "head", down=False)
    _check(db)
    _alembic(db, "0007_sweepsec", down=True)  # member rows (and the moved match) go
    with db.engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM hub_file")).scalar() == 2
        assert c.execute(text("SELECT count(*) FROM match")).scalar() == 1
    _alembic(db, "head", down=False)


def test_migration_0008_on_sqlite_with_rows(db):
    _run(db)


def test_migration_0008_on_postgresql_with_rows():
    db = fresh_pg()
    try:
        _run(db)
    finally:
        db.engine.dispose()
