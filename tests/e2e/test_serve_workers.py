"""`mirrorwatch serve --workers N`: several uvicorn worker processes on PostgreSQL answer the API and
pages with one session key; on SQLite a clear note (writes take turns), in-memory SQLite refused.

The PostgreSQL run needs MIRRORWATCH_TEST_PG (tests/support/pgdb.py)."""

from __future__ import annotations

import os
import re
import signal
import subprocess

import httpx
import pytest

from conftest import run_cli, sample
from mirrorwatch.services import users
from mirrorwatch.services.banks import create_bank
from mirrorwatch.services.imports import import_file
from pgdb import PG, fresh_pg
from procs import children, cmdline, start_serve

SHA_JANE = "0899cd856fba9b131050135138cd87c5e5222f0a0657b94730901988d5cabdbb"



@pytest.mark.slow
def test_serve_workers_on_postgres():
    db = fresh_pg()
    create_bank(db, "b")
    import_file(db, "b", sample("removed-models-sample.csv"), skip_bad=True)
    users.add_user(db, "ada", "admin", "ada-password-1", actor="test")
    _, token = users.create_token(db, "ada", "t", actor="test")
    db.engine.dispose()
    env = {**os.environ, "MIRRORWATCH_DB": PG}
    env.pop("MIRRORWATCH_SECRET_KEY", None)
    proc, base = start_serve(["--workers", "2"], env, timeout=90)
    try:
        workers = [p for p in children(proc.pid) if "spawn_main" in cmdline(p)]
        assert len(workers) == 2, workers
        auth = {"Authorization": f"Bearer {token}"}
        # new connections, so the kernel spreads them over both workers; every answer the same
        for q in [SHA_JANE, "0899CD856F", "jane exmaple", "civitai:101001"] * 5:
            r = httpx.get(base + "/api/lookup", params={"q": q}, headers=auth, timeout=30)
            assert r.status_code == 200 and r.json()["results"][0]["civitai_version_id"] == 202001, (q, r.text)
        # a session made by one worker is accepted by the other (one key for the run)
        with httpx.Client(base_url=base) as c:
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login").text).group(1)
            assert c.post("/login", data={"name": "ada", "password": "ada-password-1",
                                          "csrf_token": csrf}).status_code == 303
            cookie = c.cookies.get("mw_session")
        for _ in range(6):
            page = httpx.get(base + "/", cookies={"mw_session": cookie}, timeout=30)
            assert page.status_code == 200 and "Dashboard" in page.text
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            out = proc.communicate(timeout=20)[0]
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out = proc.communicate()[0]
    assert "2 workers)" in out and "Traceback" not in out
    assert "mirrorwatch:mirrorwatch@" not in out and "***" in out  # the password is never printed


def test_serve_workers_refuses_in_memory_sqlite():
    r = run_cli("--db", "sqlite://", "serve", "--workers", "2")
    assert r.returncode != 0
    assert "in-memory SQLite" in r.stderr and "Traceback" not in r.stderr + r.stdout


def test_serve_workers_warns_on_a_sqlite_file(tmp_path):
    from mirrorwatch.cli.serve_cmds import check_workers
    from mirrorwatch.store.db import Database

    db = Database.open(str(tmp_path / "w.db"))
    assert check_workers(db, 1) == []
    (note,) = check_workers(db, 3)
    assert "take turns" in note and "local disk" in note
