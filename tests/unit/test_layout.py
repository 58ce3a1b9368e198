"""The test tree's layout: every test module sits in unit/, integration/ or e2e/ (so `./dev test-fast`
runs what it claims), no two share a file name (pytest imports them by base name), there is one
conftest.py (test modules import `sample` and `run_cli` from it), and unit tests really are refused
the network, subprocesses and databases."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from mirrorwatch.store.db import Database

TESTS = Path(__file__).resolve().parents[1]
FOLDERS = ("unit", "integration", "e2e")


def test_every_test_module_is_in_a_layer_folder():
    stray = sorted(str(p.relative_to(TESTS)) for p in TESTS.rglob("test_*.py")
                   if p.relative_to(TESTS).parts[0] not in FOLDERS)
    assert not stray, f"move these into tests/unit, tests/integration or tests/e2e: {stray}"


def test_test_module_names_are_unique():
    names = Counter(p.name for folder in FOLDERS for p in (TESTS / folder).rglob("test_*.py"))
    assert not [n for n, c in names.items() if c > 1], names


def test_one_conftest():
    assert [p.relative_to(TESTS) for p in TESTS.rglob("conftest.py")] == [Path("conftest.py")]


def test_unit_tests_are_refused_processes_sockets_and_databases(tmp_path):
    with pytest.raises(AssertionError, match="must not start a subprocess: move it to tests/e2e"):
        subprocess.run([sys.executable, "-c", "pass"], check=False)
    with socket.socket() as s, pytest.raises(AssertionError, match="must not open a network connection"):
        s.connect(("127.0.0.1", 9))
    with socket.socket() as s, pytest.raises(AssertionError, match="must not start a server"):
        s.bind(("127.0.0.1", 0))
    with pytest.raises(AssertionError, match="must not open a database"):
        Database.open(str(tmp_path / "x.db"))
