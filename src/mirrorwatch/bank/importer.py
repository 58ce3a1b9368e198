"""Importing records into a bank: one transaction, idempotent, with a row report.

Identity of an entry within a bank, strongest first: Civitai version id, SHA256, Civitai model id
(for rows without a version), normalised name (for rows with nothing else). A row that matches an
existing entry by any of these merges into it (new hash forms, missing fields) instead of adding.

Version id identity wins over file identity: Civitai lists the same file bytes under several versions
(a "pruned" re-listing, a re-upload), so a row with a version id merges by SHA256 only into an entry
that has no version id yet; an entry of another version is never merged into. Each version is banked
and its files are indexed for it, so an exact match names every version that lists the file."""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter
from typing import Any

import numpy as np
from sqlalchemy import func, insert, literal_column, select, text, update
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session

from mirrorwatch.bank.civitai import civitai_records
from mirrorwatch.bank.lists import LIST_FORMATS, gather, iter_list_records
from mirrorwatch.bank.records import Record, RowProblem, record_from_row
from mirrorwatch.bank.sheets import Sheet, iter_nonblank
from mirrorwatch.errors import DatabaseUnavailable, NotFound, SheetError
from mirrorwatch.store import nameindex
from mirrorwatch.store.db import Database
from mirrorwatch.store.fit import column_length, fit_row
from mirrorwatch.store.fts import BULK_THRESHOLD, bulk_index_begin, bulk_index_end
from mirrorwatch.store.models import Audit, Bank, Entry, EntrySignal, ImportRun, utcnow

MAX_STORED_REJECTIONS = 1000
#: Rejected rows an import reports one by one (a summary keeps their count past this).
MAX_REPORTED_REJECTIONS = 100_000


@dataclass
class ImportSummary:
    bank: str
    filename: str
    fmt: str
    rows: int = 0
    added: int = 0
    updated: int = 0
    duplicates: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # the first MAX_REPORTED_REJECTIONS
    rejected_total: int = 0
    committed: bool = False
    columns: dict[str, str] = field(default_factory=dict)
    import_id: int | None = None
    matches: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "bank": self.bank, "file": self.filename, "format": self.fmt, "rows": self.rows,
            "added": self.added, "updated": self.updated, "duplicates": self.duplicates,
            "rejected": self.rejected_count, "committed": self.committed, "columns": self.columns,
            "import_id": self.import_id, "matches": self.matches,
            "rejected_rows": [{"row": r, "reason": why} for r, why in self.rejected],
        }

    @property
    def rejected_count(self) -> int:
        return max(self.rejected_total, len(self.rejected))

    def reject(self, row: int, reason: str) -> None:
        self.rejected_total = self.rejected_count + 1
        if len(self.rejected) < MAX_REPORTED_REJECTIONS:
            self.rejected.append((row, reason))


class ImportRejected(SheetError):
    """Some rows cannot be used and --skip-bad was not given: nothing was written."""

    def __init__(self, summary: ImportSummary) -> None:
        self.summary = summary
        n = summary.rejected_count
        first = summary.rejected[0]
        super().__init__(
            f"{n} row{'s' if n != 1 else ''} cannot be used (first: row {first[0]}: {first[1]}); "
            "nothing was imported. Fix them or pass --skip-bad to import the other rows."
        )


def records_from_sheet(sheet: Sheet, origin: str) -> tuple[list[Record], list[tuple[int, str]], int]:
    """Every record and row problem of a sheet, in memory (see :func:`iter_records` for a stream)."""
    return gather(iter_records(sheet, origin))


def iter_records(sheet: Sheet, origin: str) -> Iterator[Record | tuple[int, str] | int]:
    """The records of a sheet (Record) and its rows that cannot be used ((row, reason)), in the sheet's
    order, then the number of rows read (int). A streamed sheet is read as this is iterated."""
    if sheet.raw_json is not None:
        if sheet.fmt in LIST_FORMATS:  # a SHA256SUMS list of a streamed sheet: read as this goes
            yield from iter_list_records(sheet.fmt, sheet.raw_json)
            return
        else:
            recs, problems = civitai_records(sheet.raw_json)
            rows = len(sheet.raw_json)
        yield from problems
        yield from recs
        yield rows
        return
    rows = 0
    for number, values in iter_nonblank(sheet):
        rows += 1
        try:
            yield record_from_row(number, values, origin)
        except RowProblem as exc:
            yield number, str(exc)
    yield rows


