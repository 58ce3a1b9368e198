"""Sheet uploads from the browser or the API: limits, safe names, and keeping the bytes between the
preview and the commit (the import workflow itself is in :mod:`mirrorwatch.services.imports`).

An upload is checked before it is parsed: at most MAX_UPLOAD_BYTES, a sheet extension, and a file
name reduced to a harmless label (the last path component, printable characters only). It is then
parsed within bank.sheets.UPLOAD_LIMITS (rows, cells, uncompressed size...: see SheetLimits). The name
is only ever shown and stored as text; uploaded bytes are kept, between the preview and the
commit, under a random id in a private folder beside the database, never under the given name.

Preview = a dry run of the real import with bad rows skipped: it reports how many rows would be
added, updated or rejected (with row numbers and reasons) and writes nothing."""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import time
import unicodedata
from pathlib import Path

from mirrorwatch.errors import InvalidInput, NotFound
from mirrorwatch.store.db import Database

MAX_UPLOAD_BYTES = 50 * 1024 * 1024
SHEET_EXTENSIONS = (".csv", ".tsv", ".txt", ".xlsx", ".xlsm", ".json", ".jsonl",
                    ".info", ".sha256", ".sha256sum")  # .civitai.info, sha256sum lists and sidecars
SHEET_NAMES = ("sha256sums",)  # files read as sheets whatever their (missing) extension
STAGE_TTL = 3600.0
_STAGE_ID = re.compile(r"^[A-Za-z0-9_-]{20,64}$")


class UploadTooLarge(InvalidInput):
    http_status = 413


class UnsupportedUpload(InvalidInput):
    http_status = 415


def safe_filename(name: str | None) -> str:
    """A display label for an uploaded file name: no folders, no control characters, bounded."""
    name = (name or "").replace("\\", "/").split("/")[-1]
    name = "".join(ch for ch in unicodedata.normalize("NFC", name)
                   if unicodedata.category(ch)[0] != "C")
    name = name.strip().lstrip(".").strip()
    if len(name) > 120:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 110] + "." + ext[:8]) if dot else name[:120]
    return name or "upload"


def check_upload(filename: str | None, data: bytes) -> str:
    """Validate an upload; return its safe label."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise UploadTooLarge(f"the file is {len(data) / 1e6:.1f} MB; uploads are limited to "
                             f"{MAX_UPLOAD_BYTES // (1024 * 1024)} MB")
    label = safe_filename(filename)
    if not label.lower().endswith(SHEET_EXTENSIONS) and label.lower() not in SHEET_NAMES:
        raise UnsupportedUpload(f"{label!r} is not a sheet: upload a {', '.join(SHEET_EXTENSIONS)} file")
    if not data.strip():
        raise InvalidInput(f"{label} is empty")
    return label


# --- staging between preview and commit -------------------------------------------------------------

def _stage_dir(db: Database) -> Path:
    d = db.sidecar / "uploads"
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    return d


def _cleanup(d: Path) -> None:
    cutoff = time.time() - STAGE_TTL
    for p in d.iterdir():
        with contextlib.suppress(OSError):
            if p.stat().st_mtime < cutoff:
                p.unlink()


def stage_upload(db: Database, *, user_id: int, bank_id: int, filename: str, data: bytes) -> str:
    """Keep an upload until it is committed (or an hour passes); returns its random id."""
    d = _stage_dir(db)
    _cleanup(d)
    sid = secrets.token_urlsafe(24)
    (d / f"{sid}.bin").write_bytes(data)
    (d / f"{sid}.json").write_text(json.dumps({"user": user_id, "bank": bank_id, "filename": filename}))
    return sid


def load_staged(db: Database, stage_id: str, *, user_id: int, bank_id: int) -> tuple[str, bytes]:
    """The staged upload (label, bytes) if it exists, is fresh and belongs to this user and bank."""
    if not isinstance(stage_id, str) or not _STAGE_ID.match(stage_id):
        raise NotFound("this upload has expired or does not exist: upload the file again")
    d = _stage_dir(db)
    meta_p, data_p = d / f"{stage_id}.json", d / f"{stage_id}.bin"
    try:
        meta = json.loads(meta_p.read_text())
        fresh = time.time() - meta_p.stat().st_mtime < STAGE_TTL
        data = data_p.read_bytes()
    except (OSError, ValueError):
        raise NotFound("this upload has expired or does not exist: upload the file again") from None
    if not fresh or meta.get("user") != user_id or meta.get("bank") != bank_id:
        raise NotFound("this upload has expired or does not exist: upload the file again")
    return str(meta.get("filename") or "upload"), data


def discard_staged(db: Database, stage_id: str) -> None:
    if not isinstance(stage_id, str) or not _STAGE_ID.match(stage_id):
        return
    d = _stage_dir(db)
    for suffix in (".bin", ".json"):
        with contextlib.suppress(OSError):
            os.unlink(d / f"{stage_id}{suffix}")
