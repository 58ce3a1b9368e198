"""`mirrorwatch scan civitai` end to end through the real CLI against the local Civitai API."""

from __future__ import annotations

import json

from civitaifixtures import make_civitai_bank, scenario
from conftest import run_cli
from mirrorwatch.store.db import Database
from mirrorwatch.testhub.civitai import CivitaiApi, serve_civitai

KEY = "civitai-test-key-0123456789"


def test_scan_civitai_cli(tmp_path):
    models, expected = scenario(220)
    path = tmp_path / "cli.db"
    db = Database.open(str(path))
    make_civitai_bank(db)
    env = {"CIVITAI_API_KEY": KEY, "MIRRORWATCH_CIVITAI_PACE_S": "0"}
    with serve_civitai(CivitaiApi(models, throttle_every=3)) as running:
        r = run_cli("scan", "civitai", "--endpoint", running.url, "--json", db=path, env=env)
        assert r.returncode == 0, r.stderr
        summary = json.loads(r.stdout)
        assert summary["status"] == "finished"
        assert summary["counts"]["matches"] == len(expected)
        assert summary["counts"]["throttled"] >= 1
        # the key went to the endpoint as a Bearer token, and nowhere into the output
        assert running.stats.auth_headers and set(running.stats.auth_headers) == {f"Bearer {KEY}"}
        assert KEY not in r.stdout + r.stderr
        assert running.stats.image_requests == 0 and running.stats.nsfw_missing == 0

        m = run_cli("matches", "--json", db=path)
        assert m.returncode == 0, m.stderr
        rows = json.loads(m.stdout)
        assert {row["repo_id"] for row in rows} == set(expected.values())
        by_repo = {row["repo_id"]: row for row in rows}
        assert by_repo["900002"]["hub"] == "civitai"
        assert by_repo["900002"]["url"] == "https://civitai.com/models/900002?modelVersionId=950002"

        # again: incremental after a full sweep, nothing new, nothing fetched twice
        before = running.stats.listing_requests
        again = run_cli("scan", "civitai", "--endpoint", running.url, "--json", db=path, env=env)
        assert again.returncode == 0, again.stderr
        counts = json.loads(again.stdout)["counts"]
        assert counts["matches"] == 0 and counts["fetched"] == 0
        assert running.stats.listing_requests - before == 1  # the newest page reaches past the last sweep

        # --since by publish date through CIVITAI_ENDPOINT (no --endpoint)
        s = run_cli("scan", "civitai", "--since", "1d", "--json", "--no-resume", db=path,
                    env={**env, "CIVITAI_ENDPOINT": running.url})
        assert s.returncode == 0, s.stderr
        assert json.loads(s.stdout)["counts"]["listed"] < 100

        bad = run_cli("scan", "civitai", "--endpoint", "ftp://nowhere", "--json", db=path, env=env)
        assert bad.returncode != 0 and "Traceback" not in bad.stderr
