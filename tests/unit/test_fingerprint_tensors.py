"""Reading tensors from untrusted safetensors files: dtypes, bfloat16, and hostile files."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from mirrorwatch.corpus import write_safetensors
from mirrorwatch.errors import MalformedFile
from mirrorwatch.match.fingerprint import (
    NothingToFingerprint,
    bf16_bits_to_float32,
    compare,
    fingerprint_file,
    fingerprint_state_dict,
    float32_to_bf16_bits,
)
from mirrorwatch.match.fingerprint.tensors import read_tensors

RNG = np.random.default_rng(11)


def lora(rank: int = 4, out: int = 64, inp: int = 48) -> dict[str, np.ndarray]:
    return {
        "lora_unet_mid_block_attentions_0_proj_in.lora_up.weight": RNG.standard_normal((out, rank)).astype(np.float32),
        "lora_unet_mid_block_attentions_0_proj_in.lora_down.weight": RNG.standard_normal((rank, inp)).astype(np.float32),
        "lora_unet_mid_block_attentions_0_proj_in.alpha": np.array(float(rank), dtype=np.float32),
        "lora_te_text_model_encoder_layers_0_mlp_fc1.lora_up.weight": RNG.standard_normal((out, rank)).astype(np.float32),
        "lora_te_text_model_encoder_layers_0_mlp_fc1.lora_down.weight": RNG.standard_normal((rank, inp)).astype(
            np.float32),
    }


def raw_file(path, header: dict, data: bytes) -> None:
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)


def test_bf16_decoding_is_exact():
    bits = np.array([0x3F80, 0xC000, 0x0000, 0x8000, 0x7F80, 0x3E20, 0x4049], dtype=np.uint16)
    np.testing.assert_array_equal(bf16_bits_to_float32(bits), np.array(
        [1.0, -2.0, 0.0, -0.0, np.inf, 0.15625, 3.140625], dtype=np.float32))


def test_bf16_encoding_rounds_to_nearest_even():
    x = np.array([1.0, 1.00390625, 1.01171875, -3.3, 65504.0, np.nan], dtype=np.float32)
    bits = float32_to_bf16_bits(x)
    back = bf16_bits_to_float32(bits)
    assert back[0] == 1.0
    assert back[1] == 1.0  # exactly half way between 1.0 and 1.0078125: ties to even
    assert back[2] == 1.015625  # half way between 1.0078125 and 1.015625: ties to even (up)
    assert abs(back[3] + 3.3) < 0.01 and back[4] == 65536.0 and np.isnan(back[5])


@pytest.mark.parametrize("dtype", ["fp32", "fp16", "bf16"])
def test_files_in_every_dtype_decode_to_the_rounded_values(tmp_path, dtype):
    tensors = lora()
    path = write_safetensors(tmp_path / "a.safetensors", tensors, {"ss_output_name": "x"}, dtype)
    back, meta = read_tensors(path)
    assert meta == {"ss_output_name": "x"}
    for name, value in tensors.items():
        if dtype == "fp32":
            expected = value
        elif dtype == "fp16":
            expected = value.astype(np.float16).astype(np.float32)
        else:
            expected = bf16_bits_to_float32(float32_to_bf16_bits(value))
        np.testing.assert_array_equal(back[name], expected)
        assert back[name].dtype == np.float32
    assert compare(fingerprint_file(path), fingerprint_state_dict(tensors)).score > 0.9999


def test_f64_tensors_are_read(tmp_path):
    tensors = lora()
    header, blobs, offset = {}, [], 0
    for name, value in tensors.items():
        data = value.astype("<f8").tobytes()
        header[name] = {"dtype": "F64", "shape": list(value.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    raw_file(tmp_path / "f64.safetensors", header, b"".join(blobs))
    fp = fingerprint_file(tmp_path / "f64.safetensors")
    assert compare(fp, fingerprint_state_dict(tensors)).score > 0.99999


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_tensors_are_rejected(tmp_path, bad):
    tensors = lora()
    key = "lora_unet_mid_block_attentions_0_proj_in.lora_down.weight"
    tensors[key][1, 2] = bad
    for dtype in ("fp32", "fp16", "bf16"):
        path = write_safetensors(tmp_path / f"bad-{dtype}.safetensors", tensors, None, dtype)
        with pytest.raises(MalformedFile, match="NaN or infinite"):
            fingerprint_file(path)


def test_zero_rank_is_rejected(tmp_path):
    tensors = {"lora_unet_a.lora_up.weight": np.zeros((8, 0), np.float32),
               "lora_unet_a.lora_down.weight": np.zeros((0, 8), np.float32)}
    path = write_safetensors(tmp_path / "zero.safetensors", tensors, None, "fp16")
    with pytest.raises(MalformedFile, match="zero rank"):
        fingerprint_file(path)


def test_absurd_shapes_are_rejected(tmp_path):
    header = {"lora_unet_a.lora_up.weight": {"dtype": "F16", "shape": [1, 1, 1, 2, 1], "data_offsets": [0, 4]},
              "lora_unet_a.lora_down.weight": {"dtype": "F16", "shape": [2, 1], "data_offsets": [4, 8]}}
    raw_file(tmp_path / "five-d.safetensors", header, b"\0" * 8)
    with pytest.raises(MalformedFile, match="dimensions"):
        fingerprint_file(tmp_path / "five-d.safetensors")
    wide = 2**21
    header = {"lora_unet_a.lora_up.weight": {"dtype": "F16", "shape": [1, 1], "data_offsets": [0, 2]},
              "lora_unet_a.lora_down.weight": {"dtype": "F16", "shape": [1, wide], "data_offsets": [2, 2 + 2 * wide]}}
    raw_file(tmp_path / "wide.safetensors", header, b"\0" * (2 + 2 * wide))
    with pytest.raises(MalformedFile, match="absurd"):
        fingerprint_file(tmp_path / "wide.safetensors")


def test_header_lying_about_offsets_is_rejected(tmp_path):
    data = np.ones(16, np.float32).tobytes()
    past_end = {"lora_unet_a.lora_up.weight": {"dtype": "F32", "shape": [4, 2], "data_offsets": [0, 32]},
                "lora_unet_a.lora_down.weight": {"dtype": "F32", "shape": [2, 4], "data_offsets": [32, 64]}}
    raw_file(tmp_path / "past.safetensors", past_end, data)  # only 64 bytes... of which 64 claimed: shorten
    (tmp_path / "past.safetensors").write_bytes((tmp_path / "past.safetensors").read_bytes()[:-8])
    with pytest.raises(MalformedFile, match="past the data section|past the end"):
        fingerprint_file(tmp_path / "past.safetensors")
    overlap = {"lora_unet_a.lora_up.weight": {"dtype": "F32", "shape": [4, 2], "data_offsets": [0, 32]},
               "lora_unet_a.lora_down.weight": {"dtype": "F32", "shape": [2, 4], "data_offsets": [16, 48]}}
    raw_file(tmp_path / "overlap.safetensors", overlap, data)
    with pytest.raises(MalformedFile, match="overlap"):
        fingerprint_file(tmp_path / "overlap.safetensors")
    wrong_size = {"lora_unet_a.lora_up.weight": {"dtype": "F32", "shape": [4, 2], "data_offsets": [0, 24]},
                  "lora_unet_a.lora_down.weight": {"dtype": "F32", "shape": [2, 4], "data_offsets": [32, 64]}}
    raw_file(tmp_path / "size.safetensors", wrong_size, data)
    with pytest.raises(MalformedFile, match="needs"):
        fingerprint_file(tmp_path / "size.safetensors")
    (tmp_path / "huge-header.safetensors").write_bytes(struct.pack("<Q", 2**40) + b"{}")
    with pytest.raises(MalformedFile):
        fingerprint_file(tmp_path / "huge-header.safetensors")


def test_non_float_lora_tensor_is_rejected(tmp_path):
    header = {"lora_unet_a.lora_up.weight": {"dtype": "I32", "shape": [4, 2], "data_offsets": [0, 32]},
              "lora_unet_a.lora_down.weight": {"dtype": "F32", "shape": [2, 4], "data_offsets": [32, 64]}}
    raw_file(tmp_path / "int.safetensors", header, b"\0" * 64)
    with pytest.raises(MalformedFile, match="not F64/F32/F16/BF16"):
        fingerprint_file(tmp_path / "int.safetensors")


def test_size_cap(tmp_path):
    path = write_safetensors(tmp_path / "a.safetensors", lora(), None, "fp16")
    with pytest.raises(MalformedFile, match="cap"):
        fingerprint_file(path, max_bytes=1000)
    assert len(fingerprint_file(path, max_bytes=10**6)) == 2


def test_not_a_lora_and_untrained_lora(tmp_path):
    checkpoint = write_safetensors(tmp_path / "ckpt.safetensors",
                                   {"model.diffusion_model.out.2.weight": np.ones((4, 4), np.float32)}, None, "fp16")
    with pytest.raises(NothingToFingerprint, match="no LoRA"):
        fingerprint_file(checkpoint)
    untrained = lora()
    for key in untrained:
        if key.endswith("lora_up.weight"):
            untrained[key] = np.zeros_like(untrained[key])
    with pytest.raises(NothingToFingerprint, match="zero"):
        fingerprint_state_dict(untrained)


def test_garbage_file(tmp_path):
    (tmp_path / "garbage.safetensors").write_bytes(b"\x80\x04\x95PICKLE" * 10)
    with pytest.raises(MalformedFile):
        fingerprint_file(tmp_path / "garbage.safetensors")
