"""Hub repos: a mirror's files, matches and status history, and repos listed by number of matches."""

from __future__ import annotations

from sqlalchemy import func, select

from mirrorwatch.errors import NotFound
from mirrorwatch.hubs.registry import web_url as hub_web_url
from mirrorwatch.services.matches import MatchView, match_select, match_views
from mirrorwatch.services.paging import Page, check_window
from mirrorwatch.services.serial import Utc, read_model
from mirrorwatch.store.db import Database
from mirrorwatch.store.models import HubFile, HubRepo, Match, StatusEvent

MAX_FILES_SHOWN = 500
MAX_MATCHES_SHOWN = 500


@read_model
class RepoView:
    id: int
    hub: str
    repo_type: str
    repo_id: str
    author: str | None
    status: str
    gated: bool
    disabled: bool
    sha: str | None
    created_at: Utc | None
    last_modified: Utc | None
    first_seen: Utc
    last_seen: Utc
    error: str | None
    url: str | None
    matches: int = 0


@read_model
class FileView:
    id: int
    path: str
    size: int | None
    sha256: str | None
    status: str
    first_seen: Utc
    last_seen: Utc
    matches: int = 0


@read_model
class StatusEventView:
    id: int
    at: Utc
    status: str
    detail: str | None
    path: str | None


@read_model
class RepoDetail:
    repo: RepoView
    files: list[FileView]
    files_total: int
    matches: list[MatchView]
    events: list[StatusEventView]


def repo_url(hub: str, repo_id: str, repo_type: str | None = None) -> str | None:
    return hub_web_url(hub, repo_id, None, repo_type)


def repo_view(r: HubRepo, matches: int = 0) -> RepoView:
    return RepoView(r.id, r.hub, r.repo_type, r.repo_id, r.author, r.status, r.gated, r.disabled, r.sha,
                    r.created_at, r.last_modified, r.first_seen, r.last_seen, r.error,
                    repo_url(r.hub, r.repo_id, r.repo_type), matches)


def get_repo(db: Database, repo_pk: int) -> RepoDetail:
    with db.session() as s:
        r = s.get(HubRepo, repo_pk)
        if r is None:
            raise NotFound(f"no hub repo with id {repo_pk}")
        per_file = dict(s.execute(
            select(Match.hub_file_id, func.count()).join(HubFile, HubFile.id == Match.hub_file_id)
            .where(HubFile.repo_pk == repo_pk).group_by(Match.hub_file_id)
        ).all())
        files_total = s.scalar(select(func.count()).select_from(HubFile).where(HubFile.repo_pk == repo_pk)) or 0
        files = [FileView(f.id, f.path, f.size, f.sha256, f.status, f.first_seen, f.last_seen, per_file.get(f.id, 0))
                 for f in s.scalars(select(HubFile).where(HubFile.repo_pk == repo_pk)
                                    .order_by(HubFile.path).limit(MAX_FILES_SHOWN))]
        matches = match_views(s, match_select().where(HubRepo.id == repo_pk).order_by(Match.id).limit(MAX_MATCHES_SHOWN))
        paths = {f.id: f.path for f in files}
        events = [StatusEventView(ev.id, ev.at, ev.status, ev.detail, paths.get(ev.hub_file_id) if ev.hub_file_id else None)
                  for ev in s.scalars(select(StatusEvent).where(StatusEvent.repo_pk == repo_pk)
                                      .order_by(StatusEvent.at.desc(), StatusEvent.id.desc()).limit(200))]
        view = repo_view(r, sum(per_file.values()))
    return RepoDetail(view, files, files_total, matches, events)


def list_repos(db: Database, *, hub: str | None = None, author: str | None = None, with_matches: bool = True,
               limit: int | None = None, offset: int | None = None) -> Page[RepoView]:
    """Hub repos, those holding the most matches first (only repos with matches by default)."""
    limit, offset = check_window(limit, offset)
    counts = (select(HubFile.repo_pk.label("rpk"), func.count(Match.id).label("n"))
              .join(Match, Match.hub_file_id == HubFile.id).group_by(HubFile.repo_pk).subquery())
    conds = []
    if hub:
        conds.append(HubRepo.hub == hub)
    if author:
        conds.append(HubRepo.author == author)
    q = select(HubRepo, func.coalesce(counts.c.n, 0))
    q = q.join(counts, counts.c.rpk == HubRepo.id) if with_matches else q.outerjoin(counts, counts.c.rpk == HubRepo.id)
    q = q.where(*conds)
    with db.session() as s:
        total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
        items = [repo_view(r, n) for r, n in s.execute(
            q.order_by(func.coalesce(counts.c.n, 0).desc(), HubRepo.id).limit(limit).offset(offset))]
    return Page(items, total, limit, offset)
