"""Helpers any test folder may import: the sample inputs and the CLI as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT.parent / "shared" / "samples"
LOCAL_SAMPLES = ROOT / "tests" / "data"


def sample(name: str) -> Path:
    """A sample input: ../shared/samples when present, else the copy under tests/data."""
    p = SAMPLES / name
    return p if p.exists() else LOCAL_SAMPLES / name


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
