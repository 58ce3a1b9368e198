"""Bulk import by COPY on PostgreSQL (bank/importer.py `_Copy`, on a thread while the next batch is read): the same entries, signals and
row report as the SQLite path for the same sheets; all or nothing when the COPY fails part-way or the
connection to the server is lost mid-import; migration 0008 up and down on both databases.

Needs MIRRORWATCH_TEST_PG (tests/support/pgdb.py)."""

from __future__ import annotations

import hashlib
import threading

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, select, text

from conftest import sample
from mirrorwatch.bank import importer
from mirrorwatch.bank.importer import ImportRejected
from mirrorwatch.bank.sheets import parse_sheet
from mirrorwatch.errors import DatabaseUnavailable
from mirrorwatch.services.banks import create_bank
from mirrorwatch.services.imports import import_file, import_sheet
from mirrorwatch.services.lookup import lookup
from mirrorwatch.store.db import MIGRATIONS, Database
from mirrorwatch.store.models import Entry, EntrySignal, ImportRun
from pgdb import PG, fresh_pg
from pytest_testhub import hf_env, testhub  # noqa: F401


def _sheet(n: int, *, start: int = 0, bad_every: int = 0) -> bytes:
    """n rows of invented models: SHA256, AutoV2-only and URL-only rows, duplicates, and (bad_every)
    rows with a malformed hash."""
    lines = ["Model Name,Civitai URL,SHA256,AutoV2,Notes"]
    for i in range(start, start + n):
        sha = hashlib.sha256(f"copy-{i}".encode()).hexdigest()
        name = f"Invented Person{i} {'LoRA' if i % 3 else 'v2'}"
        url = f"https://civitai.com/models/{700000 + i}?modelVersionId={800000 + i}" if i % 5 else ""
        if bad_every and i % bad_every == 0:
            lines.append(f"{name},{url},{sha[:-3]}zz,,bad row")
        elif i % 7 == 0:
            lines.append(f"{name},{url},,{sha[:10].upper()},autov2 only")
        else:
            lines.append(f'"{name}",{url},{sha},,"note, {i}"')
        if i % 11 == 0:
            lines.append(lines[-1])  # a duplicate row
    return ("\n".join(lines) + "\n").encode()


def _snapshot(db: Database) -> tuple[list, list, list]:
    """Everything an import writes, without ids and times (they differ by engine)."""
    with db.session() as s:
        key_of = dict(s.execute(select(Entry.id, Entry.key)).all())
        entries = sorted(s.execute(select(Entry.key, Entry.name, Entry.name_norm, Entry.url, Entry.civitai_model_id,
                                          Entry.civitai_version_id, Entry.kind, Entry.notes, Entry.imported_from,
                                          Entry.row)).all())
        signals = sorted((key_of[e], f, v, o) for e, f, v, o in
                         s.execute(select(EntrySignal.entry_id, EntrySignal.form, EntrySignal.value, EntrySignal.origin)))
        runs = [(r.filename, r.counts, r.rejected) for r in s.scalars(select(ImportRun).order_by(ImportRun.id))]
    return [tuple(e) for e in entries], signals, runs


def _import_all(db: Database) -> list[dict]:
    create_bank(db, "copy")
    out = []
    with pytest.raises(ImportRejected):
        import_sheet(db, "copy", parse_sheet(_sheet(400, bad_every=37), name="a.csv"), "a.csv")
    out.append(import_sheet(db, "copy", parse_sheet(_sheet(400, bad_every=37), name="a.csv"), "a.csv",
                            skip_bad=True).to_dict())
    # overlapping rows: merges (new hash forms, filled fields), duplicates, and new entries
    out.append(import_sheet(db, "copy", parse_sheet(_sheet(300, start=250), name="b.csv"), "b.csv").to_dict())
    out.append(import_file(db, "copy", sample("removed-models-sample.csv"), skip_bad=True).to_dict())
    out.append(import_file(db, "copy", sample("civitai-model-version.json")).to_dict())
    for d in out:
        d.pop("import_id")
    return out


@pytest.fixture
def pg() -> Database:
    db = fresh_pg()
    yield db
    db.engine.dispose()


def test_copy_import_matches_the_sqlite_path(pg, tmp_path, monkeypatch):
    copied = []
    real_copy = importer.copy_raw
    monkeypatch.setattr(importer, "copy_raw", lambda raw, t, rows: (copied.append((t.name, len(rows))),
                                                                     real_copy(raw, t, rows)))
    lite = Database.open(str(tmp_path / "lite.db"))
    assert _import_all(pg) == _import_all(lite)
    assert _snapshot(pg) == _snapshot(lite)
    assert ("entry", 389) in copied and ("entry_signal", 389) in copied  # the COPY path ran
    # and the rows COPY wrote are found the usual ways
    sha = hashlib.sha256(b"copy-1").hexdigest()
    for q in (sha, sha[:10], "invented person1 lora", "https://civitai.com/models/700001?modelVersionId=800001"):
        assert lookup(pg, q).results[0].name == "Invented Person1 LoRA", q


