"""The streaming importer (issue 11): a sheet read from its file and written a small batch at a time
gives exactly what one batch of the whole sheet gives (entries, signals, row report, counts), on SQLite
and PostgreSQL; a failure or a SIGKILL part-way through, after batches are written, leaves the bank as
it was; JSONL sheets stream too. Real SQLite files, real PostgreSQL (MIRRORWATCH_TEST_PG)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap

import pytest
from sqlalchemy import create_engine, func, select, text

from mirrorwatch.bank import importer
from mirrorwatch.bank.importer import ImportRejected
from mirrorwatch.bank.sheets import open_sheet, parse_sheet
from mirrorwatch.errors import DatabaseUnavailable, SheetError
from mirrorwatch.services.banks import create_bank
from mirrorwatch.services.imports import import_file, import_sheet
from mirrorwatch.services.lookup import lookup
from mirrorwatch.store.db import Database
from mirrorwatch.store.models import Entry, EntrySignal, ImportRun
from pgdb import PG, fresh_pg


def _sha(i: int) -> str:
    return hashlib.sha256(f"stream-{i}".encode()).hexdigest()


def _sheet(n: int, *, start: int = 0, bad_at: tuple[int, ...] = (), blake3: bool = False) -> bytes:
    """Invented models with every way a row can meet an entry: repeated far apart (so in another batch),
    the same file under another version, a model id alone merging into a versioned entry, names alone,
    AutoV2-only rows, (bad_at) rows with a malformed hash and (blake3) a BLAKE3 column, new to the bank."""
    lines = ["Model Name,Civitai URL,SHA256,AutoV2,Model ID,Notes"]
    for i in range(start, start + n):
        name = f"Invented Stream{i % 97} Model{i}"
        url = f"https://civitai.com/models/{900000 + i // 3}?modelVersionId={950000 + i}"
        if i in bad_at:
            lines.append(f"{name},{url},{_sha(i)[:-2]}zz,,,bad")
        elif i % 13 == 0:
            lines.append(f"Name Only {i % 26},,,,,name only")  # merges by name with the one 13 rows on
        elif i % 11 == 0:
            lines.append(f"{name},,,{_sha(i)[:10]},,autov2 only")
        elif i % 7 == 0:  # the file of row i-1 listed again under this row's version: a separate entry
            lines.append(f"{name},{url},{_sha(i - 1)},,,relisted")
        elif i % 5 == 0:  # a model id with a hash, no version: merges into the versioned entry of that file
            lines.append(f"{name},,{_sha(i - 2)},,{900000 + (i - 2) // 3},model only")
        else:
            lines.append(f'"{name}",{url},{_sha(i)},,,"note, {i}"')
        if i % 17 == 0:
            lines.append(lines[-1])  # the same row twice in a row
    lines += lines[1:40:3]  # and again at the end, many batches later
    if blake3:
        lines = [f"{ln},BLAKE3" if k == 0 else f"{ln},{hashlib.sha256(ln.encode()).hexdigest()}"
                 for k, ln in enumerate(lines)]
    return ("\n".join(lines) + "\n").encode()


def _snapshot(db: Database) -> tuple[list, list, list]:
    with db.session() as s:
        key_of = dict(s.execute(select(Entry.id, Entry.key)).all())
        entries = sorted(tuple(r) for r in s.execute(select(
            Entry.key, Entry.name, Entry.name_norm, Entry.url, Entry.civitai_model_id, Entry.civitai_version_id,
            Entry.notes, Entry.imported_from, Entry.row, Entry.seq)))
        signals = sorted((key_of[e], f, v, o) for e, f, v, o in
                         s.execute(select(EntrySignal.entry_id, EntrySignal.form, EntrySignal.value, EntrySignal.origin)))
        runs = [(r.filename, r.counts, r.rejected) for r in s.scalars(select(ImportRun).order_by(ImportRun.id))]
    return entries, signals, runs


def _imports(db: Database, tmp_path, *, batch_rows: int | None, streamed: bool) -> list[dict]:
    """Three imports into one bank (the second and third overlap the first), a small batch or one."""
    create_bank(db, "s")
    out = []
    for name, data, bad in (("a.csv", _sheet(300, bad_at=(44, 250)), True), ("b.csv", _sheet(200, start=150, blake3=True), False),
                            ("c.csv", _sheet(120, start=30), False)):
        if streamed:
            path = tmp_path / db.engine.dialect.name / name
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(data)
            summary = import_file(db, "s", path, skip_bad=bad, batch_rows=batch_rows)
        else:
            summary = import_sheet(db, "s", parse_sheet(data, name=name), name, skip_bad=bad, batch_rows=batch_rows)
        d = summary.to_dict()
        d.pop("import_id")
        out.append(d)
    return out


def _pair(backend: str, tmp_path, tag: str) -> Database:
    if backend == "sqlite":
        return Database.open(str(tmp_path / f"{tag}.db"))
    return fresh_pg()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_small_batches_from_the_file_equal_one_batch_in_memory(backend, tmp_path):
    whole = _pair(backend, tmp_path, "whole")
    report_whole = _imports(whole, tmp_path, batch_rows=1_000_000, streamed=False)
    snap_whole = _snapshot(whole)
    whole.engine.dispose()
    small = _pair(backend, tmp_path, "small")
    report_small = _imports(small, tmp_path, batch_rows=7, streamed=True)
    assert report_small == report_whole
    assert _snapshot(small) == snap_whole
    a = report_whole[0]
    assert a["rejected"] == 2 and a["added"] > 200 and a["duplicates"] > 20 and report_whole[1]["updated"] > 0
    # what was written is found the usual ways (the name index got every entry)
    assert lookup(small, _sha(1)).results[0].name == "Invented Stream1 Model1"
    assert any(v.name == "Invented Stream8 Model8" for v in lookup(small, "invented stream8 model8").results)
    small.engine.dispose()


def test_a_bank_too_big_for_the_key_filter_is_looked_up_instead(tmp_path, monkeypatch):
    """Banks over PRELOAD_MAX entries: every key of every batch is looked up in the database."""
    plain = Database.open(str(tmp_path / "plain.db"))
    expected = (_imports(plain, tmp_path, batch_rows=9, streamed=True), _snapshot(plain))
    monkeypatch.setattr(importer._BankIndex, "PRELOAD_MAX", -1)
    big = Database.open(str(tmp_path / "big.db"))
    assert (_imports(big, tmp_path, batch_rows=9, streamed=True), _snapshot(big)) == expected


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_failure_after_some_batches_leaves_the_bank_as_it_was(backend, tmp_path, monkeypatch):
    db = _pair(backend, tmp_path, "fail")
    create_bank(db, "s")
    import_sheet(db, "s", parse_sheet(_sheet(60), name="first.csv"), "first.csv")
    before = _snapshot(db)
    real_write = importer._Writer.write
    calls = []

    def failing(self, records):
        calls.append(len(records))
        if len(calls) == 4:
            raise RuntimeError("the disk is full (simulated)")
        return real_write(self, records)

    monkeypatch.setattr(importer._Writer, "write", failing)
    path = tmp_path / "big.csv"
    path.write_bytes(_sheet(200, start=40))
    with pytest.raises(RuntimeError, match="simulated"):
        import_file(db, "s", path, batch_rows=10)
    assert calls == [10, 10, 10, 10]  # three batches were written before the failure
    assert _snapshot(db) == before
    monkeypatch.setattr(importer._Writer, "write", real_write)
    if backend == "sqlite":  # the import took the name index's trigger out: it is back
        with db.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE name = 'entry_fts_ai'").first()
    assert import_file(db, "s", path, batch_rows=10).committed
    assert lookup(db, _sha(46)).results[0].name == "Invented Stream46 Model46"
    assert any(v.name == "Invented Stream46 Model46" for v in lookup(db, "invented stream46 model46").results)
    db.engine.dispose()


# "0": read by the sheet reader process (bank/reader.py), which must fail the same way
READERS = pytest.mark.parametrize("reader", ["off", "0"], ids=["in-process", "reader-process"])


@READERS
def test_a_bad_row_far_down_rejects_the_whole_sheet(tmp_path, db, monkeypatch, reader):
    monkeypatch.setenv("MIRRORWATCH_IMPORT_READER_MIN_BYTES", reader)
    create_bank(db, "s")
    path = tmp_path / "late.csv"
    path.write_bytes(_sheet(150, bad_at=(3, 140)))
    before = _snapshot(db)
    with pytest.raises(ImportRejected) as refused:
        import_file(db, "s", path, batch_rows=10)
    s = refused.value.summary
    assert [r for r, _ in s.rejected] == [6, 151] and (s.added, s.updated, s.duplicates) == (0, 0, 0)
    assert _snapshot(db) == before


@READERS
def test_a_malformed_line_far_down_stops_the_import_with_nothing_written(tmp_path, db, monkeypatch, reader):
    """Lines after the first batches are read while earlier batches are already written: a line that
    cannot be read is a clear SheetError and the transaction holding those batches is rolled back."""
    monkeypatch.setenv("MIRRORWATCH_IMPORT_READER_MIN_BYTES", reader)
    create_bank(db, "s")
    path = tmp_path / "broken.jsonl"
    path.write_bytes(b"\n".join(b'{"name": "Model %d", "sha256": "%s"}' % (i, _sha(i).encode()) for i in range(50))
                     + b'\n{"name": "Model 50", "sha256": \n')
    with pytest.raises(SheetError, match="line 51 of the JSONL sheet"):
        import_file(db, "s", path, batch_rows=10)
    assert _snapshot(db) == ([], [], [])
    path.write_bytes(b"\n".join(b'{"name": "Model %d", "sha256": "%s"}' % (i, _sha(i).encode()) for i in range(50)))
    assert import_file(db, "s", path, batch_rows=10).added == 50


SIGKILL_CHILD = textwrap.dedent("""
    import os, signal, sys
    from mirrorwatch.bank import importer
    real = importer._Writer.write
    calls = []
    def write(self, records):
        calls.append(1)
        if len(calls) == 5:  # four batches are written: die without a word
            os.kill(os.getpid(), signal.SIGKILL)
        return real(self, records)
    importer._Writer.write = write
    importer.BATCH_ROWS = 25
    sys.argv = ["mirrorwatch", "--db", sys.argv[1], "bank", "import", sys.argv[2], "--bank", "s"]
    from mirrorwatch.cli.main import main
    main()
