"""Fingerprints of genuinely trained Flux-layout LoRAs (issue 14).

The three files in tests/data/trained/flux/ are exactly as diffusers' Flux writer saved them
(``FluxPipeline.save_lora_weights(dir, transformer_lora_layers=get_peft_model_state_dict(transformer))``, as
diffusers' ``train_dreambooth_lora_flux.py`` saves; keys ``transformer.transformer_blocks.0.attn.to_q.lora_A.weight``,
``transformer.single_transformer_blocks.0.proj_mlp.lora_B.weight`` ...). They come from
``benchmarks/trained/build_flux.py --concepts 24 --near --retrain 24`` (a tiny ``FluxTransformer2DModel``, 2 double and
2 single blocks, rank-4 peft LoRAs with gaussian init, rectified-flow training), held-out concept 21:
``c21-shared-s0060`` is the final of the run trained with the seed every concept shares, ``c21-shared-s0040``
its checkpoint at 2/3, ``c21-near-s0060`` a near look-alike concept trained with the same seed — the correlated
pair whose output directions came nearest a checkpoint's in that corpus (out_shared 0.867).
"""

from __future__ import annotations

import pytest

from mirrorwatch.corpus.lorafile import LoraFile
from mirrorwatch.corpus.transforms import convert_dtype
from mirrorwatch.match.fingerprint import compare, fingerprint_file
from mirrorwatch.match.fingerprint.tensors import open_tensors
from trained_data import DATA

FLUX = DATA / "flux"
FILES = ("c21-shared-s0060", "c21-shared-s0040", "c21-near-s0060")


def _fp(name: str):
    return fingerprint_file(FLUX / f"{name}.safetensors")


@pytest.mark.parametrize("name", FILES)
def test_diffusers_flux_files_are_read_whole(name: str) -> None:
    with open_tensors(FLUX / f"{name}.safetensors") as st:
        keys = list(st)
    assert keys and all(k.startswith("transformer.") and k.endswith((".lora_A.weight", ".lora_B.weight")) for k in keys)
    fp = _fp(name)
    assert fp.stats["unknown_keys"] == 0 and fp.stats["ignored_keys"] == 0
    assert fp.stats["modules"] == len(keys) // 2 == 34
    assert all(n.startswith("transformer.") for n in fp.names)
    # double blocks (image and text streams, both feed-forwards) and single blocks (attention, proj_mlp, proj_out)
    for part in ("transformer_blocks_1_attn_add_q_proj", "transformer_blocks_0_ff_context_net_2",
                 "single_transformer_blocks_1_proj_mlp", "single_transformer_blocks_0_proj_out",
                 "single_transformer_blocks_0_attn_to_k"):
        assert f"transformer.{part}" in fp.names


def test_flux_checkpoint_is_derived_and_same_seed_near_lookalike_is_not(tmp_path) -> None:
    final, ckpt, near = (_fp(n) for n in FILES)
    assert compare(ckpt, final).relation() == "derived"
    rel = compare(near, final).relation()
    assert rel == "similar_training"
    with open_tensors(FLUX / "c21-shared-s0060.safetensors") as st:
        lf = LoraFile({k: st[k] for k in st}, dict(st.metadata or {}), "fp32", "flux", "peft", {})
    resaved = fingerprint_file(convert_dtype(lf, "fp16").write(tmp_path / "fp16.safetensors"))
    assert compare(resaved, final).relation() == "same_weights"


# -- the Flux layout's own output-side bound (LINEAGE_CALIBRATION["flux_layout"]). flux_fingerprints.json and
# flux_long_fingerprints.json hold fingerprints of the same writer's files (benchmarks/bench_trained.py --export-set
# flux / flux-long): runs of 60 and of 240 steps.
def _set_fp(item_id: str, name: str):
    from trained_data import fingerprint

    return fingerprint(item_id, name)


def test_flux_files_have_the_flux_layout() -> None:
    from mirrorwatch.match.fingerprint.lineage import layout
    from mirrorwatch.match.fingerprint.names import canonical_module_name

    fp = _fp("c21-shared-s0060")
    assert layout(fp.names) == "flux"
    assert compare(_fp("c21-shared-s0040"), fp).details["lineage"]["layout"] == "flux"
    # BFL/kohya keys (sd-scripts' Flux LoRAs: lora_unet_single_blocks_N_...) canonicalise to the same blocks
    bfl = [canonical_module_name("lora_unet_single_blocks_3_linear2.lora_down.weight"),
           canonical_module_name("lora_unet_double_blocks_0_img_attn_proj.lora_down.weight")]
    assert layout(bfl) == "flux"
    # double-stream blocks alone (SD3's MMDiT has only these) keep the default bound
    assert layout([n for n in fp.names if not n.startswith("transformer.single_")]) == "sd"


@pytest.mark.parametrize("run", ["c06-main", "c09-main", "c10-main"])
def test_flux_long_run_checkpoints_at_two_thirds_are_derived_with_the_layouts_bound(run: str) -> None:
    from dataclasses import replace

    from mirrorwatch.match.fingerprint.lineage import LINEAGE_THRESHOLDS

    # 240-step runs whose 2/3 checkpoint's output directions (0.915-0.918) lie under the SD1.5 bound: leads under
    # it, derived under the Flux layout's
    sim = compare(_set_fp(f"{run}-s0160", "flux_long_fingerprints.json"),
                  _set_fp(f"{run}-s0240", "flux_long_fingerprints.json"))
    sig = sim.details["lineage"]
    assert sig["layout"] == "flux"
    assert LINEAGE_THRESHOLDS.derived_out_shared_flux + 0.02 <= sig["out_shared"] < LINEAGE_THRESHOLDS.derived_out_shared
    assert sim.relation() == "derived" and any("Flux layout" in w for w in sim.details["relation_why"])
    sd_bound = replace(LINEAGE_THRESHOLDS, derived_out_shared_flux=LINEAGE_THRESHOLDS.derived_out_shared)
    assert sim.relation(sd_bound) == "similar_training"


def test_flux_near_lookalike_passing_every_other_test_stays_under_the_bound() -> None:
    from dataclasses import replace

    from mirrorwatch.match.fingerprint.lineage import LINEAGE_THRESHOLDS

    # c44 (calibration half): the same-seed near look-alike's final against its shared run's 2/3 checkpoint, the
    # correlated pair of both Flux corpora that passes every other test of the trajectory rule with the highest
    # output directions (0.866): it lies beyond the checkpoint, as a later checkpoint would
    sim = compare(_set_fp("c44-near-s0060", "flux_fingerprints.json"),
                  _set_fp("c44-shared-s0040", "flux_fingerprints.json"))
    sig = sim.details["lineage"]
    assert sig["layout"] == "flux" and sig["growth"] >= LINEAGE_THRESHOLDS.derived_growth
    assert sig["out_shared"] <= LINEAGE_THRESHOLDS.derived_out_shared_flux - 0.02
    assert sim.relation() == "similar_training" and sim.verdict() == "no_match"
    loose = replace(LINEAGE_THRESHOLDS, derived_out_shared_flux=LINEAGE_THRESHOLDS.far_out_shared)
    assert sim.relation(loose) == "derived"  # only the output side keeps it out
