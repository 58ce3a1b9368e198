"""Pages: takedown reports — select confirmed mirrors, build, read, download, mark sent, close."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Request
from fastapi.concurrency import run_in_threadpool

from mirrorwatch.services import reports
from mirrorwatch.web.auth import REVIEWER, VIEWER, Principal
from mirrorwatch.web.render import redirect, render
from mirrorwatch.web.routes.common import DB, IdPath, Offset, download, form_ints

router = APIRouter(include_in_schema=False)


@router.get("/reports")
def reports_page(request: Request, db: DB, offset: Offset = 0, p: Principal = VIEWER):
    return render(request, "reports.html", cands=reports.candidates(db, limit=500),
                  page=reports.list_reports(db, limit=50, offset=offset), params={})


@router.post("/reports")
async def build(request: Request, db: DB, p: Principal = REVIEWER):
    form = await request.form()
    ids = form_ints(form.getlist("match_id"))
    made = await run_in_threadpool(lambda: reports.build_reports(db, ids, p.name, title=str(form.get("title") or "")))
    if len(made) == 1:
        return redirect(request, f"/reports/{made[0].id}", f"Report #{made[0].id} built.")
    return redirect(request, "/reports", f"{len(made)} reports built, one per hub: " +
                    ", ".join(f"#{r.id}" for r in made) + ".")


@router.get("/reports/{report_id}")
def report_page(request: Request, db: DB, report_id: IdPath, p: Principal = VIEWER):
    rep = reports.get_report(db, report_id)
    return render(request, "report.html", rep=rep, text=reports.render_text(rep))


@router.get("/reports/{report_id}/download/{fmt}")
def report_download(db: DB, report_id: IdPath, fmt: Annotated[Literal["text", "markdown", "csv", "json"], Path()],
                    p: Principal = VIEWER):
    body, media, name = reports.export_report(db, report_id, fmt)
    return download(body, media, name)


@router.post("/reports/{report_id}/sent")
async def report_sent(request: Request, db: DB, report_id: IdPath, p: Principal = REVIEWER):
    form = await request.form()
    await run_in_threadpool(lambda: reports.mark_sent(db, report_id, p.name, note=str(form.get("note") or "")))
    return redirect(request, f"/reports/{report_id}", "Marked sent: its mirrors are now reported.")


@router.post("/reports/{report_id}/close")
async def report_close(request: Request, db: DB, report_id: IdPath, p: Principal = REVIEWER):
    form = await request.form()
    await run_in_threadpool(lambda: reports.close_report(db, report_id, p.name, note=str(form.get("note") or "")))
    return redirect(request, f"/reports/{report_id}", "Report closed.")


@router.post("/reports/{report_id}/remove")
async def report_remove(request: Request, db: DB, report_id: IdPath, p: Principal = REVIEWER):
    form = await request.form()
    ids = form_ints([form.get("match_id")])
    if not ids:
        return redirect(request, f"/reports/{report_id}", "Nothing selected.", "warn")
    await run_in_threadpool(reports.remove_item, db, report_id, ids[0], p.name)
    return redirect(request, f"/reports/{report_id}", f"Match {ids[0]} taken out of the report.")
