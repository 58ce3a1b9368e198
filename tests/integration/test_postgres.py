"""The same flows on PostgreSQL (SQLAlchemy models and Alembic migrations shared with SQLite).

Needs a server: MIRRORWATCH_TEST_PG=postgresql+psycopg://user:pw@127.0.0.1/db (`./dev test` starts
Debian's PostgreSQL and sets it). In CI a missing server is a failure, not a skip."""

from __future__ import annotations

import pytest

from conftest import sample
from mirrorwatch.bank.importer import ImportRejected
from mirrorwatch.services.banks import create_bank, list_banks
from mirrorwatch.services.imports import import_file
from mirrorwatch.services.lookup import lookup
from mirrorwatch.store.db import Database
from mirrorwatch.testhub import Hub, generate_repos
from pgdb import fresh_pg
from pytest_testhub import hf_env, testhub  # noqa: F401
from sweepfixtures import hf, make_bank, match_pairs, planted, sweep


@pytest.fixture
def pg() -> Database:
    return fresh_pg()


def test_import_and_lookup_on_postgres(pg):
    create_bank(pg, "pg")
    with pytest.raises(ImportRejected):
        import_file(pg, "pg", sample("removed-models-sample.csv"))
    assert list_banks(pg)[0].entries == 0  # nothing half-written
    s = import_file(pg, "pg", sample("removed-models-sample.csv"), skip_bad=True)
    assert (s.added, s.duplicates) == (8, 1)
    again = import_file(pg, "pg", sample("removed-models-sample.csv"), skip_bad=True)
    assert (again.added, again.updated) == (0, 0)
    assert import_file(pg, "pg", sample("civitai-model-version.json")).updated == 1
    for q in ("0899CD856F", "e0d2747b9ab7", "1a2b3c4d", "civitai:101001", "jane example",
              "https://civitai.com/api/download/models/202001"):
        assert lookup(pg, q).results[0].civitai_version_id == 202001, q
    assert lookup(pg, "zoë placeholder").results[0].name == "Zoë Placeholder"


def test_sweep_on_postgres(pg, testhub):  # noqa: F811
    make_bank(pg, 8)
    running = testhub(Hub(generate_repos(120, seed=12, planted=planted(8))))
    out = sweep(pg, hf(running))
    assert out["status"] == "finished" and out["counts"]["matches"] == 8
    again = sweep(pg, hf(running))
    assert again["counts"]["fetched"] == 0 and len(match_pairs(pg)) == 8
