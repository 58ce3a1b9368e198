"""Scan status: sweeps that are running or finished, what they counted, quota left, what failed.

Sweeps write ScanRun rows (with a heartbeat while running, counts as they go) and ScanError rows
for what they skipped; this module only reads them. A run still marked running whose heartbeat is
old is shown as stalled (its process was probably killed; the next sweep resumes it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from mirrorwatch.errors import NotFound
from mirrorwatch.services.paging import Page, check_window
from mirrorwatch.store.db import Database
from mirrorwatch.store.models import ScanError, ScanRun, utcnow

STALL_AFTER = timedelta(minutes=10)
_QUOTA_WORDS = ("quota", "ratelimit", "rate_limit", "remaining", "throttled")


@dataclass
class ScanRunView:
    id: int
    source: str
    status: str
    stalled: bool
    params: dict[str, Any]
    counts: dict[str, Any]
    quota: dict[str, Any]
    started_at: datetime
    finished_at: datetime | None
    heartbeat_at: datetime | None
    errors: int = 0


@dataclass
class ScanErrorView:
    id: int
    repo_id: str | None
    path: str | None
    reason: str
    at: datetime


@dataclass
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
              status: str | None = None) -> Page[ScanRunView]:
    """Runs, running ones first, then newest first."""
    limit, offset = check_window(limit, offset)
    conds = [ScanRun.status == status] if status else []
    now = utcnow()
    with db.session() as s:
        total = s.scalar(select(func.count()).select_from(ScanRun).where(*conds)) or 0
        runs = list(s.scalars(select(ScanRun).where(*conds)
                              .order_by((ScanRun.status == "running").desc(), ScanRun.id.desc())
                              .limit(limit).offset(offset)))
        errs = dict(s.execute(select(ScanError.scan_run_id, func.count())
                              .where(ScanError.scan_run_id.in_([r.id for r in runs])).group_by(ScanError.scan_run_id)).all()) if runs else {}
        items = [_view(r, errs.get(r.id, 0), now) for r in runs]
    return Page(items, total, limit, offset)


def scan_run(db: Database, run_id: int, *, limit: int | None = None, offset: int | None = None) -> ScanRunPage:
    limit, offset = check_window(limit, offset)
    with db.session() as s:
        r = s.get(ScanRun, run_id)
        if r is None:
            raise NotFound(f"no scan run with id {run_id}")
        total = s.scalar(select(func.count()).select_from(ScanError).where(ScanError.scan_run_id == run_id)) or 0
        errors = [ScanErrorView(e.id, e.repo_id, e.path, e.reason, e.at)
                  for e in s.scalars(select(ScanError).where(ScanError.scan_run_id == run_id)
                                     .order_by(ScanError.id.desc()).limit(limit).offset(offset))]
        view = _view(r, total, utcnow())
    return ScanRunPage(view, Page(errors, total, limit, offset))


def last_quota(db: Database) -> tuple[int, dict[str, Any]] | None:
    """The quota seen by the newest run that recorded one: (run id, quota fields)."""
    with db.session() as s:
        for r in s.scalars(select(ScanRun).order_by(ScanRun.id.desc()).limit(20)):
            q = quota_of(dict(r.counts or {}), r.checkpoint if isinstance(r.checkpoint, dict) else None)
            if q:
                return r.id, q
    return None
