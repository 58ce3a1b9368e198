"""A fresh PostgreSQL database for the tests that run on both engines (MIRRORWATCH_TEST_PG).

`./dev test` starts Debian's PostgreSQL and sets MIRRORWATCH_TEST_PG; under CI a missing server
fails the test instead of skipping it, so CI can never pass without the PostgreSQL tests."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import create_engine, text

from mirrorwatch.store.db import Database

PG = os.environ.get("MIRRORWATCH_TEST_PG")


def fresh_pg() -> Database:
    """Open MIRRORWATCH_TEST_PG with its public schema emptied (skip, or fail under CI, without it)."""
    if not PG:
        if os.environ.get("CI"):
            pytest.fail("MIRRORWATCH_TEST_PG is not set: CI must run the PostgreSQL tests")
        pytest.skip("no PostgreSQL server configured (set MIRRORWATCH_TEST_PG)")
    engine = create_engine(PG)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return Database.open(PG)