class _KeyFilter:
    """A Bloom filter of identity keys, of a fixed size (64 MiB): whether a key may be in the bank.
    "No" is certain, so a row whose keys are all new costs no query; "maybe" (a key written before, or
    one false positive in ~400 at 20M keys) is looked up in the database. Python's string hash (64
    bits) gives the probe positions by double hashing."""

    def __init__(self, bits: int = 1 << 29, probes: int = 7) -> None:
        self.bits = np.zeros(bits // 8, dtype=np.uint8)
        self.mask = np.uint64(bits - 1)
        self.steps = np.arange(probes, dtype=np.uint64)

    def _positions(self, keys: list[str]) -> np.ndarray:
        h = np.array(list(map(hash, keys)), dtype=np.int64).view(np.uint64)
        lo = h & np.uint64(0xFFFFFFFF)
        hi = (h >> np.uint64(32)) | np.uint64(1)
        return (lo[:, None] + self.steps[None, :] * hi[:, None]) & self.mask

    def add(self, keys: list[str]) -> None:
        if keys:
            pos = self._positions(keys).ravel()
            np.bitwise_or.at(self.bits, pos >> np.uint64(3), np.left_shift(1, pos & np.uint64(7)).astype(np.uint8))

    def may_contain(self, keys: list[str]) -> np.ndarray:
        if not keys:
            return np.zeros(0, dtype=bool)
        pos = self._positions(keys)
        hit = (self.bits[pos >> np.uint64(3)] >> (pos & np.uint64(7)).astype(np.uint8)) & 1
        return hit.all(axis=1)


def _entry_keys(key: str, vid: int | None, mid: int | None, norm: str) -> list[str]:
    """The identity keys an entry row answers to (the key column, then its ids or its name)."""
    keys = [key]
    if vid:
        keys.append(f"v:{vid}")
    elif mid:
        keys.append(f"m:{mid}")
    if not vid and not mid:
        keys.append(f"n:{norm}")
    return keys


class _BankIndex:
    """The bank's entries by each identity key, for merging rows into them, backed by the database and
    bounded in memory: a batch's keys that the key filter says may be known (or every key, for a bank
    too big to load into the filter) are looked up in the database, which holds the earlier batches
    of this import too (the same transaction). What a batch learns is kept for that batch only."""

    #: A bank with up to this many entries has its keys loaded into the filter when an import starts;
    #: a bigger one has every key of every batch looked up instead.
    PRELOAD_MAX = 2_000_000

    def __init__(self, session: Session, bank_id: int) -> None:
        self.session = session
        self.bank_id = bank_id
        self.filter = _KeyFilter()
        self.by_key: dict[str, int] = {}
        self.fields: dict[int, dict[str, Any]] = {}
        self.signals: set[tuple[int, str, str]] = set()
        # keys a merge gave an entry that its row does not answer to (a model id merged into an entry
        # of a version): few, kept for the whole import
        self.aliases: dict[str, int] = {}
        existing = session.scalar(select(func.count()).select_from(Entry).where(Entry.bank_id == bank_id)) or 0
        self.lookup_all = existing > self.PRELOAD_MAX
        if existing and not self.lookup_all:
            self._preload()

    def _preload(self) -> None:
        rows = self.session.execute(select(Entry.key, Entry.civitai_version_id, Entry.civitai_model_id,
                                           Entry.name_norm).where(Entry.bank_id == self.bank_id))
        for chunk in iter(lambda: rows.fetchmany(50_000), []):
            self.filter.add([k for key, vid, mid, norm in chunk for k in _entry_keys(key, vid, mid, norm)])
        shas = self.session.execute(select(EntrySignal.value).join(Entry, Entry.id == EntrySignal.entry_id)
                                    .where(Entry.bank_id == self.bank_id, EntrySignal.form == "sha256"))
        for chunk in iter(lambda: shas.fetchmany(50_000), []):
            self.filter.add([f"sha256:{v}" for (v,) in chunk])

    def keys_to_look_up(self, records: list[Record]) -> list[str]:
        """A new batch (what the last one learnt is dropped): the keys of its records that the database
        may know (all of them without the filter). No database access: with none, the batch's records
        can be written without waiting for the database."""
        self.by_key, self.fields, self.signals = {}, {}, set()
        every: list[str] = []
        for rec in records:
            every += rec.identity_keys()
        keys = self.batch_keys = list(dict.fromkeys(every))
        if not self.lookup_all:
            maybe = self.filter.may_contain(keys)
            keys = [k for k, m in zip(keys, maybe.tolist(), strict=True) if m or k in self.aliases]
        return keys

    def look_up(self, keys: list[str]) -> None:
        """Load what the database knows of these keys (and of the entries they name)."""
        if not keys:
            return
        found: dict[str, list[int]] = {}  # key -> ids of the entries answering to it
        cols = (Entry.id, Entry.key, Entry.civitai_version_id, Entry.civitai_model_id, Entry.name_norm,
                Entry.name, Entry.url)
        base = select(*cols).where(Entry.bank_id == self.bank_id)
        by_kind: dict[str, list[str]] = {}
        for k in keys:
            by_kind.setdefault(k.split(":", 1)[0], []).append(k)
        rows = []
        for part in _chunks(keys, 500):
            rows += self.session.execute(base.where(Entry.key.in_(part))).all()
        # By Civitai id, the bank is checked here, not in SQL: with `bank_id = ?` in the query, SQLite
        # (no statistics) searched ix_entry_bank_seq by bank, i.e. read every entry of the bank (3.8 s
        # at 10M entries) for each batch holding an id the key filter could not rule out, instead of
        # the few rows ix_entry_civitai_version_id / _model_id hold for the ids.
        by_id = select(*cols, Entry.bank_id)
        vids = [int(k[2:]) for k in by_kind.get("v", ())]
        for part in _chunks(vids, 500):
            rows += [r[:-1] for r in self.session.execute(by_id.where(Entry.civitai_version_id.in_(part)))
                     if r[-1] == self.bank_id]
        mids = [int(k[2:]) for k in by_kind.get("m", ())]
        for part in _chunks(mids, 500):
            rows += [r[:-1] for r in self.session.execute(by_id.where(Entry.civitai_model_id.in_(part),
                                                                      Entry.civitai_version_id.is_(None)))
                     if r[-1] == self.bank_id]
        norms = [k[2:] for k in by_kind.get("n", ())]
        for part in _chunks(norms, 500):  # the partial index ix_entry_bank_name_unkeyed (migration 0015)
            rows += self.session.execute(base.where(
                func.substr(Entry.name_norm, literal_column("1"), literal_column("200")).in_(sorted({n[:200] for n in part})),
                Entry.name_norm.in_(part), Entry.civitai_version_id.is_(None),
                Entry.civitai_model_id.is_(None))).all()
        wanted = set(keys)
        by_key_column: dict[str, int] = {}
        for eid, key, vid, mid, norm, name, url in rows:
            self.fields[eid] = {"name": name, "url": url, "civitai_version_id": vid, "civitai_model_id": mid}
            by_key_column[key] = eid
            for k in _entry_keys(key, vid, mid, norm):
                if k in wanted:
                    found.setdefault(k, []).append(eid)
        shas = [k[7:] for k in by_kind.get("sha256", ())]
        for part in _chunks(shas, 500):  # the bank checked here too (a long IN list made SQLite read the bank)
            for eid, value, vid, mid, name, url, bank_id in self.session.execute(
                    select(Entry.id, EntrySignal.value, Entry.civitai_version_id, Entry.civitai_model_id,
                           Entry.name, Entry.url, Entry.bank_id).join(Entry, Entry.id == EntrySignal.entry_id)
                    .where(EntrySignal.form == "sha256", EntrySignal.value.in_(part))):
                if bank_id != self.bank_id:
                    continue
                self.fields[eid] = {"name": name, "url": url, "civitai_version_id": vid, "civitai_model_id": mid}
                found.setdefault(f"sha256:{value}", []).append(eid)
        # as when the whole bank was read in id order: the first entry answering to a key is its entry,
        # and an entry whose key column is a SHA256 key wins over one that only carries that hash
        for k, ids in found.items():
            self.by_key[k] = by_key_column[k] if k.startswith("sha256:") and k in by_key_column else min(ids)
        for k in keys:
            if k not in self.by_key and k in self.aliases:
                self.by_key[k] = self.aliases[k]
        missing = [eid for eid in {*self.by_key.values()} if eid not in self.fields]
        for part in _chunks(missing, 500):
            for eid, vid, mid, name, url in self.session.execute(
                    select(Entry.id, Entry.civitai_version_id, Entry.civitai_model_id, Entry.name, Entry.url)
                    .where(Entry.id.in_(part))):
                self.fields[eid] = {"name": name, "url": url, "civitai_version_id": vid, "civitai_model_id": mid}
        ids = sorted({*self.by_key.values()})
        for part in _chunks(ids, 500):
            for eid, form, value in self.session.execute(
                    select(EntrySignal.entry_id, EntrySignal.form, EntrySignal.value)
                    .where(EntrySignal.entry_id.in_(part))):
                self.signals.add((eid, form, value))

    def find(self, rec: Record, keys: list[str]) -> int | None:
        for key in keys:
            eid = self.by_key.get(key)
            if eid is None:
                continue
            if rec.version_id and not key.startswith("v:") \
                    and self.fields[eid]["civitai_version_id"] not in (None, rec.version_id):
                continue  # the same file under another version: a separate entry
            return eid
        return None

    def remember(self, keys: list[str], eid: int) -> None:
        for key in keys:
            self.by_key.setdefault(key, eid)

    def end_batch(self, records: list[Record], created: dict[int, dict[str, Any]]) -> None:
        """After the batch is written: its keys go into the filter; keys that a merge tied to an entry
        whose row does not answer to them are kept as aliases."""
        self.filter.add(self.batch_keys)
        for rec in records:
            if rec.model_id and not rec.version_id:
                key = f"m:{rec.model_id}"
                eid = self.by_key.get(key)
                f = self.fields.get(eid) if eid is not None else None
                if f is not None and (f["civitai_version_id"] or f["civitai_model_id"] != rec.model_id) \
                        and key not in self.aliases:
                    self.aliases[key] = created[eid]["id"] if eid in created else eid  # temporary ids


def get_bank(session: Session, name: str) -> Bank:
    bank = session.scalar(select(Bank).where(Bank.name == name))
    if bank is None:
        raise NotFound(f"no bank named {name!r}; create it with `mirrorwatch bank create {name}`")
    return bank


# Called inside the import's transaction with the newly banked hash values by form; returns how many
# matches it made (the service layer passes retroactive exact matching here).
NewValuesHook = Callable[[Session, dict[str, set[str]]], int]


def import_origin(filename: str) -> str:
    """The origin recorded on the signals an import of this file adds."""
    return f"import:{filename}"


def import_sheet(db: Database, bank_name: str, sheet: Sheet, filename: str, *, skip_bad: bool = False,
                 user: str = "cli", dry_run: bool = False, on_new_values: NewValuesHook | None = None,
                 batch_rows: int | None = None,
                 items: Iterable[Record | tuple[int, str] | int] | None = None) -> ImportSummary:
    """Import validated rows in one transaction. With rejected rows and no skip_bad, write nothing.

    Rows are read (a streamed sheet: from its file), checked and written `batch_rows` at a time, so
    memory does not grow with the sheet; the transaction spans every batch, and a bad row (without
    skip_bad), a bad sheet further on or a lost database rolls all of them back.
    on_new_values runs in the same transaction after each batch is written (see NewValuesHook).
    ``items`` are the sheet's records when they are read elsewhere (bank/reader.py: what
    iter_records(sheet, import_origin(filename)) yields, in its order); by default, iter_records."""
    summary = ImportSummary(bank=bank_name, filename=filename, fmt=sheet.fmt, columns=dict(sheet.mapping))
    if items is None:
        items = iter_records(sheet, import_origin(filename))
    try:
        return _import_records(db, bank_name, items, summary, sheet, filename,
                               skip_bad=skip_bad, user=user, dry_run=dry_run, on_new_values=on_new_values,
                               batch_rows=batch_rows or BATCH_ROWS)
    except Exception as exc:
        if _database_lost(db, exc):
            orig = getattr(exc, "orig", None) or exc
            reason = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
            raise DatabaseUnavailable(
                f"the import of {filename} stopped: the database failed ({reason}); its transaction was "
                "rolled back and nothing was imported. Run it again once the database is back."
            ) from None
        raise


def _database_lost(db: Database, exc: BaseException) -> bool:
    """Whether an exception means the database connection failed (server restart, network), not the data."""
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError)
    dbapi = db.engine.dialect.dbapi
    return dbapi is not None and isinstance(exc, dbapi.OperationalError | dbapi.InterfaceError)


