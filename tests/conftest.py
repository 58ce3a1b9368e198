"""Shared fixtures: a real SQLite database file per test, the sample inputs, the CLI as a subprocess.

Layout: tests/unit (no network, no subprocess, no server, no database: seconds; the guard below
enforces it), tests/integration (the local test hub over HTTP, databases, services, the web app
in-process), tests/e2e (CLI subprocesses, the browser, SIGKILL and resume, `serve`, the demo).
Helper modules live in tests/support, which pytest puts on sys.path (`pythonpath` in pyproject.toml):
import them by name (`from webdata import ...`, `from pytest_testhub import hf_env, testhub`,
`pytest_plugins = ("webfixtures",)`); `sample` and `run_cli` are imported from this module. Keep this
the only conftest.py, so that `from conftest import ...` always means this file."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from mirrorwatch.store.db import Database

# The helper modules in tests/support get pytest's assertion messages too (and no "already imported"
# warning when a test module imports one before another lists it in `pytest_plugins`).
pytest.register_assert_rewrite("_hash_helpers", "pytest_testhub", "sweepfixtures", "webdata", "webfixtures", "pgdb", "bankfixtures", "realwriters", "civitaifixtures", "sheet_bombs", "webhook_receiver", "notifyfixtures", "trained_data", "s3server", "rayfixtures", "procs", "raycluster")

ROOT = Path(__file__).resolve().parent.parent
UNIT = Path(__file__).resolve().parent / "unit"
SAMPLES = ROOT.parent / "shared" / "samples"
LOCAL_SAMPLES = Path(__file__).parent / "data"


def sample(name: str) -> Path:
    """A sample input: ../shared/samples when present, else the copy under tests/data."""
    p = SAMPLES / name
    return p if p.exists() else LOCAL_SAMPLES / name


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("mwhome")
    monkeypatch.setenv("MIRRORWATCH_HOME", str(home))
    monkeypatch.delenv("MIRRORWATCH_DB", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1")
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(home / "hf" / "hub"))


def _refuse(what: str, where: str):
    def refused(*_args, **_kwargs):
        raise AssertionError(f"a unit test must not {what}: move it to {where}")

    return refused


@pytest.fixture(autouse=True)
def _unit_tests_stay_in_process(request, monkeypatch):
    """Under tests/unit, opening a socket, starting a process or opening a database fails the test
    with a message saying where it belongs: "unit" is a checked property, not a convention."""
    if UNIT not in request.node.path.parents:
        return
    monkeypatch.setattr(socket.socket, "connect", _refuse("open a network connection", "tests/integration"))
    monkeypatch.setattr(socket.socket, "connect_ex", _refuse("open a network connection", "tests/integration"))
    monkeypatch.setattr(socket.socket, "bind", _refuse("start a server", "tests/integration"))
    monkeypatch.setattr(subprocess.Popen, "__init__", _refuse("start a subprocess", "tests/e2e"))
    monkeypatch.setattr(Database, "open", _refuse("open a database", "tests/integration"))


@pytest.fixture
def db_path(tmp_path) -> Path:
    return tmp_path / "mw.db"


@pytest.fixture
def db(db_path) -> Database:
    return Database.open(str(db_path))


def run_cli(*args: str, db: Path | None = None, input: str | None = None, env: dict | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the real console entry point in a subprocess."""
    full_env = dict(os.environ)
    if db is not None:
        full_env["MIRRORWATCH_DB"] = str(db)
    full_env.pop("MIRRORWATCH_DEBUG", None)
    if env:
        full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "mirrorwatch.cli.main", *args],
        capture_output=True, text=True, input=input, env=full_env, timeout=timeout,
    )


@pytest.fixture
def cli(db_path):
    def _run(*args: str, **kw):
        kw.setdefault("db", db_path)
        return run_cli(*args, **kw)

    return _run
