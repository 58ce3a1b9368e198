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
