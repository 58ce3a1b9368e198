"""Exports of banks and matches as CSV or JSON, streamed in chunks.

A bank can hold a million entries, so exports never build the whole file in memory: they walk the
table by id (keyset pagination) and yield text pieces a web response or a CLI can write as they
come. Cells that a spreadsheet would run as a formula are prefixed with a quote."""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select

from mirrorwatch.display import csv_safe
from mirrorwatch.errors import InvalidInput
from mirrorwatch.hashing.forms import FORMS
from mirrorwatch.services.audit import record
from mirrorwatch.services.banks import bank_name
from mirrorwatch.services.matches import match_select, match_views
from mirrorwatch.services.review import QueueFilter, filter_conditions
from mirrorwatch.store.db import Database
from mirrorwatch.store.models import Entry, EntrySignal, Match

CHUNK = 5000
FORMATS = {"csv": "text/csv; charset=utf-8", "json": "application/json"}
#: One column per hash form: a live view of the registry, in its order.
BANK_HASHES = FORMS.keys()


def bank_columns() -> tuple[str, ...]:
    return ("id", "name", "url", "civitai_model_id", "civitai_version_id", "kind", "notes", *BANK_HASHES,
            "imported_from", "row")


MATCH_COLUMNS = ("id", "state", "tier", "score", "entry_id", "entry_name", "bank", "hub", "repo_type", "repo_id", "path",
                 "url", "uploader", "sha256", "repo_status", "file_status", "first_seen", "last_seen", "found_at",
                 "evidence", "member", "archive")  # an archive member's path inside its archive, and the archive's path


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise InvalidInput(f"unknown export format {fmt!r}: use csv or json")
    return fmt


class _Writer:
    """Rows to CSV or JSON-array text, piece by piece."""

    def __init__(self, fmt: str, columns: tuple[str, ...]) -> None:
        self.fmt, self.columns, self.first = fmt, columns, True

    def head(self) -> str:
        if self.fmt == "json":
            return "["
        return ",".join(self.columns) + "\n"

    def rows(self, rows: list[dict[str, Any]]) -> str:
        if self.fmt == "json":
            parts = []
            for r in rows:
                parts.append(("\n" if self.first else ",\n") + json.dumps(r, ensure_ascii=False, default=str))
                self.first = False
            return "".join(parts)
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        for r in rows:
            w.writerow([csv_safe("" if r.get(c) is None else r.get(c)) for c in self.columns])
        return buf.getvalue()

    def tail(self) -> str:
        return "\n]\n" if self.fmt == "json" else ""


def _audit_export(db: Database, user: str | None, what: str, object_id: int | None, **detail: Any) -> None:
    """Exports carry names of real people out of the app: who took which one is recorded."""
    if user is None:
        return
    with db.session() as s:
        record(s, user, f"export.{what}", what, object_id, **detail)


def export_bank(db: Database, bank_id: int, fmt: str, *, user: str | None = None) -> tuple[str, Iterator[str]]:
    """(file name, text pieces) of a bank's entries with their hash forms."""
    check_format(fmt)
    name = bank_name(db, bank_id)
    _audit_export(db, user, "bank", bank_id, format=fmt)

    def gen() -> Iterator[str]:
        w = _Writer(fmt, bank_columns())
        yield w.head()
        last = 0
        while True:
            with db.session() as s:
                entries = list(s.scalars(select(Entry).where(Entry.bank_id == bank_id, Entry.id > last)
                                         .order_by(Entry.id).limit(CHUNK)))
                if not entries:
                    break
                sigs: dict[int, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
                for eid, form, value in s.execute(
                    select(EntrySignal.entry_id, EntrySignal.form, EntrySignal.value)
                    .where(EntrySignal.entry_id.in_([e.id for e in entries]), EntrySignal.form.in_(list(BANK_HASHES)))
                    .order_by(EntrySignal.id)
                ):
                    sigs[eid][form].append(value)
            rows = []
            for e in entries:
                row: dict[str, Any] = {"id": e.id, "name": e.name, "url": e.url, "civitai_model_id": e.civitai_model_id,
                                       "civitai_version_id": e.civitai_version_id, "kind": e.kind, "notes": e.notes,
                                       "imported_from": e.imported_from, "row": e.row}
                for form in BANK_HASHES:
                    vals = sigs[e.id].get(form, [])
                    row[form] = (vals if fmt == "json" else " ".join(vals)) if vals else None
                rows.append(row)
            yield w.rows(rows)
            last = entries[-1].id
        yield w.tail()

    safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in name)[:60] or "bank"
    return f"mirrorwatch-bank-{bank_id}-{safe}.{fmt}", gen()


def export_matches(db: Database, flt: QueueFilter, fmt: str, *, user: str | None = None) -> tuple[str, Iterator[str]]:
    """(file name, text pieces) of the matches a queue filter selects, in id order."""
    check_format(fmt)
    flt = flt.check()
    conds = filter_conditions(flt)
    _audit_export(db, user, "matches", None, format=fmt,
                  filter={k: v for k, v in flt.__dict__.items() if v is not None})

    def gen() -> Iterator[str]:
        w = _Writer(fmt, MATCH_COLUMNS)
        yield w.head()
        last = 0
        while True:
            with db.session() as s:
                views = match_views(s, match_select().where(*conds, Match.id > last).order_by(Match.id).limit(CHUNK))
            if not views:
                break
            yield w.rows([{
                "id": v.id, "state": v.state, "tier": v.tier, "score": v.score, "entry_id": v.entry_id,
                "entry_name": v.entry_name, "bank": v.bank, "hub": v.hub, "repo_type": v.repo_type, "repo_id": v.repo_id,
                "path": v.path,
                "url": v.url, "uploader": v.author, "sha256": v.sha256, "repo_status": v.repo_status,
                "file_status": v.file_status, "first_seen": v.first_seen.isoformat() + "Z",
                "last_seen": v.last_seen.isoformat() + "Z", "found_at": v.created_at.isoformat() + "Z",
                "evidence": v.evidence if fmt == "json" else "; ".join(v.why), "member": v.member,
                "archive": v.archive,
            } for v in views])
            last = views[-1].id
        yield w.tail()

    return f"mirrorwatch-matches.{fmt}", gen()
