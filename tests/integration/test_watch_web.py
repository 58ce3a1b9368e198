"""The watcher's state in the web app: the scans page (signed in) and /healthz (open to anyone:
job names, states and times only; "degraded" with 200 while a job fails, 503 with ?strict=1)."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from pathlib import Path

from mirrorwatch.errors import MirrorwatchError
from mirrorwatch.store.locks import STALE_AFTER
from mirrorwatch.store.models import SweepLock, utcnow
from mirrorwatch.watch import jobs as watch_jobs
from mirrorwatch.watch.clock import FakeClock
from mirrorwatch.watch.config import parse_config
from mirrorwatch.watch.jobs import JobKind
from mirrorwatch.watch.watcher import WatchRunner

pytest_plugins = ("webfixtures",)

T0 = datetime(2026, 3, 2, 8, 0)
SECRET_ERROR = "repo someone/secret-upload of Avery Placeholder refused"


def watch_once(db, monkeypatch, *, fail: bool) -> None:
    def run(ctx, job):
        if fail and job.name == "deliver":
            raise MirrorwatchError(SECRET_ERROR)
        return f"{job.name} done"

    monkeypatch.setitem(watch_jobs.JOB_KINDS, "deliver", JobKind(run))
    monkeypatch.setitem(watch_jobs.JOB_KINDS, "tidy", JobKind(run))
    cfg = parse_config('[jobs.deliver]\nevery = "5m"\n[jobs.tidy]\nevery = "1h"\n', Path("watch.toml"))
    WatchRunner(db, cfg, clock=FakeClock(T0), say=lambda _m: None).run(until=T0)


def test_healthz_without_a_watcher_is_unchanged(anon):
    assert anon.get("/healthz").json() == {"status": "ok", "database": "ok"}


def test_healthz_shows_jobs_names_and_times_only(anon, world, monkeypatch):
    watch_once(world.db, monkeypatch, fail=True)
    r = anon.get("/healthz")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "degraded" and body["database"] == "ok"
    watch = body["watch"]
    assert watch["watcher"] == "stopped" and watch["failing"] == ["deliver"]
    jobs = {j["name"]: j for j in watch["jobs"]}
    assert jobs["deliver"] == {"name": "deliver", "last_success_at": None, "next_run_at": "2026-03-02T08:01:00Z",
                               "consecutive_failures": 1, "failing": True}
    assert jobs["tidy"]["last_success_at"] == "2026-03-02T08:00:00Z" and not jobs["tidy"]["failing"]
    assert "secret" not in r.text and "Placeholder" not in r.text and "pid" not in r.text  # no entry data, no host
    assert anon.get("/healthz?strict=1").status_code == 503


def test_healthz_ok_while_jobs_succeed_and_stale_watcher_degrades(anon, world, monkeypatch):
    watch_once(world.db, monkeypatch, fail=False)
    assert anon.get("/healthz?strict=1").status_code == 200
    body = anon.get("/healthz").json()
    assert body["status"] == "ok" and body["watch"]["failing"] == [] and body["watch"]["watcher"] == "stopped"

    # a watcher that died on another host: its lock's heartbeat gets old
    old = utcnow() - STALE_AFTER - timedelta(seconds=5)
    with world.db.session() as s:
        s.add(SweepLock(scope_key="watcher", source="watch", holder="elsewhere pid 1 thread 1", started_at=old,
                        heartbeat_at=old))
    body = anon.get("/healthz").json()
    assert body["status"] == "degraded" and body["watch"]["watcher"] == "stale"


def test_scans_page_shows_the_watcher_and_its_jobs(client_as, world, monkeypatch):
    watch_once(world.db, monkeypatch, fail=True)
    c, _ = client_as("vic")
    html = c.get("/scans").text
    assert "Watcher" in html and "1 failing" in html
    assert "deliver" in html and "tidy done" in html
    assert SECRET_ERROR in html  # the error itself is for signed-in users
    assert "stopped 20" in html and "ran until its end time" in html


def test_scans_page_while_a_watcher_runs(client_as, world, monkeypatch):
    gate = threading.Event()
    release = threading.Event()

    def run(ctx, job):
        gate.set()
        release.wait(10)
        return "ok"

    monkeypatch.setitem(watch_jobs.JOB_KINDS, "hold", JobKind(run))
    cfg = parse_config('[jobs.hold]\nevery = "1h"\n', Path("watch.toml"))
    w = WatchRunner(world.db, cfg, clock=FakeClock(T0), say=lambda _m: None)
    t = threading.Thread(target=w.run, kwargs={"until": T0})
    t.start()
    try:
        assert gate.wait(10)
        c, _ = client_as("vic")
        html = c.get("/scans").text
        assert 'class="status st-running">running</span>' in html
        assert c.get("/healthz").json()["watch"]["watcher"] == "running"
    finally:
        release.set()
        t.join(10)
