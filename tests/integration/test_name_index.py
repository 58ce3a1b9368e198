"""The name-token index behind name search (store/nameindex.py, migration 0016_namesearch) is kept by
the database itself, on SQLite and PostgreSQL: every way an entry's name is written (ORM rows, the
importer's bulk path, a Core UPDATE as edits and exchange imports do) reaches the vocabulary and its
typo keys, the migration fills it from the entries already there, and on PostgreSQL two writers adding
the same new word never wait on each other.

The PostgreSQL runs need MIRRORWATCH_TEST_PG (tests/support/pgdb.py)."""

from __future__ import annotations

import csv
import io
from datetime import datetime

import pytest
from sqlalchemy import create_engine, select, text, update
from test_migration_members import _alembic

from mirrorwatch.bank.search import search_names
from mirrorwatch.bank.sheets import parse_sheet
from mirrorwatch.services.banks import create_bank
from mirrorwatch.services.imports import import_sheet
from mirrorwatch.store import fts, nameindex
from mirrorwatch.store.db import Database
from mirrorwatch.store.models import Entry
from mirrorwatch.text.names import normalise_name
from pgdb import PG, fresh_pg

NOW = datetime(2026, 11, 1, 12, 0, 0)


@pytest.fixture(params=["sqlite", "postgres"])
def anydb(request, tmp_path) -> Database:
    db = Database.open(str(tmp_path / "names.db")) if request.param == "sqlite" else fresh_pg()
    yield db
    db.engine.dispose()


def _vocab(db: Database) -> dict[str, int | None]:
    with db.engine.connect() as c:
        return {t: d for t, d in c.execute(text("SELECT token, docs FROM name_vocab"))}


def _typo_tokens(db: Database, key: str) -> set[str]:
    sql = ("SELECT token FROM name_typo WHERE key = :k" if db.is_sqlite else
           "SELECT DISTINCT token FROM name_vocab WHERE keys @> ARRAY[CAST(:k AS text)]")
    with db.engine.connect() as c:
        return set(c.execute(text(sql), {"k": key}).scalars())


def _names(db: Database, query: str) -> list[str]:
    ids, _scores = search_names(db, query, limit=5)
    with db.engine.connect() as c:
        names = dict(c.execute(select(Entry.id, Entry.name).where(Entry.id.in_(ids))).all()) if ids else {}
    return [names[i] for i in ids]


def _sheet(names: list[str]) -> bytes:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["Model Name", "Civitai URL"])
    for i, name in enumerate(names):
        w.writerow([name, f"https://civitai.com/models/{700000 + i}?modelVersionId={800000 + i}"])
    return out.getvalue().encode()


def test_every_write_path_keeps_the_index(anydb):
    db = anydb
    bank = create_bank(db, "names")
    # an ORM row, as `bank add` and the tests' own fixtures write them
    with db.session() as s:
        s.add(Entry(bank_id=bank.id, key="k1", name="Quorvin Thalassa v2", name_norm="quorvin thalassa v2"))
    vocab = _vocab(db)
    assert {"quorvin", "thalassa", "v2"} <= set(vocab)
    assert _typo_tokens(db, "qorvin") == {"quorvin"}  # "quorvin" less its "u": one edit away
    assert _typo_tokens(db, "v") == set()  # words under four characters have no typo keys
    assert _names(db, "Quorvn Thalassa") == ["Quorvin Thalassa v2"]
    # the importer, past the SQLite bulk threshold (the per-row trigger is off, one GROUP BY instead)
    many = [f"Brindlewick Sorrel{k} LoRA" for k in range(fts.BULK_THRESHOLD + 200)]
    import_sheet(db, "names", parse_sheet(_sheet(many), name="many.csv"), "many.csv")
    vocab = _vocab(db)
    assert {"brindlewick", "sorrel7", "lora"} <= set(vocab)
    if db.is_sqlite:  # SQLite counts the names holding each word; PostgreSQL reads that from its statistics
        assert vocab["brindlewick"] == len(many) and vocab["quorvin"] == 1
    assert _names(db, "brindlewik sorrel7")[0] == "Brindlewick Sorrel7 LoRA"
    # a name changed by a Core UPDATE (edits, exchange imports): its new words come in
    with db.session() as s:
        eid = s.scalar(select(Entry.id).where(Entry.key == "k1"))
        s.execute(update(Entry).where(Entry.id == eid).values(name="Quorvin Ostrander",
                                                               name_norm=normalise_name("Quorvin Ostrander")))
    assert "ostrander" in _vocab(db)
    assert _names(db, "quorvin ostrandr") == ["Quorvin Ostrander"]


