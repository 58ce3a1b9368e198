"""`scan hf --repo-type`, `matches --json`/`--csv` and `recheck` with dataset and Space repos, end
to end through the console script (the real huggingface_hub client against the test hub)."""

from __future__ import annotations

import csv
import io
import json

from mirrorwatch.testhub import Hub, Repo, RepoFile, generate_repos
from pytest_testhub import hf_env, testhub  # noqa: F401
from sweepfixtures import bank_sha, make_bank


def _hub() -> Hub:
    return Hub([*generate_repos(12, seed=5),
                Repo("vault/loras", files=[RepoFile("a.safetensors", size=150_000_000, sha256=bank_sha(0))]),
                Repo("vault/loras", repo_type="dataset",
                     files=[RepoFile(f"p/{i}.txt", size=10 + i) for i in range(30)]
                     + [RepoFile("l/b c.safetensors", size=150_000_001, sha256=bank_sha(1))]),
                Repo("studio/try-it", repo_type="space",
                     files=[RepoFile("app.py", content=b"print()\n"),
                            RepoFile("w.safetensors", size=150_000_002, sha256=bank_sha(2))])])


def test_scan_by_repo_type_and_what_the_cli_shows(db, cli, testhub, monkeypatch):  # noqa: F811
    monkeypatch.setenv("MIRRORWATCH_HF_URL", "https://huggingface.co")
    make_bank(db, 3)
    running = testhub(_hub())
    bad = cli("scan", "hf", "--endpoint", running.url, "--repo-type", "model,kernel")
    assert bad.returncode != 0 and "repo types are model, dataset, space" in bad.stderr
    assert "Traceback" not in bad.stderr

    out = cli("scan", "hf", "--endpoint", running.url, "--repo-type", "dataset,space", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["counts"]["matches"] == 2
    assert running.stats.by_endpoint["list_models"] == 0

    rows = json.loads(cli("matches", "--json").stdout)
    assert sorted((r["repo_type"], r["repo_id"]) for r in rows) == [("dataset", "vault/loras"),
                                                                    ("space", "studio/try-it")]
    urls = {r["repo_type"]: r["url"] for r in rows}
    assert urls == {"dataset": "https://huggingface.co/datasets/vault/loras/blob/main/l/b%20c.safetensors",
                    "space": "https://huggingface.co/spaces/studio/try-it/blob/main/w.safetensors"}
    table = list(csv.DictReader(io.StringIO(cli("matches", "--csv").stdout)))
    assert {t["repo_type"] for t in table} == {"dataset", "space"}
    assert "datasets/vault/loras" in cli("matches").stdout

    # the model type afterwards: its own incremental position (none yet: a full listing of models)
    out = cli("scan", "hf", "--endpoint", running.url, "--json")
    assert json.loads(out.stdout)["counts"]["matches"] == 1
    assert running.stats.by_endpoint["list_models"] == 1
    rows = json.loads(cli("matches", "--json", "--repo-type", "model").stdout)
    assert [(r["repo_type"], r["repo_id"]) for r in rows] == [("model", "vault/loras")]

    running.hub.remove("datasets/vault/loras")
    re = json.loads(cli("recheck", "--endpoint", running.url, "--json").stdout)
    assert re["statuses"] == {"live": 2, "removed": 1}
    human = cli("recheck", "--endpoint", running.url, "--repo", "datasets/vault/loras")
    assert "rechecked 1 repos" in human.stdout
