"""The scheduler: a plain loop over due jobs, with every job's state in the database (`watch_job`).

Each turn runs the jobs that are due (oldest due first), one at a time, then sleeps until the next
one is due (at most `max_sleep_s`, so the watcher keeps showing signs of life and notices a lost
lock). When a job runs next:
- after a success: `every` after it started (at once when it took longer than `every`);
- after a failure: a retry after 1 min, doubling with each failure in a row, never later than `every`;
- after an interruption (the watcher was stopping), or when the last watcher died during the run:
  at once, so the next watcher resumes it first.
A job seen for the first time runs at once. Times come from the injected clock (`watch.clock`)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from mirrorwatch.errors import MirrorwatchError
from mirrorwatch.store.db import Database
from mirrorwatch.store.fit import fit_text
from mirrorwatch.store.models import WatchJob
from mirrorwatch.watch.clock import Clock
from mirrorwatch.watch.jobs import JOB_KINDS, JobConfig, JobContext, JobInterrupted

RETRY_FIRST = timedelta(minutes=1)


def retry_delay(every: timedelta, failures: int) -> timedelta:
    """How long after its n-th failure in a row a job is tried again."""
    return min(every, RETRY_FIRST * (2 ** min(max(failures - 1, 0), 20)))


class Scheduler:
    def __init__(self, db: Database, jobs: list[JobConfig], clock: Clock, stop: threading.Event, *,
                 say: Callable[[str], None] = lambda _m: None, alive: Callable[[], None] = lambda: None,
                 before_job: Callable[[], None] = lambda: None, max_sleep_s: float = 30.0) -> None:
        self.db = db
        self.jobs = {j.name: j for j in jobs}
        self.clock = clock
        self.stop = stop
        self.say = say
        self.alive = alive  # a sign of life (the watcher's heartbeat)
        self.before_job = before_job  # e.g. check that the watcher still holds its lock (may raise)
        self.max_sleep_s = max_sleep_s
        self.next_run: dict[str, datetime] = {}
        self.runs: list[tuple[str, datetime, str]] = []  # (job, started, outcome) of this process

    # -- state ------------------------------------------------------------------------------------------
    def sync(self) -> None:
        """Rows for the configured jobs (others deleted); when each runs next."""
        now = self.clock.now()
        with self.db.session() as s:
            s.execute(delete(WatchJob).where(WatchJob.name.not_in(list(self.jobs))))
            rows = {r.name: r for r in s.scalars(select(WatchJob))}
            for name, job in self.jobs.items():
                row = rows.get(name)
                if row is None:
                    row = WatchJob(name=name, kind=job.kind, every_s=0, consecutive_failures=0)
                    s.add(row)
                if row.last_outcome == "running":  # the last watcher died during this run
                    row.last_outcome = "interrupted"
                    row.last_summary = "the watcher stopped during this run (resumed now)"
                    row.next_run_at = now
                every = job.every
                row.kind, row.every_s = job.kind, int(every.total_seconds())
                due = row.next_run_at if row.next_run_at is not None else now
                row.next_run_at = min(due, now + every)  # (the interval may have been shortened)
                self.next_run[name] = row.next_run_at

    def _started(self, job: JobConfig, at: datetime) -> None:
        with self.db.session() as s:
            row = s.get(WatchJob, job.name)
            row.last_started_at, row.last_outcome = at, "running"

    def _finished(self, job: JobConfig, started: datetime, outcome: str, text: str) -> None:
        now = self.clock.now()
        with self.db.session() as s:
            row = s.get(WatchJob, job.name)
            row.last_finished_at, row.last_outcome = now, outcome
            if outcome == "ok":
                row.last_success_at = now
                row.consecutive_failures = 0
                row.last_summary = fit_text(text, 500)
                nxt = max(started + job.every, now)
            elif outcome == "interrupted":
                row.last_summary = fit_text(text, 500)
                nxt = now
            else:
                row.consecutive_failures = (row.consecutive_failures or 0) + 1
                row.last_error, row.last_error_at = fit_text(text, 1000), now
                nxt = now + retry_delay(job.every, row.consecutive_failures)
            row.next_run_at = nxt
        self.next_run[job.name] = nxt

    # -- the loop ----------------------------------------------------------------------------------------
    def run_job(self, job: JobConfig) -> str:
        """Run one job now and record it; returns its outcome (ok, failed, interrupted)."""
        self.before_job()
        started = self.clock.now()
        self._started(job, started)
        self.say(f"{job.name}: started")
        ctx = JobContext(self.db, self.stop, alive=self.alive, say=self.say)
        try:
            text = JOB_KINDS[job.kind].run(ctx, job)
            outcome = "ok"
        except JobInterrupted as exc:
            text, outcome = str(exc), "interrupted"
        except MirrorwatchError as exc:
            text, outcome = str(exc), "failed"
        except Exception as exc:  # a job's bug or an unexpected answer: recorded, retried, never fatal
            text, outcome = f"{type(exc).__name__}: {exc}", "failed"
        self._finished(job, started, outcome, text)
        self.runs.append((job.name, started, outcome))
        self.say(f"{job.name}: {outcome}: {text}")
        return outcome

    def due(self) -> list[JobConfig]:
        now = self.clock.now()
        ready = [(when, i, name) for i, (name, when) in enumerate(self.next_run.items()) if when <= now]
        return [self.jobs[name] for _, _, name in sorted(ready)]

    def run(self, *, until: datetime | None = None) -> None:
        """Run jobs as they fall due until asked to stop (or until the clock reaches `until`)."""
        if not self.next_run:
            self.sync()
        while not self.stop.is_set():
            self.alive()
            for job in self.due():
                if self.stop.is_set():
                    return
                self.run_job(job)
            if self.stop.is_set():
                return
            now = self.clock.now()
            wake = min(self.next_run.values())
            if until is not None and wake > until:
                self.clock.sleep(max((until - now).total_seconds(), 0.0), self.stop)
                return
            self.clock.sleep(min(max((wake - now).total_seconds(), 0.0), self.max_sleep_s), self.stop)
