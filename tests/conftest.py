"""Shared fixtures: a real SQLite database file per test, the sample inputs, the CLI as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mirrorwatch.store.db import Database

ROOT = Path(__file__).resolve().parent.parent
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
