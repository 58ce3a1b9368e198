"""Pages: banks — list, create, a bank's coverage, entries and imports, upload with preview, export."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from mirrorwatch.errors import InvalidInput
from mirrorwatch.services import banks, exports, imports, uploads
from mirrorwatch.services.banks import create_bank, list_banks
from mirrorwatch.web.auth import ADMIN, VIEWER, Principal
from mirrorwatch.web.render import redirect, render
from mirrorwatch.web.routes.common import DB, PAGE_SIZE, Cursor, IdPath, Offset, stream_download

router = APIRouter(include_in_schema=False)


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
              found: Annotated[str, Query(max_length=5)] = "", offset: Offset = 0, after: Cursor = None,
              before: Cursor = None, p: Principal = VIEWER):
    b = banks.get_bank(db, bank_id)
    entries = banks.bank_entries(db, bank_id, q=q or None, found_only=bool(found), limit=PAGE_SIZE, offset=offset,
                                 after=after, before=before)
    return render(request, "bank.html", b=b, entries=entries, params={"q": q, "found": found},
                  max_mb=uploads.MAX_UPLOAD_BYTES >> 20)


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
    step = await run_in_threadpool(lambda: imports.preview_upload(db, bank_id, upload.filename, data,
                                                                  user_id=p.user.id))
    return render(request, "import_preview.html", bank_id=bank_id, bank=step.bank, s=step.summary, stage=step.stage)


@router.post("/banks/{bank_id}/import/commit")
async def bank_commit(request: Request, db: DB, bank_id: IdPath, p: Principal = ADMIN):
    """Step 2: commit the previewed upload (or cancel it)."""
    form = await request.form()
    stage = str(form.get("stage") or "")
    if form.get("cancel"):
        await run_in_threadpool(imports.cancel_upload, db, stage)
        return redirect(request, f"/banks/{bank_id}", "Import cancelled; nothing was written.", "warn")
    skip_bad = bool(form.get("skip_bad"))
    step = await run_in_threadpool(lambda: imports.commit_upload(db, bank_id, stage, user_id=p.user.id, user=p.name,
                                                                 skip_bad=skip_bad))
    if step.error:
        return render(request, "import_preview.html", status_code=422, bank_id=bank_id, bank=step.bank, s=step.summary,
                      stage=step.stage, error=step.error)
    s = step.summary
    return redirect(request, f"/banks/{bank_id}",
                    f"Imported {step.label}: {s.added} added, {s.updated} updated, "
                    f"{s.duplicates} duplicates, {len(s.rejected)} rejected.")
