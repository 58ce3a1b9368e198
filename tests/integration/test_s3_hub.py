"""Sweeping an S3-compatible bucket: moto's server mode on 127.0.0.1 through the real boto3 client.

Every object is hashed in every form from one read, headers read and LoRAs fingerprinted; an object
unchanged since the last sweep (same ETag, size and mtime) is not read again; objects that vanish
or change between the listing and the read are recorded with a reason and the sweep goes on."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from _hash_helpers import big_safetensors, hashlib_forms
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


def _stored(db, path: str):
    with db.session() as s:
        return s.scalar(select(HubFile).where(HubFile.path == path))


def test_objects_over_the_read_cap_are_hashed_in_every_form_from_a_stream(db, tmp_path, s3_bucket, monkeypatch):
    """The per-task read cap (MIRRORWATCH_CONTENT_CAP, 1 MiB here): an object larger than it is never
    copied nor read whole; it is hashed in every form from ETag-pinned ranged reads (parts of 256 KiB
    here), its header read by range; the forms equal hashlib's over the same bytes."""
    import tempfile

    monkeypatch.setenv("MIRRORWATCH_CONTENT_CAP", "1MiB")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    big = big_safetensors(tmp_path, 1)
    small = generate_lora("sd15", seed=12, rank=4, blocks=0.2).write(tmp_path / "small.safetensors").read_bytes()
    assert len(big) > 3 * 1024**2
    want = hashlib_forms(big)
    bank_with_signals(db, {"Invented Person F": {"blake3": want["blake3"]}})
    s3_bucket.put("big/large.safetensors", big)
    s3_bucket.put("big/small.safetensors", small)
    hub = hub_spec("s3").open(s3_bucket.url("big"))
    hub.stream_part = 256 * 1024
    gets: list[dict] = []
    real_get = hub.client.get_object

    def get_object(**kw):
        gets.append(kw)
        return real_get(**kw)

    hub.client.get_object = get_object
    summary = _sweep(db, s3_bucket, "big", hub=hub)
    assert summary.status == "finished" and summary.counts["errors"] == 0
    f = _stored(db, "large.safetensors")
    assert f.sha256 == want["sha256"]
    assert {k: f.hashes.get(k) for k in want if k != "sha256"} == {k: v for k, v in want.items() if k != "sha256"}
    assert f.header_signals and "error" not in f.header_signals  # (the header: range reads)
    assert [m.entry_name for m in list_matches(db)] == ["Invented Person F"]
    large = [g for g in gets if g["Key"].endswith("large.safetensors")]
    assert large and all("Range" in g and g.get("IfMatch") for g in large)  # never read whole, always pinned
    step = hub.stream_part
    parts = [f"bytes={i}-{min(i + step, len(big)) - 1}" for i in range(0, len(big), step)]
    assert sorted(g["Range"] for g in large if g["Range"] in parts) == sorted(parts)  # every part once
    assert len(large) <= len(parts) + 2  # and the header's range reads
    assert summary.counts["fingerprinted"] == 1  # the small LoRA only: the large file is past the cap
    assert list(scratch.iterdir()) == []

    again = _sweep(db, s3_bucket, "big")
    assert again.counts["content_reads"] == 0  # unchanged: not read again


def test_an_object_replaced_mid_stream_is_recorded_not_half_written(db, tmp_path, s3_bucket, monkeypatch):
    monkeypatch.setenv("MIRRORWATCH_CONTENT_CAP", "1MiB")
    first, second = big_safetensors(tmp_path, 3), big_safetensors(tmp_path, 4)
    s3_bucket.put("mid/large.safetensors", first)
    hub = hub_spec("s3").open(s3_bucket.url("mid"))
    hub.stream_part = 256 * 1024
    real_get = hub._get
    replaced = []

    def get(path, etag, byte_range=None):
        if byte_range == f"bytes={hub.stream_part}-{2 * hub.stream_part - 1}" and not replaced:
            replaced.append(s3_bucket.put("mid/large.safetensors", second))  # between the first and second part
        return real_get(path, etag, byte_range)

    hub._get = get
    summary = _sweep(db, s3_bucket, "mid", hub=hub)
    assert replaced and summary.status == "finished"
    assert _stored(db, "large.safetensors") is None and summary.counts["files"] == 0  # nothing half-written
    with db.session() as s:
        reasons = [e.reason for e in s.scalars(select(ScanError).where(ScanError.path == "large.safetensors"))]
    assert any("changed since it was listed" in r for r in reasons), reasons

    again = _sweep(db, s3_bucket, "mid")  # the next scan reads the new version, whole and alone
    assert again.counts["content_reads"] == 1
    assert _stored(db, "large.safetensors").sha256 == hashlib_forms(second)["sha256"]


def test_a_stream_cut_off_mid_part_is_read_on_from_where_it_stopped(db, tmp_path, s3_bucket, monkeypatch):
    """A part whose connection breaks mid-body (botocore's ReadTimeoutError) is asked again from the
    byte where it stopped (pinned to the same ETag): the hashes are still hashlib's."""
    from botocore.exceptions import ReadTimeoutError

    monkeypatch.setenv("MIRRORWATCH_CONTENT_CAP", "1MiB")
    big = big_safetensors(tmp_path, 5)
    s3_bucket.put("cut/large.safetensors", big)
    hub = hub_spec("s3").open(s3_bucket.url("cut"))
    hub.stream_part = 512 * 1024
    real_get = hub._get
    asked: list[str | None] = []

    class Cut:
        def __init__(self, body):
            self.body, self.given = body, 0

        def read(self, n):
            if self.given >= 1000:
                raise ReadTimeoutError(endpoint_url="http://127.0.0.1")
            data = self.body.read(min(n, 1000 - self.given))
            self.given += len(data)
            return data

        def close(self):
            self.body.close()

    def get(path, etag, byte_range=None):
        asked.append(byte_range)
        answer = real_get(path, etag, byte_range)
        if byte_range == f"bytes={hub.stream_part}-{2 * hub.stream_part - 1}":  # the second part breaks
            answer = {**answer, "Body": Cut(answer["Body"])}
        return answer

    hub._get = get
    summary = _sweep(db, s3_bucket, "cut", hub=hub)
    assert summary.status == "finished" and summary.counts["errors"] == 0
    assert f"bytes={hub.stream_part + 1000}-{2 * hub.stream_part - 1}" in asked  # read on from byte 1000 of it
    f = _stored(db, "large.safetensors")
    want = hashlib_forms(big)
    assert f.sha256 == want["sha256"] and f.hashes["blake3"] == want["blake3"] and f.hashes["crc32"] == want["crc32"]
