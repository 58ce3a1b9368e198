"""Robust matching through real sweeps of the test hub: header evidence, training-run ids, weight
fingerprints, bank expansion in either order, and evidence that means nothing."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import pytest
from sqlalchemy import select

from mirrorwatch.corpus.generate import generate_lora
from mirrorwatch.corpus.transforms import convert_dtype, kohya_to_peft, resize_half, strip_metadata
from mirrorwatch.hashing.engine import hash_bytes
from mirrorwatch.services.banks import create_bank
from mirrorwatch.services.expansion import add_file
from mirrorwatch.services.matches import list_matches
from mirrorwatch.store.models import Entry, EntrySignal, HubFile, ScanError
from mirrorwatch.sweep.runner import Sweep, SweepOptions
from mirrorwatch.testhub import Hub, Repo, RepoFile
from pytest_testhub import hf_env, testhub  # noqa: F401
from sweepfixtures import hf


def lora_bytes(tmp: Path, lf, name: str) -> bytes:
    return lf.write(tmp / f"{name}.safetensors").read_bytes()


def with_real_sshs(tmp: Path, lf, name: str) -> bytes:
    """Write once, compute the real AutoV3 (tensor bytes only), embed it as kohya does."""
    first = lora_bytes(tmp, lf, name + "-0")
    lf.metadata["sshs_model_hash"] = hash_bytes(first).autov3_full
    return lora_bytes(tmp, lf, name)


def hostile_header() -> bytes:
    header = json.dumps({"w": {"dtype": "F32", "shape": [4, 4], "data_offsets": [0, 6400]}}).encode()
    return struct.pack("<Q", len(header)) + header + b"\0" * 64


def entry(db, name: str, **signals: str) -> int:
    with db.session() as s:
        e = Entry(bank_id=1, key=f"n:{name}", name=name, name_norm=name.lower())
        s.add(e)
        s.flush()
        for form, value in signals.items():
            s.add(EntrySignal(entry_id=e.id, form=form, value=value))
        return e.id


def sweep(db, running, *, deep: bool = False, repos: list[str] | None = None) -> dict:
    scope = {"sort": "createdAt", **({"repos": repos} if repos else {})}
    return Sweep(db, hf(running), SweepOptions(scope=scope, concurrency=4, deep=deep, resume=False)).run().to_dict()


def matched(db) -> dict[tuple[str, str], tuple[int, float, set[str]]]:
    out = {}
    for r in list_matches(db, limit=1000):
        kinds = {e.get("field") or e.get("form") or e.get("kind") for e in r.evidence}
        out[(r.entry_name, r.repo_id)] = (r.tier, r.score, kinds)
    return out


@pytest.fixture
def corpus(tmp_path):
    a = generate_lora("sd15", seed=501, rank=4)
    b = generate_lora("sd15", seed=502, rank=4)
    b_epoch = generate_lora("sd15", seed=503, rank=4)  # another epoch of B's training run
    for k in ("ss_session_id", "ss_training_started_at", "ss_output_name"):
        b_epoch.metadata[k] = b.metadata[k]
    c = generate_lora("sd15", seed=504, rank=4)
    d = generate_lora("sd15", seed=505, rank=8)
    junk = generate_lora("sd15", seed=506, rank=4)
    junk.metadata.update({"sshs_legacy_hash": "e3b0c442", "ss_seed": "42", "ss_output_name": "lora",
                          "modelspec.title": "Test model", "ss_session_id": "0"})
    junk.metadata.pop("sshs_model_hash", None)
    files = {
        "a": with_real_sshs(tmp_path, a, "a"),
        "a_edited": None,
        "b": lora_bytes(tmp_path, b, "b"),
        "b_epoch": lora_bytes(tmp_path, b_epoch, "b_epoch"),
        "c": lora_bytes(tmp_path, c, "c"),
        "c_converted": lora_bytes(tmp_path, convert_dtype(kohya_to_peft(strip_metadata(c)), "bf16"), "c_conv"),
        "d_resized": lora_bytes(tmp_path, resize_half(strip_metadata(d)), "d_resized"),
        "junk": lora_bytes(tmp_path, junk, "junk"),
    }
    a.metadata.update({"ss_output_name": "LORA", "ss_training_comment": "reupload"})
    files["a_edited"] = lora_bytes(tmp_path, a, "a_edited")
    d_path = d.write(tmp_path / "d_original.safetensors")
    return files, d_path


def test_robust_tiers_end_to_end(db, testhub, corpus, tmp_path):  # noqa: F811
    files, d_original = corpus
    create_bank(db, "bank")
    sha = {k: hashlib.sha256(v).hexdigest() for k, v in files.items()}
    autov3_a = hash_bytes(files["a"]).autov3
    entry(db, "Anwen Example", sha256=sha["a"], autov3=autov3_a)
    entry(db, "Brisa Example", sha256=sha["b"])
    entry(db, "Corvin Example", sha256=sha["c"])
    d_id = entry(db, "Dalia Example")
    entry(db, "Lora Model Person")  # a generic-ish name the junk file's header must not reach

    repos = [
        # variants first: the exact copies that teach their entries come later in the sweep
        Repo("u2/edited-a", files=[RepoFile("pytorch_lora_weights.safetensors", content=files["a_edited"])]),
        Repo("u3/epoch-b", files=[RepoFile("model.safetensors", content=files["b_epoch"])]),
        Repo("u4/converted-c", files=[RepoFile("lora.safetensors", content=files["c_converted"])]),
        Repo("u5/junk", files=[RepoFile("lora.safetensors", content=files["junk"])]),
        Repo("u6/hostile", files=[RepoFile("model.safetensors", content=hostile_header())]),
        Repo("u7/resized-d", files=[RepoFile("model.safetensors", content=files["d_resized"])]),
        Repo("u1/exact-b", files=[RepoFile("b.safetensors", content=files["b"])]),
        Repo("u1/exact-c", files=[RepoFile("c.safetensors", content=files["c"])]),
    ]
    running = testhub(Hub(repos))
    out = sweep(db, running, deep=True)
    assert out["status"] == "finished"
    m = matched(db)

    # header tier: metadata edited, sshs_model_hash kept -> the bank's AutoV3
    tier, score, kinds = m[("Anwen Example", "u2/edited-a")]
    assert tier in (1, 2) and score >= 0.95 and ("hdr_autov3" in kinds or "hdr_autov3_full" in kinds or "autov3" in kinds)
    # exact copies, and what they taught their entries matched the variants swept before them
    assert m[("Brisa Example", "u1/exact-b")][:2] == (1, 1.0)
    tier, score, kinds = m[("Brisa Example", "u3/epoch-b")]
    assert tier == 2 and score >= 0.85 and "training_run" in kinds
    tier, score, kinds = m[("Corvin Example", "u4/converted-c")]
    assert tier == 3 and score >= 0.9 and "fingerprint" in kinds
    # nothing ties the junk or the hostile file to anyone
    assert not [k for k in m if k[1] in ("u5/junk", "u6/hostile")]
    with db.session() as s:
        errors: dict[str, str] = {}
        for e in s.scalars(select(ScanError)):
            errors[e.repo_id] = errors.get(e.repo_id, "") + e.reason + "; "
        headers = {f.path: f.header_signals for f in s.scalars(select(HubFile))}
        read = {(f.repo.repo_id, f.path): f.header_signals for f in s.scalars(select(HubFile))}
    assert "header: " in errors["u6/hostile"] and "data_offsets span 6400 bytes" in errors["u6/hostile"]
    # bytes fetched per header: one small first read (4096 bytes), or the 8-byte length and the header
    # when the header is longer; never any tensor data
    served = {(r.repo_id, f.path): f.content for r in repos for f in r.files}
    checked = 0
    for key, h in read.items():
        if h and "bytes" in h:
            content = served[key]
            header_end = 8 + struct.unpack("<Q", content[:8])[0]
            assert h["bytes"] == min(len(content), max(4096, header_end)), (key, h, header_end)
            checked += 1
    assert checked >= 6
    a_header_len = struct.unpack("<Q", files["a_edited"][:8])[0]
    edited = next(h for p, h in headers.items() if p == "pytorch_lora_weights.safetensors")
    assert edited["bytes"] <= a_header_len + 8 + 4096
    assert running.hub.stats.snapshot()["range_bytes"] > 0

    # an original file a team holds: the resized variant swept earlier is found now
    before = len(matched(db))
    result = add_file(db, d_id, d_original)
    assert result["fingerprints"] == 1 and result["matches"] >= 1
    tier, score, kinds = matched(db)[("Dalia Example", "u7/resized-d")]
    assert tier == 3 and score >= 0.7 and "fingerprint" in kinds
    assert len(matched(db)) == before + 1
