"""Scan status: sweeps that are running or finished, what they counted, quota left, what failed.

Sweeps write ScanRun rows (with a heartbeat while running, counts as they go) and ScanError rows
for what they skipped; this module only reads them. A run still marked running whose heartbeat is
old is shown as stalled (its process was probably killed; the next sweep resumes it)."""

from __future__ import annotations

from dataclasses import field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from mirrorwatch.errors import NotFound
from mirrorwatch.services.paging import Page, check_window
from mirrorwatch.services.serial import Utc, read_model
from mirrorwatch.store.db import Database
from mirrorwatch.store.models import HubFile, HubRepo, ScanError, ScanRun, utcnow

STALL_AFTER = timedelta(minutes=10)
_QUOTA_WORDS = ("quota", "ratelimit", "rate_limit", "remaining", "throttled")


@read_model
class ScanRunView:
    id: int
    source: str
    status: str
    stalled: bool
    params: dict[str, Any]
    counts: dict[str, Any]
    quota: dict[str, Any]
    started_at: Utc
    finished_at: Utc | None
    heartbeat_at: Utc | None
    errors: int = 0


@read_model
class ScanErrorView:
    id: int
    repo_id: str | None
    path: str | None
    reason: str
    at: Utc


@read_model
class ScanRunPage:
    run: ScanRunView
    errors: Page[ScanErrorView] = field(default_factory=Page)


def quota_of(counts: dict[str, Any], checkpoint: dict[str, Any] | None = None) -> dict[str, Any]:
    """The quota a run last saw: the pools the sweep keeps in its checkpoint (``{"api": {"remaining":
    .., "quota": .., "reset_in_s": ..}, "resolvers": {..}}``), flattened to "api remaining" and so on,
    plus any quota-like counters (remaining, throttled)."""
    out: dict[str, Any] = {}
    pools = (checkpoint or {}).get("quota")
    if isinstance(pools, dict):
        for pool, fields in pools.items():
            if isinstance(fields, dict):
                for k, v in fields.items():
                    if v is not None and not isinstance(v, dict | list):
                        out[f"{pool} {k}"] = v
    for k, v in (counts or {}).items():
        if any(w in k.lower() for w in _QUOTA_WORDS):
            out[k] = v
    return out


def _view(r: ScanRun, errors: int, now: datetime) -> ScanRunView:
    beat = r.heartbeat_at or r.started_at
    stalled = r.status == "running" and beat is not None and now - beat > STALL_AFTER
    counts = dict(r.counts or {})
    return ScanRunView(r.id, r.source, r.status, stalled, dict(r.params or {}), counts,
                       quota_of(counts, r.checkpoint if isinstance(r.checkpoint, dict) else None),
                       r.started_at, r.finished_at, r.heartbeat_at, errors)


def scan_runs(db: Database, *, limit: int | None = None, offset: int | None = None,
              status: str | None = None, running_first: bool = True) -> Page[ScanRunView]:
    """Runs, running ones first (unless running_first=False), then newest first."""
    limit, offset = check_window(limit, offset)
    conds = [ScanRun.status == status] if status else []
    order = [(ScanRun.status == "running").desc()] if running_first else []
    now = utcnow()
    with db.session() as s:
        total = s.scalar(select(func.count()).select_from(ScanRun).where(*conds)) or 0
        runs = list(s.scalars(select(ScanRun).where(*conds)
                              .order_by(*order, ScanRun.id.desc())
                              .limit(limit).offset(offset)))
        errs = dict(s.execute(select(ScanError.scan_run_id, func.count())
                              .where(ScanError.scan_run_id.in_([r.id for r in runs])).group_by(ScanError.scan_run_id)).all()) if runs else {}
        items = [_view(r, errs.get(r.id, 0), now) for r in runs]
    return Page(items, total, limit, offset)


def _error_views(s, run_id: int, *, newest_first: bool = True, limit: int | None = None,
                 offset: int = 0) -> list[ScanErrorView]:
    q = (select(ScanError).where(ScanError.scan_run_id == run_id)
         .order_by(ScanError.id.desc() if newest_first else ScanError.id).offset(offset))
    if limit is not None:
        q = q.limit(limit)
    return [ScanErrorView(e.id, e.repo_id, e.path, e.reason, e.at) for e in s.scalars(q)]


def scan_run(db: Database, run_id: int, *, limit: int | None = None, offset: int | None = None) -> ScanRunPage:
    limit, offset = check_window(limit, offset)
    with db.session() as s:
        r = s.get(ScanRun, run_id)
        if r is None:
            raise NotFound(f"no scan run with id {run_id}")
        total = s.scalar(select(func.count()).select_from(ScanError).where(ScanError.scan_run_id == run_id)) or 0
        errors = _error_views(s, run_id, limit=limit, offset=offset)
        view = _view(r, total, utcnow())
    return ScanRunPage(view, Page(errors, total, limit, offset))


def scan_errors(db: Database, run_id: int) -> list[ScanErrorView]:
    """Everything a run skipped, oldest first (the CLI's `scan errors`)."""
    with db.session() as s:
        return _error_views(s, run_id, newest_first=False)


def incremental_since(db: Database, hub: str, repo_type: str | None = None, *,
                      margin: timedelta = timedelta(days=1)) -> datetime | None:
    """Where a whole-hub sweep of one repo type can start: the start (minus a margin) of the last
    sweep whose listing of that type ran to its end (its checkpoint's `types`; a finished sweep from
    before repo types counts for the hub's first type). None when there was none (a sweep limited
    to repos, an author or a search does not count)."""
    from mirrorwatch.hubs.registry import repo_types

    default = repo_types(hub)[0]
    repo_type = repo_type or default
    with db.session() as s:
        for run in s.scalars(select(ScanRun).where(ScanRun.source == hub).order_by(ScanRun.id.desc()).limit(500)):
            scope = (run.params or {}).get("scope", {})
            if scope.get("repos") or scope.get("author") or scope.get("search"):
                continue
            types = (run.checkpoint or {}).get("types") if isinstance(run.checkpoint, dict) else None
            if isinstance(types, dict):
                if types.get(repo_type) == "listed":
                    return run.started_at - margin
            elif run.status == "finished" and repo_type == default:
                return run.started_at - margin
        return None


def known_hashes(db: Database, hub: str, repo_id: str) -> dict[str, dict]:
    """path -> hashes (all forms, with the size and mtime they were computed at) stored for a repo,
    so a hub that hashes files itself (a local folder) does not read unchanged files again."""
    with db.session() as s:
        rows = s.execute(
            select(HubFile.path, HubFile.sha256, HubFile.hashes)
            .join(HubRepo, HubRepo.id == HubFile.repo_pk)
            .where(HubRepo.hub == hub, HubRepo.repo_id == repo_id)
        )
        return {p: {**(hashes or {}), "sha256": sha} for p, sha, hashes in rows}


def last_quota(db: Database) -> tuple[int, dict[str, Any]] | None:
    """The quota seen by the newest run that recorded one: (run id, quota fields)."""
    with db.session() as s:
        for r in s.scalars(select(ScanRun).order_by(ScanRun.id.desc()).limit(20)):
            q = quota_of(dict(r.counts or {}), r.checkpoint if isinstance(r.checkpoint, dict) else None)
            if q:
                return r.id, q
    return None
