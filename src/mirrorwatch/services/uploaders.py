"""Uploaders (hub accounts): accounts by number of matches, and all matches of one account, so a
batch re-upload reads as one thing."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import field

from sqlalchemy import func, select

from mirrorwatch.errors import InvalidInput, NotFound
from mirrorwatch.services.matches import MatchView, match_select, match_views
from mirrorwatch.services.paging import Page, check_window
from mirrorwatch.services.repos import RepoView, repo_view
from mirrorwatch.services.serial import Utc, read_model
from mirrorwatch.store.db import Database
from mirrorwatch.store.models import HubFile, HubRepo, Match


@read_model
class UploaderSummary:
    hub: str
    author: str
    matches: int
    repos: int
    entries: int
    first_seen: Utc | None
    last_seen: Utc | None
    by_state: dict[str, int] = field(default_factory=dict)


@read_model
class UploaderDetail:
    summary: UploaderSummary
    repos: list[RepoView]
    matches: Page[MatchView]


def _uploader_base():
    return (select(HubRepo.hub, HubRepo.author, func.count(Match.id), func.count(func.distinct(HubRepo.id)),
                   func.count(func.distinct(Match.entry_id)), func.min(HubFile.first_seen), func.max(HubFile.last_seen))
            .select_from(Match)
            .join(HubFile, HubFile.id == Match.hub_file_id)
            .join(HubRepo, HubRepo.id == HubFile.repo_pk)
            .where(HubRepo.author.is_not(None)))


def list_uploaders(db: Database, *, hub: str | None = None, min_matches: int = 1, limit: int | None = None,
              offset: int | None = None) -> Page[UploaderSummary]:
    """Accounts by number of matches, most first: a batch re-uploader stands out at the top."""
    limit, offset = check_window(limit, offset)
    q = _uploader_base()
    if hub:
        q = q.where(HubRepo.hub == hub)
    q = q.group_by(HubRepo.hub, HubRepo.author).having(func.count(Match.id) >= max(1, min_matches))
    with db.session() as s:
        total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
        rows = s.execute(q.order_by(func.count(Match.id).desc(), HubRepo.author).limit(limit).offset(offset)).all()
        states: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
        if rows:
            for hub_, author, state, n in s.execute(
                select(HubRepo.hub, HubRepo.author, Match.state, func.count())
                .select_from(Match).join(HubFile, HubFile.id == Match.hub_file_id)
                .join(HubRepo, HubRepo.id == HubFile.repo_pk)
                .where(HubRepo.author.in_([r[1] for r in rows]))
                .group_by(HubRepo.hub, HubRepo.author, Match.state)
            ):
                states[(hub_, author)][state] = n
    items = [UploaderSummary(h, a, n, nr, ne, fs, ls, states.get((h, a), {})) for h, a, n, nr, ne, fs, ls in rows]
    return Page(items, total, limit, offset)


def get_uploader(db: Database, hub: str, author: str, *, limit: int | None = None,
                  offset: int | None = None) -> UploaderDetail:
    """All matches of one account, with its repos: to see a batch re-upload as one thing."""
    limit, offset = check_window(limit, offset)
    if not author or len(author) > 200 or len(hub) > 40:
        raise InvalidInput("an uploader is a hub and an account name (at most 200 characters)")
    with db.session() as s:
        repos = list(s.scalars(select(HubRepo).where(HubRepo.hub == hub, HubRepo.author == author).order_by(HubRepo.repo_id)))
        if not repos:
            raise NotFound(f"no repos of {author!r} on {hub!r}")
        row = s.execute(_uploader_base().where(HubRepo.hub == hub, HubRepo.author == author)
                        .group_by(HubRepo.hub, HubRepo.author)).first()
        by_state = dict(s.execute(
            select(Match.state, func.count()).select_from(Match).join(HubFile, HubFile.id == Match.hub_file_id)
            .join(HubRepo, HubRepo.id == HubFile.repo_pk).where(HubRepo.hub == hub, HubRepo.author == author)
            .group_by(Match.state)).all())
        per_repo = dict(s.execute(
            select(HubFile.repo_pk, func.count()).join(Match, Match.hub_file_id == HubFile.id)
            .where(HubFile.repo_pk.in_([r.id for r in repos])).group_by(HubFile.repo_pk)).all())
        conds = [HubRepo.hub == hub, HubRepo.author == author]
        items = match_views(s, match_select().where(*conds).order_by(HubRepo.repo_id, Match.id).limit(limit).offset(offset))
        repo_views = [repo_view(r, per_repo.get(r.id, 0)) for r in repos]
    if row is None:
        summary = UploaderSummary(hub, author, 0, len(repos), 0, None, None, {})
    else:
        summary = UploaderSummary(hub, author, row[2], row[3], row[4], row[5], row[6], by_state)
    return UploaderDetail(summary, repo_views, Page(items, summary.matches, limit, offset))
