"""Exchanging banks between teams: the "mirrorwatch-signals/1" record format (docs/exchange.md),
the feed a partner pages through, withdrawals, and applying records to a local bank.

Lifecycle of a published entry (after python-threatexchange's SignalExchangeAPI, whose fetch_iter
hands out deltas with a checkpoint to resume from, and StopNCII's hash lists fetched "since" a
checkpoint with withdrawals included):

    imported / subscribed / learned a signal / withdrawn   ->  entry.seq = NULL ("changed")
    the feed is read                                        ->  every NULL seq in the bank gets the
                                                                next numbers of bank.change_seq
    a partner reads `seq > cursor` in seq order             ->  pages, each with the next cursor

A change sequence number is handed out under the bank row's lock, in one transaction per bank, so
numbers become visible in the order they are given: a reader holding cursor N never misses a change
committed later (it gets a number above every number given before). An entry that changes again
gets a new, higher number; the feed therefore sends each entry's newest state once per change, and
a withdrawn entry as a tombstone (id, seq, status, updated_at: no name, no hashes).

Applying records (a feed page, an import file) is one transaction per page: every record is checked
first, then the whole page is written, or nothing is."""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from mirrorwatch.bank.sizes import SIZE_FORM
from mirrorwatch.errors import InvalidHash, InvalidInput, MalformedFile, NotFound
from mirrorwatch.hashing.forms import FORMS
from mirrorwatch.services.audit import record
from mirrorwatch.services.signing import SigningKey
from mirrorwatch.store.db import Database
from mirrorwatch.store.fit import fit_row
from mirrorwatch.store.models import Bank, Entry, EntrySignal, utcnow
from mirrorwatch.text.names import normalise_name

FORMAT = "mirrorwatch-signals/1"
ACTIVE, WITHDRAWN = "active", "withdrawn"
STATUSES = (ACTIVE, WITHDRAWN)
PAGE_DEFAULT = 1000
PAGE_MAX = 5000
#: Signals applied from a feed or a file carry this origin; an update replaces only these, never a
#: signal the local bank learned by itself.
EXCHANGE_ORIGIN = "exchange"
KEY_PREFIX = "x:"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:._-]{0,199}$")
_FORM = re.compile(r"^[a-z0-9_]{1,40}$")
_CURSOR = re.compile(r"^c1\.([0-9a-f]{32})\.([0-9]{1,18})$")
MAX_TEXT = 2000
MAX_SIGNALS = 200


class BadFeed(MalformedFile):
    """A feed page or an exchange file that is not what the format promises: nothing of it is applied."""


# --- ids, cursors, canonical bytes ------------------------------------------------------------------

def global_id(bank_uid: str, entry_id: int) -> str:
    """An entry's id in the exchange: stable and unique across installations."""
    return f"{bank_uid}:{entry_id}"


def make_cursor(bank_uid: str, seq: int) -> str:
    return f"c1.{bank_uid}.{seq}"


def parse_cursor(cursor: str | None, bank_uid: str, head: int) -> int:
    """The sequence number a cursor stands at; InvalidInput (400) for a malformed cursor, another
    bank's cursor, or a cursor beyond the bank's newest change (from the future)."""
    if cursor is None or cursor == "":
        return 0
    m = _CURSOR.match(cursor)
    if m is None:
        raise InvalidInput(f"malformed cursor {cursor[:60]!r}: use the next_cursor of a page (or none to start)")
    if m.group(1) != bank_uid:
        raise InvalidInput("this cursor belongs to another bank's feed")
    seq = int(m.group(2))
    if seq > head:
        raise InvalidInput(f"cursor {seq} is beyond this bank's newest change ({head}): it comes from the future "
                           "(another server, or a bank that was restored from a backup); start again without one")
    return seq


