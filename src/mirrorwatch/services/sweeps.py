"""Planning a sweep: from the options a user gives (`mirrorwatch scan NAME ...` or a `watch` config
section) to the hub to sweep and its `SweepOptions`.

The CLI's `scan` commands and the watcher's sweep jobs both plan here, so an incremental sweep means
the same thing in both: without an explicit `since` and without a narrowing scope (author, search,
filter, repos), a remote sweep starts where the last finished whole-hub sweep started, less a margin
(`services.scans.incremental_since`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from mirrorwatch.config import parse_size as parse_size  # (re-exported: the CLI and watch configs)
from mirrorwatch.errors import InvalidInput
from mirrorwatch.formats.archives import ARCHIVE_EXTENSIONS
from mirrorwatch.hubs.base import WEIGHT_EXTENSIONS, Hub, HubSpec, Scope
from mirrorwatch.services.scans import incremental_since, known_hashes
from mirrorwatch.store.db import Database
from mirrorwatch.sweep.runner import SweepOptions


def parse_since(text: str | None) -> datetime | None:
    if not text:
        return None
    t = text.strip()
    rel = re.match(r"^(\d+)\s*([dhw])$", t)
    if rel:
        n, unit = int(rel.group(1)), rel.group(2)
        return datetime.utcnow() - {"d": timedelta(days=n), "h": timedelta(hours=n), "w": timedelta(weeks=n)}[unit]
    try:
        d = datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"not a date: {text!r} (use 2026-01-31, 2026-01-31T12:00 or 7d)") from None
    return d.replace(tzinfo=None) if d.tzinfo is None else d.astimezone().replace(tzinfo=None)


def parse_repo_types(text: str | None, spec: HubSpec) -> list[str] | None:
    """`--repo-type model,dataset` -> ["model", "dataset"] (None when not given); InvalidInput
    naming the hub's types for anything else."""
    if text is None:
        return None
    wanted = [t.strip().lower() for t in text.split(",") if t.strip()]
    bad = [t for t in wanted if t not in spec.repo_types]
    if bad or not wanted:
        raise InvalidInput(f"--repo-type {text!r}: {spec.label} repo types are {', '.join(spec.repo_types)} "
                           f"(comma-separated)")
    return [t for t in spec.repo_types if t in wanted]


def parse_exts(text: str | None) -> tuple[str, ...]:
    if not text:
        return WEIGHT_EXTENSIONS
    exts = tuple("." + e.strip().lstrip(".").lower() for e in text.split(",") if e.strip())
    if not exts:
        raise InvalidInput("--ext needs at least one extension")
    return exts


@dataclass
class RemoteSweepPlan:
    """What a remote sweep covers and how (the `scan NAME` options)."""

    endpoint: str | None = None
    author: str | None = None
    search: str | None = None
    filter: list[str] = field(default_factory=list)
    repos: list[str] = field(default_factory=list)
    since: datetime | None = None  # explicit: only repos created/changed since then
    first_since: datetime | None = None  # used only when there is no earlier sweep to continue from
    sort: str = "auto"
    full: bool = False
    extensions: tuple[str, ...] = WEIGHT_EXTENSIONS
    min_size: int | None = None
    max_size: int | None = None
    concurrency: int = 32
    resume: bool = True
    headers: bool = True
    deep: bool = False
    archives: bool = True
    # Which repo types of a hub that has several (Hugging Face: model, dataset, space); None: all of
    # them (`repo_type`: one type, as a watch config's per-type sweep job gives it).
    repo_types: list[str] | None = None
    repo_type: str | None = None


def plan_remote_sweep(db: Database, spec: HubSpec, plan: RemoteSweepPlan) -> tuple[Hub, SweepOptions]:
    """The hub to sweep and the sweep's options; incremental after a finished whole-hub sweep, per
    repo type: each type starts where the last sweep that finished listing it started."""
    types = [plan.repo_type] if plan.repo_type else plan.repo_types
    since = plan.since
    since_by_type: dict[str, datetime | None] = {}
    if since is None and not (plan.full or plan.author or plan.search or plan.filter or plan.repos):
        since_by_type = {t: incremental_since(db, spec.name, t) or plan.first_since for t in types or spec.repo_types}
    sort = plan.sort
    if sort == "auto":
        sort = "lastModified" if since is not None or any(since_by_type.values()) else "createdAt"
    if sort not in ("createdAt", "lastModified"):
        raise InvalidInput("--sort must be createdAt or lastModified")
    scope = Scope(author=plan.author, search=plan.search, filter=list(plan.filter), repos=list(plan.repos),
                  sort=sort, since=since, repo_types=list(types or []),
                  since_by_type={t: d for t, d in since_by_type.items() if d})
    exts = plan.extensions + (ARCHIVE_EXTENSIONS if plan.archives and spec.archives else ())
    hub = spec.open(plan.endpoint, extensions=exts)
    options = SweepOptions(scope=scope, extensions=exts, min_size=plan.min_size, max_size=plan.max_size,
                           concurrency=plan.concurrency, resume=plan.resume, headers=plan.headers or plan.deep,
                           deep=plan.deep)
    return hub, options


def plan_folder_sweep(db: Database, spec: HubSpec, path: Path, *, extensions: tuple[str, ...] = WEIGHT_EXTENSIONS,
                      deep: bool = True, archives: bool = True) -> tuple[Hub, SweepOptions]:
    """The folder hub to sweep (knowing the hashes stored by earlier sweeps) and its options."""
    root = path.expanduser().resolve()
    exts = extensions + (ARCHIVE_EXTENSIONS if archives else ())
    hub = spec.open(str(root), extensions=exts, known=known_hashes(db, spec.name, str(root)))
    options = SweepOptions(scope=Scope(root=str(root)), extensions=exts, concurrency=1, resume=False, deep=deep)
    return hub, options
