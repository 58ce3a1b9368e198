"""Issue 8, defect 1: LoRA files as diffusers' kohya conversion writes them (int64 alphas) are
fingerprinted, and match the diffusers file they were converted from.

Writer: huggingface/diffusers src/diffusers/utils/state_dict_utils.py `convert_state_dict_to_kohya`
(alpha = `torch.tensor(len(weight))`: int64, 0-dim), reached from
examples/dreambooth/train_dreambooth_lora_sdxl.py --output_kohya_format (see tests/support/realwriters.py).
"""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from safetensors.numpy import save_file

from mirrorwatch.errors import MalformedFile
from mirrorwatch.formats.safetensors import read_header
from mirrorwatch.match.fingerprint import compare, fingerprint_file, fingerprint_state_dict
from realwriters import CLIP_L_LAYERS, diffusers_lora_file, kohya_from_diffusers, load, peft_unet_state_dict


@pytest.fixture(scope="module")
def diffusers_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("real") / "pytorch_lora_weights.safetensors"
    return diffusers_lora_file(path, peft_unet_state_dict(rank=4))


def test_the_kohya_file_has_the_writers_exact_key_set_and_int64_alphas(diffusers_file, tmp_path):
    kohya = tmp_path / "pytorch_lora_weights_kohya.safetensors"
    save_file(kohya_from_diffusers(load(diffusers_file)), str(kohya))
    header = read_header(kohya)
    name = "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_out_0"
    assert {f"{name}.lora_down.weight", f"{name}.lora_up.weight", f"{name}.alpha"} <= set(header.tensors)
    alpha = header.tensors[f"{name}.alpha"]
    assert (alpha.dtype, alpha.shape) == ("I64", ())
    assert len(header.tensors) == 3 * 8 and header.metadata == {}


def test_int64_alpha_kohya_file_fingerprints_like_the_original(diffusers_file, tmp_path):
    kohya = tmp_path / "pytorch_lora_weights_kohya.safetensors"
    save_file(kohya_from_diffusers(load(diffusers_file)), str(kohya))
    original, converted = fingerprint_file(diffusers_file), fingerprint_file(kohya)
    sim = compare(original, converted)
    assert sim.method == "names" and sim.layers_compared == 8
    assert sim.score >= 0.999
    assert sim.verdict() == "same_weights"
    assert float(np.dot(original.vector, converted.vector)) >= 0.999


@pytest.mark.parametrize("dtype", ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"])
@pytest.mark.parametrize("shape", [(), (1,)])
def test_integer_alphas_of_any_width_and_one_element_vectors(diffusers_file, tmp_path, dtype, shape):
    kohya = tmp_path / "k.safetensors"
    save_file(kohya_from_diffusers(load(diffusers_file), alpha_dtype=dtype, alpha_shape=shape), str(kohya))
    assert compare(fingerprint_file(diffusers_file), fingerprint_file(kohya)).score >= 0.999


def test_integer_alpha_changes_the_scale_like_a_float_alpha(diffusers_file, tmp_path):
    """An int alpha of 2 with rank 4 halves ΔW, exactly as the float 2.0 does (the in-memory path too)."""
    sd = kohya_from_diffusers(load(diffusers_file))
    as_float = {k: (np.array(2.0, np.float32) if k.endswith(".alpha") else v) for k, v in sd.items()}
    as_int = {k: (np.array(2, np.int64) if k.endswith(".alpha") else v) for k, v in sd.items()}
    a, b = fingerprint_state_dict(as_float), fingerprint_state_dict(as_int)
    np.testing.assert_allclose(a.norms, b.norms, rtol=1e-6)
    full = fingerprint_state_dict(sd)  # alpha = rank: scale 1
    np.testing.assert_allclose(a.norms * 2, full.norms, rtol=1e-5)


def test_f64_weights_with_int_alpha(diffusers_file, tmp_path):
    sd = {k: (v.astype(np.float64) if v.dtype == np.float32 else v)
          for k, v in kohya_from_diffusers(load(diffusers_file)).items()}
    path = tmp_path / "f64.safetensors"
    save_file(sd, str(path))
    assert read_header(path).dtype_counts.get("F64") == 16
    assert compare(fingerprint_file(diffusers_file), fingerprint_file(path)).score >= 0.999


def test_with_the_text_encoder_trained_the_unet_keys_keep_their_diffusers_suffix(tmp_path):
    """With a text encoder in the file, diffusers converts only its keys to PEFT: the unet's come out as
    "lora_unet_..._to_q_lora.down.weight" with no alpha, the text encoder's as kohya keys with int64
    alphas. Both halves are read, and the file still matches its original."""
    original = diffusers_lora_file(tmp_path / "pytorch_lora_weights.safetensors", peft_unet_state_dict(rank=4),
                                   peft_unet_state_dict(rank=4, seed=9, layers=CLIP_L_LAYERS))
    kohya = tmp_path / "pytorch_lora_weights_kohya.safetensors"
    save_file(kohya_from_diffusers(load(original)), str(kohya))
    keys = set(read_header(kohya).tensors)
    assert "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q_lora.down.weight" in keys
    assert read_header(kohya).tensors["lora_te1_text_model_encoder_layers_0_self_attn_q_proj.alpha"].dtype == "I64"
    sim = compare(fingerprint_file(original), fingerprint_file(kohya))
    assert sim.layers_compared == 16 and sim.score >= 0.999


def _raw(path, header: dict, data: bytes) -> None:
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)


def test_what_no_writer_produces_is_still_refused(tmp_path):
    up = np.ones((4, 2), np.float32).tobytes()
    down = np.ones((2, 4), np.float32).tobytes()
    base = {"lora_unet_a.lora_up.weight": {"dtype": "F32", "shape": [4, 2], "data_offsets": [0, 32]},
            "lora_unet_a.lora_down.weight": {"dtype": "F32", "shape": [2, 4], "data_offsets": [32, 64]}}
    cases = {
        "bool": ({"dtype": "BOOL", "shape": [], "data_offsets": [64, 65]}, b"\x01", "not a number"),
        "two values": ({"dtype": "I64", "shape": [2], "data_offsets": [64, 80]}, b"\x02" + b"\0" * 15,
                       "2 values"),
        "complex": ({"dtype": "C64", "shape": [], "data_offsets": [64, 72]}, b"\0" * 8, "not a number"),
    }
    for label, (info, data, reason) in cases.items():
        path = tmp_path / f"{label}.safetensors"
        _raw(path, {**base, "lora_unet_a.alpha": info}, up + down + data)
        with pytest.raises(MalformedFile, match=reason):
            fingerprint_file(path)
    # integer factors are not a LoRA any writer saves: refused as before
    _raw(tmp_path / "int.safetensors", {**base, "lora_unet_a.lora_up.weight": {
        "dtype": "I32", "shape": [4, 2], "data_offsets": [0, 32]}}, up + down)
    with pytest.raises(MalformedFile, match="not F64/F32/F16/BF16"):
        fingerprint_file(tmp_path / "int.safetensors")
