"""`mirrorwatch watch` in process: the scheduler driven by a fake clock through several cycles against
the local test hub (real huggingface_hub client over HTTP, real SQLite file); failing jobs and their
retries; one watcher per database (SQLite and PostgreSQL); the state on the scans page and /healthz."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from mirrorwatch.errors import MirrorwatchError
from mirrorwatch.services.watchstate import health, watch_status
from mirrorwatch.store.db import Database
from mirrorwatch.store.models import ScanRun, SweepLock, Watcher, WatchJob
from mirrorwatch.testhub import Hub, Repo, RepoFile
from mirrorwatch.watch import jobs as watch_jobs
from mirrorwatch.watch.clock import FakeClock
from mirrorwatch.watch.config import parse_config
from mirrorwatch.watch.jobs import JobKind
from mirrorwatch.watch.scheduler import retry_delay
from mirrorwatch.watch.watcher import WatchRunner
from pgdb import fresh_pg
from pytest_testhub import hf_env, testhub  # noqa: F401
from sweepfixtures import bank_sha, make_bank, match_pairs, planted

T0 = datetime(2026, 3, 2, 8, 0)


def config(text: str):
    return parse_config(text, Path("watch.toml"))


def runner(db: Database, text: str, clock, **kw) -> tuple[WatchRunner, list[str]]:
    said: list[str] = []
    kw.setdefault("beat_every_s", 0.0)
    return WatchRunner(db, config(text), clock=clock, say=said.append, **kw), said


def job_rows(db: Database) -> dict[str, WatchJob]:
    with db.session() as s:
        return {j.name: j for j in s.scalars(select(WatchJob))}


def test_fake_clock_several_cycles_against_the_test_hub(db, testhub):  # noqa: F811
    make_bank(db, 5)
    hub = Hub([Repo(rid, files=files) for rid, files in planted(3, extra_files=False).items()])
    running = testhub(hub)
    clock = FakeClock(T0)
    now = datetime.now(UTC)

    # between the first and the second sweep a re-upload of entry 3 appears; before the second recheck
    # one of the first mirrors is deleted
    clock.at(T0 + timedelta(minutes=7), lambda: hub.add(Repo(
        "late-uploader/test-model", files=[RepoFile("lora.safetensors", size=150_000_003, sha256=bank_sha(3))],
        created_at=now)))
    clock.at(T0 + timedelta(minutes=50), lambda: hub.remove("reuploader-0/lora-0"))
    w, said = runner(db, f"""
        [hubs.hf]
        endpoint = "{running.url}"
        sweep_every = "15m"
        recheck_every = "1h"
        concurrency = 4
        """, clock, max_sleep_s=600)
    w.run(until=T0 + timedelta(hours=2))

    runs = [(name, started - T0, outcome) for name, started, outcome in w.scheduler.runs]
    sweeps = [at for name, at, _ in runs if name == "sweep hf"]
    rechecks = [at for name, at, _ in runs if name == "recheck hf"]
    assert sweeps == [timedelta(minutes=15 * i) for i in range(9)], runs
    assert rechecks == [timedelta(hours=i) for i in range(3)], runs
    assert {outcome for *_, outcome in runs} == {"ok"}, said

    # the first sweep listed the whole hub; the next ones were incremental and found the late repo
    with db.session() as s:
        scan_runs = list(s.scalars(select(ScanRun).order_by(ScanRun.id)))
    assert [r.status for r in scan_runs] == ["finished"] * 9
    assert "since" not in scan_runs[0].params["scope"] and "since_by_type" not in scan_runs[0].params["scope"]
    # (each repo type starts where the last sweep that finished listing it started)
    assert all(set(r.params["scope"]["since_by_type"]) == {"model", "dataset", "space"} for r in scan_runs[1:])
    assert scan_runs[0].counts["listed"] == 3
    assert scan_runs[1].counts["listed"] == 1 and scan_runs[1].counts["matches"] == 1
    assert all(r.counts["matches"] == 0 for r in scan_runs[2:])
    pairs = match_pairs(db)
    assert ("Invented Person 3", "late-uploader/test-model", "lora.safetensors") in pairs and len(pairs) == 4

    # the recheck at 1h saw the deleted mirror
    from mirrorwatch.services.matches import list_matches

    states = {m.repo_id: m.state for m in list_matches(db)}
    assert states["reuploader-0/lora-0"] == "gone" and states["reuploader-1/lora-1"] == "new"

    rows = job_rows(db)
    assert rows["sweep hf"].last_success_at == T0 + timedelta(hours=2)
    assert rows["sweep hf"].next_run_at == T0 + timedelta(hours=2, minutes=15)
    assert rows["recheck hf"].next_run_at == T0 + timedelta(hours=3)
    assert all(r.consecutive_failures == 0 and r.last_outcome == "ok" for r in rows.values())
    with db.session() as s:
        assert s.scalar(select(SweepLock)) is None  # every lock released
        assert s.get(Watcher, "watcher").stop_reason == "ran until its end time"

    # a new watcher carries on from the stored schedule instead of starting over
    clock2 = FakeClock(T0 + timedelta(hours=2, minutes=5))
    w2, _ = runner(db, f'[hubs.hf]\nendpoint = "{running.url}"\nsweep_every = "15m"\nrecheck_every = "1h"\n',
                   clock2, max_sleep_s=600)
    w2.run(until=T0 + timedelta(hours=2, minutes=20))
    assert [(n, t - T0) for n, t, _ in w2.scheduler.runs] == [("sweep hf", timedelta(hours=2, minutes=15))]


@pytest.fixture
def flaky_kind(monkeypatch):
    """A job kind registered in one line, failing its first `fail` runs (the registry is the extension point)."""
    calls: list[str] = []

    def run(ctx, job):
        calls.append(job.name)
        if len(calls) <= int(job.settings.get("fail", 0)):
            raise MirrorwatchError(f"hub unreachable (attempt {len(calls)})")
        return f"delivered batch {len(calls)}"

    monkeypatch.setitem(watch_jobs.JOB_KINDS, "flaky", JobKind(run, keys=frozenset({"fail"})))
    return calls


def test_failing_job_retries_with_backoff_and_shows_as_failing(db, flaky_kind):
    clock = FakeClock(T0)
    w, said = runner(db, '[jobs.flaky]\nevery = "30m"\nfail = 4\n', clock, max_sleep_s=3600)
    w.run(until=T0 + timedelta(minutes=10))
    # failures at 0, +1m, +3m (1+2), +7m (1+2+4): still failing, retry after 8 min
    assert [t - T0 for _, t, _ in w.scheduler.runs] == [timedelta(minutes=m) for m in (0, 1, 3, 7)]
    row = job_rows(db)["flaky"]
    assert row.consecutive_failures == 4 and row.last_outcome == "failed"
    assert row.last_error == "hub unreachable (attempt 4)"
    assert row.next_run_at == T0 + timedelta(minutes=15)
    st = watch_status(db)
    assert st.status == "degraded" and st.failing == ["flaky"]
    h = health(db)
    assert h["status"] == "degraded" and h["failing"] == ["flaky"] and h["watcher"] == "stopped"
    assert "hub unreachable" not in repr(h)  # healthz shows names and times, never error text

    w2, _ = runner(db, '[jobs.flaky]\nevery = "30m"\nfail = 4\n', FakeClock(T0 + timedelta(minutes=10)),
                   max_sleep_s=3600)
    w2.run(until=T0 + timedelta(minutes=50))
    assert [t - T0 for _, t, _ in w2.scheduler.runs] == [timedelta(minutes=15), timedelta(minutes=45)]
    row = job_rows(db)["flaky"]
    assert row.consecutive_failures == 0 and row.last_success_at == T0 + timedelta(minutes=45)
    assert health(db)["status"] == "ok"
    assert retry_delay(timedelta(minutes=30), 10) == timedelta(minutes=30)


def test_stop_request_during_a_job_records_it_interrupted_and_the_next_watcher_resumes_first(db, monkeypatch):
    seen: list[str] = []

    def slow(ctx, job):
        seen.append("run")
        if len(seen) == 1:
            w.request_stop("test")
            assert ctx.stopping()
            raise watch_jobs.JobInterrupted("stopped after 3 of 9 batches (resumed by the next run)")
        return "done"

    monkeypatch.setitem(watch_jobs.JOB_KINDS, "slow", JobKind(slow))
    w, _ = runner(db, '[jobs.slow]\nevery = "6h"\n', FakeClock(T0))
    w.run(until=T0 + timedelta(hours=1))
    row = job_rows(db)["slow"]
    assert row.last_outcome == "interrupted" and row.next_run_at == T0 and row.consecutive_failures == 0
    with db.session() as s:
        assert s.get(Watcher, "watcher").stop_reason == "test"
    w2, _ = runner(db, '[jobs.slow]\nevery = "6h"\n', FakeClock(T0 + timedelta(minutes=3)))
    w2.run(until=T0 + timedelta(minutes=4))
    assert [t - T0 for _, t, _ in w2.scheduler.runs] == [timedelta(minutes=3)]


def _second_watcher_waits(db: Database, db2: Database, monkeypatch) -> None:
    ran: list[str] = []
    monkeypatch.setitem(watch_jobs.JOB_KINDS, "tick", JobKind(lambda ctx, job: ran.append(job.name) or "ok"))
    from mirrorwatch.watch.clock import SystemClock

    first, said1 = runner(db, '[jobs.tick]\nevery = "1h"\n', SystemClock(), max_sleep_s=0.05)
    second, said2 = runner(db2, '[jobs.tick]\nevery = "1h"\n', SystemClock(), wait_every_s=0.05, max_sleep_s=0.05)
    t1 = threading.Thread(target=first.run)
    t1.start()
    deadline = time.monotonic() + 20
    while not ran and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ran == ["tick"]
    t2 = threading.Thread(target=second.run)
    t2.start()
    while not any("another watcher is running" in m for m in said2) and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)
    assert any("another watcher is running" in m for m in said2), said2
    assert second.scheduler is None and ran == ["tick"]  # waiting, running nothing
    first.request_stop("test: first watcher stops")
    t1.join(10)
    while second.scheduler is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert any("taking over" in m for m in said2), said2
    with db.session() as s:
        lock = s.scalar(select(SweepLock).where(SweepLock.scope_key == "watcher"))
        assert lock is not None and lock.holder == second.lock.holder != first.lock.holder
    second.request_stop("test: second watcher stops")
    t2.join(10)
    assert not t1.is_alive() and not t2.is_alive()
    with db.session() as s:
        assert s.scalar(select(SweepLock)) is None
        assert s.get(Watcher, "watcher").stop_reason == "test: second watcher stops"


def test_second_watcher_waits_sqlite(db_path, monkeypatch):
    _second_watcher_waits(Database.open(str(db_path)), Database.open(str(db_path)), monkeypatch)


def test_second_watcher_waits_postgresql(monkeypatch):
    """The lock on PostgreSQL (MIRRORWATCH_TEST_PG): two watchers, two connections pools."""
    db = fresh_pg()
    _second_watcher_waits(db, Database.open(db.url), monkeypatch)


def test_sweep_and_recheck_stop_between_transactions_and_resume(db, testhub):  # noqa: F811
    """The stop request the watcher passes down: a sweep keeps what it wrote, ends interrupted, and the
    next sweep of the same scope resumes it; a recheck ends before the next repo."""
    from mirrorwatch.sweep.recheck import recheck
    from mirrorwatch.sweep.runner import Sweep, SweepOptions
    from sweepfixtures import hf

    make_bank(db, 12)
    hub = Hub([Repo(rid, files=files) for rid, files in planted(12, extra_files=False).items()])
    running = testhub(hub, page_size=3)
    options = SweepOptions(scope={"sort": "createdAt"}, concurrency=2)
    seen: list[int] = []

    def stop_after_some() -> bool:
        return len(seen) >= 2

    first = Sweep(db, hf(running), options, progress=lambda c, _q: seen.append(c["fetched"]), stop=stop_after_some)
    summary = first.run()
    assert summary.status == "interrupted" and 0 < summary.counts["fetched"] < 12, summary.counts
    assert len(match_pairs(db)) == summary.counts["matches"]
    with db.session() as s:
        assert s.scalar(select(SweepLock)) is None
    again = Sweep(db, hf(running), options).run()
    assert again.status == "finished" and again.resumed and again.run_id == summary.run_id
    assert len(match_pairs(db)) == 12

    calls: list[int] = []
    rc = recheck(db, hf(running), progress=lambda sm: calls.append(sm.repos), stop=lambda: len(calls) >= 5)
    assert rc.stopped and rc.repos == 5
