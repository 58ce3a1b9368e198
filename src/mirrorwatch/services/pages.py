"""Read models for the pages (and their JSON twins): a removed model, a hub repo, an uploader, a bank.

Each function answers one page in a handful of queries and returns plain dataclasses; the web
templates and the API both render these, so what a page shows and what the API returns agree."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from mirrorwatch.errors import InvalidInput, NotFound
from mirrorwatch.hubs.registry import web_url as hub_web_url
from mirrorwatch.services.lookup import HASH_FORMS_SHOWN
from mirrorwatch.services.matchview import MatchView, match_select, match_views
from mirrorwatch.services.paging import Page, check_window
from mirrorwatch.store.db import Database
from mirrorwatch.store.models import (
    Bank,
    Entry,
    EntrySignal,
    HubFile,
    HubRepo,
    ImportRun,
    Match,
    StatusEvent,
)

LIVE_STATES = ("new", "confirmed", "second_look", "reported")
MAX_FILES_SHOWN = 500
MAX_MATCHES_SHOWN = 500


# --- removed model (entry) -------------------------------------------------------------------------

@dataclass
class SignalView:
    form: str
    value: str
    origin: str
    created_at: datetime


@dataclass
class EntryPage:
    id: int
    bank_id: int
    bank: str
    name: str
    url: str | None
    civitai_model_id: int | None
    civitai_version_id: int | None
    kind: str | None
    notes: str | None
    imported_from: str | None
    row: int | None
    created_at: datetime
    updated_at: datetime
    hashes: dict[str, list[str]] = field(default_factory=dict)
    signals: list[SignalView] = field(default_factory=list)
    matches: list[MatchView] = field(default_factory=list)


def entry_page(db: Database, entry_id: int) -> EntryPage:
    """A removed model: what it was, where it lived, its hash forms and every known mirror."""
    with db.session() as s:
        row = s.execute(select(Entry, Bank.name).join(Bank, Bank.id == Entry.bank_id).where(Entry.id == entry_id)).first()
        if row is None:
            raise NotFound(f"no entry with id {entry_id}")
        e, bank = row
        sigs = [SignalView(x.form, x.value, x.origin, x.created_at)
                for x in s.scalars(select(EntrySignal).where(EntrySignal.entry_id == entry_id).order_by(EntrySignal.id))]
        matches = match_views(s, match_select().where(Match.entry_id == entry_id)
                              .order_by(Match.tier, Match.score.desc(), Match.id).limit(MAX_MATCHES_SHOWN))
    hashes: dict[str, list[str]] = {}
    for form in HASH_FORMS_SHOWN:
        vals = [x.value for x in sigs if x.form == form]
        if form == "autov2" and not vals:  # AutoV2 is the SHA256's first 10 hex (not always stored)
            vals = [x.value[:10] for x in sigs if x.form == "sha256"]
        if vals:
            hashes[form] = vals
    return EntryPage(e.id, e.bank_id, bank, e.name, e.url, e.civitai_model_id, e.civitai_version_id, e.kind, e.notes,
                     e.imported_from, e.row, e.created_at, e.updated_at, hashes,
                     [x for x in sigs if x.form not in HASH_FORMS_SHOWN], matches)


# --- hub repo --------------------------------------------------------------------------------------

@dataclass
class RepoView:
    id: int
    hub: str
    repo_id: str
    author: str | None
    status: str
    gated: bool
    disabled: bool
    sha: str | None
    created_at: datetime | None
    last_modified: datetime | None
    first_seen: datetime
    last_seen: datetime
    error: str | None
    url: str | None
    matches: int = 0


@dataclass
class FileView:
    id: int
    path: str
    size: int | None
    sha256: str | None
    status: str
    first_seen: datetime
    last_seen: datetime
    matches: int = 0


@dataclass
class StatusEventView:
    id: int
    at: datetime
    status: str
    detail: str | None
    path: str | None


@dataclass
class RepoPage:
    repo: RepoView
    files: list[FileView]
    files_total: int
    matches: list[MatchView]
    events: list[StatusEventView]


def repo_url(hub: str, repo_id: str) -> str | None:
    return hub_web_url(hub, repo_id)


def _repo_view(r: HubRepo, matches: int = 0) -> RepoView:
    return RepoView(r.id, r.hub, r.repo_id, r.author, r.status, r.gated, r.disabled, r.sha, r.created_at,
                    r.last_modified, r.first_seen, r.last_seen, r.error, repo_url(r.hub, r.repo_id), matches)


def repo_page(db: Database, repo_pk: int) -> RepoPage:
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
        view = _repo_view(r, sum(per_file.values()))
    return RepoPage(view, files, files_total, matches, events)


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
        items = [_repo_view(r, n) for r, n in s.execute(
            q.order_by(func.coalesce(counts.c.n, 0).desc(), HubRepo.id).limit(limit).offset(offset))]
    return Page(items, total, limit, offset)


# --- uploaders -------------------------------------------------------------------------------------

@dataclass
class UploaderSummary:
    hub: str
    author: str
    matches: int
    repos: int
    entries: int
    first_seen: datetime | None
    last_seen: datetime | None
    by_state: dict[str, int] = field(default_factory=dict)


@dataclass
class UploaderPage:
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


def uploaders(db: Database, *, hub: str | None = None, min_matches: int = 1, limit: int | None = None,
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


def uploader_page(db: Database, hub: str, author: str, *, limit: int | None = None,
                  offset: int | None = None) -> UploaderPage:
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
        repo_views = [_repo_view(r, per_repo.get(r.id, 0)) for r in repos]
    if row is None:
        summary = UploaderSummary(hub, author, 0, len(repos), 0, None, None, {})
    else:
        summary = UploaderSummary(hub, author, row[2], row[3], row[4], row[5], row[6], by_state)
    return UploaderPage(summary, repo_views, Page(items, summary.matches, limit, offset))


# --- banks -----------------------------------------------------------------------------------------

@dataclass
class Coverage:
    """How much of a bank has been found online, where, and since when."""

    entries: int
    found: int  # entries with at least one match that is not dismissed or gone
    matches: int
    by_state: dict[str, int]
    by_hub: dict[str, int]  # entries found per hub
    repos: int
    uploaders: int
    first_found: datetime | None
    last_found: datetime | None

    @property
    def share(self) -> float:
        return self.found / self.entries if self.entries else 0.0


@dataclass
class ImportRunView:
    id: int
    filename: str
    fmt: str
    user: str | None
    at: datetime
    counts: dict[str, Any]
    rejected: list[Any]


@dataclass
class EntryRow:
    id: int
    name: str
    url: str | None
    civitai_model_id: int | None
    civitai_version_id: int | None
    kind: str | None
    matches: int = 0
    live: int = 0


@dataclass
class BankPage:
    id: int
    name: str
    description: str | None
    source: str | None
    created_at: datetime
    coverage: Coverage
    imports: list[ImportRunView]
    entries: Page[EntryRow]


def bank_coverage(db: Database, bank_id: int) -> Coverage:
    with db.session() as s:
        entries = s.scalar(select(func.count()).select_from(Entry).where(Entry.bank_id == bank_id)) or 0
        base = (select(Match.state, Match.entry_id, HubRepo.hub, HubRepo.id, HubRepo.author, Match.created_at)
                .select_from(Match).join(Entry, Entry.id == Match.entry_id)
                .join(HubFile, HubFile.id == Match.hub_file_id).join(HubRepo, HubRepo.id == HubFile.repo_pk)
                .where(Entry.bank_id == bank_id)).subquery()
        by_state = dict(s.execute(select(base.c.state, func.count()).group_by(base.c.state)).all())
        live = base.c.state.in_(LIVE_STATES)
        found = s.scalar(select(func.count(func.distinct(base.c.entry_id))).where(live)) or 0
        by_hub = dict(s.execute(select(base.c.hub, func.count(func.distinct(base.c.entry_id))).where(live)
                                .group_by(base.c.hub)).all())
        repos, ups, first, last = s.execute(
            select(func.count(func.distinct(base.c.id)), func.count(func.distinct(base.c.author)),
                   func.min(base.c.created_at), func.max(base.c.created_at)).where(live)).one()
    return Coverage(entries, found, sum(by_state.values()), by_state, by_hub, repos or 0, ups or 0, first, last)


def bank_entries(db: Database, bank_id: int, *, q: str | None = None, found_only: bool = False,
                 limit: int | None = None, offset: int | None = None) -> Page[EntryRow]:
    """Entries of a bank in id order; `q` filters by a part of the (normalised) name."""
    from mirrorwatch.bank.names import normalise_name

    limit, offset = check_window(limit, offset)
    conds = [Entry.bank_id == bank_id]
    if q:
        if len(q) > 200:
            raise InvalidInput("a name filter has at most 200 characters")
        norm = normalise_name(q).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conds.append(Entry.name_norm.like(f"%{norm}%", escape="\\"))
    if found_only:
        conds.append(Entry.id.in_(select(Match.entry_id).where(Match.state.in_(LIVE_STATES))))
    with db.session() as s:
        total = s.scalar(select(func.count()).select_from(Entry).where(*conds)) or 0
        rows = [EntryRow(e.id, e.name, e.url, e.civitai_model_id, e.civitai_version_id, e.kind)
                for e in s.scalars(select(Entry).where(*conds).order_by(Entry.id).limit(limit).offset(offset))]
        if rows:
            counts: dict[int, list[int]] = defaultdict(lambda: [0, 0])
            for eid, state, n in s.execute(
                select(Match.entry_id, Match.state, func.count()).where(Match.entry_id.in_([r.id for r in rows]))
                .group_by(Match.entry_id, Match.state)
            ):
                counts[eid][0] += n
                if state in LIVE_STATES:
                    counts[eid][1] += n
            for r in rows:
                r.matches, r.live = counts.get(r.id, (0, 0))
    return Page(rows, total, limit, offset)


def bank_imports(db: Database, bank_id: int, *, limit: int = 50) -> list[ImportRunView]:
    with db.session() as s:
        return [ImportRunView(r.id, r.filename, r.fmt, r.user, r.at, dict(r.counts or {}), list(r.rejected or []))
                for r in s.scalars(select(ImportRun).where(ImportRun.bank_id == bank_id)
                                   .order_by(ImportRun.id.desc()).limit(limit))]


def bank_page(db: Database, bank_id: int, *, q: str | None = None, found_only: bool = False,
              limit: int | None = None, offset: int | None = None) -> BankPage:
    with db.session() as s:
        b = s.get(Bank, bank_id)
        if b is None:
            raise NotFound(f"no bank with id {bank_id}")
        head = (b.id, b.name, b.description, b.source, b.created_at)
    return BankPage(*head, bank_coverage(db, bank_id), bank_imports(db, bank_id),
                    bank_entries(db, bank_id, q=q, found_only=found_only, limit=limit, offset=offset))


def bank_name(db: Database, bank_id: int) -> str:
    with db.session() as s:
        name = s.scalar(select(Bank.name).where(Bank.id == bank_id))
    if name is None:
        raise NotFound(f"no bank with id {bank_id}")
    return name
