"""JSON API: banks, their entries and imports, exports, and sheet uploads (preview or commit)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.concurrency import run_in_threadpool

from mirrorwatch.bank.importer import ImportRejected
from mirrorwatch.services import banks, exports, imports, uploads
from mirrorwatch.services.banks import (
    BankDetail,
    BankView,
    EntryPage,
    ImportRunView,
    bank_name,
    create_bank,
    list_banks,
)
from mirrorwatch.web.auth import ADMIN, VIEWER, Principal
from mirrorwatch.web.routes.common import (
    DB,
    Cursor,
    IdPath,
    Limit,
    Offset,
    error_responses,
    stream_download,
)
from mirrorwatch.web.schemas import BankIn, ErrorOut, ImportSummaryOut

ERRORS = error_responses(400, 401, 403, 404, 409)
router = APIRouter(prefix="/api/banks", tags=["banks"], responses=ERRORS)


@router.get("", response_model=list[BankView], dependencies=[VIEWER], summary="Banks with entry counts and coverage")
def api_banks(db: DB):
    return list_banks(db)


@router.post("", response_model=BankView, status_code=201, summary="Create a bank (admin)")
def api_create_bank(db: DB, body: BankIn, p: Principal = ADMIN):
    return create_bank(db, body.name, description=body.description, source=body.source, user=p.name)


@router.get("/{bank_id}", response_model=BankDetail, dependencies=[VIEWER],
            summary="A bank: coverage (found online, where, since when) and import history")
def api_bank(db: DB, bank_id: IdPath):
    return banks.get_bank(db, bank_id)


@router.get("/{bank_id}/entries", response_model=EntryPage, dependencies=[VIEWER],
            summary="Entries of a bank, in id order (keyset pages: after/before an entry id; counts capped)")
def api_bank_entries(db: DB, bank_id: IdPath,
                     q: Annotated[str | None, Query(max_length=200, description="words the name's words begin with")] = None,
                     found: Annotated[bool, Query(description="only entries found online")] = False,
                     limit: Limit = 50, offset: Offset = 0, after: Cursor = None, before: Cursor = None):
    bank_name(db, bank_id)
    return banks.bank_entries(db, bank_id, q=q, found_only=found, limit=limit, offset=offset, after=after,
                              before=before)


@router.get("/{bank_id}/imports", response_model=list[ImportRunView], dependencies=[VIEWER], summary="Import history")
def api_bank_imports(db: DB, bank_id: IdPath):
    bank_name(db, bank_id)
    return banks.bank_imports(db, bank_id)


@router.get("/{bank_id}/export", dependencies=[VIEWER], summary="Export a bank as CSV or JSON",
            responses={200: {"content": {"text/csv": {}, "application/json": {}}}})
def api_bank_export(db: DB, bank_id: IdPath, format: Annotated[Literal["csv", "json"], Query()] = "csv",
                    p: Principal = VIEWER):
    name, chunks = exports.export_bank(db, bank_id, format, user=p.name)
    return stream_download(chunks, exports.FORMATS[format], name)


@router.post("/{bank_id}/import", response_model=ImportSummaryOut,
             summary="Upload a sheet: preview (dry_run) or import (admin)",
             responses={413: {"model": ErrorOut}, 415: {"model": ErrorOut}})
async def api_import(db: DB, bank_id: IdPath, file: Annotated[UploadFile, File(description="CSV/TSV/XLSX/JSON sheet")],
                     dry_run: Annotated[bool, Form(description="only report what would happen")] = True,
                     skip_bad: Annotated[bool, Form(description="import good rows even if some are rejected")] = False,
                     p: Principal = ADMIN):
    """With dry_run (the default) nothing is written: the answer is the row report (rows, added,
    updated, duplicates, rejected rows with reasons). Without it the import is one transaction; if
    rows are rejected and skip_bad is false, nothing is imported (422 with the row report)."""
    data = await file.read(uploads.MAX_UPLOAD_BYTES + 1)
    bank = await run_in_threadpool(bank_name, db, bank_id)
    if dry_run:
        summary = await run_in_threadpool(imports.preview_import, db, bank, file.filename, data)
        summary.import_id = None
        return summary.to_dict()
    try:
        summary = await run_in_threadpool(lambda: imports.commit_import(db, bank, file.filename, data,
                                                                        skip_bad=skip_bad, user=p.name))
    except ImportRejected as exc:
        from fastapi.responses import JSONResponse

        return JSONResponse({"error": str(exc), "summary": exc.summary.to_dict()}, status_code=422)
    return summary.to_dict()