def canonical(obj: Any) -> bytes:
    """The bytes digests and signatures are made over: sorted keys, no spaces, UTF-8."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def records_digest(records: list[dict[str, Any]]) -> str:
    return hashlib.sha256(canonical(records)).hexdigest()


def page_message(page: dict[str, Any]) -> bytes:
    """What a page's signature signs: its identity, its place in the feed and its records' digest."""
    return canonical({k: page.get(k) for k in ("format", "bank", "cursor", "next_cursor", "has_more", "count",
                                               "digest")})


# --- the sequence ---------------------------------------------------------------------------------

def _bank(s: Session, bank_id: int) -> Bank:
    b = s.get(Bank, bank_id)
    if b is None:
        raise NotFound(f"no bank with id {bank_id}")
    return b


def bank_uid(db: Database, bank_id: int) -> str:
    with db.session() as s:
        b = _bank(s, bank_id)
        if b.uid:
            return b.uid
    with db.write_session() as s:  # a bank made by a writer that bypassed the model default
        b = _bank(s, bank_id)
        if not b.uid:
            import uuid

            b.uid = uuid.uuid4().hex
        return b.uid


def stamp(db: Database, bank_id: int) -> int:
    """Give every changed entry (seq NULL) of the bank its change sequence number; return the bank's
    newest number. Numbers are entry id + an offset above every number given before, so one UPDATE
    stamps a million entries."""
    with db.session() as s:
        head = s.scalar(select(Bank.change_seq).where(Bank.id == bank_id))
        if head is None:
            raise NotFound(f"no bank with id {bank_id}")
        dirty = s.scalar(select(Entry.id).where(Entry.bank_id == bank_id, Entry.seq.is_(None)).limit(1))
    if dirty is None:
        return head
    with db.write_session() as s:
        head = s.execute(select(Bank.change_seq).where(Bank.id == bank_id).with_for_update()).scalar_one()
        lo, hi = s.execute(select(func.min(Entry.id), func.max(Entry.id))
                           .where(Entry.bank_id == bank_id, Entry.seq.is_(None))).one()
        if lo is None:
            return head
        offset = head - lo + 1
        # only ids in [lo, hi]: an entry another writer marks meanwhile waits for the next stamp
        s.execute(update(Entry).where(Entry.bank_id == bank_id, Entry.seq.is_(None), Entry.id.between(lo, hi))
                  .values(seq=Entry.id + offset).execution_options(synchronize_session=False))
        head = hi + offset
        s.execute(update(Bank).where(Bank.id == bank_id).values(change_seq=head))
        return head


def mark_changed(session: Session, entry_ids: Iterable[int]) -> None:
    """Mark entries as changed: the feed publishes them again (with a new sequence number)."""
    ids = sorted(set(entry_ids))
    for i in range(0, len(ids), 500):
        session.execute(update(Entry).where(Entry.id.in_(ids[i : i + 500])).values(seq=None)
                        .execution_options(synchronize_session=False))


# --- records out ----------------------------------------------------------------------------------

def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.replace(microsecond=0).isoformat() + "Z"


_ENTRY_COLS = (Entry.id, Entry.seq, Entry.status, Entry.updated_at, Entry.name, Entry.url, Entry.civitai_model_id,
               Entry.civitai_version_id, Entry.kind, Entry.origin, Entry.origin_id)


def _records(s: Session, uid: str, rows: list[Any]) -> list[dict[str, Any]]:
    """Records (docs/exchange.md) for entry rows selected with _ENTRY_COLS, in their order."""
    active = [r.id for r in rows if r.status != WITHDRAWN]
    sigs: dict[int, dict[str, list[str]]] = {}
    for i in range(0, len(active), 1000):
        for eid, form, value in s.execute(select(EntrySignal.entry_id, EntrySignal.form, EntrySignal.value)
                                          .where(EntrySignal.entry_id.in_(active[i : i + 1000]))):
            sigs.setdefault(eid, {}).setdefault(form, []).append(value)
    unstored = [f for f in FORMS.values() if f.derived_from and not f.stored_when_derived]
    out = []
    for r in rows:
        rec: dict[str, Any] = {"id": f"{uid}:{r.id}", "seq": r.seq, "status": r.status or ACTIVE,
                               "updated_at": _iso(r.updated_at)}
        if r.status == WITHDRAWN:
            out.append(rec)
            continue
        by_form = sigs.get(r.id, {})
        for f in unstored:  # derived forms never stored (AutoV2): from their source
            if f.name not in by_form and f.derived_from in by_form:
                by_form[f.name] = [f.derive(v) for v in by_form[f.derived_from]]
        hashes, signals, sizes = {}, {}, []
        for form, values in by_form.items():
            if form in FORMS:
                hashes[form] = sorted(set(values))
            elif form == SIZE_FORM:
                sizes = sorted({int(v) for v in values if v.isdigit()})
            else:
                signals[form] = sorted(set(values))
        rec.update({
            "name": r.name, "url": r.url, "civitai_model_id": r.civitai_model_id,
            "civitai_version_id": r.civitai_version_id, "kind": r.kind,
            "hashes": {name: hashes[name] for name in FORMS if name in hashes},
            "sizes": sizes, "signals": dict(sorted(signals.items())),
            "origin": {"id": r.origin_id, "from": r.origin} if r.origin_id else None,
        })
        out.append(rec)
    return out


def _feed(db: Database, bank_id: int, cursor: str | None, limit: int,
          signer: SigningKey | None) -> tuple[dict[str, Any], list[dict[str, Any]], bytes]:
    """(page head, records, the records' canonical bytes) of one feed page."""
    if not 1 <= limit <= PAGE_MAX:
        raise InvalidInput(f"limit must be 1 to {PAGE_MAX}")
    uid = bank_uid(db, bank_id)
    head = stamp(db, bank_id)
    after = parse_cursor(cursor, uid, head)
    with db.session() as s:
        name = s.scalar(select(Bank.name).where(Bank.id == bank_id))
        rows = s.execute(select(*_ENTRY_COLS).where(Entry.bank_id == bank_id, Entry.seq > after)
                         .order_by(Entry.seq).limit(limit + 1)).all()
        more = len(rows) > limit
        records = _records(s, uid, rows[:limit])
    body = canonical(records)
    page: dict[str, Any] = {
        "format": FORMAT, "bank": {"uid": uid, "name": name}, "cursor": make_cursor(uid, after),
        "next_cursor": make_cursor(uid, records[-1]["seq"] if records else after), "has_more": more,
        "count": len(records), "digest": hashlib.sha256(body).hexdigest(),
    }
    if signer is not None:
        page["key_id"] = signer.key_id
        page["signature"] = signer.sign(page_message(page))
    return page, records, body


def feed_page_bytes(db: Database, bank_id: int, cursor: str | None, *, limit: int = PAGE_DEFAULT,
                    signer: SigningKey | None = None) -> bytes:
    """A feed page as the JSON the API sends (the records encoded once, canonically)."""
    page, _records_, body = _feed(db, bank_id, cursor, limit, signer)
    head = json.dumps(page, separators=(",", ":"), ensure_ascii=False).encode()
    return head[:-1] + b',"records":' + body + b"}"


def feed_page(db: Database, bank_id: int, cursor: str | None, *, limit: int = PAGE_DEFAULT,
              signer: SigningKey | None = None) -> dict[str, Any]:
    """One page of a bank's feed: the records changed after `cursor`, in sequence order."""
    page, records, _body = _feed(db, bank_id, cursor, limit, signer)
    page["records"] = records
    return page


# --- checking records that come in ----------------------------------------------------------------

def _text(rec: dict[str, Any], key: str, where: str, *, required: bool = False) -> str | None:
    v = rec.get(key)
    if v is None:
        if required:
            raise BadFeed(f"{where}: {key!r} is missing")
        return None
    if not isinstance(v, str) or len(v) > MAX_TEXT:
        raise BadFeed(f"{where}: {key!r} must be text of at most {MAX_TEXT} characters")
    return v.replace("\x00", "")


def _int(rec: dict[str, Any], key: str, where: str) -> int | None:
    v = rec.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < 2**63:
        raise BadFeed(f"{where}: {key!r} must be a non-negative integer")
    return v


@dataclass
class Incoming:
    """A checked record, ready to apply."""

    id: str
    seq: int | None
    status: str
    fields: dict[str, Any] = field(default_factory=dict)
    signals: set[tuple[str, str]] = field(default_factory=set)
    origin: dict[str, Any] | None = None


def check_record(rec: Any, where: str) -> Incoming:
    """One record checked against the format (raises BadFeed with where it is and what is wrong)."""
    if not isinstance(rec, dict):
        raise BadFeed(f"{where}: a record must be a JSON object")
    rid = rec.get("id")
    if not isinstance(rid, str) or not _ID.match(rid):
        raise BadFeed(f"{where}: 'id' must be 1 to 200 characters of letters, digits and : . _ -")
    where = f"{where} ({rid})"
    status = rec.get("status")
    if status not in STATUSES:
        raise BadFeed(f"{where}: 'status' must be one of {', '.join(STATUSES)}")
    inc = Incoming(rid, _int(rec, "seq", where), status)
    if status == WITHDRAWN:
        return inc
    inc.fields = {"name": _text(rec, "name", where) or "", "url": _text(rec, "url", where),
                  "civitai_model_id": _int(rec, "civitai_model_id", where),
                  "civitai_version_id": _int(rec, "civitai_version_id", where),
                  "kind": _text(rec, "kind", where)}
    hashes = rec.get("hashes") or {}
    signals = rec.get("signals") or {}
    sizes = rec.get("sizes") or []
    if not isinstance(hashes, dict) or not isinstance(signals, dict) or not isinstance(sizes, list):
        raise BadFeed(f"{where}: 'hashes' and 'signals' must be objects, 'sizes' a list")
    n = 0
    for form, values in list(hashes.items()) + list(signals.items()):
        if not isinstance(form, str) or not _FORM.match(form) or not isinstance(values, list):
            raise BadFeed(f"{where}: signal form {str(form)[:40]!r} must be a short lower-case name with a list of values")
        for v in values:
            n += 1
            if not isinstance(v, str) or not 0 < len(v) <= 200 or "\x00" in v:
                raise BadFeed(f"{where}: a {form} value must be text of 1 to 200 characters")
            if form in FORMS:
                try:
                    v = FORMS[form].normalise(v)
                except InvalidHash as exc:
                    raise BadFeed(f"{where}: {exc}") from None
            elif form in hashes:
                raise BadFeed(f"{where}: {form!r} is not a hash form this mirrorwatch knows "
                              f"({', '.join(FORMS)}); send it under 'signals'")
            inc.signals.add((form, v))
    for size in sizes:
        if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size < 2**63:
            raise BadFeed(f"{where}: sizes must be non-negative integers")
        inc.signals.add((SIZE_FORM, str(size)))
    if n + len(sizes) > MAX_SIGNALS:
        raise BadFeed(f"{where}: more than {MAX_SIGNALS} signals")
    # a derived form that is never stored (AutoV2) follows from its source: keep only what adds to it
    for f in FORMS.values():
        if f.derived_from and not f.stored_when_derived:
            derived = {f.derive(v) for form, v in inc.signals if form == f.derived_from}
            inc.signals -= {(f.name, v) for v in derived}
    origin = rec.get("origin")
    if origin is not None and not isinstance(origin, dict):
        raise BadFeed(f"{where}: 'origin' must be an object or null")
    inc.origin = origin
    return inc


# --- applying records -----------------------------------------------------------------------------

@dataclass
class ApplyCounts:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    withdrawn: int = 0
    tombstones_unknown: int = 0  # withdrawals of entries this bank never had
    matches: int = 0

    def add(self, other: ApplyCounts) -> None:
        for k, v in other.__dict__.items():
            setattr(self, k, getattr(self, k) + v)

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def apply_records(session: Session, bank_id: int, records: list[Incoming], *, origin: str) -> tuple[ApplyCounts, dict[str, set[str]]]:
    """Write checked records into a bank inside the caller's transaction; return the counts and the
    newly banked hash values by form (for retroactive matching). Entries are keyed by their global id
    ("x:<id>"), so applying the same records twice changes nothing."""
    counts = ApplyCounts()
    latest: dict[str, Incoming] = {}
    for r in records:  # the newest state of each id
        latest[r.id] = r
    keys = {KEY_PREFIX + rid: r for rid, r in latest.items()}
    existing: dict[str, Any] = {}
    key_list = list(keys)
    for i in range(0, len(key_list), 500):
        for row in session.execute(select(Entry.id, Entry.key, Entry.status, Entry.name, Entry.url,
                                          Entry.civitai_model_id, Entry.civitai_version_id, Entry.kind)
                                   .where(Entry.bank_id == bank_id, Entry.key.in_(key_list[i : i + 500]))):
            existing[row.key] = row
    have_sigs: dict[int, set[tuple[str, str]]] = defaultdict(set)
    mine: dict[int, set[tuple[str, str]]] = defaultdict(set)  # signals that came from the exchange
    ids = [row.id for row in existing.values()]
    for i in range(0, len(ids), 500):
        for eid, form, value, sorigin in session.execute(
                select(EntrySignal.entry_id, EntrySignal.form, EntrySignal.value, EntrySignal.origin)
                .where(EntrySignal.entry_id.in_(ids[i : i + 500]))):
            have_sigs[eid].add((form, value))
            if sorigin == EXCHANGE_ORIGIN:
                mine[eid].add((form, value))
    now = utcnow()
    new_rows: list[dict[str, Any]] = []
    new_sigs: list[tuple[str, set[tuple[str, str]]]] = []  # (key, signals) of new entries
    changed: list[int] = []
    replace_sigs: dict[int, set[tuple[str, str]]] = {}
    withdraw: list[int] = []
    for key, inc in keys.items():
        row = existing.get(key)
        if inc.status == WITHDRAWN:
            if row is None:
                counts.tombstones_unknown += 1
            elif row.status == WITHDRAWN:
                counts.unchanged += 1
            else:
                withdraw.append(row.id)
                counts.withdrawn += 1
            continue
        fields = fit_row(Entry, {**inc.fields, "key": key}, identity=("key",))
        fitted_key = fields.pop("key")
        origin_id = (inc.origin or {}).get("id") if isinstance((inc.origin or {}).get("id"), str) else None
        if row is None:
            new_rows.append({**fields, "bank_id": bank_id, "key": fitted_key,
                             "name_norm": normalise_name(fields["name"]), "imported_from": "exchange",
                             "created_at": now, "updated_at": now, "status": ACTIVE,
                             "origin": origin[:2000], "origin_id": (origin_id or inc.id)[:200]})
            new_sigs.append((new_rows[-1]["key"], inc.signals))
            counts.added += 1
            continue
        same = (row.status == ACTIVE and all(getattr(row, k) == v for k, v in fields.items())
                and mine[row.id] == inc.signals - (have_sigs[row.id] - mine[row.id]))
        if same:
            counts.unchanged += 1
            continue
        session.execute(update(Entry).where(Entry.id == row.id).values(
            **fields, name_norm=normalise_name(fields["name"]), status=ACTIVE, updated_at=now))
        replace_sigs[row.id] = inc.signals - (have_sigs[row.id] - mine[row.id])
        changed.append(row.id)
        counts.updated += 1
    if withdraw:
        for i in range(0, len(withdraw), 500):
            session.execute(update(Entry).where(Entry.id.in_(withdraw[i : i + 500]))
                            .values(status=WITHDRAWN, updated_at=now).execution_options(synchronize_session=False))
    mark_changed(session, changed + withdraw)
    new_values: dict[str, set[str]] = defaultdict(set)
    sig_rows: list[dict[str, Any]] = []
    for eid, sigs in replace_sigs.items():
        session.execute(delete(EntrySignal).where(EntrySignal.entry_id == eid, EntrySignal.origin == EXCHANGE_ORIGIN))
        for form, value in sigs:
            sig_rows.append({"entry_id": eid, "form": form, "value": value, "origin": EXCHANGE_ORIGIN, "created_at": now})
            if (form, value) not in mine[eid]:
                new_values[form].add(value)
    if new_rows:
        id_of = _insert_entries(session, new_rows)
        for key, sigs in new_sigs:
            for form, value in sigs:
                sig_rows.append({"entry_id": id_of[key], "form": form, "value": value, "origin": EXCHANGE_ORIGIN,
                                 "created_at": now})
                new_values[form].add(value)
    _insert_rows(session, EntrySignal.__table__, sig_rows)
    return counts, {k: v for k, v in new_values.items() if k in FORMS}


def _insert_rows(session: Session, table, rows: list[dict[str, Any]]) -> None:
    """Insert many rows in the session's transaction: on SQLite with the driver's executemany (the ORM's
    per-row work costs more than SQLite's insert), elsewhere with one Core executemany."""
    if not rows:
        return
    if session.get_bind().dialect.name != "sqlite":
        for i in range(0, len(rows), 5000):
            session.execute(table.insert(), rows[i : i + 5000])
        return
    cols = list(rows[0])
    sql = f"INSERT INTO {table.name} ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})"
    stamp_at = [i for i, c in enumerate(cols) if isinstance(rows[0][c], datetime)]
    stamps: dict[datetime, str] = {}  # the same few timestamps on every row: format each once
    values = []
    for r in rows:
        t = [r[c] for c in cols]
        for i in stamp_at:
            v = t[i]
            t[i] = stamps.get(v) or stamps.setdefault(v, v.isoformat(sep=" "))
        values.append(t)
    cursor = session.connection().connection.driver_connection.cursor()
    try:
        cursor.executemany(sql, values)
    finally:
        cursor.close()


def _insert_entries(session: Session, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Insert new entries; return their ids by key. On SQLite the caller holds the write lock
    (write_session), so ids can be given from max(id) + 1; elsewhere the database's sequence gives them."""
    if session.get_bind().dialect.name == "sqlite":
        next_id = (session.scalar(select(func.max(Entry.id))) or 0) + 1
        for i, r in enumerate(rows):
            r["id"] = next_id + i
        _insert_rows(session, Entry.__table__, rows)
        return {r["key"]: r["id"] for r in rows}
    table = Entry.__table__
    id_of: dict[str, int] = {}
    for i in range(0, len(rows), 2000):
        got = session.execute(table.insert().returning(table.c.id, table.c.key), rows[i : i + 2000]).all()
        id_of.update({k: eid for eid, k in got})
    return id_of


# --- withdrawal -----------------------------------------------------------------------------------

def withdraw_entry(db: Database, entry_id: int, *, user: str, reason: str | None = None) -> dict[str, Any]:
    """Withdraw an entry: it matches no new file, and its bank's feed publishes it as a tombstone.
    Its existing matches stay for the record. Withdrawing twice is a no-op."""
    if reason is not None and len(reason) > 500:
        raise InvalidInput("a withdrawal reason has at most 500 characters")
    with db.write_session() as s:
        e = s.get(Entry, entry_id)
        if e is None:
            raise NotFound(f"no entry with id {entry_id}")
        already = e.status == WITHDRAWN
        if not already:
            e.status, e.updated_at, e.seq = WITHDRAWN, utcnow(), None
            record(s, user, "entry.withdraw", "entry", e.id, bank_id=e.bank_id, name=e.name, reason=reason)
        return {"entry": e.id, "bank_id": e.bank_id, "status": WITHDRAWN, "changed": not already}


# --- files ----------------------------------------------------------------------------------------

def export_signals(db: Database, bank_id: int, *, signer: SigningKey | None = None, user: str | None = None,
                   chunk: int = PAGE_MAX) -> Iterator[bytes]:
    """A bank as a "mirrorwatch-signals/1" file: JSON lines, a header, one record per line (tombstones
    included) and a trailer with the count, the SHA-256 of the record lines and, with a key, the
    signature over header + count + digest."""
    uid = bank_uid(db, bank_id)
    head = stamp(db, bank_id)
    with db.session() as s:
        name = s.scalar(select(Bank.name).where(Bank.id == bank_id))
        if user is not None:
            record(s, user, "export.signals", "bank", bank_id, signed=signer is not None)
    header = {"format": FORMAT, "type": "header", "bank": {"uid": uid, "name": name},
              "cursor": make_cursor(uid, head), "exported_at": _iso(utcnow())}
    yield canonical(header) + b"\n"
    digest = hashlib.sha256()
    count, after = 0, 0
    # one read transaction for the whole file: a consistent snapshot even while the bank changes
    with db.sessions() as s:
        if db.is_sqlite:
            s.connection().exec_driver_sql("BEGIN")
        else:
            s.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        while True:
            rows = s.execute(select(*_ENTRY_COLS).where(Entry.bank_id == bank_id, Entry.seq > after,
                                                        Entry.seq <= head).order_by(Entry.seq).limit(chunk)).all()
            if not rows:
                break
            recs = _records(s, uid, rows)
            lines = b"".join(canonical(r) + b"\n" for r in recs)
            digest.update(lines)
            count += len(recs)
            after = rows[-1].seq
            yield lines
        s.rollback()
    trailer: dict[str, Any] = {"type": "trailer", "count": count, "digest": digest.hexdigest()}
    if signer is not None:
        trailer["key_id"] = signer.key_id
        trailer["signature"] = signer.sign(file_message(header, count, trailer["digest"]))
    yield canonical(trailer) + b"\n"


def file_message(header: dict[str, Any], count: int, digest: str) -> bytes:
    return canonical({"header": header, "count": count, "digest": digest})


MAX_LINE = 1 << 20


def _lines(path) -> Iterator[tuple[int, bytes]]:
    with open(path, "rb") as f:
        for n, line in enumerate(f, 1):
            if len(line) > MAX_LINE:
                raise BadFeed(f"line {n} is longer than {MAX_LINE} bytes")
            yield n, line


def read_signals_file(path, *, verify_key=None, allow_unsigned: bool = False) -> tuple[dict[str, Any], int]:
    """Check a signals file end to end before anything is applied: header, every line's bytes against
    the trailer's digest and count, the signature against `verify_key`. Returns (header, count)."""
    header: dict[str, Any] | None = None
    trailer: dict[str, Any] | None = None
    digest = hashlib.sha256()
    count = 0
    for n, line in _lines(path):
        if trailer is not None:
            raise BadFeed(f"line {n}: data after the trailer")
        try:
            obj = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            raise BadFeed(f"line {n} is not JSON (the file is damaged or truncated)") from None
        if header is None:
            if not isinstance(obj, dict) or obj.get("format") != FORMAT or obj.get("type") != "header":
                raise BadFeed(f"not a {FORMAT} file (its first line is no {FORMAT} header)")
            header = obj
            continue
        if isinstance(obj, dict) and obj.get("type") == "trailer":
            trailer = obj
            continue
        digest.update(line if line.endswith(b"\n") else line + b"\n")
        count += 1
    if header is None:
        raise BadFeed(f"the file is empty: no {FORMAT} header")
    if trailer is None:
        raise BadFeed("the file has no trailer: it is truncated")
    if trailer.get("count") != count or trailer.get("digest") != digest.hexdigest():
        raise BadFeed(f"the records do not match the trailer (count {count} vs {trailer.get('count')}, or their "
                      "digest differs): the file was changed or damaged")
    if verify_key is not None:
        verify_key.verify(file_message(header, count, digest.hexdigest()), trailer.get("signature"),
                          trailer.get("key_id"), "this file")
    elif not allow_unsigned:
        from mirrorwatch.services.signing import BadSignature

        raise BadSignature("name the publisher's public key with --verify-key FILE, or pass --allow-unsigned "
                           "to import without checking who published it")
    return header, count


def is_signals_file(path) -> bool:
    try:
        with open(path, "rb") as f:
            start = f.read(200)
    except OSError:
        return False
    return start.lstrip().startswith(b"{") and FORMAT.encode() in start


def import_signals(db: Database, bank_name: str, path, *, verify_key=None, allow_unsigned: bool = False,
                   user: str = "cli", on_new_values=None) -> dict[str, Any]:
    """Import a checked signals file into a bank in one transaction (all records or none)."""
    header, count = read_signals_file(path, verify_key=verify_key, allow_unsigned=allow_unsigned)
    publisher = header.get("bank") if isinstance(header.get("bank"), dict) else {}
    origin = f"file:{publisher.get('uid', '?')}"
    total = ApplyCounts()
    with db.write_session() as s:
        bank = s.scalar(select(Bank).where(Bank.name == bank_name))
        if bank is None:
            raise NotFound(f"no bank named {bank_name!r}; create it with `mirrorwatch bank create {bank_name}`")
        batch: list[Incoming] = []
        n_rec = 0

        def flush() -> None:
            counts, values = apply_records(s, bank.id, batch, origin=origin)
            if on_new_values is not None and values:
                counts.matches = on_new_values(s, values)
            total.add(counts)
            batch.clear()

        first = True
        for n, line in _lines(path):
            if first:
                first = False
                continue
            obj = json.loads(line)
            if isinstance(obj, dict) and obj.get("type") == "trailer":
                break
            n_rec += 1
            batch.append(check_record(obj, f"line {n}"))
            if len(batch) >= PAGE_MAX:
                flush()
        flush()
        record(s, user, "bank.import_signals", "bank", bank.id, file=str(getattr(path, "name", path))[:200],
               publisher=publisher.get("uid"), signed=verify_key is not None, **total.to_dict())
    return {"bank": bank_name, "records": count, "publisher": publisher, "verified_by": verify_key.key_id
            if verify_key is not None else None, **total.to_dict()}


# --- hash lists for other tools -------------------------------------------------------------------

HASHLIST_FORMATS = {"sheet": "text/csv", "sha256sum": "text/plain", "te-csv": "text/csv"}


def export_hashlist(db: Database, bank_id: int, fmt: str, *, user: str | None = None) -> Iterator[str]:
    """Active entries as a list other tools ingest:

    - ``sheet``: the researchers' sheet (Model Name, Civitai URL, then one column per hash form with a
      sheet column, by its label), which `bank import` reads back;
    - ``sha256sum``: ``<sha256>  <entry global id>`` lines (`sha256sum -c` style);
    - ``te-csv``: ThreatExchange-style ``signal_type,signal_value`` rows, one per hash value of every form."""
    import csv
    import io

    from mirrorwatch.services.exports import csv_safe

    if fmt not in HASHLIST_FORMATS:
        raise InvalidInput(f"unknown hash list format {fmt!r}: use {', '.join(HASHLIST_FORMATS)}")
    uid = bank_uid(db, bank_id)
    if user is not None:
        with db.session() as s:
            record(s, user, "export.hashlist", "bank", bank_id, format=fmt)
    sheet_forms = [f for f in FORMS.values() if f.sheet_aliases]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if fmt == "sheet":
        w.writerow(["Model Name", "Civitai URL", *(f.label for f in sheet_forms)])
    elif fmt == "te-csv":
        w.writerow(["signal_type", "signal_value"])
    yield buf.getvalue()
    last = 0
    while True:
        with db.session() as s:
            rows = s.execute(select(*_ENTRY_COLS).where(Entry.bank_id == bank_id, Entry.id > last,
                                                        Entry.status != WITHDRAWN)
                             .order_by(Entry.id).limit(PAGE_MAX)).all()
            if not rows:
                break
            recs = _records(s, uid, rows)
        last = rows[-1].id
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        for r in recs:
            hashes = r["hashes"]
            if fmt == "sheet":
                w.writerow([csv_safe(r["name"]), csv_safe(r["url"] or ""),
                            *(hashes.get(f.name, [""])[0] for f in sheet_forms)])
            elif fmt == "sha256sum":
                for v in hashes.get("sha256", []):
                    buf.write(f"{v}  {r['id']}\n")
            else:
                for form, values in hashes.items():
                    for v in values:
                        w.writerow([form, v])
        yield buf.getvalue()
