"""The test tree's layout: every test module sits in unit/, integration/ or e2e/ (so `./dev test-fast`
runs what it claims), and no two share a file name (pytest imports them by base name)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
FOLDERS = ("unit", "integration", "e2e")


def test_every_test_module_is_in_a_layer_folder():
    stray = sorted(str(p.relative_to(TESTS)) for p in TESTS.rglob("test_*.py")
                   if p.relative_to(TESTS).parts[0] not in FOLDERS)
    assert not stray, f"move these into tests/unit, tests/integration or tests/e2e: {stray}"


def test_test_module_names_are_unique():
    names = Counter(p.name for folder in FOLDERS for p in (TESTS / folder).rglob("test_*.py"))
    assert not [n for n, c in names.items() if c > 1], names
