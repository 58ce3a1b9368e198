"""The state of `mirrorwatch watch`, for the scans page and `/healthz` (read only).

The watcher (package `watch`) writes a `watch_job` row per job and the `watcher` row; its lock is the
`sweep_lock` row named WATCHER_KEY. Here:
- the watcher is "running" while it holds the lock with a fresh heartbeat, "stale" when the lock's
  heartbeat is older than `store.locks.STALE_AFTER` (the process died or hangs: the next watcher takes
  over), "stopped" when no watcher holds the lock;
- a job is failing while its last runs failed (consecutive_failures > 0);
- the health is "degraded" when a job is failing or the watcher is stale, else "ok".

`health()` gives only job names, states and times (no entry data, no error text, no host): /healthz
shows it to anyone."""

from __future__ import annotations

from dataclasses import field
from typing import Any

from sqlalchemy import select

from mirrorwatch.services.serial import Utc, read_model, to_json
from mirrorwatch.store.db import Database
from mirrorwatch.store.locks import STALE_AFTER
from mirrorwatch.store.models import SweepLock, Watcher, WatchJob, utcnow

WATCHER_KEY = "watcher"  # the watcher's sweep_lock row and its watcher row


@read_model
class WatchJobView:
    name: str
    kind: str
    every_s: int
    last_started_at: Utc | None
    last_success_at: Utc | None
    last_outcome: str | None
    last_summary: str | None
    last_error: str | None
    last_error_at: Utc | None
    consecutive_failures: int
    next_run_at: Utc | None
    failing: bool


@read_model
class WatcherView:
    state: str  # running, stale, stopped
    holder: str | None
    started_at: Utc | None
    heartbeat_at: Utc | None
    stopped_at: Utc | None
    stop_reason: str | None


@read_model
class WatchStatus:
    watcher: WatcherView | None  # None: no watcher ever ran on this database
    jobs: list[WatchJobView] = field(default_factory=list)
    status: str = "ok"  # ok or degraded

    @property
    def failing(self) -> list[str]:
        return [j.name for j in self.jobs if j.failing]


def watch_status(db: Database) -> WatchStatus:
    now = utcnow()
    with db.session() as s:
        jobs = [WatchJobView(j.name, j.kind, j.every_s, j.last_started_at, j.last_success_at, j.last_outcome,
                             j.last_summary, j.last_error, j.last_error_at, j.consecutive_failures or 0,
                             j.next_run_at, (j.consecutive_failures or 0) > 0)
                for j in s.scalars(select(WatchJob).order_by(WatchJob.name))]
        lock = s.scalar(select(SweepLock).where(SweepLock.scope_key == WATCHER_KEY))
        row = s.get(Watcher, WATCHER_KEY)
    watcher = None
    if lock is not None:
        state = "running" if now - lock.heartbeat_at <= STALE_AFTER else "stale"
        mine = row is not None and row.holder == lock.holder
        watcher = WatcherView(state, lock.holder, row.started_at if mine else lock.started_at,
                              max(lock.heartbeat_at, row.heartbeat_at) if mine else lock.heartbeat_at, None, None)
    elif row is not None:
        watcher = WatcherView("stopped", row.holder, row.started_at, row.heartbeat_at, row.stopped_at,
                              row.stop_reason or "the watcher's lock was released")
    degraded = any(j.failing for j in jobs) or (watcher is not None and watcher.state == "stale")
    return WatchStatus(watcher, jobs, "degraded" if degraded else "ok")


def health(db: Database) -> dict[str, Any] | None:
    """The watch part of /healthz (names, states and times only); None when no watcher ever ran."""
    st = watch_status(db)
    if st.watcher is None and not st.jobs:
        return None
    w = st.watcher
    return {
        "status": st.status,
        "watcher": w.state if w is not None else "stopped",
        "heartbeat_at": to_json(w.heartbeat_at, Utc | None) if w is not None else None,
        "failing": st.failing,
        "jobs": [{"name": j.name, "last_success_at": to_json(j.last_success_at, Utc | None),
                  "next_run_at": to_json(j.next_run_at, Utc | None), "consecutive_failures": j.consecutive_failures,
                  "failing": j.failing} for j in st.jobs],
    }
