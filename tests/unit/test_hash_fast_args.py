"""Which command lines the `hash` fast path takes (cli/hash_core.py): exactly `hash --json|--csv
PATH...` to a pipe or file; everything else is left to Typer."""

from __future__ import annotations

import io
import sys

import pytest

from mirrorwatch.cli.hash_core import fast_hash_args


@pytest.fixture(autouse=True)
def stdout_is_a_pipe(monkeypatch):
    monkeypatch.setattr(sys, "stdout", io.StringIO())


@pytest.mark.parametrize(("argv", "expected"), [
    (["hash", "--json", "a.safetensors"], ("json", ["a.safetensors"])),
    (["hash", "a", "--csv", "b"], ("csv", ["a", "b"])),
    (["hash", "--json", "--json", "a"], ("json", ["a"])),
    (["hash", "--json", "--", "--csv", "-x"], ("json", ["--csv", "-x"])),
    (["hash", "--csv", "-"], ("csv", ["-"])),
])
def test_taken(argv, expected):
    assert fast_hash_args(argv) == expected


@pytest.mark.parametrize("argv", [
    [], ["inspect", "--json", "a"], ["hash", "a"], ["hash", "--json"], ["hash", "--json", "--csv", "a"],
    ["hash", "--help", "--json", "a"], ["hash", "--json", "-h", "a"], ["hash", "--json=1", "a"],
    ["--db", "x.db", "hash", "--json", "a"],
])
def test_left_to_typer(argv):
    assert fast_hash_args(argv) is None


def test_a_terminal_gets_typer(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdout", Tty())
    assert fast_hash_args(["hash", "--json", "a"]) is None
