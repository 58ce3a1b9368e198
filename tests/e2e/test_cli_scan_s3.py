"""`mirrorwatch scan s3://bucket/prefix` as a user types it, against moto's S3 server on 127.0.0.1."""

from __future__ import annotations

import json

import numpy as np
from safetensors.numpy import save_file

from bankfixtures import bank_with_signals
from mirrorwatch.hashing.engine import hash_file

pytest_plugins = ("s3server",)


def test_scan_s3_url_matches_then_reads_nothing(db, tmp_path, cli, s3_bucket):
    p = tmp_path / "a.safetensors"
    save_file({"w": np.ones((8, 8), dtype=np.float32)}, str(p))
    bank_with_signals(db, {"Invented Person S": {"blake3": hash_file(p).blake3}})
    s3_bucket.put("team/x/a.safetensors", p.read_bytes())
    env = {k: v for k, v in s3_bucket.env.items() if k != "AWS_ENDPOINT_URL"}
    out = cli("scan", s3_bucket.url("team"), "--endpoint", s3_bucket.endpoint, "--json", env=env)
    assert out.returncode == 0, out.stderr
    counts = json.loads(out.stdout)["counts"]
    assert counts["matches"] == 1 and counts["content_reads"] == 1
    again = cli("scan", "s3", s3_bucket.url("team"), "--json", env=s3_bucket.env)  # endpoint from AWS_ENDPOINT_URL
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["counts"]["content_reads"] == 0

    bad = cli("scan", "s3://no-such-bucket-anywhere/x", env=s3_bucket.env)
    assert bad.returncode != 0 and "no such bucket" in bad.stdout + bad.stderr
    assert "Traceback" not in bad.stderr
    nocreds = cli("scan", s3_bucket.url("team"), env={**s3_bucket.env, "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "",
                                                      "AWS_SESSION_TOKEN": ""})
    assert nocreds.returncode != 0 and "Traceback" not in nocreds.stderr
