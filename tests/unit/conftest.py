"""Unit tests run in-process on pure code: no network, no subprocess, no server, no database.

The guard below makes that a checked property rather than a convention: a unit test that opens a
socket, starts a process or opens a mirrorwatch database fails with a message saying where it
belongs (tests/integration or tests/e2e)."""

from __future__ import annotations

import socket
import subprocess

import pytest

from mirrorwatch.store.db import Database


def _refuse(what: str, where: str):
    def refused(*_args, **_kwargs):
        raise AssertionError(f"a unit test must not {what}: move it to {where}")

    return refused


@pytest.fixture(autouse=True)
def _unit_only(monkeypatch):
    monkeypatch.setattr(socket.socket, "connect", _refuse("open a network connection", "tests/integration"))
    monkeypatch.setattr(socket.socket, "connect_ex", _refuse("open a network connection", "tests/integration"))
    monkeypatch.setattr(socket.socket, "bind", _refuse("start a server", "tests/integration"))
    monkeypatch.setattr(subprocess.Popen, "__init__", _refuse("start a subprocess", "tests/e2e"))
    monkeypatch.setattr(Database, "open", _refuse("open a database", "tests/integration"))