def test_the_next_batch_is_read_while_the_copy_runs(pg, monkeypatch):
    """The COPY of a batch runs beside the reading and checking of the next one: here the first batch's
    COPY does not start until the importer has taken up the second batch (an importer that waited for
    each COPY would stall, and fail the wait below). Then everything is in, as without the overlap."""
    create_bank(pg, "copy")
    real_keys, real_copy = importer._BankIndex.keys_to_look_up, importer.copy_raw
    batches: list[int] = []
    next_taken = threading.Event()

    def keys(self, records):
        batches.append(len(records))
        if len(batches) == 2:
            next_taken.set()
        return real_keys(self, records)

    def copy(raw, table, rows):
        if table.name == "entry" and len(batches) <= 1:
            assert next_taken.wait(30), "the importer waited for the first COPY before reading on"
        return real_copy(raw, table, rows)

    monkeypatch.setattr(importer._BankIndex, "keys_to_look_up", keys)
    monkeypatch.setattr(importer, "copy_raw", copy)
    summary = import_sheet(pg, "copy", parse_sheet(_sheet(120, start=1000), name="overlap.csv"), "overlap.csv",
                           batch_rows=40)
    assert len(batches) >= 3 and next_taken.is_set()
    entries, signals, _runs = _snapshot(pg)
    assert summary.added == len(entries) and len(signals) == summary.added


def test_retroactive_matches_of_every_batch_on_postgres(pg, testhub, tmp_path):  # noqa: F811
    """A model banked after the sweep finds the re-upload swept before, on PostgreSQL too, whichever
    batch of the sheet holds it: the new values of a batch reach matching once its COPY is in (the
    first and the last batch here, the last one after the loop)."""
    from mirrorwatch.testhub import Hub, generate_repos
    from sweepfixtures import bank_sha, hf, make_bank, match_count, match_pairs, planted, sweep

    make_bank(pg, 2)
    sweep(pg, hf(testhub(Hub(generate_repos(30, seed=3, planted=planted(5))))))
    assert match_count(pg) == 2
    rows = [f"Late Person,{bank_sha(3)},"] + [f"Filler Person{i},{hashlib.sha256(b'f%d' % i).hexdigest()},"
                                              for i in range(5)] + [f"Short Hash Person,,{bank_sha(4)[:10]}"]
    sheet = tmp_path / "late.csv"
    sheet.write_text("name,sha256,autov2\n" + "\n".join(rows) + "\n")
    summary = import_file(pg, "bank", sheet, batch_rows=3)
    assert summary.matches == 2 and match_count(pg) == 4
    assert {(n, r) for n, r, _ in match_pairs(pg)} >= {("Late Person", "reuploader-0/lora-3"),
                                                        ("Short Hash Person", "reuploader-1/lora-4")}