def _import_records(db: Database, bank_name: str, items: Iterable[Record | tuple[int, str] | int],
                    summary: ImportSummary, sheet: Sheet, filename: str, *, skip_bad: bool, user: str,
                    dry_run: bool, on_new_values: NewValuesHook | None, batch_rows: int) -> ImportSummary:
    with db.session() as session:
        bank = get_bank(session, bank_name)
        run = ImportRun(**fit_row(ImportRun, {"bank_id": bank.id, "filename": filename, "fmt": sheet.fmt,
                                              "user": user}))
        session.add(run)
        session.flush()  # takes the write lock before ids are assigned
        _tune_for_bulk(db, session)
        _fewer_collections()
        writer: _Writer | None = None
        try:
            writer = _Writer(db, session, bank.id, summary, filename, on_new_values)
            batch: list[Record] = []
            for item in items:
                if isinstance(item, Record):
                    if summary.rejected_total and not skip_bad:
                        continue  # the import is refused: read on only to report every bad row
                    batch.append(item)
                    if len(batch) >= batch_rows:
                        writer.write(batch)
                        batch = []
                elif isinstance(item, int):
                    summary.rows = item
                else:
                    summary.reject(*item)
            if summary.rejected_total and not skip_bad:
                summary.added = summary.updated = summary.duplicates = summary.matches = 0
                raise ImportRejected(summary)
            writer.write(batch)
            writer.wait()
            run.counts = {k: v for k, v in summary.to_dict().items() if k in ("rows", "added", "updated", "duplicates", "rejected")}
            run.rejected = [{"row": r, "reason": why} for r, why in summary.rejected[:MAX_STORED_REJECTIONS]]
            session.add(Audit(user=user, action="bank.import", object_type="bank", object_id=str(bank.id),
                              detail={"file": filename, **run.counts}))
        finally:
            if writer is not None:
                writer.abandon()  # after a failure: the connection is the rollback's again
            close = getattr(items, "close", None)
            if close is not None:  # a generator left early (a failed write): its reader stops now
                close()
            _restore_collections()
            with contextlib.suppress(Exception):
                _untune(db, session)
        summary.import_id = run.id
        if dry_run:
            session.rollback()
            return summary
    summary.committed = True
    if summary.added + summary.updated >= REFRESH_AFTER_ROWS:
        _refresh_after_bulk(db)
    return summary


