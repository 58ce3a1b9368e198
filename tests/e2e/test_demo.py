"""The README's demo runs end to end (without the server) and finds every kind of re-upload."""

from __future__ import annotations

import json


def test_demo_flow(cli, tmp_path):
    out = cli("demo", "--dir", str(tmp_path / "demo"), "--no-serve", "--json", timeout=300)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    counts = data["sweep"]["counts"]
    assert data["entries"] == 12
    # 12 in model repos, one inside a zip in a dataset repo, one in a Space; one more on Civitai
    assert counts["matches"] == 14 and counts["headers_read"] > 0 and counts["fingerprinted"] > 0
    assert data["civitai_sweep"]["counts"]["matches"] == 1
    assert data["recheck"]["statuses"]["removed"] == 1
    assert len(data["matches"]) == 15  # every match found, printed
    db = tmp_path / "demo" / "mirrorwatch.db"
    rows = json.loads(cli("matches", "--json", db=db).stdout)
    assert {r["tier"] for r in rows} == {1, 3}
    assert sum(1 for r in rows if r["uploader"] == "lora-archive-bot") == 5
    by_type = {(r["hub"], r["repo_type"]): r for r in rows}
    assert set(by_type) == {("hf", "model"), ("hf", "dataset"), ("hf", "space"), ("civitai", "model")}
    member_row = by_type[("hf", "dataset")]  # an archive member is a row of its own
    assert (member_row["archive"], member_row["member"]) == ("archives/removed-loras.zip", "loras/pema_v1.safetensors")
    assert "member loras/pema_v1.safetensors" in " ".join(by_type[("hf", "dataset")]["why"])
    assert "/datasets/lora-vault/removed-loras-2024/blob/main/" in by_type[("hf", "dataset")]["url"]
    assert "/spaces/pixel-playground/style-tryout/blob/main/" in by_type[("hf", "space")]["url"]
    assert by_type[("civitai", "model")]["url"].endswith("/models/912345?modelVersionId=998877")
    text = cli("demo", "--dir", str(tmp_path / "demo2"), "--no-serve", timeout=300).stdout
    assert "15 matches found:" in text and "datasets/lora-vault/removed-loras-2024" in text
