"""Sweeping an S3-compatible bucket: moto's server mode on 127.0.0.1 through the real boto3 client.

Every object is hashed in every form from one read, headers read and LoRAs fingerprinted; an object
unchanged since the last sweep (same ETag, size and mtime) is not read again; objects that vanish
or change between the listing and the read are recorded with a reason and the sweep goes on."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from bankfixtures import bank_with_signals
from mirrorwatch.corpus import convert_dtype, generate_lora
from mirrorwatch.errors import InvalidInput
from mirrorwatch.hashing.engine import hash_bytes
from mirrorwatch.hubs.registry import hub_spec
from mirrorwatch.services.expansion import add_file
from mirrorwatch.services.matches import list_matches
from mirrorwatch.store.models import HubFile, ScanError
from mirrorwatch.sweep.runner import Sweep, SweepOptions
from s3server import Bucket

pytest_plugins = ("s3server",)


def _safetensors(tmp_path, i: int) -> bytes:
    import numpy as np
    from safetensors.numpy import save_file

    p = tmp_path / f"st{i}.safetensors"
    save_file({"w": np.random.default_rng(i).standard_normal((32, 32), dtype=np.float32)}, str(p),
              metadata={"ss_output_name": f"invented_output_{i}"})
    return p.read_bytes()


def _sweep(db, bucket: Bucket, prefix: str = "models/", *, hub=None, deep: bool = True):
    spec = hub_spec("s3")
    if hub is None:
        hub = spec.open(bucket.url(prefix))
    from mirrorwatch.services.scans import known_hashes

    hub.known = known_hashes(db, "s3", hub.location)
    opts = SweepOptions(scope={"root": hub.location}, concurrency=1, resume=False, deep=deep)
    return Sweep(db, hub, opts).run()


def test_s3_sweep_hashes_every_form_matches_and_skips_unchanged(db, tmp_path, s3_bucket):
    blobs = [_safetensors(tmp_path, i) for i in range(3)]
    hashes = [hash_bytes(b) for b in blobs]
    original = generate_lora("sd15", seed=11, rank=4, blocks=0.2)
    orig_path = original.write(tmp_path / "original.safetensors")
    reupload = convert_dtype(original, "fp32").write(tmp_path / "reupload.safetensors").read_bytes()
    ids = bank_with_signals(db, {"Invented Person A": {"sha256": hashes[0].sha256},
                                 "Invented Person B": {"blake3": hashes[1].blake3},
                                 "Invented Person C": {"autov3": hashes[2].autov3},
                                 "Invented Person D": {"autov2": "0000000000"}})
    add_file(db, ids["Invented Person D"], orig_path)
    for i, b in enumerate(blobs):
        s3_bucket.put(f"models/team {i}/upload_{i}.safetensors", b)
    s3_bucket.put("models/conv/lora.safetensors", reupload)
    s3_bucket.put("models/readme.txt", b"not a model")
    s3_bucket.put("elsewhere/upload_0.safetensors", blobs[0])  # outside the prefix

    first = _sweep(db, s3_bucket)
    assert first.status == "finished", first
    c = first.counts
    assert c["files"] == 4 and c["hashes"] == 4 and c["content_reads"] == 4 and c["errors"] == 0
    assert c["fingerprinted"] >= 1 and c["headers_read"] == 4
    rows = {r.entry_name: r for r in list_matches(db)}
    assert set(rows) == {"Invented Person A", "Invented Person B", "Invented Person C", "Invented Person D"}
    assert rows["Invented Person A"].path == "team 0/upload_0.safetensors"
    assert rows["Invented Person D"].tier == 3
    with db.session() as s:
        stored = {f.path: f for f in s.scalars(select(HubFile))}
    f0 = stored["team 0/upload_0.safetensors"]
    assert f0.sha256 == hashes[0].sha256
    for form in ("autov3_full", "autov3", "crc32", "blake3", "autov2"):
        assert f0.hashes[form] == getattr(hashes[0], form), form
    assert f0.hashes["etag"] and f0.revision == f0.hashes["etag"]

    # second sweep: nothing read again, nothing matched twice
    second = _sweep(db, s3_bucket)
    assert second.counts["content_reads"] == 0 and second.counts["headers_read"] == 0
    assert second.counts["files"] == 4 and second.counts["matches"] == 0 and len(list_matches(db)) == 4

    # an object replaced in place is read again (and only it); S3's LastModified has whole seconds, so
    # the replacement must land in a later second than the first upload for its mtime to differ
    time.sleep(1.1)
    s3_bucket.put("models/team 1/upload_1.safetensors", blobs[1] + b"")  # same bytes, new mtime
    s3_bucket.put("models/team 2/upload_2.safetensors", _safetensors(tmp_path, 7))
    third = _sweep(db, s3_bucket)
    assert third.counts["content_reads"] == 2 and third.counts["errors"] == 0


def test_objects_vanishing_or_changing_after_the_listing_are_recorded(db, tmp_path, s3_bucket, monkeypatch):
    import tempfile

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where the private copies are made
    blobs = [_safetensors(tmp_path, i) for i in range(3)]
    bank_with_signals(db, {"Invented Person E": {"sha256": hash_bytes(blobs[2]).sha256}})
    for i, b in enumerate(blobs):
        s3_bucket.put(f"m/{i}.safetensors", b)
    hub = hub_spec("s3").open(s3_bucket.url("m"))
    listed = hub.list_pages

    def list_then_disturb(scope):
        for page in listed(scope):
            s3_bucket.delete("m/0.safetensors")  # vanishes before it is read
            s3_bucket.put("m/1.safetensors", _safetensors(tmp_path, 9))  # replaced: the listed ETag is gone
            yield page

    hub.list_pages = list_then_disturb
    summary = _sweep(db, s3_bucket, "m", hub=hub)
    assert summary.status == "finished"
    assert summary.counts["files"] == 1 and summary.counts["matches"] == 1
    with db.session() as s:
        reasons = {e.path: e.reason for e in s.scalars(select(ScanError))}
    assert "vanished" in reasons["0.safetensors"]
    assert "changed since it was listed" in reasons["1.safetensors"]
    assert list(scratch.iterdir()) == []  # every private copy deleted after use, failed reads included
    # the next sweep reads the replaced object (the vanished one stays gone)
    again = _sweep(db, s3_bucket, "m")
    assert again.counts["content_reads"] == 1 and again.counts["files"] == 2


def test_bad_locations_and_buckets_are_clear(db, s3_bucket):
    with pytest.raises(InvalidInput, match="not an S3 location"):
        hub_spec("s3").open("bucket-without-scheme/x")
    summary = _sweep(db, s3_bucket, hub=hub_spec("s3").open("s3://no-such-bucket-here/x"))
    assert summary.status == "failed"
    with db.session() as s:
        assert any("no such bucket" in e.reason for e in s.scalars(select(ScanError)))
