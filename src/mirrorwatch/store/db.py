"""Opening the database: engine, sessions, migrations.

SQLite (the embedded default) gets WAL, foreign keys and a busy timeout so a sweep and the
web app can share one file. Every open runs Alembic migrations to head."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from mirrorwatch.config import resolve_db_url, sidecar_dir, sqlite_path
from mirrorwatch.errors import MirrorwatchError

T = TypeVar("T")
MIGRATIONS = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # pragma: no cover - exercised through every test
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    # a larger page cache keeps index B-trees of million-row banks in memory (random hash keys)
    cur.execute("PRAGMA cache_size=-262144")
    cur.execute("PRAGMA temp_store=MEMORY")
    cur.close()


class Database:
    """One database: an engine, a session factory and the sidecar folder beside it."""

    def __init__(self, url: str, engine: Engine) -> None:
        self.url = url
        self.engine = engine
        self.sessions = sessionmaker(engine, expire_on_commit=False)
        self._fts: bool | None = None
        self._trgm: bool | None = None
        self._owned: dict[str, Any] = {}
        self._owned_lock = threading.Lock()

    def owned(self, key: str, factory: Callable[[], T]) -> T:
        """The helper object `key` that belongs to this database and lives as long as it does (e.g. the
        fingerprint indexes kept in its sidecar folder), made by `factory` on first use."""
        with self._owned_lock:
            if key not in self._owned:
                self._owned[key] = factory()
            return self._owned[key]

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @property
    def sidecar(self) -> Path:
        return sidecar_dir(self.url)

    @classmethod
    def open(cls, value: str | None = None, *, migrate: bool = True) -> Database:
        url = resolve_db_url(value)
        path = sqlite_path(url)
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise MirrorwatchError(f"cannot create the database folder {path.parent}: {exc.strerror}") from None
        kwargs = {}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        try:
            engine = create_engine(url, **kwargs)
        except Exception as exc:  # bad URL, missing driver
            raise MirrorwatchError(f"cannot open database {url!r}: {exc}") from None
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
        db = cls(url, engine)
        if migrate:
            db.migrate()
        return db

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision (a no-op when it is there)."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        sqlite = self.engine.dialect.name == "sqlite"
        try:
            with self.engine.connect() as conn:
                # SQLite: a migration that rebuilds a parent table (batch mode) would take its rows'
                # children with it through ON DELETE CASCADE: foreign keys are off while migrating
                # (Alembic's advice), checked before the commit, and on again after.
                raw = conn.connection.dbapi_connection if sqlite else None
                if raw is not None:
                    raw.execute("PRAGMA foreign_keys=OFF")
                try:
                    with conn.begin():
                        if raw is not None:  # pysqlite begins no transaction before DDL: without this
                            conn.exec_driver_sql("BEGIN")  # each schema change would commit on its own
                        cfg.attributes["connection"] = conn
                        command.upgrade(cfg, "head")
                        if raw is not None and conn.exec_driver_sql("PRAGMA foreign_key_check").first():
                            raise MirrorwatchError(f"migrating {self.url} broke a foreign key: not committed")
                finally:
                    if raw is not None:
                        raw.execute("PRAGMA foreign_keys=ON")
        except OperationalError as exc:
            raise MirrorwatchError(f"cannot open database {self.url}: {exc.orig}") from None

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on any error."""
        with self.sessions() as s, s.begin():
            yield s

    @contextmanager
    def reader(self) -> Iterator[Connection]:
        """A connection for a few read-only statements (the lookup read path). On PostgreSQL it runs
        in autocommit: no BEGIN and no ROLLBACK round trips around the reads (each statement sees its
        own snapshot); on SQLite a plain connection."""
        with self.engine.connect() as conn:
            if not self.is_sqlite:
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            yield conn

    @contextmanager
    def write_session(self) -> Iterator[Session]:
        """A session for a writer that reads, then writes, beside other writers (a sweep's batch): on
        SQLite its transaction takes the write lock at once (BEGIN IMMEDIATE, waiting up to the busy
        timeout), so its savepoints are real and a concurrent commit cannot invalidate what it read
        (a deferred transaction would fail with "database is locked" instead of waiting)."""
        with self.sessions() as s, s.begin():
            if self.is_sqlite:
                s.connection().exec_driver_sql("BEGIN IMMEDIATE")
            yield s

    def has_fts(self) -> bool:
        """Whether the SQLite FTS5 name index exists (checked once per Database)."""
        if self._fts is None:
            if not self.is_sqlite:
                self._fts = False
            else:
                with self.engine.connect() as conn:
                    row = conn.execute(text("SELECT 1 FROM sqlite_master WHERE name='entry_fts'")).first()
                    self._fts = row is not None
        return self._fts

    def has_trgm(self) -> bool:
        """Whether the PostgreSQL pg_trgm name index exists (migration 0008; checked once per Database)."""
        if self._trgm is None:
            if self.engine.dialect.name != "postgresql":
                self._trgm = False
            else:
                with self.engine.connect() as conn:
                    row = conn.execute(text("SELECT 1 FROM pg_indexes WHERE indexname = 'ix_entry_name_trgm' "
                                            "AND tablename = 'entry' AND schemaname = current_schema()")).first()
                    self._trgm = row is not None
        return self._trgm
