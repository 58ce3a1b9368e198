"""Migration 0008_repotypes on SQLite and PostgreSQL: rows recorded before repo types become model
repos (a local folder's its "folder"), and the unique key becomes (hub, repo_type, repo_id)."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError

from mirrorwatch.store.db import MIGRATIONS, Database
from pgdb import PG, fresh_pg


def _old_db(engine_url: str) -> Database:
    db = Database.open(engine_url, migrate=False)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0007_sweepsec")
        for pk, hub, rid in ((1, "hf", "u/r"), (2, "dir", "/srv/models"), (3, "hf", "u/other")):
            conn.execute(text("INSERT INTO hub_repo (id, hub, repo_id, gated, disabled, status, first_seen, last_seen)"
                              " VALUES (:pk, :hub, :rid, false, false, 'live', '2026-01-01', '2026-01-01')"),
                         {"pk": pk, "hub": hub, "rid": rid})
        conn.execute(text("INSERT INTO hub_file (id, repo_pk, path, hashes, status, first_seen, last_seen)"
                          " VALUES (1, 1, 'a.safetensors', '{}', 'present', '2026-01-01', '2026-01-01')"))
    return db


@pytest.fixture(params=["sqlite", "postgresql"])
def old_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'old.db'}"
    fresh_pg().engine.dispose()  # (skips, or fails under CI, without MIRRORWATCH_TEST_PG)
    engine = create_engine(PG)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return PG


def test_existing_repos_become_model_repos_and_the_key_takes_the_type(old_url):
    db = _old_db(old_url)
    db.migrate()
    with db.engine.connect() as conn:
        rows = conn.execute(text("SELECT id, hub, repo_type, repo_id FROM hub_repo ORDER BY id")).all()
        assert [tuple(r) for r in rows] == [(1, "hf", "model", "u/r"), (2, "dir", "folder", "/srv/models"),
                                            (3, "hf", "model", "u/other")]
        assert conn.execute(text("SELECT repo_pk, path FROM hub_file")).all() == [(1, "a.safetensors")]
    with db.engine.begin() as conn:  # a dataset with a model's id: a row of its own
        conn.execute(text("INSERT INTO hub_repo (id, hub, repo_type, repo_id, gated, disabled, status, first_seen, "
                          "last_seen) VALUES (10, 'hf', 'dataset', 'u/r', false, false, 'live', '2026-02-01', "
                          "'2026-02-01')"))
    with pytest.raises(IntegrityError), db.engine.begin() as conn:  # the same type twice: refused
        conn.execute(text("INSERT INTO hub_repo (id, hub, repo_type, repo_id, gated, disabled, status, first_seen, "
                          "last_seen) VALUES (11, 'hf', 'dataset', 'u/r', false, false, 'live', '2026-02-01', "
                          "'2026-02-01')"))
    with db.engine.begin() as conn:  # a row written without a type (an older writer): the server's default
        conn.execute(text("INSERT INTO hub_repo (id, hub, repo_id, gated, disabled, status, first_seen, last_seen) "
                          "VALUES (12, 'hf', 'u/new', false, false, 'live', '2026-02-01', '2026-02-01')"))
        assert conn.execute(text("SELECT repo_type FROM hub_repo WHERE repo_id = 'u/new'")).scalar() == "model"
    # back down: refused while an id is recorded under two types (nothing deleted); then it goes
    with pytest.raises(RuntimeError, match="two repo types"):
        _alembic(db, command.downgrade, "0007_sweepsec")
    with db.engine.begin() as conn:
        conn.execute(text("DELETE FROM hub_repo WHERE repo_type = 'dataset'"))
    _alembic(db, command.downgrade, "0007_sweepsec")
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM hub_repo")).scalar() == 4
        assert conn.execute(text("SELECT repo_pk, path FROM hub_file")).all() == [(1, "a.safetensors")]
    db.engine.dispose()


def _alembic(db: Database, step, target: str) -> None:
    """An Alembic step on the connection, foreign keys off on SQLite (as Database.migrate runs them)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with db.engine.connect() as conn:
        raw = conn.connection.dbapi_connection if db.engine.dialect.name == "sqlite" else None
        if raw is not None:
            raw.execute("PRAGMA foreign_keys=OFF")
        try:
            with conn.begin():
                if raw is not None:
                    conn.exec_driver_sql("BEGIN")  # (pysqlite: else each DDL statement commits on its own)
                cfg.attributes["connection"] = conn
                step(cfg, target)
        finally:
            if raw is not None:
                raw.execute("PRAGMA foreign_keys=ON")


def test_sqlite_refuses_the_rebuild_with_foreign_keys_on(tmp_path):
    """Run on a connection with foreign keys on, SQLite's rebuild of hub_repo would delete every file
    by cascade: the migration refuses instead (Database.migrate turns them off)."""
    db = _old_db(f"sqlite:///{tmp_path / 'old.db'}")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with pytest.raises(RuntimeError, match="foreign_keys=OFF"), db.engine.begin() as conn:
        conn.exec_driver_sql("BEGIN")  # (pysqlite: else the migrations before it would commit on their own)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM hub_file")).scalar() == 1
    db.migrate()
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM hub_file")).scalar() == 1
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1  # on again for the app
