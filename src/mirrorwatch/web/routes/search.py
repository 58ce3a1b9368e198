"""Pages: the dashboard and the one search box."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from mirrorwatch.errors import InvalidInput
from mirrorwatch.services import dashboard as dash
from mirrorwatch.services import where
from mirrorwatch.services.scans import last_quota
from mirrorwatch.web import charts
from mirrorwatch.web.auth import VIEWER, Principal
from mirrorwatch.web.pools import run_lookup
from mirrorwatch.web.render import redirect, render
from mirrorwatch.web.routes.common import DB

router = APIRouter(include_in_schema=False)


@router.get("/")
def home(request: Request, db: DB, p: Principal = VIEWER):
    d = dash.dashboard(db)
    return render(request, "dashboard.html", d=d, quota=last_quota(db),
                  over_time=charts.day_columns(d.over_time), by_state=charts.hbars(d.by_state),
                  by_bank=charts.hbars(d.by_bank), by_uploader=charts.hbars(d.by_uploader),
                  by_tier=charts.hbars(d.by_tier))


@router.get("/search")
async def search(request: Request, db: DB, q: Annotated[str, Query(max_length=2000)] = "",
                 bank: Annotated[str, Query(max_length=200)] = "", p: Principal = VIEWER):
    q = q.strip()
    if not q:
        return await run_in_threadpool(render, request, "search.html", q="", result=None, error=None)
    try:
        result = await run_lookup(db, q, limit=20, bank=bank or None)  # names on their own pool
    except InvalidInput as exc:
        return await run_in_threadpool(render, request, "search.html", status_code=400, q=q, result=None,
                                       error=str(exc))
    if result.kind in ("hash", "url") and len(result.results) == 1:
        return redirect(request, f"/entries/{result.results[0].id}")
    return await run_in_threadpool(render, request, "search.html", q=q, result=result, error=None)


@router.get("/files")
def files(request: Request, db: DB, hash_: Annotated[str, Query(alias="hash", max_length=200)] = "",
          sha256: Annotated[str, Query(max_length=200)] = "", p: Principal = VIEWER):
    """Reverse look-up page: which swept files carry a hash (the JSON twin is GET /api/files)."""
    value, form = (sha256.strip(), "sha256") if sha256.strip() else (hash_.strip(), None)
    if not value:
        return render(request, "files.html", q="", result=None, error=None)
    try:
        result = where.where(db, value, form=form)
    except InvalidInput as exc:
        return render(request, "files.html", status_code=400, q=value, result=None, error=str(exc))
    return render(request, "files.html", q=value, result=result, error=None)
