"""The jobs a watcher runs, as a small registry: job kind -> what runs it.

A job is one configured schedule (`JobConfig`: a name, a kind, an interval, its settings). Each kind
is one `JobKind` in `JOB_KINDS`; `run(ctx, job)` does one run and returns a one-line summary, raises
`JobInterrupted` when it stopped early because the watcher is stopping (resumable), and raises any
other exception when it failed. Sweeps and rechecks are made from a config's `[hubs.NAME]` sections
(`per_hub`); any other kind from a `[jobs.KIND]` section holding `every` and the kind's own `keys`.

Adding a kind is one line in JOB_KINDS (and its function)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from mirrorwatch.errors import MirrorwatchError
from mirrorwatch.hubs.registry import hub_spec
from mirrorwatch.services.notify import deliver_due
from mirrorwatch.services.sweeps import RemoteSweepPlan, parse_since, plan_folder_sweep, plan_remote_sweep
from mirrorwatch.store.db import Database
from mirrorwatch.sweep.recheck import RecheckSummary, recheck
from mirrorwatch.sweep.runner import Sweep


class JobInterrupted(MirrorwatchError):
    """The job stopped early because the watcher is stopping; its work resumes on the next run."""


@dataclass(frozen=True)
class JobConfig:
    name: str  # unique in a config: "sweep hf", "recheck hf", "sweep hf dataset", "notify"
    kind: str  # a key of JOB_KINDS
    every: timedelta
    hub: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass
class JobContext:
    """What a running job may use: the database, the stop request, and a sign-of-life callback
    (`alive()`, cheap to call often) that keeps the watcher's heartbeat fresh during a long run."""

    db: Database
    stop: threading.Event
    alive: Callable[[], None] = lambda: None
    say: Callable[[str], None] = lambda _msg: None

    def stopping(self) -> bool:
        return self.stop.is_set()


JobRun = Callable[[JobContext, JobConfig], str]


@dataclass(frozen=True)
class JobKind:
    run: JobRun
    keys: frozenset[str] = frozenset()  # settings a [jobs.KIND] section may hold besides `every`
    per_hub: bool = False  # made from [hubs.NAME] sections (sweep_every, recheck_every)


# -- sweeps and rechecks ------------------------------------------------------------------------------


def run_sweep(ctx: JobContext, job: JobConfig) -> str:
    """An incremental sweep of the job's hub (the same planning as `mirrorwatch scan NAME`)."""
    spec = hub_spec(job.hub or "")
    st = job.settings
    if spec.kind == "remote":
        narrow = bool(st.get("author") or st.get("search") or st.get("filter") or st.get("repos"))
        since = parse_since(st.get("since"))
        plan = RemoteSweepPlan(
            endpoint=st.get("endpoint"), author=st.get("author"), search=st.get("search"),
            filter=list(st.get("filter", [])), repos=list(st.get("repos", [])),
            since=since if narrow else None, first_since=None if narrow else since,
            extensions=tuple(st["extensions"]), min_size=st.get("min_size"), max_size=st.get("max_size"),
            concurrency=int(st.get("concurrency", RemoteSweepPlan.concurrency)), headers=bool(st.get("headers", True)),
            deep=bool(st.get("content", False)), archives=bool(st.get("archives", True)),
            repo_type=st.get("repo_type"))
        hub, options = plan_remote_sweep(ctx.db, spec, plan)
    else:
        hub, options = plan_folder_sweep(ctx.db, spec, Path(st["path"]), extensions=tuple(st["extensions"]),
                                         deep=bool(st.get("content", True)), archives=bool(st.get("archives", True)))
    summary = Sweep(ctx.db, hub, options, progress=lambda _c, _q: ctx.alive(), stop=ctx.stopping).run()
    _deliver_after(ctx)
    c = summary.counts
    text = (f"sweep #{summary.run_id} {summary.status}{' (resumed)' if summary.resumed else ''}: "
            f"{c['listed']} listed, {c['fetched']} hashed, {c['matches']} new matches, {c['errors']} errors")
    if summary.status == "interrupted":
        raise JobInterrupted(text + " (resumed by the next run)")
    if summary.status == "failed":
        raise MirrorwatchError(text + (f": {summary.reason}" if summary.reason else
                                       f" (see mirrorwatch scan errors {summary.run_id})"))
    return text


def run_recheck(ctx: JobContext, job: JobConfig) -> str:
    """A recheck of the hub's open mirrors (`mirrorwatch recheck --hub NAME`)."""
    spec = hub_spec(job.hub or "")

    def progress(_summary: RecheckSummary) -> None:
        ctx.alive()

    summary = recheck(ctx.db, spec.open(job.settings.get("endpoint")), all_repos=bool(job.settings.get("recheck_all")),
                      progress=progress, stop=ctx.stopping)
    _deliver_after(ctx)
    text = f"rechecked {summary.repos} repos: {summary.changed} changes, {summary.errors} errors"
    if summary.stopped:
        raise JobInterrupted(text + " (stopped early; the next run starts again)")
    if summary.repos and summary.errors == summary.repos:
        raise MirrorwatchError(text + " (every repo failed: is the hub reachable?)")
    return text


# -- notifications --------------------------------------------------------------------------------------


def deliver_now(ctx: JobContext, *, limit: int = 500) -> dict[str, int]:
    """Send the notifications that are due (services/notify.py: claimed with a compare-and-set, so a
    `notify deliver --loop` beside the watcher never sends one twice)."""
    counts = deliver_due(ctx.db, limit=limit)
    ctx.alive()
    return counts


def run_notify(ctx: JobContext, job: JobConfig) -> str:
    """A delivery pass of the notification outbox (`[jobs.notify]`, e.g. every = "1m"); sweeps and
    rechecks also deliver at their end, so a new match reaches its channels within one sweep cycle."""
    c = deliver_now(ctx, limit=int(job.settings.get("batch", 500)))
    return (f"notifications: {c['delivered']} delivered, {c['digests']} digests, {c['retrying']} to retry, "
            f"{c['failed']} given up")


def _deliver_after(ctx: JobContext) -> None:
    try:
        c = deliver_now(ctx)
    except Exception as exc:  # the job itself succeeded; delivery is retried by the next pass
        ctx.say(f"notifications not delivered this time: {type(exc).__name__}: {exc}"[:300])
        return
    if any(c.values()):
        ctx.say(f"notifications: {c['delivered']} delivered, {c['retrying']} to retry, {c['failed']} given up")


# -- the registry ---------------------------------------------------------------------------------------

JOB_KINDS: dict[str, JobKind] = {
    "sweep": JobKind(run_sweep, per_hub=True),
    "recheck": JobKind(run_recheck, per_hub=True),
    "notify": JobKind(run_notify, keys=frozenset({"batch"})),
}

