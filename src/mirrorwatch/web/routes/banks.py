"""Pages: banks — list, create, a bank's coverage, entries and imports, upload with preview, export."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from mirrorwatch.bank.importer import ImportRejected
from mirrorwatch.errors import InvalidInput
from mirrorwatch.services import exports, pages, uploads
from mirrorwatch.services.banks import create_bank, list_banks
from mirrorwatch.store.db import Database
from mirrorwatch.web.auth import ADMIN, VIEWER, Principal
from mirrorwatch.web.render import redirect, render
from mirrorwatch.web.routes.common import PAGE_SIZE, IdPath, Offset, get_db, stream_download

router = APIRouter(include_in_schema=False)
DB = Annotated[Database, Depends(get_db)]


@router.get("/banks")
def banks_page(request: Request, db: DB, p: Principal = VIEWER):
    return render(request, "banks.html", banks=list_banks(db))


@router.post("/banks")
async def banks_create(request: Request, db: DB, p: Principal = ADMIN):
    form = await request.form()
    name, desc, src = (str(form.get(k) or "").strip() for k in ("name", "description", "source"))
    if len(desc) > 5000 or len(src) > 2000:
        raise InvalidInput("description (5000) or source (2000 characters) too long")
    bank = await run_in_threadpool(lambda: create_bank(db, name, description=desc or None, source=src or None,
                                                       user=p.name))
    return redirect(request, f"/banks/{bank.id}", f"Bank {bank.name} created.")


@router.get("/banks/{bank_id}")
def bank_page(request: Request, db: DB, bank_id: IdPath, q: Annotated[str, Query(max_length=200)] = "",
              found: Annotated[str, Query(max_length=5)] = "", offset: Offset = 0, p: Principal = VIEWER):
    b = pages.bank_page(db, bank_id, q=q or None, found_only=bool(found), limit=PAGE_SIZE, offset=offset)
    return render(request, "bank.html", b=b, params={"q": q, "found": found}, max_mb=uploads.MAX_UPLOAD_BYTES >> 20)


@router.get("/banks/{bank_id}/export/{fmt}")
def bank_export(db: DB, bank_id: IdPath, fmt: Annotated[Literal["csv", "json"], Path()], p: Principal = VIEWER):
    name, chunks = exports.export_bank(db, bank_id, fmt, user=p.name)
    return stream_download(chunks, exports.FORMATS[fmt], name)


@router.post("/banks/{bank_id}/import")
async def bank_upload(request: Request, db: DB, bank_id: IdPath, p: Principal = ADMIN):
    """Step 1: upload; the file is parsed and dry-run imported, and the row report is shown."""
    form = await request.form()
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise InvalidInput("choose a sheet file to upload")
    data = await upload.read(uploads.MAX_UPLOAD_BYTES + 1)
    bank = await run_in_threadpool(pages.bank_name, db, bank_id)
    label = uploads.check_upload(upload.filename, data)
    summary = await run_in_threadpool(uploads.preview_import, db, bank, label, data)
    stage = await run_in_threadpool(lambda: uploads.stage_upload(db, user_id=p.user.id, bank_id=bank_id,
                                                                 filename=label, data=data))
    return render(request, "import_preview.html", bank_id=bank_id, bank=bank, s=summary, stage=stage)


@router.post("/banks/{bank_id}/import/commit")
async def bank_commit(request: Request, db: DB, bank_id: IdPath, p: Principal = ADMIN):
    """Step 2: commit the previewed upload (or cancel it)."""
    form = await request.form()
    stage = str(form.get("stage") or "")
    if form.get("cancel"):
        await run_in_threadpool(uploads.discard_staged, db, stage)
        return redirect(request, f"/banks/{bank_id}", "Import cancelled; nothing was written.", "warn")
    bank = await run_in_threadpool(pages.bank_name, db, bank_id)
    label, data = await run_in_threadpool(lambda: uploads.load_staged(db, stage, user_id=p.user.id, bank_id=bank_id))
    skip_bad = bool(form.get("skip_bad"))
    try:
        summary = await run_in_threadpool(lambda: uploads.commit_import(db, bank, label, data, skip_bad=skip_bad,
                                                                        user=p.name))
    except ImportRejected as exc:
        return render(request, "import_preview.html", status_code=422, bank_id=bank_id, bank=bank, s=exc.summary,
                      stage=stage, error=str(exc))
    await run_in_threadpool(uploads.discard_staged, db, stage)
    return redirect(request, f"/banks/{bank_id}",
                    f"Imported {label}: {summary.added} added, {summary.updated} updated, "
                    f"{summary.duplicates} duplicates, {len(summary.rejected)} rejected.")
