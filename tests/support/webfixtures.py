"""Fixtures for the web, API, review and report tests: a world of synthetic data built once per
session through the real services, copied per test; apps, signed-in clients and API clients.

Use with `pytest_plugins = ("webfixtures",)` in a test module; helpers live in webdata.py."""

from __future__ import annotations

import copy
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mirrorwatch.store.db import Database
from mirrorwatch.web.app import create_app
from webdata import SECRET, World, build_world, login


@pytest.fixture(scope="session")
def _world_template(tmp_path_factory) -> tuple[Path, World]:
    """The world is built once per test session (scrypt and migrations are slow on purpose);
    every test gets its own copy of the database file."""
    path = tmp_path_factory.mktemp("webworld") / "template.db"
    db = Database.open(str(path))
    w = build_world(db)
    with db.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    db.engine.dispose()
    return path, w


@pytest.fixture
def world(_world_template, tmp_path) -> World:
    template, w = _world_template
    path = tmp_path / "web.db"
    shutil.copyfile(template, path)
    db = Database.open(str(path))
    yield replace(w, db=db, extra=copy.deepcopy(w.extra))
    db.engine.dispose()


@pytest.fixture
def app(world):
    return create_app(world.db, secret_key=SECRET)


@pytest.fixture
def anon(app):
    with TestClient(app, base_url="http://testserver") as c:
        yield c


@pytest.fixture
def client_as(app):
    """client_as("rex") -> (TestClient signed in as rex, csrf token)."""
    clients = []

    def make(name: str):
        c = TestClient(app, base_url="http://testserver")
        c.__enter__()
        clients.append(c)
        return c, login(c, name)

    yield make
    for c in clients:
        c.__exit__(None, None, None)


@pytest.fixture
def api(app, world):
    """api("ada") -> TestClient that sends ada's bearer token."""
    clients = []

    def make(name: str):
        c = TestClient(app, base_url="http://testserver", headers={"Authorization": f"Bearer {world.tokens[name]}"})
        c.__enter__()
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.__exit__(None, None, None)
