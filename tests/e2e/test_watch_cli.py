"""`mirrorwatch watch` as a process: SIGKILLed and restarted (takes the lock over, resumes the sweep,
no match twice); SIGTERM mid-sweep (the batch in hand is finished, the run recorded interrupted, exit
0, resumed by the next watcher); two watchers on one database (the second waits, then takes over);
bad config files refused with one line, nothing started."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from conftest import run_cli
from mirrorwatch.store.db import Database
from mirrorwatch.store.models import Match, ScanRun, SweepLock, Watcher, WatchJob
from mirrorwatch.testhub import Faults, Hub, Repo, generate_repos
from pytest_testhub import hf_env, testhub  # noqa: F401
from sweepfixtures import make_bank, match_pairs, planted

PLANTED = 30


class WatcherProcess:
    def __init__(self, db_path: Path, config: Path, log: Path, *extra: str) -> None:
        self.log = log
        self._out = log.open("w")
        env = dict(os.environ, MIRRORWATCH_DB=str(db_path))
        env.pop("MIRRORWATCH_DEBUG", None)
        self.proc = subprocess.Popen([sys.executable, "-m", "mirrorwatch.cli.main", "watch", str(config), *extra],
                                     env=env, stdout=self._out, stderr=subprocess.STDOUT)

    def text(self) -> str:
        return self.log.read_text()

    def wait_for(self, what: str | Callable[[], bool], timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        check = (lambda: what in self.text()) if isinstance(what, str) else what
        while not check():
            assert self.proc.poll() is None, f"the watcher ended early ({self.proc.returncode}):\n{self.text()}"
            assert time.monotonic() < deadline, f"timed out waiting for {what!r}:\n{self.text()}"
            time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        self.proc.send_signal(sig)
        rc = self.proc.wait(timeout)
        self._out.close()
        return rc


def latest_run(db: Database) -> ScanRun | None:
    with db.session() as s:
        return s.scalar(select(ScanRun).order_by(ScanRun.id.desc()))


def fetched(db: Database) -> int:
    run = latest_run(db)
    return int((run.counts or {}).get("fetched", 0)) if run else 0


def job(db: Database, name: str) -> WatchJob | None:
    with db.session() as s:
        return s.get(WatchJob, name)


def expected_pairs() -> set[tuple[str, str, str]]:
    return {(f"Invented Person {i}", f"reuploader-{i % 5}/lora-{i}", "lora.safetensors") for i in range(PLANTED)}


@pytest.fixture
def slow_hub(testhub):  # noqa: F811
    """A hub whose whole sweep takes several seconds: 1,200 repos, 30 of them re-uploads of banked models."""
    hub = Hub(generate_repos(1200, seed=23, planted=planted(PLANTED, uploaders=5)))
    return testhub(hub, faults=Faults(latency_s=0.004), page_size=200)


def watch_config(tmp_path: Path, url: str, every: str = "1h") -> Path:
    cfg = tmp_path / "watch.toml"
    cfg.write_text(f'[hubs.hf]\nendpoint = "{url}"\nsweep_every = "{every}"\nconcurrency = 8\n')
    return cfg


def finish_and_check(db: Database, db_path: Path, cfg: Path, tmp_path: Path) -> None:
    """A new watcher resumes the interrupted sweep first, finishes it, and stops on SIGTERM."""
    again = WatcherProcess(db_path, cfg, tmp_path / "again.log")
    again.wait_for(lambda: (j := job(db, "sweep hf")) is not None and j.last_outcome == "ok", timeout=240)
    assert again.stop() == 0, again.text()
    assert "(resumed)" in again.text()
    assert match_pairs(db) == expected_pairs()
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Match)) == PLANTED  # none twice
        runs = list(s.scalars(select(ScanRun)))
        assert s.scalar(select(SweepLock)) is None
    assert [r.status for r in runs] == ["finished"]  # one run, resumed, never restarted from scratch
    assert runs[0].checkpoint.get("resumes", 0) >= 1


def test_sigkilled_watcher_restarted_takes_over_and_resumes(tmp_path, slow_hub):
    db_path = tmp_path / "mw.db"
    db = Database.open(str(db_path))
    make_bank(db, PLANTED)
    cfg = watch_config(tmp_path, slow_hub.url)

    first = WatcherProcess(db_path, cfg, tmp_path / "first.log")
    first.wait_for(lambda: fetched(db) >= 20)
    assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    run = latest_run(db)
    assert run.status == "running" and run.counts["fetched"] < 1000  # killed mid-sweep
    with db.session() as s:
        locks = {lk.scope_key: lk.holder for lk in s.scalars(select(SweepLock))}
    assert "watcher" in locks and len(locks) == 2  # the dead process still "holds" the watcher and sweep locks
    assert job(db, "sweep hf").last_outcome == "running"

    finish_and_check(db, db_path, cfg, tmp_path)


def test_sigterm_mid_sweep_ends_cleanly_and_is_resumed(tmp_path, slow_hub):
    db_path = tmp_path / "mw.db"
    db = Database.open(str(db_path))
    make_bank(db, PLANTED)
    cfg = watch_config(tmp_path, slow_hub.url)

    first = WatcherProcess(db_path, cfg, tmp_path / "first.log")
    first.wait_for(lambda: fetched(db) >= 20)
    started = time.monotonic()
    assert first.stop(signal.SIGTERM) == 0, first.text()
    assert time.monotonic() - started < 20
    assert "SIGTERM: stopping after the current transaction" in first.text()
    assert "Traceback" not in first.text()
    run = latest_run(db)
    assert run.status == "interrupted" and run.counts["fetched"] < 1000, run.counts
    j = job(db, "sweep hf")
    assert j.last_outcome == "interrupted" and j.consecutive_failures == 0 and "resumed" in j.last_summary
    with db.session() as s:
        assert s.scalar(select(SweepLock)) is None  # both locks released
        w = s.get(Watcher, "watcher")
        assert w.stopped_at is not None and w.stop_reason == "signal SIGTERM"
    # what was written is whole: every match recorded so far is one of the expected ones
    assert match_pairs(db) <= expected_pairs()

    finish_and_check(db, db_path, cfg, tmp_path)


def test_two_watchers_on_one_database(tmp_path, testhub):  # noqa: F811
    running = testhub(Hub([Repo(rid, files=files) for rid, files in planted(3).items()]))
    db_path = tmp_path / "mw.db"
    db = Database.open(str(db_path))
    make_bank(db, 3)
    cfg = watch_config(tmp_path, running.url)

    first = WatcherProcess(db_path, cfg, tmp_path / "first.log")
    first.wait_for("sweep hf: ok")
    second = WatcherProcess(db_path, cfg, tmp_path / "second.log", "--wait-every", "1s")
    second.wait_for("another watcher is running on this database")
    time.sleep(2)
    assert "watching" not in second.text() and second.proc.poll() is None
    with db.session() as s:
        assert s.scalar(select(ScanRun.id).order_by(ScanRun.id.desc())) == 1  # the second ran nothing

    # a watcher stopped while it waits exits 0 too, having run nothing
    third = WatcherProcess(db_path, cfg, tmp_path / "third.log", "--wait-every", "1s")
    third.wait_for("another watcher is running on this database")
    assert third.stop() == 0, third.text()
    assert "stopped (signal SIGTERM) while waiting for the other watcher" in third.text()

    assert first.stop() == 0, first.text()
    second.wait_for("taking over", timeout=30)
    second.wait_for("watching", timeout=30)
    with db.session() as s:
        holder = s.scalar(select(SweepLock.holder).where(SweepLock.scope_key == "watcher"))
    assert f" pid {second.proc.pid} " in holder
    status = run_cli("watch", "--status", "--json", db=db_path)
    assert status.returncode == 0, status.stderr
    state = json.loads(status.stdout)
    assert state["watcher"]["state"] == "running" and f" pid {second.proc.pid} " in state["watcher"]["holder"]
    assert [j["name"] for j in state["jobs"]] == ["sweep hf"] and state["status"] == "ok"
    assert second.stop() == 0, second.text()
    assert len(match_pairs(db)) == 3
    status = run_cli("watch", "--status", db=db_path)
    assert "watcher stopped" in status.stdout and "signal SIGTERM" in status.stdout
    assert "sweep hf" in status.stdout and "status: ok" in status.stdout


BAD_CONFIGS = [
    ("", "nothing to watch: add a [hubs.NAME] section"),
    ('[hubs.hf]\nsweep_evry = "15m"\n', "[hubs.hf]: unknown key 'sweep_evry'"),
    ('[hubs.hf]\nsweep_every = "15m"\n[extra]\nx = 1\n', "top level: unknown key 'extra'"),
    ('[hubs.hugface]\nsweep_every = "15m"\n', "[hubs.hugface]: unknown hub 'hugface' (known: hf, dir, civitai, s3)"),
    ('[hubs.hf]\nsweep_every = "0m"\n', "sweep_every: '0m' is too short"),
    ('[hubs.hf]\nsweep_every = "-5m"\n', "sweep_every: not a duration: '-5m'"),
    ('[hubs.hf]\nrecheck_every = "soon"\n', "recheck_every: not a duration: 'soon'"),
    ('[hubs.hf]\nsweep_every = 15\n', 'sweep_every must be a duration in quotes like "15m", not int 15'),
    ('[hubs.hf]\nsweep_every = "400d"\n', "'400d' is too long (at most 366d)"),
    ('[hubs.hf]\ncontent = true\n', "[hubs.hf]: nothing scheduled: give sweep_every or recheck_every"),
    ('[hubs.hf]\nsweep_every = "1h"\nmin_size = "lots"\n', "not a size: 'lots'"),
    ('[hubs.hf]\nsweep_every = "1h"\nrepo_types = ["models"]\n', "repo_types must list distinct types"),
    ('[hubs.dir]\nsweep_every = "1h"\npath = "no-such-folder"\n', "path: no such folder: no-such-folder"),
    ('[hubs.dir]\nsweep_every = "1h"\nrecheck_every = "1h"\npath = "."\n', "recheck_every: a local folder is rechecked"),
    ('[jobs.fly]\nevery = "1m"\n', "[jobs.fly]: unknown job kind 'fly'"),
    ('[hubs.hf\nsweep_every = "1h"\n', "not valid TOML: "),
]


@pytest.mark.parametrize(("text", "message"), BAD_CONFIGS, ids=[m[:30] for _, m in BAD_CONFIGS])
def test_bad_config_refused_with_one_line(tmp_path, text, message):
    cfg = tmp_path / "watch.toml"
    cfg.write_text(text)
    db_path = tmp_path / "mw.db"
    r = run_cli("watch", str(cfg), db=db_path)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: watch config {cfg}: "), r.stderr
    assert message in lines[0], r.stderr
    assert not db_path.exists()  # nothing started, not even the database


def test_no_config_refused(tmp_path):
    r = run_cli("watch", db=tmp_path / "mw.db")
    assert r.returncode != 0 and "give the watch config file" in r.stderr
    assert not (tmp_path / "mw.db").exists()


def test_missing_config_refused(tmp_path):
    r = run_cli("watch", str(tmp_path / "nope.toml"), db=tmp_path / "mw.db")
    assert r.returncode != 0 and r.stderr.strip() == f"error: watch config {tmp_path / 'nope.toml'}: no such file"
    assert not (tmp_path / "mw.db").exists()
