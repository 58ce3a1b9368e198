"""Pages: a removed model, a hub repo, uploaders."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from mirrorwatch.services import entries, repos, uploaders
from mirrorwatch.web.auth import VIEWER, Principal
from mirrorwatch.web.render import render
from mirrorwatch.web.routes.common import DB, PAGE_SIZE, IdPath, Offset

router = APIRouter(include_in_schema=False)


@router.get("/entries/{entry_id}")
def entry(request: Request, db: DB, entry_id: IdPath, p: Principal = VIEWER):
    return render(request, "entry.html", e=entries.get_entry(db, entry_id))


@router.get("/repos/{repo_id}")
def repo(request: Request, db: DB, repo_id: IdPath, p: Principal = VIEWER):
    return render(request, "repo.html", r=repos.get_repo(db, repo_id))


@router.get("/uploaders")
def uploader_list(request: Request, db: DB, hub: Annotated[str, Query(max_length=40)] = "",
                  offset: Offset = 0, p: Principal = VIEWER):
    page = uploaders.list_uploaders(db, hub=hub or None, limit=PAGE_SIZE, offset=offset)
    return render(request, "uploaders.html", page=page, params={"hub": hub})


@router.get("/uploaders/{hub}/{author:path}")  # ":path": uploader names may hold "/"
def uploader(request: Request, db: DB, hub: Annotated[str, Path(max_length=40)],
             author: Annotated[str, Path(max_length=200)], offset: Offset = 0, p: Principal = VIEWER):
    return render(request, "uploader.html", u=uploaders.get_uploader(db, hub, author, limit=PAGE_SIZE, offset=offset),
                  params={})