_GC_LOCK = threading.Lock()
_GC_HOLDERS: list[tuple[int, int, int]] = []  # the thresholds before the first import running now


def _fewer_collections() -> None:
    """Python's cyclic garbage collector during an import: an import allocates millions of objects
    that all die with their batch, and the default thresholds ran a collection every 700 of them,
    ~18% of a 1M-row import's time (67.8 s against 55.4 s without collections). The objects there
    before the import are frozen out of the collections, and the youngest generation is collected
    every 200,000 allocations; the last import running (a server may run several) puts both back
    (see _restore_collections)."""
    with _GC_LOCK:
        if not _GC_HOLDERS:
            old = gc.get_threshold()
            gc.freeze()
            gc.set_threshold(max(old[0], 200_000), old[1], old[2])
            _GC_HOLDERS.append(old)
        else:
            _GC_HOLDERS.append(_GC_HOLDERS[0])


def _restore_collections() -> None:
    with _GC_LOCK:
        old = _GC_HOLDERS.pop()
        if not _GC_HOLDERS:
            gc.set_threshold(*old)
            gc.unfreeze()


#: PostgreSQL, after an import that wrote this many entries: statistics and GIN pending lists are
#: brought up to date at once. Measured at 10M rows: until autovacuum came by (minutes later), name
#: search read a pending list of millions of rows and planned without statistics on name_vocab, and
#: its p99 was 15 s for one-typo queries; after ANALYZE and the pending lists' merge, 37 ms.
REFRESH_AFTER_ROWS = 100_000


