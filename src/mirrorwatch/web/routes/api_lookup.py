"""JSON API: lookup, removed models (entries), hub repos, uploaders, dashboard."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from mirrorwatch.errors import InvalidInput
from mirrorwatch.services import dashboard as dash
from mirrorwatch.services import entries, repos, uploaders, where
from mirrorwatch.services.entries import EntryDetail
from mirrorwatch.services.lookup import LookupResult
from mirrorwatch.services.paging import Page
from mirrorwatch.services.repos import RepoDetail, RepoView
from mirrorwatch.services.serial import to_json_bytes
from mirrorwatch.services.uploaders import UploaderDetail, UploaderSummary
from mirrorwatch.services.where import WhereResult
from mirrorwatch.web.auth import VIEWER
from mirrorwatch.web.pools import run_lookup
from mirrorwatch.web.routes.common import DB, IdPath, Limit, Offset, error_responses
from mirrorwatch.web.schemas import DashboardOut

ERRORS = error_responses(400, 401, 403, 404)
router = APIRouter(prefix="/api", tags=["lookup"], responses=ERRORS, dependencies=[VIEWER])
Hub = Annotated[str, Path(min_length=1, max_length=40)]
Author = Annotated[str, Path(min_length=1, max_length=200)]


@router.get("/lookup", response_model=LookupResult, summary="Look up removed models by hash, Civitai URL or name")
async def api_lookup(db: DB, q: Annotated[str, Query(min_length=1, max_length=500, description="hash, URL or name")],
               limit: Annotated[int, Query(ge=1, le=100)] = 20,
               bank: Annotated[str | None, Query(max_length=200)] = None):
    """The input kind is detected: 64/12/10/8 hex (every hash form it may be), a Civitai URL or
    `civitai:ID`, or a name (typo-tolerant). Each result says why it matched."""
    # The hottest endpoint: the read model is written to JSON text once, as is (no second validation
    # pass). Name searches run on their own small pool so they never hold up hash lookups (web/pools.py).
    result = await run_lookup(db, q, limit=limit, bank=bank or None)
    return Response(to_json_bytes(result), media_type="application/json")


@router.get("/entries/{entry_id}", response_model=EntryDetail, summary="A removed model with its hash forms and mirrors")
def api_entry(db: DB, entry_id: IdPath):
    return entries.get_entry(db, entry_id)


@router.get("/repos", response_model=Page[RepoView], summary="Hub repos holding matches, most matches first")
def api_repos(db: DB, hub: Annotated[str | None, Query(max_length=40)] = None,
              author: Annotated[str | None, Query(max_length=200)] = None,
              all_repos: Annotated[bool, Query(alias="all", description="include repos without matches")] = False,
              limit: Limit = 50, offset: Offset = 0):
    return repos.list_repos(db, hub=hub, author=author, with_matches=not all_repos, limit=limit, offset=offset)


@router.get("/repos/{repo_id}", response_model=RepoDetail, summary="A hub repo: files, matches, status history")
def api_repo(db: DB, repo_id: IdPath):
    return repos.get_repo(db, repo_id)


@router.get("/uploaders", response_model=Page[UploaderSummary], summary="Uploader accounts by number of matches")
def api_uploaders(db: DB, hub: Annotated[str | None, Query(max_length=40)] = None,
                  min_matches: Annotated[int, Query(ge=1, le=1_000_000)] = 1, limit: Limit = 50, offset: Offset = 0):
    return uploaders.list_uploaders(db, hub=hub, min_matches=min_matches, limit=limit, offset=offset)


@router.get("/uploaders/{hub}/{author:path}", response_model=UploaderDetail, summary="All matches of one uploader")
def api_uploader(db: DB, hub: Hub, author: Author, limit: Limit = 50, offset: Offset = 0):
    return uploaders.get_uploader(db, hub, author, limit=limit, offset=offset)


@router.get("/dashboard", response_model=DashboardOut, summary="Aggregates: over time, by bank, uploader, state, tier")
def api_dashboard(db: DB, days: Annotated[int, Query(ge=1, le=366)] = 60):
    return dash.dashboard(db, days=days)


HashQuery = Annotated[str | None, Query(min_length=1, max_length=200)]


def where_query(sha256: str | None, hash_: str | None, form: str | None) -> tuple[str, str | None]:
    """The value and form a files query asks for: `sha256=` is that form, `hash=` any form (or `form=`)."""
    if (sha256 is None) == (hash_ is None):
        raise InvalidInput("give exactly one of sha256= or hash=")
    return (sha256, "sha256") if sha256 is not None else (hash_ or "", form or None)


@router.get("/files", response_model=WhereResult, summary="Swept hub files carrying a hash, banked or not")
def api_files(db: DB, sha256: HashQuery = None,
              hash_: Annotated[str | None, Query(alias="hash", min_length=1, max_length=200,
                                                 description="any form: 64/12/10/8 hex")] = None,
              form: Annotated[str | None, Query(max_length=40, description="only this hash form")] = None,
              limit: Annotated[int, Query(ge=1, le=where.MAX_FILES)] = 100):
    """Reverse look-up from the sweeps' own file index: every swept file (and archive member) with
    this hash, with its hub, repo type, repo, path, status and first/last seen, the matches recorded
    on it and the banked entries the hash names (if any)."""
    value, chosen = where_query(sha256, hash_, form)
    return where.where(db, value, form=chosen, limit=limit)
