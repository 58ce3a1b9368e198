"""The README's demo runs end to end (without the server) and finds every kind of re-upload."""

from __future__ import annotations

import json


def test_demo_flow(cli, tmp_path):
    out = cli("demo", "--dir", str(tmp_path / "demo"), "--no-serve", "--json", timeout=300)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    counts = data["sweep"]["counts"]
    assert data["entries"] == 12
    assert counts["matches"] == 12 and counts["headers_read"] > 0 and counts["fingerprinted"] > 0
    assert data["recheck"]["statuses"]["removed"] == 1
    db = tmp_path / "demo" / "mirrorwatch.db"
    rows = json.loads(cli("matches", "--json", db=db).stdout)
    assert {r["tier"] for r in rows} == {1, 3}
    assert sum(1 for r in rows if r["uploader"] == "lora-archive-bot") == 5
