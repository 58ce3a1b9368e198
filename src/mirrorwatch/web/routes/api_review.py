"""JSON API: matches (the review queue) and decisions."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from mirrorwatch.services import exports, review
from mirrorwatch.services.matches import MatchView
from mirrorwatch.services.paging import Page
from mirrorwatch.services.review import DecideResult, MatchDetail, QueueFilter
from mirrorwatch.web.auth import REVIEWER, VIEWER, Principal
from mirrorwatch.web.routes.common import DB, IdPath, Limit, Offset, OptId, error_responses, stream_download
from mirrorwatch.web.schemas import DecisionIn, MatchState

ERRORS = error_responses(400, 401, 403, 404, 409)
router = APIRouter(prefix="/api", tags=["review"], responses=ERRORS)


class MatchQuery:
    """Queue filters as query parameters (shared by the list and the export)."""

    def __init__(
        self,
        state: Annotated[MatchState | Literal["all"], Query(description="'all' for every state")] = "new",
        bank_id: OptId = None,
        tier: Annotated[int | None, Query(ge=1, le=3)] = None,
        min_score: Annotated[float | None, Query(ge=0, le=1000)] = None,
        uploader: Annotated[str | None, Query(max_length=200)] = None,
        hub: Annotated[str | None, Query(max_length=40)] = None,
        max_age_days: Annotated[int | None, Query(ge=0, le=100_000)] = None,
        min_age_days: Annotated[int | None, Query(ge=0, le=100_000)] = None,
        entry_id: OptId = None,
        repo_id: OptId = None,
        sort: Annotated[Literal["score", "newest", "oldest", "uploader"], Query()] = "score",
    ) -> None:
        self.filter = QueueFilter(
            state=None if state == "all" else state, bank_id=bank_id, tier=tier, min_score=min_score,
            uploader=uploader or None, hub=hub or None, max_age_days=max_age_days, min_age_days=min_age_days,
            entry_id=entry_id, repo_pk=repo_id, sort=sort,
        )


@router.get("/matches", response_model=Page[MatchView], dependencies=[VIEWER],
            summary="Matches (the review queue), filtered and paginated")
def api_matches(db: DB, q: Annotated[MatchQuery, Depends()], limit: Limit = 50, offset: Offset = 0):
    return review.queue(db, q.filter, limit=limit, offset=offset)


@router.get("/matches/export", dependencies=[VIEWER], summary="Export matches as CSV or JSON",
            responses={200: {"content": {"text/csv": {}, "application/json": {}}}})
def api_matches_export(db: DB, q: Annotated[MatchQuery, Depends()],
                       format: Annotated[Literal["csv", "json"], Query()] = "csv", p: Principal = VIEWER):
    name, chunks = exports.export_matches(db, q.filter, format, user=p.name)
    return stream_download(chunks, exports.FORMATS[format], name)


@router.get("/matches/{match_id}", response_model=MatchDetail, dependencies=[VIEWER],
            summary="One match with its evidence and decision history")
def api_match(db: DB, match_id: IdPath):
    return review.get_match(db, match_id)


@router.post("/decisions", response_model=DecideResult, summary="Decide on one or more matches (all or none)")
def api_decide(db: DB, body: DecisionIn, p: Principal = REVIEWER):
    """confirmed / dismissed / second_look / new (undo). Refused with 409 when a match's state does
    not allow it (reported, gone, or in a draft report); then nothing changes."""
    return review.decide(db, body.match_ids, body.state, body.note, p.name)