def test_the_migration_fills_the_index_from_the_entries_there_are(anydb):
    db = anydb
    _alembic(db, "0009_stream10m", down=True)
    with db.engine.begin() as c:
        assert "name_vocab" not in {r[0] for r in c.execute(text(
            "SELECT name FROM sqlite_master" if db.is_sqlite else
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"))}
        c.execute(text("INSERT INTO bank (id, name, created_at) VALUES (1, 'b', :t)"), {"t": NOW})
        for eid, name in ((1, "Maelis Dunmore v1"), (2, "Maelis Dunmore v2"), (3, "Corvel Ashgrove")):
            c.execute(text("INSERT INTO entry (id, bank_id, key, name, name_norm, created_at, updated_at) "
                           "VALUES (:i, 1, :k, :n, :nn, :t, :t)"),
                      {"i": eid, "k": f"n:{name}", "n": name, "nn": normalise_name(name), "t": NOW})
    _alembic(db, "head", down=False)
    vocab = _vocab(db)
    assert {"maelis", "dunmore", "v1", "v2", "corvel", "ashgrove"} <= set(vocab)
    if db.is_sqlite:
        assert vocab["maelis"] == 2
    assert _typo_tokens(db, "dunmre") == {"dunmore"}
    assert set(_names(db, "maelis dunmroe")[:2]) == {"Maelis Dunmore v1", "Maelis Dunmore v2"}
    _alembic(db, "0009_stream10m", down=True)  # and back
    _alembic(db, "head", down=False)


def test_postgres_writers_adding_the_same_new_word_do_not_wait_on_each_other():
    db = fresh_pg()
    create_bank(db, "names")
    engine = create_engine(PG)
    insert = text("INSERT INTO entry (bank_id, key, name, name_norm, created_at, updated_at, status) "
                  "VALUES (1, :k, :n, :nn, now(), now(), 'active')")
    try:
        with engine.connect() as first, engine.connect() as second:
            first.begin()
            first.execute(insert, {"k": "a", "n": "Yarrowind Pell", "nn": "yarrowind pell"})
            second.begin()
            second.exec_driver_sql("SET LOCAL lock_timeout = '2s'")  # a wait on the first would fail here
            second.execute(insert, {"k": "b", "n": "Yarrowind Quell", "nn": "yarrowind quell"})
            second.commit()
            first.commit()
        assert set(_names(db, "yarowind")) == {"Yarrowind Pell", "Yarrowind Quell"}
    finally:
        engine.dispose()
        db.engine.dispose()


def test_postgres_importer_adds_the_words_the_trigger_would():
    """The bulk importer adds its names' words itself (the insert trigger skips its statements,
    nameindex.PG_WRITER_ADDS_WORDS): the vocabulary and typo keys are the trigger's, row for row, for names
    with repeated and odd spacing, words under four characters, digits only, a name a later row of the
    same sheet fills in (a merge before the COPY), a word longer than a name may be, and a word already
    banked."""
    names = ["Vellorin Ashcombe", "vellorin  ASHCOMBE v2", "Ix 12345 Orrowyn", "Caldrith_Mossveil-XL",
             "Émeric Dûnhallow LoRA", "a b c", "Tessaly Varnholt " * 3, "Quorvin Thalassa",
             # one word longer than a name may be (cut to the column's 500 characters), incompressible
             "Ylvar " + "".join(chr(97 + (i * i * 7 + i) % 26) for i in range(2000))]
    rows = [[n, f"https://civitai.com/models/{700000 + i}?modelVersionId={800000 + i}"] for i, n in enumerate(names)]
    rows.append(["", "https://civitai.com/models/700100?modelVersionId=800100"])  # no name yet ...
    rows.append(["Brannoch Weatherly", "https://civitai.com/models/700100?modelVersionId=800100"])  # ... filled in
    out = io.StringIO()
    csv.writer(out).writerows([["Model Name", "Civitai URL"], *rows])

    def vocab(db: Database) -> set[tuple[str, tuple[str, ...]]]:
        with db.engine.connect() as c:
            return {(t, tuple(sorted(k or ()))) for t, k in c.execute(text("SELECT token, keys FROM name_vocab"))}

    imported, by_trigger = fresh_pg(), None
    try:
        bank = create_bank(imported, "names")
        with imported.session() as s:  # a word already banked, through the trigger
            s.add(Entry(bank_id=bank.id, key="k0", name="Quorvin", name_norm="quorvin"))
        summary = import_sheet(imported, "names", parse_sheet(out.getvalue().encode(), name="odd.csv"), "odd.csv",
                               batch_rows=4)
        assert summary.added == len(names) + 1 and summary.updated == 0
        got = vocab(imported)
        with imported.engine.connect() as c:
            stored = c.execute(select(Entry.name_norm).where(Entry.key != "k0")).scalars().all()
            duplicates = c.execute(text("SELECT count(*) - count(DISTINCT token) FROM name_vocab")).scalar()
        assert duplicates == 0  # each word once, though several batches and the earlier entry hold it
        imported.engine.dispose()
        by_trigger = fresh_pg()  # the same names written by plain INSERTs: the trigger adds the words
        create_bank(by_trigger, "names")
        with by_trigger.engine.begin() as c:
            c.execute(text("INSERT INTO entry (bank_id, key, name, name_norm, created_at, updated_at, status) "
                           "VALUES (1, :k, :n, :n, now(), now(), 'active')"),
                      [{"k": f"k{i}", "n": n} for i, n in enumerate(["quorvin", *stored])])
        assert got == vocab(by_trigger)
        assert {"tessaly", "brannoch", "weatherly", "12345"} <= {t for t, _k in got}
        with by_trigger.engine.begin() as c:  # and the importer's words are its own: with the setting on,
            c.exec_driver_sql(f"SET LOCAL {nameindex.PG_WRITER_ADDS_WORDS} = 'on'")  # the trigger adds none
            c.execute(text("INSERT INTO entry (bank_id, key, name, name_norm, created_at, updated_at, status) "
                           "VALUES (1, 'kz', 'Zindrel', 'zindrel', now(), now(), 'active')"))
        assert "zindrel" not in {t for t, _k in vocab(by_trigger)}
    finally:
        imported.engine.dispose()
        if by_trigger is not None:
            by_trigger.engine.dispose()
