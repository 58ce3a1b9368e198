"""JSON API: scan runs (sweeps), their counts, quota and errors."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from mirrorwatch.services import scans
from mirrorwatch.services.paging import Page
from mirrorwatch.services.scans import ScanRunPage, ScanRunView
from mirrorwatch.web.auth import VIEWER
from mirrorwatch.web.routes.common import DB, IdPath, Limit, Offset, error_responses

ERRORS = error_responses(400, 401, 404)
router = APIRouter(prefix="/api/scans", tags=["scans"], responses=ERRORS, dependencies=[VIEWER])


@router.get("", response_model=Page[ScanRunView], summary="Sweeps, running ones first")
def api_scans(db: DB, status: Annotated[Literal["running", "finished", "failed", "interrupted"] | None, Query()] = None,
              limit: Limit = 50, offset: Offset = 0):
    return scans.scan_runs(db, status=status, limit=limit, offset=offset)


@router.get("/{run_id}", response_model=ScanRunPage, summary="One sweep with what it skipped and why")
def api_scan(db: DB, run_id: IdPath, limit: Limit = 50, offset: Offset = 0):
    return scans.scan_run(db, run_id, limit=limit, offset=offset)
