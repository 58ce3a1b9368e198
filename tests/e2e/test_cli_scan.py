"""`scan hf`, `matches`, `lookup` and `recheck` end to end through the console script."""

from __future__ import annotations

import csv
import io
import json

from mirrorwatch.testhub import Hub, generate_repos
from pytest_testhub import hf_env, testhub  # noqa: F401
from sweepfixtures import bank_sha, make_bank, planted


def test_scan_matches_lookup_recheck(db, cli, testhub):  # noqa: F811
    make_bank(db, 10)
    hub = Hub(generate_repos(80, seed=8, planted=planted(7, uploaders=2)))
    running = testhub(hub)
    out = cli("scan", "hf", "--endpoint", running.url, "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["counts"]["matches"] == 7

    human = cli("matches")
    assert "reuploader-0: 4 matches in 4 repos" in human.stdout and "batch re-uploader?" in human.stdout

    rows = json.loads(cli("matches", "--json", "--author", "reuploader-1").stdout)
    assert {r["repo_id"] for r in rows} == {"reuploader-1/lora-1", "reuploader-1/lora-3", "reuploader-1/lora-5"}
    assert all(r["uploader_matches"] == 3 and r["tier"] == 1 and r["state"] == "new" for r in rows)
    assert rows[0]["evidence"][0]["form"] in ("autov2", "sha256")

    table = list(csv.DictReader(io.StringIO(cli("matches", "--csv").stdout)))
    assert len(table) == 7 and table[0]["sha256"]

    found = json.loads(cli("lookup", bank_sha(2)[:10], "--json").stdout)
    (mirror,) = found["results"][0]["mirrors"]
    assert (mirror["repo_id"], mirror["author"], mirror["repo_status"]) == ("reuploader-0/lora-2", "reuploader-0", "live")

    hub.remove("reuploader-0/lora-2")
    re = json.loads(cli("recheck", "--endpoint", running.url, "--json").stdout)
    assert re["repos"] == 7 and re["statuses"] == {"live": 6, "removed": 1}
    mirror = json.loads(cli("lookup", bank_sha(2), "--json").stdout)["results"][0]["mirrors"][0]
    assert (mirror["repo_status"], mirror["state"]) == ("removed", "gone")

    runs = json.loads(cli("scan", "runs", "--json").stdout)
    assert runs[0]["status"] == "finished"

    bad = cli("scan", "hf", "--endpoint", running.url, "--min-size", "lots")
    assert bad.returncode != 0 and "not a size" in bad.stderr
    bad = cli("matches", "--state", "maybe")
    assert bad.returncode != 0 and "--state must be one of" in bad.stderr
