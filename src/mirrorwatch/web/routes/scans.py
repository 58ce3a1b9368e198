"""Pages: sweeps (running and past, quota, errors) and the API's reference."""

from __future__ import annotations

from fastapi import APIRouter, Request

from mirrorwatch.services import scans, watchstate
from mirrorwatch.web.auth import VIEWER, Principal
from mirrorwatch.web.render import render
from mirrorwatch.web.routes.common import DB, PAGE_SIZE, IdPath, Offset

router = APIRouter(include_in_schema=False)


@router.get("/scans")
def scans_page(request: Request, db: DB, offset: Offset = 0, p: Principal = VIEWER):
    return render(request, "scans.html", page=scans.scan_runs(db, limit=PAGE_SIZE, offset=offset),
                  quota=scans.last_quota(db), watch=watchstate.watch_status(db), params={})


@router.get("/scans/{run_id}")
def scan_page(request: Request, db: DB, run_id: IdPath, offset: Offset = 0, p: Principal = VIEWER):
    return render(request, "scan.html", s=scans.scan_run(db, run_id, limit=PAGE_SIZE, offset=offset), params={})


@router.get("/api-docs")
def api_docs(request: Request, p: Principal = VIEWER):
    schema = request.app.openapi()
    ops = []
    for path, item in schema.get("paths", {}).items():
        for method, op in item.items():
            ops.append((op.get("tags", [""])[0], method.upper(), path, op.get("summary", ""),
                        (op.get("description") or "").strip()))
    ops.sort()
    return render(request, "api_docs.html", ops=ops, info=schema.get("info", {}))
