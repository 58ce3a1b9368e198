"""A PostgreSQL that restarts mid-sweep, as the sweep sees it: every connection of the scan process
ended by the server (`pg_terminate_backend`, what a restart does to its clients) and new connections
refused for a few seconds (`ALLOW_CONNECTIONS false` on the test's own database, set from the
server's `postgres` maintenance database), then back. The test changes only its own database
(MIRRORWATCH_TEST_PG) and ends only the scan's own backends (found by their application name), never
restarts the shared server.

The scan (`mirrorwatch scan hf` against the local test hub, a process of its own) stops with a clear
message and a non-zero exit, no traceback; once the database is back the run is recorded interrupted
with the reason; nothing is half-written (every match recorded is one of the reference's, none
twice); the same scan run again resumes that run and ends with exactly the matches of an undisturbed
sweep."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from sqlalchemy import create_engine, func, select, text

from mirrorwatch.errors import DatabaseUnavailable
from mirrorwatch.store.db import Database
from mirrorwatch.store.models import Match, ScanRun
from mirrorwatch.testhub import Faults, Hub, generate_repos
from pgdb import PG, fresh_pg
from pytest_testhub import hf_env, testhub  # noqa: F401
from sweepfixtures import hf, make_bank, match_pairs, planted, sweep

APP = "mw-scan-under-test"


def _fetched(db: Database) -> int:
    with db.session() as s:
        run = s.scalar(select(ScanRun).order_by(ScanRun.id.desc()))
        return int((run.counts or {}).get("fetched", 0)) if run else 0


def test_a_database_lost_mid_sweep_stops_interrupted_and_resumes(tmp_path, testhub):  # noqa: F811
    pg = fresh_pg()
    hub = Hub(generate_repos(600, seed=13, planted=planted(30, uploaders=5)))
    running = testhub(hub, faults=Faults(latency_s=0.004), page_size=100)
    reference = Database.open(str(tmp_path / "ref.db"))
    make_bank(reference, 30)
    sweep(reference, hf(running))
    expected = match_pairs(reference)
    assert len(expected) == 30

    make_bank(pg, 30)
    dbname = pg.engine.url.database
    cmd = [sys.executable, "-m", "mirrorwatch.cli.main", "scan", "hf", "--endpoint", running.url, "--json",
           "--sort", "createdAt", "--concurrency", "4"]
    env = {**os.environ, "MIRRORWATCH_DB": PG, "PGAPPNAME": APP}
    env.pop("MIRRORWATCH_DEBUG", None)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # (a database's connections can only be disallowed from another database: the server's maintenance one)
    admin = create_engine(pg.engine.url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    ended = 0
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and _fetched(pg) < 20 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, "the sweep ended before the database could be taken away"
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{dbname}" WITH ALLOW_CONNECTIONS false'))
            try:
                down = time.monotonic() + 2.5  # "restarting": the scan's backends ended, no new connection
                while time.monotonic() < down:
                    ended += conn.execute(text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                               "WHERE application_name = :app AND datname = :db"),
                                          {"app": APP, "db": dbname}).scalar_one()
                    time.sleep(0.05)
            finally:
                conn.execute(text(f'ALTER DATABASE "{dbname}" WITH ALLOW_CONNECTIONS true'))
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        admin.dispose()
    assert ended >= 1
    assert proc.returncode == DatabaseUnavailable.exit_code, err[-2000:]
    assert "error: the sweep stopped: the database connection was lost" in err and "Traceback" not in err
    assert "internal error" not in err
    summary = json.loads(out)
    assert summary["status"] == "interrupted"

    pg.engine.dispose()  # (the test's own pooled connections were not ended; fresh ones all the same)
    with pg.session() as s:
        run = s.scalars(select(ScanRun)).one()
        assert run.status == "interrupted" and "database connection was lost" in run.checkpoint["reason"]
        recorded = s.scalar(select(func.count()).select_from(Match))
    got = match_pairs(pg)
    assert got <= expected and len(got) == recorded < len(expected)  # nothing half-written, nothing twice

    again = subprocess.run(cmd, env={**env, "PGAPPNAME": "mw-scan-again"}, capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr
    resumed = json.loads(again.stdout)
    assert resumed["status"] == "finished" and resumed["resumed"] is True
    assert match_pairs(pg) == expected
    with pg.session() as s:
        assert s.scalar(select(func.count()).select_from(Match)) == len(expected)
        assert [r.status for r in s.scalars(select(ScanRun))] == ["finished"]  # the same run, resumed
