"""Shared fixtures for every test folder: an isolated environment, a real SQLite database file per
test, the CLI as a subprocess.

Layout: tests/unit (no network, no subprocess, no server, no database: seconds), tests/integration
(the local test hub over HTTP, databases, services, the web app in-process), tests/e2e (CLI
subprocesses, the browser, SIGKILL and resume, `serve`, the demo). Helper modules live in
tests/support, which pytest puts on sys.path (`pythonpath` in pyproject.toml): import them by name
(`from webdata import ...`, `from pytest_testhub import hf_env, testhub`, `pytest_plugins = ("webfixtures",)`).
Sample inputs are in tests/data (see `helpers.sample`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import run_cli
from mirrorwatch.store.db import Database

# The helper modules in tests/support get pytest's assertion messages too (and no "already imported"
# warning when a test module imports one before another lists it in `pytest_plugins`).
pytest.register_assert_rewrite("_hash_helpers", "pytest_testhub", "sweepfixtures", "webdata", "webfixtures")


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("mwhome")
    monkeypatch.setenv("MIRRORWATCH_HOME", str(home))
    monkeypatch.delenv("MIRRORWATCH_DB", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1")
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(home / "hf" / "hub"))


@pytest.fixture
def db_path(tmp_path) -> Path:
    return tmp_path / "mw.db"


@pytest.fixture
def db(db_path) -> Database:
    return Database.open(str(db_path))


@pytest.fixture
def cli(db_path):
    def _run(*args: str, **kw):
        kw.setdefault("db", db_path)
        return run_cli(*args, **kw)

    return _run
