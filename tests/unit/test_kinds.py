"""Kind guess from header keys, shapes and metadata, on synthetic headers of each kind."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import save_file

from mirrorwatch.formats.kinds import KindGuess, guess_kind
from mirrorwatch.formats.safetensors import DTYPE_BITS, parse_header, read_header


def header(shapes: dict[str, tuple[int, ...]], metadata: dict[str, str] | None = None, dtype: str = "F16"):
    """A parsed header with the given tensor shapes (no data is needed to guess a kind)."""
    raw: dict = {}
    if metadata is not None:
        raw["__metadata__"] = metadata
    offset = 0
    for name, shape in shapes.items():
        n = int(np.prod(shape, dtype=np.int64)) * DTYPE_BITS[dtype] // 8
        raw[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    text = json.dumps(raw).encode()
    return parse_header(text, header_len=len(text), file_size=None)


def kohya_pair(module: str, rank: int, out_dim: int, in_dim: int) -> dict[str, tuple[int, ...]]:
    return {
        f"{module}.lora_down.weight": (rank, in_dim),
        f"{module}.lora_up.weight": (out_dim, rank),
        f"{module}.alpha": (),
    }


SD1_ATTN2 = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k"
SD1_TE = "lora_te_text_model_encoder_layers_0_self_attn_q_proj"


def test_kohya_sd1_lora():
    guess = guess_kind(header(kohya_pair(SD1_ATTN2, 8, 320, 768) | kohya_pair(SD1_TE, 8, 768, 768)))
    assert (guess.family, guess.variant, guess.base) == ("lora", None, "SD1")
    assert any("768" in r for r in guess.reasons)
    assert isinstance(guess, KindGuess)
    assert guess.to_dict()["reasons"] == list(guess.reasons)


def test_kohya_sd2_lora_by_width():
    guess = guess_kind(header(kohya_pair(SD1_ATTN2, 8, 320, 1024)))
    assert (guess.family, guess.base) == ("lora", "SD2")


def test_kohya_text_encoder_only_lora():
    assert guess_kind(header(kohya_pair(SD1_TE, 4, 768, 768))).base == "SD1"


def test_kohya_sdxl_lora_two_text_encoders():
    shapes = kohya_pair("lora_te1_text_model_encoder_layers_0_self_attn_q_proj", 4, 768, 768)
    shapes |= kohya_pair("lora_te2_text_model_encoder_layers_0_self_attn_q_proj", 4, 1280, 1280)
    guess = guess_kind(header(shapes))
    assert (guess.family, guess.base) == ("lora", "SDXL")
    assert any("lora_te1_" in r for r in guess.reasons)


def test_sdxl_unet_only_lora_by_cross_attention_width():
    module = "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k"
    assert guess_kind(header(kohya_pair(module, 16, 640, 2048))).base == "SDXL"


def test_kohya_flux_lora():
    guess = guess_kind(header(kohya_pair("lora_unet_double_blocks_0_img_attn_qkv", 16, 9216, 3072)))
    assert (guess.family, guess.base) == ("lora", "Flux")


def test_peft_flux_lora():
    shapes = {
        "transformer.single_transformer_blocks.0.attn.to_k.lora_A.weight": (16, 3072),
        "transformer.single_transformer_blocks.0.attn.to_k.lora_B.weight": (3072, 16),
    }
    guess = guess_kind(header(shapes))
    assert (guess.family, guess.base) == ("lora", "Flux")
    assert any("PEFT" in r for r in guess.reasons)


def test_peft_sdxl_unet_lora():
    shapes = {
        "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.lora_A.weight": (8, 2048),
        "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.lora_B.weight": (640, 8),
    }
    assert (guess_kind(header(shapes)).family, guess_kind(header(shapes)).base) == ("lora", "SDXL")


def test_old_diffusers_lora():
    shapes = {
        "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.processor.to_k_lora.down.weight": (
            4,
            768,
        ),
        "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.processor.to_k_lora.up.weight": (320, 4),
        "text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora_linear_layer.down.weight": (4, 768),
    }
    guess = guess_kind(header(shapes))
    assert guess.family == "lora"


def test_loha():
    base = SD1_ATTN2
    shapes = {
        f"{base}.hada_w1_a": (320, 8),
        f"{base}.hada_w1_b": (8, 768),
        f"{base}.hada_w2_a": (320, 8),
        f"{base}.hada_w2_b": (8, 768),
        f"{base}.alpha": (),
    }
    guess = guess_kind(header(shapes))
    assert (guess.family, guess.variant, guess.base) == ("lycoris", "LoHa", "SD1")


def test_lokr():
    shapes = {
        "lora_unet_input_blocks_4_1_proj_in.lokr_w1": (8, 8),
        "lora_unet_input_blocks_4_1_proj_in.lokr_w2": (80, 80),
        "lora_te1_text_model_encoder_layers_0_mlp_fc1.lokr_w1": (4, 4),
    }
    guess = guess_kind(header(shapes))
    assert (guess.family, guess.variant, guess.base) == ("lycoris", "LoKr", "SDXL")


def test_locon_from_conv_layers():
    shapes = kohya_pair(SD1_ATTN2, 8, 320, 768)
    shapes["lora_unet_down_blocks_0_resnets_0_conv1.lora_down.weight"] = (8, 320, 3, 3)
    shapes["lora_unet_down_blocks_0_resnets_0_conv1.lora_up.weight"] = (320, 8, 1, 1)
    guess = guess_kind(header(shapes))
    assert (guess.family, guess.variant, guess.base) == ("lycoris", "LoCon", "SD1")


def test_one_by_one_conv_is_still_plain_lora():
    shapes = kohya_pair(SD1_ATTN2, 8, 320, 768)
    shapes["lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight"] = (8, 320, 1, 1)
    assert guess_kind(header(shapes)).family == "lora"


def test_lycoris_algorithm_from_kohya_metadata():
    metadata = {"ss_network_module": "lycoris.kohya", "ss_network_args": json.dumps({"algo": "locon"})}
    guess = guess_kind(header(kohya_pair(SD1_ATTN2, 8, 320, 768), metadata))
    assert (guess.family, guess.variant) == ("lycoris", "LoCon")
    metadata = {"ss_network_module": "networks.lora", "ss_network_args": json.dumps({"conv_dim": 4})}
    assert guess_kind(header(kohya_pair(SD1_ATTN2, 8, 320, 768), metadata)).family == "lora"


def test_metadata_base_wins_and_disagreement_is_reported():
    metadata = {"ss_base_model_version": "sdxl_base_v1-0"}
    guess = guess_kind(header(kohya_pair(SD1_ATTN2, 8, 320, 768), metadata))
    assert guess.base == "SDXL"
    assert any("ss_base_model_version" in r for r in guess.reasons)
    assert any("768" in r and "metadata says SDXL" in r for r in guess.reasons)


@pytest.mark.parametrize(
    ("arch", "base"),
    [
        ("stable-diffusion-v1/lora", "SD1"),
        ("stable-diffusion-v2-768-v/lora", "SD2"),
        ("stable-diffusion-xl-v1-base/lora", "SDXL"),
        ("flux-1-dev/lora", "Flux"),
        ("stable-diffusion-v3-medium/lora", "SD3"),
    ],
)
def test_modelspec_architecture(arch, base):
    guess = guess_kind(header({"x.lora_down.weight": (4, 10)}, {"modelspec.architecture": arch}))
    assert guess.base == base


def test_modelspec_suffix_names_family_when_keys_do_not():
    guess = guess_kind(header({"mystery": (4, 4)}, {"modelspec.architecture": "stable-diffusion-v1/lora"}))
    assert (guess.family, guess.base) == ("lora", "SD1")


@pytest.mark.parametrize(
    ("version", "base"), [("sd_v1", "SD1"), ("sd_v2", "SD2"), ("flux1", "Flux"), ("sd3", "SD3")]
)
def test_kohya_base_model_version(version, base):
    guess = guess_kind(header({"x.lora_down.weight": (4, 10)}, {"ss_base_model_version": version}))
    assert guess.base == base


def test_sd1_checkpoint():
    shapes = {
        "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (320, 768),
        "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_q.weight": (320, 320),
        "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight": (49408, 768),
        "first_stage_model.decoder.conv_in.weight": (512, 4, 3, 3),
    }
    guess = guess_kind(header(shapes))
    assert (guess.family, guess.variant, guess.base) == ("checkpoint", None, "SD1")


def test_sdxl_checkpoint():
    shapes = {
        "model.diffusion_model.input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight": (640, 2048),
        "conditioner.embedders.1.model.ln_final.weight": (1280,),
    }
    assert (guess_kind(header(shapes)).family, guess_kind(header(shapes)).base) == ("checkpoint", "SDXL")


def test_flux_checkpoint():
    shapes = {
        "double_blocks.0.img_attn.qkv.weight": (9216, 3072),
        "single_blocks.0.linear1.weight": (21504, 3072),
    }
    guess = guess_kind(header(shapes))
    assert (guess.family, guess.base) == ("checkpoint", "Flux")


def test_sd1_embedding():
    guess = guess_kind(header({"emb_params": (4, 768)}))
    assert (guess.family, guess.base) == ("embedding", "SD1")


def test_sdxl_embedding():
    guess = guess_kind(header({"clip_l": (2, 768), "clip_g": (2, 1280)}))
    assert (guess.family, guess.base) == ("embedding", "SDXL")


def test_unknown():
    guess = guess_kind(header({"weights.0": (10, 10), "bias": (10,)}))
    assert (guess.family, guess.variant, guess.base) == ("unknown", None, "unknown")
    assert guess_kind(header({})).family == "unknown"


def test_vae_is_unknown_with_reason():
    guess = guess_kind(
        header({"encoder.down.0.block.0.conv1.weight": (128, 128, 3, 3), "decoder.up.0.x": (1,)})
    )
    assert guess.family == "unknown"
    assert any("VAE" in r for r in guess.reasons)


def test_guess_from_a_real_file(tmp_path):
    path = tmp_path / "lora.safetensors"
    tensors = {
        f"{SD1_ATTN2}.lora_down.weight": np.zeros((4, 768), dtype=np.float16),
        f"{SD1_ATTN2}.lora_up.weight": np.zeros((320, 4), dtype=np.float16),
        f"{SD1_ATTN2}.alpha": np.array(4.0, dtype=np.float16),
    }
    save_file(tensors, str(path), metadata={"ss_network_module": "networks.lora"})
    guess = guess_kind(read_header(path))
    assert (guess.family, guess.base) == ("lora", "SD1")