def _refresh_after_bulk(db: Database) -> None:
    """ANALYZE the tables name search and lookups plan on, and merge the GIN indexes' pending lists
    (gin_clean_pending_list), after the import committed. Best effort: the rows are in; a failure here
    only leaves the work to autovacuum."""
    if db.engine.dialect.name != "postgresql":
        return
    with contextlib.suppress(Exception), db.engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        tables = [t for t in ("entry", "entry_signal", "name_vocab")
                  if conn.execute(text("SELECT to_regclass(:t)"), {"t": t}).scalar() is not None]
        for table in tables:
            conn.exec_driver_sql(f"ANALYZE {table}")
        for index in conn.execute(text(
                "SELECT i.indexrelid::regclass::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "JOIN pg_am a ON a.oid = c.relam WHERE a.amname = 'gin' AND i.indrelid = ANY(CAST(:t AS regclass[]))"),
                {"t": tables}).scalars():
            conn.execute(text("SELECT gin_clean_pending_list(CAST(:i AS regclass))"), {"i": index})


#: SQLite page cache of the importing connection (KiB): the SHA256 index takes random inserts, and an
#: index that outgrows the cache costs a page read and a WAL write per row (about 3x slower past 5M rows
#: with the default 256 MiB). A cap, allocated only as pages are used.
IMPORT_SQLITE_CACHE_KIB = 1_572_864


def _tune_for_bulk(db: Database, session: Session) -> None:
    """Settings of the import's own connection for many rows: a bigger SQLite page cache (put back
    when the import ends, see _import_records), PostgreSQL GIN pending-list merges in bigger runs
    (SET LOCAL: this transaction only)."""
    conn = session.connection()
    if db.is_sqlite:
        conn.exec_driver_sql(f"PRAGMA cache_size=-{IMPORT_SQLITE_CACHE_KIB}")
    elif db.engine.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL gin_pending_list_limit = '64MB'")
        conn.exec_driver_sql("SET LOCAL work_mem = '64MB'")


def _untune(db: Database, session: Session) -> None:
    if db.is_sqlite:
        with _raw_cursor(session) as cursor:
            cursor.execute("PRAGMA cache_size=-262144")  # store/db.py's default
            cursor.execute("PRAGMA shrink_memory")


#: Rows read, checked and written at a time (bounds an import's memory: about 3 KB a row).
BATCH_ROWS = 20_000


class _Writer:
    """Writes an import's records a batch at a time, inside its transaction: new entries and signals
    in bulk (SQLite executemany, PostgreSQL COPY), merges into entries already there, and the new hash
    values handed to on_new_values after each batch."""

    def __init__(self, db: Database, session: Session, bank_id: int, summary: ImportSummary, filename: str,
                 on_new_values: NewValuesHook | None) -> None:
        self.db, self.session, self.bank_id, self.summary = db, session, bank_id, summary
        self.filename, self.on_new_values = filename, on_new_values
        self.index = _BankIndex(session, bank_id)
        self.now = utcnow()
        self.sqlite = db.is_sqlite
        self.postgres = db.engine.dialect.name == "postgresql"
        # SQLite: ids follow the highest one (the import holds the write lock); the entries this import
        # made are those from first_id on. Elsewhere: ids from the sequence, ranges kept.
        self.first_id = (session.scalar(select(func.max(Entry.id))) or 0) + 1 if self.sqlite else None
        self.next_id = self.first_id
        self.made: list[range | set[int]] = []
        self.fts = self.sqlite and db.has_fts()
        self.entry_cols = {"key": column_length(Entry, "key") or 300, "kind": column_length(Entry, "kind") or 50}
        self.signal_long = min(column_length(EntrySignal, "value") or 200, column_length(EntrySignal, "origin") or 200)
        # PostgreSQL: the words of the names this import adds go into name_vocab from here, once each,
        # instead of through the insert trigger (store/nameindex.py, PG_WRITER_ADDS_WORDS)
        self.words_added: set[str] | None = None
        self.copying: _Copy | None = None  # PostgreSQL: the batch the server is still writing
        self.hook_values: dict[str, set[str]] | None = None  # its new values, for on_new_values
        if self.postgres and nameindex.present(db):
            session.execute(text(f"SET LOCAL {nameindex.PG_WRITER_ADDS_WORDS} = 'on'"))
            self.words_added = set()

    def made_here(self, eid: int) -> bool:
        if self.first_id is not None:
            return eid >= self.first_id
        return any(eid in r for r in self.made)

    def write(self, records: list[Record]) -> None:
        if not records:
            return
        session, index, summary, now = self.session, self.index, self.summary, self.now
        look_up = index.keys_to_look_up(records)
        if look_up:
            self.wait()  # the database answers for the earlier batches once they are all in
            index.look_up(look_up)
        new_entries: list[dict[str, Any]] = []
        new_signals: list[dict[str, Any]] = []
        pending: dict[int, dict[str, Any]] = {}  # entries created in this batch, by (temporary) id
        touched: list[int] = []  # entries there before this import that it changed
        temp = 0
        entry_cols = self.entry_cols
        signal_long = self.signal_long
        for rec in records:
            keys = rec.identity_keys()
            eid = index.find(rec, keys)
            found = eid is not None
            if eid is None:
                if self.next_id is not None:
                    eid, self.next_id = self.next_id, self.next_id + 1
                else:
                    temp -= 1
                    eid = temp
                row = {
                    "id": eid, "bank_id": self.bank_id, "key": keys[0], "name": rec.name,
                    "name_norm": rec.name_norm, "url": rec.url, "civitai_model_id": rec.model_id,
                    "civitai_version_id": rec.version_id, "kind": rec.kind, "notes": rec.notes,
                    "imported_from": self.filename, "row": rec.row, "created_at": now, "updated_at": now,
                }
                if len(row["key"]) > entry_cols["key"] or (rec.kind and len(rec.kind) > entry_cols["kind"]) \
                        or "\x00" in f"{rec.name}{rec.url}{rec.notes}{rec.kind}":
                    fit_row(Entry, row, identity=("key",))  # the import boundary: column sizes, no NULs
                new_entries.append(row)
                pending[eid] = row
                index.fields[eid] = {"name": rec.name, "url": rec.url, "civitai_version_id": rec.version_id,
                                     "civitai_model_id": rec.model_id}
                summary.added += 1
                changed = False
            else:
                changed = self._merge_fields(eid, rec, pending)
            index.remember(keys, eid)
            sigs = [(f, v, o) for (f, v), o in rec.signals.items()]
            if rec.extra:
                sigs += rec.extra
            for form, value, origin in sigs:
                sig = {"entry_id": eid, "form": form, "value": value, "origin": origin, "created_at": now}
                if len(value) > signal_long or len(origin) > signal_long or len(form) > 40 \
                        or "\x00" in value or "\x00" in origin:
                    fit_row(EntrySignal, sig)
                mark = (eid, form, sig["value"])
                if mark in index.signals:
                    continue
                index.signals.add(mark)
                new_signals.append(sig)
                changed = True
            if found:
                if changed and eid not in pending and not self.made_here(eid):
                    summary.updated += 1
                    touched.append(eid)
                else:
                    summary.duplicates += 1
        self.wait()
        for i in range(0, len(touched), 500):  # changed entries: the exchange feed publishes them again
            session.execute(update(Entry).where(Entry.id.in_(touched[i : i + 500])).values(seq=None))
        self._insert(new_entries, new_signals)
        index.end_batch(records, pending)
        if self.on_new_values is not None:
            new_values: dict[str, set[str]] = {}
            for sig in new_signals:
                new_values.setdefault(sig["form"], set()).add(sig["value"])
            self.hook_values = new_values  # run by the next wait(), once the batch is in

    def wait(self) -> None:
        """Wait for the batch the database is still writing (PostgreSQL's COPY runs while the next batch
        is read and checked), raise what failed in it, and run on_new_values for it (its entries are in
        now). Before anything else uses the connection, and once after the last batch."""
        copying, self.copying = self.copying, None
        if copying is not None:
            copying.join()
            if copying.error is not None:
                raise copying.error
        values, self.hook_values = self.hook_values, None
        if values is not None and self.on_new_values is not None:
            self.summary.matches += self.on_new_values(self.session, values)

    def abandon(self) -> None:
        """After a failure: let a COPY still running end (its error, if any, is the failure's echo)
        before the transaction is rolled back."""
        copying, self.copying, self.hook_values = self.copying, None, None
        if copying is not None:
            copying.join()

    def _insert(self, new_entries: list[dict[str, Any]], new_signals: list[dict[str, Any]]) -> None:
        session = self.session
        if self.sqlite:
            # The name index takes each batch's entries in one statement (its insert trigger is out while
            # they go in): an entry of an earlier batch that a later row renames is in the index already,
            # so the index's update trigger keeps it right.
            bulk = self.fts and len(new_entries) >= BULK_THRESHOLD
            if bulk:
                with _raw_cursor(session) as cursor:
                    bulk_index_begin(cursor)
            _bulk_insert_sqlite(session, Entry.__table__, new_entries)
            if bulk:
                with _raw_cursor(session) as cursor:
                    bulk_index_end(cursor, new_entries[0]["id"])
            _bulk_insert_sqlite(session, EntrySignal.__table__, new_signals)
            return
        if self.postgres:
            _assign_ids(session, new_entries, new_signals)
            words = self._new_words(new_entries) if self.words_added is not None else []
            self.copying = _Copy(session, new_entries, new_signals, words)
            self.copying.start()
            if new_entries:
                ids = [r["id"] for r in new_entries]
                if ids == list(range(ids[0], ids[-1] + 1)):
                    last = self.made[-1] if self.made else None
                    if isinstance(last, range) and last.stop == ids[0]:  # the usual case: one growing block
                        self.made[-1] = range(last.start, ids[-1] + 1)
                    else:
                        self.made.append(range(ids[0], ids[-1] + 1))
                else:
                    self.made.append(set(ids))
            return
        # other databases with sequences: let them assign ids, then map the temporary ones
        ids = {}
        for chunk in _chunks(new_entries, 5000):
            temp = [r.pop("id") for r in chunk]
            got = session.scalars(insert(Entry).returning(Entry.id, sort_by_parameter_order=True), chunk).all()
            ids.update(zip(temp, got, strict=True))
        self.made.append(set(ids.values()))
        for s in new_signals:
            if s["entry_id"] < 0:
                s["entry_id"] = ids[s["entry_id"]]
        for chunk in _chunks(new_signals, 50000):
            session.execute(insert(EntrySignal), chunk)


    def _new_words(self, new_entries: list[dict[str, Any]]) -> list[str]:
        """The words of the new entries' names that this import has not added to name_vocab yet."""
        seen = self.words_added
        assert seen is not None
        fresh = sorted({w for row in new_entries for w in nameindex.words_of(row["name_norm"]) if w not in seen})
        seen.update(fresh)
        return fresh

    def _merge_fields(self, eid: int, rec: Record, pending: dict[int, dict[str, Any]]) -> bool:
        """Fill fields the existing entry lacks; True if anything changed."""
        have = self.index.fields[eid]
        changes: dict[str, Any] = {}
        for attr, value in (("name", rec.name), ("url", rec.url), ("civitai_version_id", rec.version_id),
                            ("civitai_model_id", rec.model_id)):
            if value and not have.get(attr):
                changes[attr] = value
        if not changes:
            return False
        fit_row(Entry, changes)
        have.update(changes)
        if "name" in changes:
            changes["name_norm"] = rec.name_norm
        if eid in pending:
            pending[eid].update(changes)
        else:
            if not self.made_here(eid):
                changes["updated_at"] = utcnow()
            self.session.execute(update(Entry).where(Entry.id == eid).values(**changes))
        return True


class _raw_cursor:
    """The DB-API cursor of the session's connection (in its transaction), closed after use."""

    def __init__(self, session: Session) -> None:
        self.cursor = session.connection().connection.driver_connection.cursor()

    def __enter__(self):
        return self.cursor

    def __exit__(self, *exc: object) -> None:
        self.cursor.close()


def _assign_ids(session: Session, new_entries: list[dict[str, Any]], new_signals: list[dict[str, Any]]) -> None:
    """PostgreSQL: the new entries' ids from their sequence (one statement), in place of the temporary
    negative ones, in the entries and their signals."""
    if not new_entries:
        return
    ids = _reserve_ids(session, Entry.__table__, len(new_entries))
    temp_to_id = {}
    for row, new_id in zip(new_entries, ids, strict=True):
        temp_to_id[row["id"]] = new_id
        row["id"] = new_id
    for sig in new_signals:
        if sig["entry_id"] < 0:
            sig["entry_id"] = temp_to_id[sig["entry_id"]]


class _Copy(threading.Thread):
    """PostgreSQL: COPY a batch's entries and signals (psycopg's copy protocol), and add their names'
    new words to name_vocab, inside the import's transaction, on a thread: the server writes the rows and
    their nine indexes (most of a batch's time) while the importer reads and checks the next batch.
    The connection is this thread's alone until _Writer.wait() joins it. A failure (a bad value, a lost
    connection) is raised there and rolls the whole import back: nothing half-written."""

    def __init__(self, session: Session, new_entries: list[dict[str, Any]], new_signals: list[dict[str, Any]],
                 words: list[str]) -> None:
        super().__init__(name="mirrorwatch-import-copy", daemon=True)
        self.raw = session.connection().connection.driver_connection
        self.new_entries, self.new_signals, self.words = new_entries, new_signals, words
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            copy_raw(self.raw, Entry.__table__, self.new_entries)
            copy_raw(self.raw, EntrySignal.__table__, self.new_signals)
            with self.raw.cursor() as cur:
                for part in _chunks(self.words, 50_000):
                    cur.execute(nameindex.PG_ADD_WORDS, {"words": part})
        except BaseException as exc:  # raised by _Writer.wait in the importing thread
            self.error = exc


def _reserve_ids(session: Session, table, n: int) -> list[int] | range:
    """n new ids from the table's id sequence. Without concurrent writers they are one block, and only
    its ends cross the wire; otherwise the n values themselves."""
    seq = session.execute(text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": table.name}).scalar_one()
    lo, hi, count = session.execute(
        text("SELECT min(v), max(v), count(*) FROM (SELECT nextval(CAST(:s AS regclass)) AS v "
             "FROM generate_series(1, :n)) AS block"), {"s": seq, "n": n}).one()
    if hi - lo + 1 == count == n:
        return range(lo, hi + 1)
    # another writer took ids in between: those values are spent (a gap), take n one by one
    return list(session.execute(text("SELECT nextval(CAST(:s AS regclass)) FROM generate_series(1, :n)"),
                                {"s": seq, "n": n}).scalars())


def copy_raw(raw, table, rows: list[dict[str, Any]]) -> None:
    """COPY rows (dicts with the same keys) into a table on a psycopg connection (the import's, in its
    transaction). Columns the rows leave out get their model's default (a scalar or a callable
    without arguments) when it has one, else the server's."""
    if not rows:
        return
    cols = list(rows[0])
    fill: dict[str, Any] = {}
    for c in table.columns:
        if c.name not in rows[0] and c.default is not None and not c.primary_key:
            arg = c.default.arg
            if c.default.is_scalar:
                fill[c.name] = arg
            elif c.default.is_callable:
                try:
                    fill[c.name] = arg(None)  # SQLAlchemy wraps defaults to take a context
                except TypeError:
                    continue
    getter = itemgetter(*cols) if len(cols) > 1 else (lambda r: (r[cols[0]],))
    extra = tuple(fill.values())
    names = ", ".join(f'"{c}"' for c in cols + list(fill))
    with raw.cursor() as cur, cur.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
        for r in rows:
            copy.write_row(getter(r) + extra)


def _bulk_insert_sqlite(session: Session, table, rows: list[dict[str, Any]]) -> None:
    """executemany on the DB-API cursor inside the session's transaction: SQLAlchemy's per-row
    parameter processing costs more than SQLite's insert for million-row imports."""
    if not rows:
        return
    cols = list(rows[0])
    sql = f"INSERT INTO {table.name} ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})"
    cursor = session.connection().connection.driver_connection.cursor()
    getter = itemgetter(*cols)
    stamp_at = [i for i, c in enumerate(cols) if isinstance(rows[0][c], datetime)]
    text_of: dict[datetime, str] = {}  # the same few timestamps on every row: format each once
    for chunk in _chunks(rows, 50000):
        if stamp_at:
            values = []
            for r in chunk:
                t = list(getter(r))
                for i in stamp_at:
                    v = t[i]
                    t[i] = text_of.get(v) or text_of.setdefault(v, v.isoformat(sep=" "))
                values.append(t)
        else:
            values = [getter(r) for r in chunk]
        cursor.executemany(sql, values)
    cursor.close()


def _chunks(items: list, n: int):
    for i in range(0, len(items), n):
        yield items[i : i + n]
