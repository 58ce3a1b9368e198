"""Importing sheets into banks, as the CLI, the pages and the API all do it.

An import writes the bank's new entries and signals (:mod:`mirrorwatch.bank.importer`) and, in the
same transaction, matches the hub files swept before it against the newly banked hashes
(retroactive matching, :func:`mirrorwatch.match.exact.match_stored_files_for_values`): a model
banked today finds the re-upload swept last week. The bank layer knows nothing of matching; this
service joins the two.

Uploads from the browser go through two steps: :func:`preview_upload` checks the file, dry-runs the
import (bad rows skipped) and keeps the bytes under a random id; :func:`commit_upload` imports the
kept file for real (or reports the rejected rows), :func:`cancel_upload` drops it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from mirrorwatch.bank import importer, reader
from mirrorwatch.bank.importer import ImportRejected, ImportSummary
from mirrorwatch.bank.records import Record
from mirrorwatch.bank.sheets import UPLOAD_LIMITS, Sheet, open_sheet, parse_sheet
from mirrorwatch.match.archives import match_members_for_values
from mirrorwatch.match.exact import match_stored_files_for_values
from mirrorwatch.services import uploads
from mirrorwatch.services.banks import bank_name
from mirrorwatch.store.db import Database


def _retroactive(session: Session, values: dict[str, set[str]]) -> int:
    """Stored hub files, and archive members already read, that carry newly banked values."""
    return match_stored_files_for_values(session, values) + match_members_for_values(session, values)


def import_sheet(db: Database, bank: str, sheet: Sheet, filename: str, *, skip_bad: bool = False,
                 user: str = "cli", dry_run: bool = False, batch_rows: int | None = None,
                 items: Iterable[Record | tuple[int, str] | int] | None = None) -> ImportSummary:
    """Import parsed rows in one transaction, matching stored hub files against the new hashes
    (``items``: the sheet's records read elsewhere, see importer.import_sheet)."""
    return importer.import_sheet(db, bank, sheet, filename, skip_bad=skip_bad, user=user, dry_run=dry_run,
                                 on_new_values=_retroactive, batch_rows=batch_rows, items=items)


def import_file(db: Database, bank: str, path: Path, *, mapping: dict[str, str] | None = None,
                encoding: str | None = None, skip_bad: bool = False, user: str = "cli",
                dry_run: bool = False, filename: str | None = None, batch_rows: int | None = None) -> ImportSummary:
    """Read a sheet file (CSV/TSV/XLSX/JSON(L), Civitai JSON) and import it (see :func:`import_sheet`),
    streamed: its rows go from the file to the database a batch at a time, in one transaction."""
    filename = filename or path.name
    with open_sheet(path, mapping=mapping, encoding=encoding) as sheet:
        items = None
        if reader.wants_child(path, sheet.fmt, sheet.streamed or sheet.raw_json is not None):
            # a big sheet: read and checked by a second process while this one writes (bank/reader.py)
            items = reader.child_records(path, mapping=mapping, encoding=encoding, fmt=sheet.fmt,
                                         columns=dict(sheet.mapping), origin=importer.import_origin(filename))
        return import_sheet(db, bank, sheet, filename, skip_bad=skip_bad, user=user, dry_run=dry_run,
                            batch_rows=batch_rows, items=items)


def preview_import(db: Database, bank: str, filename: str | None, data: bytes) -> ImportSummary:
    """What importing these uploaded bytes would do, without writing anything."""
    label = uploads.check_upload(filename, data)
    sheet = parse_sheet(data, name=label, limits=UPLOAD_LIMITS)
    return import_sheet(db, bank, sheet, label, skip_bad=True, dry_run=True, user="preview")


def commit_import(db: Database, bank: str, filename: str | None, data: bytes, *, skip_bad: bool,
                  user: str) -> ImportSummary:
    """Import uploaded bytes for real (ImportRejected when rows are bad and skip_bad is false)."""
    label = uploads.check_upload(filename, data)
    sheet = parse_sheet(data, name=label, limits=UPLOAD_LIMITS)
    return import_sheet(db, bank, sheet, label, skip_bad=skip_bad, user=user)


@dataclass
class UploadStep:
    """Where a browser upload stands: the bank, the file's label, the row report, and (while it
    waits for a commit, or after a rejected one) the id the bytes are kept under."""

    bank_id: int
    bank: str
    label: str
    summary: ImportSummary
    stage: str | None = None
    error: str | None = None  # set when the commit was refused (rejected rows): nothing was written


def preview_upload(db: Database, bank_id: int, filename: str | None, data: bytes, *, user_id: int) -> UploadStep:
    """Step 1: check the upload, dry-run it, and keep the bytes until it is committed or cancelled."""
    bank = bank_name(db, bank_id)
    label = uploads.check_upload(filename, data)
    summary = preview_import(db, bank, label, data)
    stage = uploads.stage_upload(db, user_id=user_id, bank_id=bank_id, filename=label, data=data)
    return UploadStep(bank_id, bank, label, summary, stage)


def commit_upload(db: Database, bank_id: int, stage: str, *, user_id: int, user: str, skip_bad: bool) -> UploadStep:
    """Step 2: import the kept upload. Rejected rows (without skip_bad) leave it kept and set `error`."""
    bank = bank_name(db, bank_id)
    label, data = uploads.load_staged(db, stage, user_id=user_id, bank_id=bank_id)
    try:
        summary = commit_import(db, bank, label, data, skip_bad=skip_bad, user=user)
    except ImportRejected as exc:
        return UploadStep(bank_id, bank, label, exc.summary, stage, error=str(exc))
    uploads.discard_staged(db, stage)
    return UploadStep(bank_id, bank, label, summary)


def cancel_upload(db: Database, stage: str) -> None:
    uploads.discard_staged(db, stage)
