"""Each re-uploader's change scores at its expected verdict; unrelated files do not; serialisation."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from mirrorwatch.corpus import (
    convert_dtype,
    edit_metadata,
    generate_lora,
    generate_lycoris,
    kohya_int_alpha,
    kohya_to_peft,
    merge,
    peft_to_kohya,
    refactor,
    rename_file,
    resize_half,
    strip_metadata,
)
from mirrorwatch.errors import InvalidInput, MalformedFile
from mirrorwatch.match.fingerprint import (
    DEFAULT_THRESHOLDS,
    FILE_VECTOR_DIM,
    Fingerprint,
    IncompatibleFingerprints,
    Thresholds,
    compare,
    fingerprint_file,
    fingerprint_state_dict,
)
from mirrorwatch.match.fingerprint.sketch import projection


@pytest.fixture(scope="module")
def sd15():
    return generate_lora("sd15", seed=31, rank=8, dtype="fp16")


@pytest.fixture(scope="module")
def flux():  # attention-only Flux LoRA in kohya layout (fused qkv)
    return generate_lora("flux", seed=32, rank=4, preset="attn", dtype="bf16")


@pytest.fixture(scope="module")
def flux_peft():  # ai-toolkit style: split q/k/v with their own downs, alpha folded
    return generate_lora("flux", seed=33, rank=4, preset="attn", layout="peft", dtype="fp16")


def file_fp(lf, tmp_path, name="f.safetensors"):
    return fingerprint_file(lf.write(tmp_path / name))


LOSSLESS = {
    "metadata_edit": lambda lf: edit_metadata(lf, 1),
    "metadata_strip": strip_metadata,
    "to_fp32": lambda lf: convert_dtype(lf, "fp32"),
    "to_fp16": lambda lf: convert_dtype(lf, "fp16"),
    "to_bf16": lambda lf: convert_dtype(lf, "bf16"),
    "refactor": lambda lf: refactor(lf, 2),
    "key_format": lambda lf: kohya_to_peft(lf) if lf.layout == "kohya" else peft_to_kohya(lf),
    "key_format_round_trip": lambda lf: (peft_to_kohya(kohya_to_peft(lf)) if lf.layout == "kohya"
                                         else kohya_to_peft(peft_to_kohya(lf))),
    "kohya_int_alpha": kohya_int_alpha,  # diffusers' convert_state_dict_to_kohya: int64 alphas
}


@pytest.mark.parametrize("which", ["sd15", "flux", "flux_peft"])
@pytest.mark.parametrize("transform", sorted(LOSSLESS))
def test_lossless_changes_score_same_weights(request, tmp_path, which, transform):
    lf = request.getfixturevalue(which)
    original = file_fp(lf, tmp_path, "orig.safetensors")
    variant = file_fp(LOSSLESS[transform](lf), tmp_path)
    sim = compare(variant, original)
    assert sim.method == "names"
    assert sim.layers_compared == len(original) == len(variant)
    assert sim.score >= DEFAULT_THRESHOLDS["names"].same_weights
    assert sim.verdict() == "same_weights"
    assert float(variant.vector @ original.vector) > 0.99  # the index would find it
    json.dumps(sim.details)  # evidence is stored as JSON


def test_rename_keeps_bytes_and_fingerprint(tmp_path, sd15):
    src = sd15.write(tmp_path / "removed_model_v2.safetensors")
    dst = rename_file(src, tmp_path / "LORA.safetensors")
    assert dst.read_bytes() == src.read_bytes()
    assert fingerprint_file(dst) == fingerprint_file(src)


def test_flux_kohya_and_peft_layouts_share_canonical_layers(flux):
    kohya = fingerprint_state_dict(flux.tensors)
    peft = fingerprint_state_dict(kohya_to_peft(flux).tensors)
    assert kohya.names == peft.names
    assert len(kohya) == 2 * len([k for k in flux.tensors if k.endswith(".alpha")])  # qkv -> q,k,v + proj
    assert kohya.stats["split_modules"] > 0 and peft.stats["split_modules"] == 0
    assert kohya.family == peft.family == "flux"


def test_resize_to_half_rank_is_derived(sd15):
    original = fingerprint_state_dict(sd15.tensors)
    sim = compare(fingerprint_state_dict(resize_half(sd15).tensors), original)
    assert DEFAULT_THRESHOLDS["names"].derived <= sim.score < DEFAULT_THRESHOLDS["names"].same_weights
    assert sim.verdict() == "derived"


def test_merge_50_50_is_derived_from_both_parents(sd15):
    other = generate_lora("sd15", seed=34, rank=8)
    merged = fingerprint_state_dict(merge(sd15, other).tensors)
    for parent in (sd15, other):
        sim = compare(merged, fingerprint_state_dict(parent.tensors))
        assert sim.verdict() == "derived", sim.score


def test_unrelated_and_same_init_loras_are_no_match(sd15, flux):
    original = fingerprint_state_dict(sd15.tensors)
    for seed in range(40, 46):
        unrelated = fingerprint_state_dict(generate_lora("sd15", seed=seed, rank=8).tensors)
        same_init = fingerprint_state_dict(generate_lora("sd15", seed=seed + 100, init_seed=31, rank=8).tensors)
        for other in (unrelated, same_init):
            sim = compare(original, other)
            assert sim.method == "names" and sim.verdict() == "no_match", sim.score
    flux_other = fingerprint_state_dict(generate_lora("flux", seed=47, rank=4, preset="attn").tensors)
    assert compare(fingerprint_state_dict(flux.tensors), flux_other).verdict() == "no_match"
    # different families share no names or shapes worth a match
    assert compare(original, fingerprint_state_dict(flux.tensors)).verdict() == "no_match"


def _scrambled(tensors: dict) -> dict:
    """Rename every module to a meaningless name (an unknown trainer's format), keeping the weights."""
    out = {}
    for key, value in tensors.items():
        module, _, suffix = key.partition(".")
        out[f"lora_custom_{hashlib.sha1(module.encode()).hexdigest()[:12]}.{suffix}"] = value
    return out


def test_shape_fallback_when_names_do_not_align(sd15):
    original = fingerprint_state_dict(sd15.tensors)
    renamed = fingerprint_state_dict(_scrambled(sd15.tensors))
    assert not set(renamed.names) & set(original.names)
    sim = compare(renamed, original)
    assert sim.method == "shapes"
    assert sim.verdict() == "same_weights" and sim.layers_compared == len(original)
    assert sim.details["pairs_with_different_names"] == len(original)
    json.dumps(sim.details)
    merged = fingerprint_state_dict(_scrambled(merge(sd15, generate_lora("sd15", seed=35, rank=8)).tensors))
    assert compare(merged, original).verdict() == "derived"
    for seed in (36, 37):
        other = fingerprint_state_dict(_scrambled(generate_lora("sd15", seed=seed, rank=8).tensors))
        sim = compare(other, original)
        assert sim.method == "shapes" and sim.verdict() == "no_match", sim.details


@pytest.mark.slow  # about 13 s of CPU (dense LoHa/LoKr deltas): left out of `./dev test-fast`
def test_lycoris_files_survive_dtype_and_refactoring(tmp_path):
    for lf in (generate_lycoris("sd15", seed=50, algo="loha", rank=4), generate_lycoris("sd15", seed=51, algo="lokr")):
        original = file_fp(lf, tmp_path, "orig.safetensors")
        assert original.stats["kinds"] == {lf.info["kind"]: len(original)}
        for variant in (convert_dtype(lf, "bf16"), convert_dtype(lf, "fp32"), refactor(lf, 3), strip_metadata(lf)):
            assert compare(file_fp(variant, tmp_path), original).verdict() == "same_weights"


def test_serialisation_round_trip(sd15, flux):
    for lf in (sd15, flux):
        fp = fingerprint_state_dict(lf.tensors, lf.metadata)
        blob = fp.to_bytes()
        back = Fingerprint.from_bytes(blob)
        assert back == fp and back.to_bytes() == blob
        assert back.names == fp.names and back.family == fp.family and back.stats == fp.stats
        np.testing.assert_array_equal(back.sketches, fp.sketches)
        np.testing.assert_array_equal(back.vector, fp.vector)
        assert compare(back, fp).score == pytest.approx(1.0, abs=1e-6)
        assert len(blob) < 600 * len(fp) + 30_000
        layer = back.layers[back.names[0]]
        assert layer.shape == tuple(back.shapes[0]) and layer.sketch.shape == (back.k, back.k)


@pytest.mark.parametrize("mangle", [
    lambda b: b[:10], lambda b: b"XXXX" + b[4:], lambda b: b[:-2], lambda b: b + b"\0",
    lambda b: b[:4] + bytes([9]) + b[5:],
])
def test_malformed_blobs_are_rejected(sd15, mangle):
    blob = fingerprint_state_dict(sd15.tensors).to_bytes()
    with pytest.raises(MalformedFile, match="fingerprint blob"):
        Fingerprint.from_bytes(mangle(blob))


def test_file_vector_and_parameters(sd15):
    fp = fingerprint_state_dict(sd15.tensors)
    assert fp.vector.dtype == np.float32 and fp.vector.shape == (FILE_VECTOR_DIM,)
    assert abs(float(np.linalg.norm(fp.vector)) - 1.0) < 1e-5
    other_k = fingerprint_state_dict(sd15.tensors, k=8)
    with pytest.raises(IncompatibleFingerprints):
        compare(fp, other_k)


PROJECTION_320_OUT = "36ccb75b023393da"


def test_projection_matrices_are_frozen():
    # Stored fingerprints stay comparable only if these never change (BLAKE3-derived signs).
    r = projection(320, "out")
    assert r.shape == (320, 16) and set(np.unique(r * 4).tolist()) == {-1.0, 1.0}
    assert hashlib.sha256(np.sign(r).astype(np.int8).tobytes()).hexdigest()[:16] == PROJECTION_320_OUT
    assert not np.array_equal(projection(320, "in"), r)



def test_thresholds_are_overridable(sd15):
    sim = compare(fingerprint_state_dict(resize_half(sd15).tensors), fingerprint_state_dict(sd15.tensors))
    assert sim.verdict(Thresholds(same_weights=0.5, derived=0.2)) == "same_weights"
    assert sim.verdict({"names": Thresholds(same_weights=1.0, derived=0.999)}) == "no_match"
    with pytest.raises(InvalidInput):
        Thresholds(same_weights=0.2, derived=0.5)
