"""JSON API: takedown reports."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from mirrorwatch.services import reports
from mirrorwatch.services.matches import MatchView
from mirrorwatch.services.paging import Page
from mirrorwatch.services.reports import ReportSummary, ReportView
from mirrorwatch.web.auth import REVIEWER, VIEWER, Principal
from mirrorwatch.web.routes.common import DB, IdPath, Limit, Offset, download, error_responses
from mirrorwatch.web.schemas import NoteIn, ReportIn

ERRORS = error_responses(400, 401, 403, 404, 409)
router = APIRouter(prefix="/api/reports", tags=["reports"], responses=ERRORS)


@router.get("", response_model=Page[ReportSummary], dependencies=[VIEWER], summary="Reports, newest first")
def api_reports(db: DB, state: Annotated[Literal["draft", "sent", "closed"] | None, Query()] = None,
                limit: Limit = 50, offset: Offset = 0):
    return reports.list_reports(db, state=state, limit=limit, offset=offset)


@router.get("/candidates", response_model=Page[MatchView], dependencies=[VIEWER],
            summary="Confirmed mirrors not yet in a report")
def api_candidates(db: DB, hub: Annotated[str | None, Query(max_length=40)] = None, limit: Limit = 50,
                   offset: Offset = 0):
    return reports.candidates(db, hub=hub, limit=limit, offset=offset)


@router.post("", response_model=list[ReportView], status_code=201,
             summary="Build draft reports (one per hub) from confirmed mirrors")
def api_build(db: DB, body: ReportIn, p: Principal = REVIEWER):
    return reports.build_reports(db, body.match_ids, p.name, title=body.title)


@router.get("/{report_id}", response_model=ReportView, dependencies=[VIEWER], summary="A report with its mirrors and outcome")
def api_report(db: DB, report_id: IdPath):
    return reports.get_report(db, report_id)


@router.get("/{report_id}/export", dependencies=[VIEWER], summary="A report as text (for the hub's form), Markdown, CSV or JSON",
            responses={200: {"content": {"text/plain": {}, "text/markdown": {}, "text/csv": {}, "application/json": {}}}})
def api_report_export(db: DB, report_id: IdPath, format: Annotated[Literal["text", "markdown", "csv", "json"], Query()] = "text"):
    body, media, name = reports.export_report(db, report_id, format)
    return download(body, media, name)


@router.post("/{report_id}/sent", response_model=ReportView, summary="Mark a draft report sent: its mirrors become reported")
def api_sent(db: DB, report_id: IdPath, body: NoteIn | None = None, p: Principal = REVIEWER):
    return reports.mark_sent(db, report_id, p.name, note=body.note if body else None)


@router.post("/{report_id}/close", response_model=ReportView, summary="Close a sent report")
def api_close(db: DB, report_id: IdPath, body: NoteIn | None = None, p: Principal = REVIEWER):
    return reports.close_report(db, report_id, p.name, note=body.note if body else None)


@router.delete("/{report_id}/items/{match_id}", response_model=ReportView, summary="Take a mirror out of a draft report")
def api_remove_item(db: DB, report_id: IdPath, match_id: IdPath, p: Principal = REVIEWER):
    return reports.remove_item(db, report_id, match_id, p.name)
