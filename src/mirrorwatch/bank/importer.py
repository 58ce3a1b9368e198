"""Importing records into a bank: one transaction, idempotent, with a row report.

Identity of an entry within a bank, strongest first: Civitai version id, SHA256, Civitai model id
(for rows without a version), normalised name (for rows with nothing else). A row that matches an
existing entry by any of these merges into it (new hash forms, missing fields) instead of adding.

Version id identity wins over file identity: Civitai lists the same file bytes under several versions
(a "pruned" re-listing, a re-upload), so a row with a version id merges by SHA256 only into an entry
that has no version id yet; an entry of another version is never merged into. Each version is banked
and its files are indexed for it, so an exact match names every version that lists the file."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session

from mirrorwatch.bank.civitai import civitai_records
from mirrorwatch.bank.lists import LIST_FORMATS, list_records
from mirrorwatch.bank.records import Record, RowProblem, record_from_row
from mirrorwatch.bank.sheets import Sheet, iter_nonblank
from mirrorwatch.errors import DatabaseUnavailable, NotFound, SheetError
from mirrorwatch.store.db import Database
from mirrorwatch.store.fit import fit_row
from mirrorwatch.store.fts import BULK_THRESHOLD, bulk_index_begin, bulk_index_end
from mirrorwatch.store.models import Audit, Bank, Entry, EntrySignal, ImportRun, utcnow

MAX_STORED_REJECTIONS = 1000


@dataclass
class ImportSummary:
    bank: str
    filename: str
    fmt: str
    rows: int = 0
    added: int = 0
    updated: int = 0
    duplicates: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    committed: bool = False
    columns: dict[str, str] = field(default_factory=dict)
    import_id: int | None = None
    matches: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "bank": self.bank, "file": self.filename, "format": self.fmt, "rows": self.rows,
            "added": self.added, "updated": self.updated, "duplicates": self.duplicates,
            "rejected": len(self.rejected), "committed": self.committed, "columns": self.columns,
            "import_id": self.import_id, "matches": self.matches,
            "rejected_rows": [{"row": r, "reason": why} for r, why in self.rejected],
        }


class ImportRejected(SheetError):
    """Some rows cannot be used and --skip-bad was not given: nothing was written."""

    def __init__(self, summary: ImportSummary) -> None:
        self.summary = summary
        n = len(summary.rejected)
        first = summary.rejected[0]
        super().__init__(
            f"{n} row{'s' if n != 1 else ''} cannot be used (first: row {first[0]}: {first[1]}); "
            "nothing was imported. Fix them or pass --skip-bad to import the other rows."
        )


def records_from_sheet(sheet: Sheet, origin: str) -> tuple[list[Record], list[tuple[int, str]], int]:
    if sheet.raw_json is not None and sheet.fmt in LIST_FORMATS:
        return list_records(sheet.fmt, sheet.raw_json)
    if sheet.raw_json is not None:
        recs, problems = civitai_records(sheet.raw_json)
        return recs, problems, len(sheet.raw_json)
    records: list[Record] = []
    problems: list[tuple[int, str]] = []
    rows = 0
    for number, values in iter_nonblank(sheet):
        rows += 1
        try:
            records.append(record_from_row(number, values, origin))
        except RowProblem as exc:
            problems.append((number, str(exc)))
    return records, problems, rows


class _BankIndex:
    """Existing entries of one bank by each identity key, for merging without per-row queries."""

    def __init__(self, session: Session, bank_id: int) -> None:
        self.by_key: dict[str, int] = {}
        self.fields: dict[int, dict[str, Any]] = {}
        rows = session.execute(
            select(Entry.id, Entry.key, Entry.civitai_version_id, Entry.civitai_model_id, Entry.name_norm,
                   Entry.name, Entry.url).where(Entry.bank_id == bank_id)
        )
        for eid, key, vid, mid, norm, name, url in rows:
            self.by_key.setdefault(key, eid)
            if vid:
                self.by_key.setdefault(f"v:{vid}", eid)
            elif mid:
                self.by_key.setdefault(f"m:{mid}", eid)
            if not vid and not mid:
                self.by_key.setdefault(f"n:{norm}", eid)
            self.fields[eid] = {"name": name, "url": url, "civitai_version_id": vid, "civitai_model_id": mid}
        self.signals: set[tuple[int, str, str]] = set()
        sig_rows = session.execute(
            select(EntrySignal.entry_id, EntrySignal.form, EntrySignal.value)
            .join(Entry, Entry.id == EntrySignal.entry_id)
            .where(Entry.bank_id == bank_id)
        )
        for eid, form, value in sig_rows:
            self.signals.add((eid, form, value))
            if form == "sha256":
                self.by_key.setdefault(f"sha256:{value}", eid)

    def find(self, rec: Record) -> int | None:
        for key in rec.identity_keys():
            eid = self.by_key.get(key)
            if eid is None:
                continue
            if rec.version_id and not key.startswith("v:") \
                    and self.fields[eid]["civitai_version_id"] not in (None, rec.version_id):
                continue  # the same file under another version: a separate entry
            return eid
        return None

    def remember(self, rec: Record, eid: int) -> None:
        for key in rec.identity_keys():
            self.by_key.setdefault(key, eid)


def get_bank(session: Session, name: str) -> Bank:
    bank = session.scalar(select(Bank).where(Bank.name == name))
    if bank is None:
        raise NotFound(f"no bank named {name!r}; create it with `mirrorwatch bank create {name}`")
    return bank


# Called inside the import's transaction with the newly banked hash values by form; returns how many
# matches it made (the service layer passes retroactive exact matching here).
NewValuesHook = Callable[[Session, dict[str, set[str]]], int]


def import_sheet(db: Database, bank_name: str, sheet: Sheet, filename: str, *, skip_bad: bool = False,
                 user: str = "cli", dry_run: bool = False, on_new_values: NewValuesHook | None = None) -> ImportSummary:
    """Import validated rows in one transaction. With rejected rows and no skip_bad, write nothing.

    on_new_values runs in the same transaction after the rows are written (see NewValuesHook)."""
    summary = ImportSummary(bank=bank_name, filename=filename, fmt=sheet.fmt, columns=dict(sheet.mapping))
    records, problems, summary.rows = records_from_sheet(sheet, f"import:{filename}")
    summary.rejected = problems
    try:
        return _import_records(db, bank_name, records, problems, summary, sheet, filename, skip_bad=skip_bad,
                               user=user, dry_run=dry_run, on_new_values=on_new_values)
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


def _import_records(db: Database, bank_name: str, records: list[Record], problems: list[tuple[int, str]],
                    summary: ImportSummary, sheet: Sheet, filename: str, *, skip_bad: bool, user: str,
                    dry_run: bool, on_new_values: NewValuesHook | None) -> ImportSummary:
    with db.session() as session:
        bank = get_bank(session, bank_name)
        if problems and not skip_bad:
            raise ImportRejected(summary)
        run = ImportRun(**fit_row(ImportRun, {"bank_id": bank.id, "filename": filename, "fmt": sheet.fmt,
                                              "user": user}))
        session.add(run)
        session.flush()  # takes the write lock before ids are assigned
        new_values = _write_records(db, session, bank.id, records, summary, filename)
        if on_new_values is not None:
            summary.matches = on_new_values(session, new_values)
        run.counts = {k: v for k, v in summary.to_dict().items() if k in ("rows", "added", "updated", "duplicates", "rejected")}
        run.rejected = [{"row": r, "reason": why} for r, why in problems[:MAX_STORED_REJECTIONS]]
        session.add(Audit(user=user, action="bank.import", object_type="bank", object_id=str(bank.id),
                          detail={"file": filename, **run.counts}))
        summary.import_id = run.id
        if dry_run:
            session.rollback()
            return summary
    summary.committed = True
    return summary


def _write_records(db: Database, session: Session, bank_id: int, records: list[Record],
                   summary: ImportSummary, filename: str) -> dict[str, set[str]]:
    """Write new entries and signals; return the new hash values by form."""
    index = _BankIndex(session, bank_id)
    now = utcnow()
    new_entries: list[dict[str, Any]] = []
    new_signals: list[dict[str, Any]] = []
    next_id = (session.scalar(select(func.max(Entry.id))) or 0) + 1 if db.is_sqlite else None
    pending: dict[int, dict[str, Any]] = {}  # entries created by this import, by (temporary) id
    touched: list[int] = []  # existing entries this import changed

    for rec in records:
        eid = index.find(rec)
        found = eid is not None
        if eid is None:
            if next_id is not None:
                eid, next_id = next_id, next_id + 1
            else:
                eid = -(len(pending) + 1)
            row = fit_row(Entry, {  # the import boundary: column sizes, no NULs (PostgreSQL)
                "id": eid, "bank_id": bank_id, "key": rec.identity_keys()[0], "name": rec.name,
                "name_norm": rec.name_norm, "url": rec.url, "civitai_model_id": rec.model_id,
                "civitai_version_id": rec.version_id, "kind": rec.kind, "notes": rec.notes,
                "imported_from": filename, "row": rec.row, "created_at": now, "updated_at": now,
            }, identity=("key",))
            new_entries.append(row)
            pending[eid] = row
            index.fields[eid] = {"name": rec.name, "url": rec.url, "civitai_version_id": rec.version_id,
                                 "civitai_model_id": rec.model_id}
            summary.added += 1
            changed = False
        else:
            changed = _merge_fields(session, index, eid, rec, pending)
        index.remember(rec, eid)
        for (form, value), origin in list(rec.signals.items()) + [((f, v), o) for f, v, o in rec.extra]:
            sig = fit_row(EntrySignal, {"entry_id": eid, "form": form, "value": value, "origin": origin,
                                        "created_at": now})
            if (eid, form, sig["value"]) in index.signals:
                continue
            index.signals.add((eid, form, sig["value"]))
            new_signals.append(sig)
            changed = True
        if found:
            if changed and eid not in pending:
                summary.updated += 1
                touched.append(eid)
            else:
                summary.duplicates += 1

    for i in range(0, len(touched), 500):  # changed entries: the exchange feed publishes them again
        session.execute(update(Entry).where(Entry.id.in_(touched[i : i + 500])).values(seq=None))
    new_values: dict[str, set[str]] = {}
    for sig in new_signals:
        new_values.setdefault(sig["form"], set()).add(sig["value"])
    if next_id is not None:
        bulk = db.has_fts() and len(new_entries) >= BULK_THRESHOLD
        cursor = session.connection().connection.driver_connection.cursor()
        if bulk:
            bulk_index_begin(cursor)
        _bulk_insert_sqlite(session, Entry.__table__, new_entries)
        if bulk:
            bulk_index_end(cursor, new_entries[0]["id"])
        cursor.close()
        _bulk_insert_sqlite(session, EntrySignal.__table__, new_signals)
        return new_values
    if db.engine.dialect.name == "postgresql":
        _copy_postgres(session, new_entries, new_signals)
        return new_values
    # other databases with sequences: let them assign ids, then map the temporary ones
    ids = {}
    for chunk in _chunks(new_entries, 5000):
        temp = [r.pop("id") for r in chunk]
        got = session.scalars(insert(Entry).returning(Entry.id, sort_by_parameter_order=True), chunk).all()
        ids.update(zip(temp, got, strict=True))
    for s in new_signals:
        if s["entry_id"] < 0:
            s["entry_id"] = ids[s["entry_id"]]
    for chunk in _chunks(new_signals, 50000):
        session.execute(insert(EntrySignal), chunk)
    return new_values


def _copy_postgres(session: Session, new_entries: list[dict[str, Any]], new_signals: list[dict[str, Any]]) -> None:
    """PostgreSQL: reserve the new entries' ids from their sequence in one statement, then COPY the
    entries and their signals (psycopg's copy protocol) inside the import's transaction. A failure
    anywhere (a bad value, a lost connection) rolls the whole import back: nothing half-written."""
    if new_entries:
        ids = _reserve_ids(session, Entry.__table__, len(new_entries))
        temp_to_id = {}
        for row, new_id in zip(new_entries, ids, strict=True):
            temp_to_id[row["id"]] = new_id
            row["id"] = new_id
        for sig in new_signals:
            if sig["entry_id"] < 0:
                sig["entry_id"] = temp_to_id[sig["entry_id"]]
    copy_rows(session, Entry.__table__, new_entries)
    copy_rows(session, EntrySignal.__table__, new_signals)


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


def copy_rows(session: Session, table, rows: list[dict[str, Any]]) -> None:
    """COPY rows (dicts with the same keys) into a table on the session's PostgreSQL connection, in
    its transaction. Columns the rows leave out get their model's default (a scalar or a callable
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
    raw = session.connection().connection.driver_connection
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


def _merge_fields(session: Session, index: _BankIndex, eid: int, rec: Record, pending: dict[int, dict[str, Any]]) -> bool:
    """Fill fields the existing entry lacks; True if anything changed."""
    have = index.fields[eid]
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
        changes["updated_at"] = utcnow()
        session.execute(update(Entry).where(Entry.id == eid).values(**changes))
    return True


def _chunks(items: list[dict[str, Any]], n: int):
    for i in range(0, len(items), n):
        yield items[i : i + n]
