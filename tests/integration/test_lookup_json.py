"""The JSON a lookup answers with, byte for byte: `GET /api/lookup` and `mirrorwatch lookup --json`.

The expected texts in tests/data/lookup-json-golden.json were captured from the code before the
lookup results became read models (services/serial.py); the one serialiser must write the same
bytes (key order, scores rounded to one decimal, mirror scores as stored, times with a Z).
Regenerate only on a deliberate change of the JSON: MW_WRITE_GOLDEN=1 pytest this file."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import mirrorwatch.cli.lookup_cmds  # noqa: F401  (registers `lookup` on the app)
from conftest import sample
from mirrorwatch.cli.app import app as cli_app
from mirrorwatch.services import users
from mirrorwatch.services.banks import create_bank
from mirrorwatch.services.imports import import_file
from mirrorwatch.services.lookup import lookup
from mirrorwatch.store.models import HubFile, HubRepo, Match
from mirrorwatch.web.app import create_app

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "lookup-json-golden.json"
SHA_JANE = "0899cd856fba9b131050135138cd87c5e5222f0a0657b94730901988d5cabdbb"
QUERIES = [SHA_JANE, "0899cd856f", "civitai:101001", "jane exmaple", "example", "Zoë", "ff" * 32]


@pytest.fixture
def loaded(db):
    create_bank(db, "b")
    import_file(db, "b", sample("removed-models-sample.csv"), skip_bad=True)
    import_file(db, "b", sample("civitai-model-version.json"))
    (jane,) = lookup(db, SHA_JANE).results
    with db.session() as s:
        for n, (hub, repo_id, author, path) in enumerate([
            ("hf", "archivist-1/lora-archive", "archivist-1", "model.safetensors"),
            ("hf", "archivist-1/lora-archive", "archivist-1", "sub dir/jane #2.safetensors"),
            ("dir", "/srv/models", None, "jäne.safetensors"),
        ]):
            repo = s.query(HubRepo).filter_by(hub=hub, repo_id=repo_id).one_or_none()
            if repo is None:
                repo = HubRepo(hub=hub, repo_id=repo_id, author=author)
                s.add(repo)
                s.flush()
            f = HubFile(repo_pk=repo.id, path=path, size=10, sha256=SHA_JANE,
                        first_seen=datetime(2026, 3, 1, 12, 0, n), last_seen=datetime(2026, 3, 2, 8, 30, n, 123456))
            s.add(f)
            s.flush()
            s.add(Match(entry_id=jane.id, hub_file_id=f.id, tier=1 + n, score=[1.0, 0.87654, 61.25][n],
                        state=["new", "confirmed", "new"][n], evidence=[{"form": "sha256"}]))
    users.add_user(db, "vic", "viewer", "viewer-pass-123", actor="test")
    return db


def _answers(db, db_path) -> dict[str, dict[str, str]]:
    token = users.create_token(db, "vic", "golden", actor="test")[1]
    out: dict[str, dict[str, str]] = {}
    runner = CliRunner()
    with TestClient(create_app(db, secret_key="golden-secret"), base_url="http://testserver",
                    headers={"Authorization": f"Bearer {token}"}) as client:
        for q in QUERIES:
            r = client.get("/api/lookup", params={"q": q})
            assert r.status_code == 200, r.text
            cli = runner.invoke(cli_app, ["--db", str(db_path), "lookup", q, "--json"])
            assert cli.exit_code == (0 if json.loads(cli.stdout)["results"] else 1), cli.output
            out[q] = {"api": r.content.decode("utf-8"), "cli": cli.stdout}
    return out


def test_lookup_json_is_unchanged(loaded, db_path):
    got = _answers(loaded, db_path)
    if os.environ.get("MW_WRITE_GOLDEN"):
        GOLDEN.write_text(json.dumps(got, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    expected = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert set(got) == set(expected)
    for q in QUERIES:
        assert got[q]["api"] == expected[q]["api"], q
        assert got[q]["cli"] == expected[q]["cli"], q
    # The sample is worth comparing: mirrors with times and a fractional score, a name score to round.
    jane = json.loads(got[SHA_JANE]["api"])["results"][0]
    assert [m["score"] for m in jane["mirrors"]] == [1.0, 0.87654, 61.25]
    assert jane["mirrors"][1]["last_seen"] == "2026-03-02T08:30:01.123456Z"
    assert any(r["score"] % 1 for r in json.loads(got["jane exmaple"]["api"])["results"])