""")


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_sigkill_mid_import_leaves_the_bank_as_it_was(backend, tmp_path):
    db = _pair(backend, tmp_path, "kill")
    create_bank(db, "s")
    import_sheet(db, "s", parse_sheet(_sheet(40), name="first.csv"), "first.csv")
    before = _snapshot(db)
    path = tmp_path / "killed.csv"
    path.write_bytes(_sheet(400, start=20))
    proc = subprocess.run([sys.executable, "-c", SIGKILL_CHILD, db.url, str(path)], capture_output=True,
                          env={**os.environ}, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    db.engine.dispose()
    again = Database.open(db.url)
    assert _snapshot(again) == before
    assert import_file(again, "s", path).committed
    assert lookup(again, _sha(391)).results[0].name == "Invented Stream3 Model391"
    again.engine.dispose()


def test_postgres_lost_after_some_batches_says_so_and_writes_nothing(tmp_path, monkeypatch):
    pg = fresh_pg()
    create_bank(pg, "s")
    before = _snapshot(pg)
    real_copy = importer.copy_raw
    killer = create_engine(PG)
    copies = []

    def cut(raw, table, rows):
        copies.append(table.name)
        if copies.count("entry") == 3 and table.name == "entry_signal":
            pid = raw.execute("SELECT pg_backend_pid()").fetchone()[0]
            with killer.begin() as conn:
                conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        return real_copy(raw, table, rows)

    monkeypatch.setattr(importer, "copy_raw", cut)
    path = tmp_path / "cut.csv"
    path.write_bytes(_sheet(200))
    with pytest.raises(DatabaseUnavailable, match="nothing was imported"):
        import_file(pg, "s", path, batch_rows=20)
    killer.dispose()
    assert copies.count("entry") == 3
    assert _snapshot(pg) == before
    pg.engine.dispose()


def _jsonl(n: int) -> bytes:
    rows = [f'{{"Model Name": "Invented Json{i}", "Civitai URL": "https://civitai.com/models/{800 + i}'
            f'?modelVersionId={8000 + i}", "SHA256": "{_sha(i)}", "Notes": null}}' for i in range(n)]
    return ("\n".join(rows) + "\n\n").encode()


def test_jsonl_streams_like_the_same_csv(tmp_path):
    jsonl = tmp_path / "bank.jsonl"
    jsonl.write_bytes(_jsonl(120))
    csv = tmp_path / "bank.csv"
    csv.write_text("Model Name,Civitai URL,SHA256,Notes\n" + "".join(
        f"Invented Json{i},https://civitai.com/models/{800 + i}?modelVersionId={8000 + i},{_sha(i)},\n"
        for i in range(120)))
    with open_sheet(jsonl) as sheet:
        assert sheet.fmt == "jsonl" and sheet.streamed
        assert sheet.mapping == {"name": "Model Name", "url": "Civitai URL", "notes": "Notes", "sha256": "SHA256"}
    one = Database.open(str(tmp_path / "j.db"))
    two = Database.open(str(tmp_path / "c.db"))
    for d in (one, two):
        create_bank(d, "s")
    a = import_file(one, "s", jsonl, batch_rows=16)
    b = import_file(two, "s", csv, batch_rows=16)
    assert (a.rows, a.added, a.fmt) == (120, 120, "jsonl") and (b.rows, b.added) == (120, 120)
    strip = lambda snap: [e[:6] for e in snap[0]]  # noqa: E731 - rows are numbered per format
    assert strip(_snapshot(one)) == strip(_snapshot(two))


def test_jsonl_refuses_a_hash_key_first_seen_late(tmp_path, db):
    create_bank(db, "s")
    lines = [f'{{"name": "Invented Late{i}", "sha256": "{_sha(i)}"}}' for i in range(1100)]
    lines.append(f'{{"name": "Invented Late Extra", "sha256": "{_sha(5000)}", "AutoV2": "{_sha(5000)[:10]}"}}')
    path = tmp_path / "late.jsonl"
    path.write_text("\n".join(lines))
    with pytest.raises(SheetError, match="line 1101 .* key 'AutoV2'"):
        import_file(db, "s", path, batch_rows=100)
    assert _snapshot(db)[0] == []


def test_a_json_document_named_jsonl_is_read_as_json(tmp_path, db):
    create_bank(db, "s")
    path = tmp_path / "pretty.jsonl"
    path.write_text('[\n  {"name": "Invented Pretty", "sha256": "' + _sha(1) + '"}\n]\n')
    s = import_file(db, "s", path)
    assert (s.fmt, s.added) == ("json", 1)


def test_a_name_given_batches_later_reaches_the_name_index_once(tmp_path, db):
    """Entries of an early batch (written with the name index's bulk path) that a later row names: the
    index holds each entry once, with its name (FTS5's own integrity check against the entry table)."""
    create_bank(db, "s")
    lines = ["Model Name,Civitai URL,SHA256"]
    lines += [f",https://civitai.com/models/{70000 + i}?modelVersionId={71000 + i},{_sha(i)}" for i in range(2200)]
    lines += [f"Invented Late Name{i},https://civitai.com/models/{70000 + i}?modelVersionId={71000 + i},"
              for i in range(0, 2200, 100)]
    path = tmp_path / "names-later.csv"
    path.write_text("\n".join(lines) + "\n")
    s = import_file(db, "s", path, batch_rows=1000)
    assert (s.added, s.duplicates, s.updated) == (2200, 22, 0)
    with db.engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO entry_fts(entry_fts, rank) VALUES ('integrity-check', 1)")
        assert conn.exec_driver_sql("SELECT count(*) FROM entry_fts WHERE entry_fts MATCH 'name1500'").scalar() == 1
    assert lookup(db, "invented late name1500").results[0].name == "Invented Late Name1500"


def test_a_checksum_list_streams_like_it_reads_whole(tmp_path):
    """SHA256SUMS (GNU and BSD lines, a line of another digest) read a line at a time with small batches:
    the same report and rows as the list read whole."""
    lines = [f"{_sha(i)}  models/invented-{i}.safetensors" if i % 3 else f"SHA256 (invented-{i}.ckpt) = {_sha(i)}"
             for i in range(300)]
    lines[150] = f"{_sha(150)[:32]}  invented-md5.safetensors"
    data = ("\n".join(lines) + "\n").encode()
    path = tmp_path / "SHA256SUMS"
    path.write_bytes(data)
    whole = Database.open(str(tmp_path / "whole.db"))
    streamed = Database.open(str(tmp_path / "streamed.db"))
    for d in (whole, streamed):
        create_bank(d, "s")
    a = import_sheet(whole, "s", parse_sheet(data, name="SHA256SUMS"), "SHA256SUMS", skip_bad=True).to_dict()
    b = import_file(streamed, "s", path, skip_bad=True, batch_rows=16).to_dict()
    assert a.pop("import_id") and b.pop("import_id")
    assert a == b and (a["format"], a["added"], a["rejected"]) == ("sha256sum", 299, 1)
    assert _snapshot(whole) == _snapshot(streamed)


def test_a_large_postgres_import_leaves_statistics_and_gin_lists_up_to_date(tmp_path, monkeypatch):
    """After an import of REFRESH_AFTER_ROWS entries or more, entry and name_vocab are analysed and the
    GIN indexes' pending lists merged at once, not when autovacuum comes by (at 10M rows, name search
    p99 was 15 s before that and 37 ms after)."""
    db = fresh_pg()
    create_bank(db, "s")
    (tmp_path / "s.csv").write_bytes(_sheet(60))
    monkeypatch.setattr(importer, "REFRESH_AFTER_ROWS", 10)
    with db.engine.connect() as conn:
        conn.execute(text("ALTER INDEX ix_entry_name_tokens SET (fastupdate = on)"))  # so a pending list exists
        conn.commit()
    summary = import_file(db, "s", tmp_path / "s.csv")
    assert summary.added >= 10
    analysed: dict[str, object] = {}
    with db.engine.connect() as conn:
        for _ in range(50):  # the cumulative statistics are published shortly after the ANALYZE
            conn.execute(text("SELECT pg_stat_clear_snapshot()"))
            analysed = dict(conn.execute(text(
                "SELECT relname, last_analyze FROM pg_stat_user_tables WHERE relname IN ('entry', 'name_vocab')"
            )).all())
            conn.rollback()
            if len(analysed) == 2 and all(analysed.values()):
                break
            import time

            time.sleep(0.1)
        assert set(analysed) == {"entry", "name_vocab"} and all(analysed.values()), analysed
        assert conn.execute(text("SELECT count(*) FROM pg_stats WHERE tablename = 'name_vocab'")).scalar() > 0
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS pgstattuple"))  # PostgreSQL's contrib, in Debian's package
        pending = conn.execute(text("SELECT pending_pages, pending_tuples FROM pgstatginindex('ix_entry_name_tokens')"))
        assert tuple(pending.one()) == (0, 0)
    db.engine.dispose()


@pytest.mark.parametrize(("body", "said"), [
    (b'{"Model Name": "Invented A", "SHA256": "' + b"a" * 64 + b'"}\n[1, 2, 3]\n', "line 2 of the JSONL sheet is not a JSON object"),
    (b'{"Model Name": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n", "nested more than 64 levels deep"),
])
def test_hostile_jsonl_lines_are_refused_in_a_line(tmp_path, body, said):
    """A line that is not an object, and a line nested 100,000 deep (json's recursion limit), each get
    one clear SheetError and write nothing."""
    db = Database.open(str(tmp_path / "h.db"))
    create_bank(db, "h")
    path = tmp_path / "hostile.jsonl"
    path.write_bytes(body)
    with pytest.raises(SheetError, match=said):
        import_file(db, "h", path)
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Entry)) == 0


# --- a big sheet read by a second process (bank/reader.py) ----------------------------------------

@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_the_reader_process_gives_what_reading_in_process_gives(backend, tmp_path, monkeypatch):
    """Every way a row can meet an entry, rejected rows, a BLAKE3 column, small batches: the sheets read
    by `python -m mirrorwatch.bank.reader` give the same reports and the same rows as read in process."""
    monkeypatch.setenv("MIRRORWATCH_IMPORT_READER_MIN_BYTES", "off")
    here = _pair(backend, tmp_path, "here")
    expected = (_imports(here, tmp_path, batch_rows=7, streamed=True), _snapshot(here))
    here.engine.dispose()
    started = []
    real_popen = subprocess.Popen

    def popen(args, **kw):
        started.append(args[-1])
        return real_popen(args, **kw)

    monkeypatch.setenv("MIRRORWATCH_IMPORT_READER_MIN_BYTES", "0")
    monkeypatch.setattr(subprocess, "Popen", popen)
    there = _pair(backend, tmp_path, "there")
    assert (_imports(there, tmp_path, batch_rows=7, streamed=True), _snapshot(there)) == expected
    assert started == ["mirrorwatch.bank.reader"] * 3
    there.engine.dispose()


KILL_READER = textwrap.dedent("""
    import os, signal, sys
    from mirrorwatch.bank import importer, reader
    reader.QUEUED_FRAMES = 1  # little read ahead: the kill below is met before the sheet's end
    real = importer._Writer.write
    def write(self, records):
        if not getattr(write, "done", False):  # the first batch: kill the reader process
            write.done = True
            me = os.getpid()
            kids = [int(p) for t in os.listdir(f"/proc/{me}/task")
                    for p in open(f"/proc/{me}/task/{t}/children").read().split()]
            assert len(kids) == 1, kids
            os.kill(kids[0], signal.SIGKILL)
        return real(self, records)
    importer._Writer.write = write
    importer.BATCH_ROWS = 25
    sys.argv = ["mirrorwatch", "--db", sys.argv[1], "bank", "import", sys.argv[2], "--bank", "s"]
    from mirrorwatch.cli.main import main
    main()
""")


def test_the_reader_process_killed_mid_import_says_so_and_writes_nothing(tmp_path, db):
    create_bank(db, "s")
    import_sheet(db, "s", parse_sheet(_sheet(40), name="first.csv"), "first.csv")
    before = _snapshot(db)
    path = tmp_path / "killed.csv"
    path.write_bytes(_sheet(20_000, start=20))
    proc = subprocess.run([sys.executable, "-c", KILL_READER, db.url, str(path)], capture_output=True,
                          env={**os.environ, "MIRRORWATCH_IMPORT_READER_MIN_BYTES": "0"}, timeout=300)
    err = proc.stderr.decode()
    assert proc.returncode == 1, err[-2000:]
    assert "the process reading killed.csv stopped before the end of the sheet (killed by signal 9)" in err
    assert "nothing was imported" in err and "Traceback" not in err
    assert _snapshot(db) == before


def test_the_reader_process_stops_when_the_import_does(tmp_path):
    from mirrorwatch.bank import reader

    path = tmp_path / "big.csv"
    path.write_bytes(_sheet(20_000))
    with open_sheet(path) as sheet:
        columns, fmt = dict(sheet.mapping), sheet.fmt
    started = []
    real_popen = subprocess.Popen

    def popen(args, **kw):
        started.append(real_popen(args, **kw))
        return started[-1]

    subprocess.Popen = popen
    try:
        items = reader.child_records(path, mapping=None, encoding=None, fmt=fmt, columns=columns, origin="import:x")
        first = [next(items) for _ in range(10)]
    finally:
        subprocess.Popen = real_popen
    assert [r.row for r in first] == list(range(2, 12))
    child = started[0]
    assert child.poll() is None  # reading on, a few frames ahead
    items.close()  # what the importer does when it stops early (a failed write, a lost database)
    assert child.poll() is not None


def test_the_reader_process_refuses_a_sheet_that_changed_since_it_was_opened(tmp_path):
    from mirrorwatch.bank import reader

    path = tmp_path / "moving.csv"
    path.write_bytes(_sheet(30))
    with open_sheet(path) as sheet:
        columns, fmt = dict(sheet.mapping), sheet.fmt
    path.write_bytes(b"Name,URL,SHA256,AutoV2,Model ID,Notes\n" + _sheet(30).split(b"\n", 1)[1])  # renamed since
    with pytest.raises(SheetError, match="moving.csv changed after the import opened it"):
        list(reader.child_records(path, mapping=None, encoding=None, fmt=fmt, columns=columns, origin="import:x"))


@pytest.mark.parametrize("lookup_all", [False, True])
def test_ids_and_hashes_in_another_bank_are_not_merged(tmp_path, monkeypatch, lookup_all):
    """The importer looks Civitai ids and SHA256s up without the bank in the query (SQLite planned a read
    of the whole bank for `bank_id = ? AND civitai_version_id IN (...)`): rows of another bank that
    carry the same ids and hashes stay that bank's; this bank gets entries of its own."""
    if lookup_all:  # every key looked up in the database, as for a bank over PRELOAD_MAX entries
        monkeypatch.setattr(importer._BankIndex, "PRELOAD_MAX", -1)
    db = Database.open(str(tmp_path / "two.db"))
    path = tmp_path / "same.csv"
    path.write_bytes(_sheet(120))
    create_bank(db, "first")
    create_bank(db, "second")
    a = import_file(db, "first", path, batch_rows=16)
    b = import_file(db, "second", path, batch_rows=16)
    assert (b.added, b.updated) == (a.added, 0) and a.added > 80
    again = import_file(db, "second", path, batch_rows=16)
    assert (again.added, again.updated, again.duplicates) == (0, 0, b.added + b.duplicates)
    with db.session() as s:
        per_bank = dict(s.execute(select(Entry.bank_id, func.count()).group_by(Entry.bank_id)).all())
    assert sorted(per_bank.values()) == [a.added, a.added]


@READERS
def test_a_checksum_list_written_by_coreutils_sha256sum_imports_through_either_path(tmp_path, monkeypatch, reader):
    """A real writer's exact output: GNU coreutils `sha256sum` over invented files (one name with a
    space, one with a backslash, which sha256sum escapes), read in process and by the reader process."""
    import hashlib as _h
    import shutil

    tool = shutil.which("sha256sum")
    assert tool, "coreutils sha256sum is part of the Debian base system"
    monkeypatch.setenv("MIRRORWATCH_IMPORT_READER_MIN_BYTES", reader)
    folder = tmp_path / "models"
    folder.mkdir()
    names = ["invented-a.safetensors", "invented b.safetensors", "invented\\c.safetensors"]
    for i, name in enumerate(names):
        (folder / name).write_bytes(f"invented model {i}".encode() * 100)
    listing = subprocess.run([tool, *names], cwd=folder, capture_output=True, check=True).stdout
    path = tmp_path / "SHA256SUMS"
    path.write_bytes(listing)
    db = Database.open(str(tmp_path / f"{reader}.db"))
    create_bank(db, "s")
    s = import_file(db, "s", path)
    assert (s.fmt, s.added, s.rejected_count) == ("sha256sum", 3, 0)
    for i, name in enumerate(names):
        digest = _h.sha256(f"invented model {i}".encode() * 100).hexdigest()
        assert lookup(db, digest).results, name