def test_a_failure_mid_copy_leaves_nothing(pg, monkeypatch):
    create_bank(pg, "copy")
    import_sheet(pg, "copy", parse_sheet(_sheet(50), name="first.csv"), "first.csv")
    before = _snapshot(pg)
    real_copy = importer.copy_raw

    def poisoned(raw, table, rows):
        if table.name == "entry_signal":  # the entries are in; a bad value half-way through the signals
            rows = list(rows)
            rows.insert(len(rows) // 2, {**rows[0], "created_at": "not a time"})
        return real_copy(raw, table, rows)

    monkeypatch.setattr(importer, "copy_raw", poisoned)
    with pytest.raises(Exception, match="timestamp"):
        import_sheet(pg, "copy", parse_sheet(_sheet(500, start=100), name="big.csv"), "big.csv")
    assert _snapshot(pg) == before
    monkeypatch.setattr(importer, "copy_raw", real_copy)
    assert import_sheet(pg, "copy", parse_sheet(_sheet(500, start=100), name="big.csv"), "big.csv").added == 500


def test_connection_lost_mid_import_says_so_and_writes_nothing(pg, monkeypatch):
    """The server going away mid-import (a restart, as the client sees it: its backend ends) after the
    entries are COPYed and before the signals are: a clear message, nothing half-written, and the same
    import runs again afterwards. The test ends only its own backend (never restarts the shared server)."""
    create_bank(pg, "copy")
    real_copy = importer.copy_raw
    killer = create_engine(PG)

    def cut(raw, table, rows):
        if table.name == "entry_signal":
            pid = raw.execute("SELECT pg_backend_pid()").fetchone()[0]
            with killer.begin() as conn:
                conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        return real_copy(raw, table, rows)

    monkeypatch.setattr(importer, "copy_raw", cut)
    with pytest.raises(DatabaseUnavailable, match="nothing was imported"):
        import_sheet(pg, "copy", parse_sheet(_sheet(300), name="cut.csv"), "cut.csv")
    killer.dispose()
    entries, signals, runs = _snapshot(pg)
    assert (entries, signals, runs) == ([], [], [])
    monkeypatch.setattr(importer, "copy_raw", real_copy)
    assert import_sheet(pg, "copy", parse_sheet(_sheet(300), name="cut.csv"), "cut.csv").added == 300


def test_cli_reports_a_lost_database_without_a_traceback(pg, monkeypatch, capsys, tmp_path):
    from mirrorwatch.cli import main

    create_bank(pg, "copy")
    monkeypatch.setattr(importer, "copy_raw", _raise_lost)  # raised on the COPY's thread
    path = tmp_path / "lost.csv"
    path.write_bytes(_sheet(20))
    monkeypatch.setattr("sys.argv", ["mirrorwatch", "--db", PG, "bank", "import", "--bank", "copy", str(path)])
    with pytest.raises(SystemExit) as stop:
        main.main()
    assert stop.value.code == DatabaseUnavailable.exit_code
    err = capsys.readouterr().err
    assert "nothing was imported" in err and "server closed the connection" in err and "Traceback" not in err


def _raise_lost(*_a, **_k):
    import psycopg

    raise psycopg.OperationalError("server closed the connection unexpectedly")


def _revision(url: str) -> str | None:
    eng = create_engine(url)
    with eng.connect() as conn:
        rev = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    eng.dispose()
    return rev


def _head() -> str:
    """The newest revision of the migration chain (later migrations follow 0008_pgscale)."""
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(cfg).get_current_head()


def _alembic(db: Database, action: str, rev: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        getattr(command, action)(cfg, rev)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_migration_0008_up_and_down(backend, tmp_path):
    db = Database.open(str(tmp_path / "m.db")) if backend == "sqlite" else fresh_pg()
    index = "SELECT count(*) FROM pg_indexes WHERE indexname = 'ix_entry_name_trgm'"
    assert _revision(db.url) == _head()
    if backend == "postgres":
        with db.engine.connect() as conn:
            assert conn.execute(text(index)).scalar() == 1
    _alembic(db, "downgrade", "0008_rays3")  # the revision before 0008_pgscale
    assert _revision(db.url) == "0008_rays3"
    if backend == "postgres":
        with db.engine.connect() as conn:
            assert conn.execute(text(index)).scalar() == 0
    else:
        assert Database.open(db.url, migrate=False).has_fts()  # FTS5 untouched on SQLite
    _alembic(db, "upgrade", "head")
    assert _revision(db.url) == _head()
    again = Database.open(db.url, migrate=False)
    assert again.has_trgm() == (backend == "postgres")
    create_bank(again, "m")
    import_sheet(again, "m", parse_sheet(_sheet(30), name="m.csv"), "m.csv")
    assert lookup(again, "invented persn12").results[0].name == "Invented Person12 v2"
    db.engine.dispose()
    again.engine.dispose()


def test_without_pg_trgm_the_substring_path_answers(pg):
    """A server where pg_trgm cannot be created (the migration warns and goes on): substring scans."""
    with pg.engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_entry_name_trgm"))
    db = Database.open(pg.url)
    assert not db.has_trgm()
    create_bank(db, "plain")
    import_sheet(db, "plain", parse_sheet(_sheet(30), name="p.csv"), "p.csv")
    assert lookup(db, "invented person12").results[0].name == "Invented Person12 v2"
    db.engine.dispose()


def test_concurrent_writer_between_id_reservations(pg):
    """Another writer taking entry ids while the import reserves its block: the ids stay unique."""
    create_bank(pg, "copy")
    create_bank(pg, "other")
    stop = threading.Event()

    def other_writer():
        n = 0
        while not stop.is_set():
            n += 1
            import_sheet(pg, "other", parse_sheet(_sheet(3, start=10_000 + 3 * n), name="o.csv"), "o.csv")

    t = threading.Thread(target=other_writer)
    t.start()
    try:
        for k in range(5):
            import_sheet(pg, "copy", parse_sheet(_sheet(200, start=200 * k), name="c.csv"), "c.csv")
    finally:
        stop.set()
        t.join()
    with pg.session() as s:
        assert s.scalar(select(Entry.id).where(Entry.key.like("v:%")).limit(1)) is not None
        assert s.execute(text("SELECT count(*) FROM entry e JOIN bank b ON b.id = e.bank_id "
                              "WHERE b.name = 'copy'")).scalar() == 1000
