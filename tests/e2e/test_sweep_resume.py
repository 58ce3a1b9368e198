"""A sweep killed with SIGKILL at random moments and started again ends with exactly the matches
of an uninterrupted sweep: none lost, none twice."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

from sqlalchemy import func, select

from mirrorwatch.store.db import Database
from mirrorwatch.store.models import Match, ScanRun
from mirrorwatch.testhub import Faults, Hub, generate_repos
from pytest_testhub import hf_env, testhub  # noqa: F401
from sweepfixtures import hf, make_bank, match_pairs, planted, sweep


def fetched(db: Database) -> int:
    with db.session() as s:
        run = s.scalar(select(ScanRun).order_by(ScanRun.id.desc()))
        return int((run.counts or {}).get("fetched", 0)) if run else 0


def test_sigkill_and_resume(tmp_path, testhub):  # noqa: F811
    hub = Hub(generate_repos(1200, seed=11, planted=planted(40, uploaders=5)))
    running = testhub(hub, faults=Faults(latency_s=0.004), page_size=200)

    reference = Database.open(str(tmp_path / "ref.db"))
    make_bank(reference, 40)
    sweep(reference, hf(running))
    expected = match_pairs(reference)
    assert len(expected) == 40

    target = tmp_path / "killed.db"
    db = Database.open(str(target))
    make_bank(db, 40)
    env = dict(os.environ, MIRRORWATCH_DB=str(target))
    cmd = [sys.executable, "-m", "mirrorwatch.cli.main", "scan", "hf", "--endpoint", running.url, "--json",
           "--sort", "createdAt"]
    rng = random.Random(7)
    kills = 0
    progress = []
    for _ in range(5):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        # kill it mid-sweep: once it has recorded a few more repos, after a random extra pause
        start = fetched(db)
        deadline = time.monotonic() + 60
        while proc.poll() is None and fetched(db) < start + rng.randint(5, 60) and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(rng.uniform(0, 0.3))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        progress.append(fetched(db))
    final = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr
    assert kills >= 4, progress
    assert progress[0] > 0 and progress[-1] < 600, progress  # killed mid-sweep, several times
    assert match_pairs(db) == expected
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Match)) == len(expected)
        runs = list(s.scalars(select(ScanRun)))
    assert [r.status for r in runs] == ["finished"]
    assert runs[0].checkpoint.get("resumes", 0) >= 1
