"""Conflict-tolerant inserts: "insert these rows unless their unique key is already there".

A select-then-insert races when two writers (two sweeps, a sweep and a recheck) add the same row at
once: both see nothing, both insert, one dies on the unique constraint. `insert_missing` uses the
dialect's `INSERT ... ON CONFLICT DO NOTHING` (SQLite and PostgreSQL), so the loser simply finds
the winner's row when it reads it back."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import DeclarativeBase, Session

CHUNK = 500


def _insert(session: Session, model: type[DeclarativeBase]):
    name = session.get_bind().dialect.name
    if name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        raise NotImplementedError(f"no conflict-tolerant insert for {name}")
    return insert(model.__table__)


def insert_missing(session: Session, model: type[DeclarativeBase], rows: list[dict[str, Any]],
                   keys: tuple[str, ...]) -> int:
    """Insert the rows whose unique `keys` are not stored yet (others are left as they are);
    returns how many rows this call inserted."""
    inserted = 0
    for i in range(0, len(rows), CHUNK):
        chunk = rows[i : i + CHUNK]
        stmt = (_insert(session, model).on_conflict_do_nothing(index_elements=list(keys))
                .returning(model.__table__.c[keys[0]]))
        conn = session.connection()
        # the rows RETURNING gives back are the ones inserted (drivers' rowcounts differ here)
        inserted += len(conn.execute(stmt.values(chunk)).all())
    return inserted
