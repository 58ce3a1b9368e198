"""The SQLite FTS5 name index (created by migration 0001) and its bulk-load path.

Rows inserted one by one reach the index through the `entry_fts_ai` trigger. A trigger costs about
six times a bulk `INSERT ... SELECT` into the index, so million-row imports drop the trigger inside
their transaction, load the index in one statement, and put the trigger back (all or nothing). The
name-token vocabulary (store/nameindex.py) is loaded the same way, in the same two calls."""

from __future__ import annotations

from mirrorwatch.store import nameindex

INSERT_TRIGGER = (
    "CREATE TRIGGER entry_fts_ai AFTER INSERT ON entry BEGIN"
    " INSERT INTO entry_fts(rowid, name_norm) VALUES (new.id, new.name_norm); END"
)
BULK_THRESHOLD = 1000


def bulk_index_begin(cursor) -> None:
    cursor.execute("DROP TRIGGER IF EXISTS entry_fts_ai")
    nameindex.bulk_begin(cursor)


def bulk_index_end(cursor, first_id: int) -> None:
    cursor.execute("INSERT INTO entry_fts(rowid, name_norm) SELECT id, name_norm FROM entry WHERE id >= ?",
                   (first_id,))
    cursor.execute(INSERT_TRIGGER)
    nameindex.bulk_end(cursor, first_id)
