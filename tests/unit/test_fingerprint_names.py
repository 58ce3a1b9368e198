"""Canonical module names: the same layer gets one name whatever the key format."""

from __future__ import annotations

import pytest

from mirrorwatch.corpus.architectures import ARCHITECTURES, FLUX, SD15, SDXL
from mirrorwatch.match.fingerprint.names import Split, canonical_module_name, guess_family, parse_key


@pytest.mark.parametrize("arch", [SD15, SDXL, FLUX], ids=lambda a: a.name)
def test_every_kohya_module_has_the_canonical_name_of_its_diffusers_twin(arch):
    # architectures.py derives kohya (sgm for SDXL, BFL for Flux) and diffusers names independently
    # of names.py; canonicalisation must bring both to the same name for every real layer.
    for spec in arch.modules:
        kohya = parse_key(spec.kohya + ".lora_down.weight")
        assert kohya is not None
        if spec.parts:
            diffusers = [canonical_module_name(p + ".lora_A.weight") for p, _rows in spec.parts]
            assert kohya.split is not None and list(kohya.split.parts) == diffusers
        else:
            assert kohya.split is None
            assert kohya.module == canonical_module_name(spec.diffusers + ".lora_A.weight")


def test_canonical_names_are_unique_per_architecture():
    for arch in ARCHITECTURES.values():
        names = []
        for spec in arch.modules:
            parsed = parse_key(spec.kohya + ".alpha")
            names += list(parsed.split.parts) if parsed.split else [parsed.module]
        assert len(names) == len(set(names)), arch.name


SDXL_CROSS_Q = "unet.down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_q"


@pytest.mark.parametrize("key", [
    "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_q.lora_down.weight",  # kohya SDXL (sgm)
    "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_q.lora_up.weight",  # kohya SD1 style
    "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_q.lora_A.weight",  # PEFT
    "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_q.lora_B.default.weight",  # adapter name
    "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn2.processor.to_q_lora.down.weight",  # legacy
    "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_q.lora.up.weight",  # LoRACompatible
    "base_model.model.down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_q.lora_A.weight",  # raw PEFT
    "diffusion_model.input_blocks.4.1.transformer_blocks.0.attn2.to_q.lora_down.weight",  # ComfyUI/sgm dotted
    "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_q.hada_w1_a",  # LoHa
    "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_q.lokr_w2_b",  # LoKr
    "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_q.alpha",
])
def test_one_layer_many_formats(key):
    assert canonical_module_name(key) == SDXL_CROSS_Q


@pytest.mark.parametrize(("key", "expected"), [
    ("unet.mid_block.attentions.0.transformer_blocks.0.attn1.processor.to_out_lora.up.weight",
     "unet.mid_block_attentions_0_transformer_blocks_0_attn1_to_out_0"),
    ("lora_unet_middle_block_1_transformer_blocks_0_attn1_to_out_0.lora_up.weight",
     "unet.mid_block_attentions_0_transformer_blocks_0_attn1_to_out_0"),
    ("lora_te_text_model_encoder_layers_3_self_attn_q_proj.lora_down.weight",
     "te1.text_model_encoder_layers_3_self_attn_q_proj"),
    ("lora_te1_text_model_encoder_layers_3_self_attn_q_proj.lora_down.weight",
     "te1.text_model_encoder_layers_3_self_attn_q_proj"),
    ("text_encoder.text_model.encoder.layers.3.self_attn.to_q_lora.down.weight",
     "te1.text_model_encoder_layers_3_self_attn_q_proj"),
    ("text_encoder.text_model.encoder.layers.3.self_attn.to_out_lora.up.weight",
     "te1.text_model_encoder_layers_3_self_attn_out_proj"),
    ("text_encoder_2.text_model.encoder.layers.3.mlp.fc1.lora_linear_layer.down.weight",
     "te2.text_model_encoder_layers_3_mlp_fc1"),
    ("lora_te2_text_model_encoder_layers_3_mlp_fc1.lora_down.weight", "te2.text_model_encoder_layers_3_mlp_fc1"),
    # sgm resnet internals, samplers and top-level layers (LoCon)
    ("lora_unet_input_blocks_1_0_in_layers_2.lora_down.weight", "unet.down_blocks_0_resnets_0_conv1"),
    ("lora_unet_input_blocks_5_0_emb_layers_1.lora_down.weight", "unet.down_blocks_1_resnets_1_time_emb_proj"),
    ("lora_unet_input_blocks_4_0_skip_connection.lora_down.weight", "unet.down_blocks_1_resnets_0_conv_shortcut"),
    ("lora_unet_input_blocks_3_0_op.lora_down.weight", "unet.down_blocks_0_downsamplers_0_conv"),
    ("lora_unet_middle_block_2_out_layers_3.lora_down.weight", "unet.mid_block_resnets_1_conv2"),
    ("lora_unet_output_blocks_8_0_skip_connection.lora_down.weight", "unet.up_blocks_2_resnets_2_conv_shortcut"),
    ("lora_unet_output_blocks_2_1_conv.lora_down.weight", "unet.up_blocks_0_upsamplers_0_conv"),  # SD1.5
    ("lora_unet_output_blocks_2_2_conv.lora_down.weight", "unet.up_blocks_0_upsamplers_0_conv"),  # SDXL
    ("lora_unet_output_blocks_5_1_proj_in.lora_down.weight", "unet.up_blocks_1_attentions_2_proj_in"),
    ("lora_unet_time_embed_0.lora_down.weight", "unet.time_embedding_linear_1"),
    ("lora_unet_label_emb_0_2.lora_down.weight", "unet.add_embedding_linear_2"),
    # Flux non-fused layers: BFL/kohya vs diffusers
    ("lora_unet_double_blocks_3_img_attn_proj.lora_down.weight", "transformer.transformer_blocks_3_attn_to_out_0"),
    ("transformer.transformer_blocks.3.attn.to_out.0.lora_A.weight", "transformer.transformer_blocks_3_attn_to_out_0"),
    ("lora_unet_double_blocks_3_txt_mlp_0.lora_up.weight", "transformer.transformer_blocks_3_ff_context_net_0_proj"),
    ("lora_unet_double_blocks_3_txt_mod_lin.alpha", "transformer.transformer_blocks_3_norm1_context_linear"),
    ("lora_unet_single_blocks_20_linear2.lora_down.weight", "transformer.single_transformer_blocks_20_proj_out"),
    ("lora_transformer_single_transformer_blocks_20_proj_out.lora_down.weight",
     "transformer.single_transformer_blocks_20_proj_out"),
    ("diffusion_model.double_blocks.3.img_mlp.2.lora_down.weight", "transformer.transformer_blocks_3_ff_net_2"),
    ("lora_unet_img_in.lora_down.weight", "transformer.x_embedder"),
    ("lora_unet_guidance_in_out_layer.lora_down.weight", "transformer.time_text_embed_guidance_embedder_linear_2"),
])
def test_known_mappings(key, expected):
    assert canonical_module_name(key) == expected


def test_flux_fused_qkv_and_linear1_split_into_the_diffusers_layers():
    qkv = parse_key("lora_unet_double_blocks_0_img_attn_qkv.lora_up.weight")
    assert qkv.split == Split(("transformer.transformer_blocks_0_attn_to_q", "transformer.transformer_blocks_0_attn_to_k",
                               "transformer.transformer_blocks_0_attn_to_v"))
    assert qkv.split.row_ranges(9216, 3072) == [(0, 3072), (3072, 6144), (6144, 9216)]
    txt = parse_key("lora_unet_double_blocks_0_txt_attn_qkv.lora_down.weight")
    assert txt.split.parts[1] == "transformer.transformer_blocks_0_attn_add_k_proj"
    lin1 = parse_key("lora_unet_single_blocks_5_linear1.lora_down.weight")
    assert lin1.split.parts == tuple(f"transformer.single_transformer_blocks_5_{p}"
                                     for p in ("attn_to_q", "attn_to_k", "attn_to_v", "proj_mlp"))
    assert lin1.split.row_ranges(21504, 3072) == [(0, 3072), (3072, 6144), (6144, 9216), (9216, 21504)]
    diffusers_keys = ["transformer.single_transformer_blocks.5.attn.to_q", "transformer.single_transformer_blocks.5.attn.to_k",
                      "transformer.single_transformer_blocks.5.attn.to_v", "transformer.single_transformer_blocks.5.proj_mlp"]
    for part, key in zip(lin1.split.parts, diffusers_keys, strict=True):
        assert canonical_module_name(key + ".lora_B.weight") == part
    assert parse_key("lora_unet_final_layer_adaLN_modulation_1.lora_up.weight").swap_halves


def test_ignored_and_unknown_keys():
    assert parse_key("lora_unet_x.dora_scale").role == "ignored"
    assert parse_key("unet.foo.lora_magnitude_vector.default.weight").role == "ignored"
    assert parse_key("model.diffusion_model.input_blocks.0.0.weight") is None  # a checkpoint weight
    assert parse_key("__metadata__") is None


def test_guess_family_from_structure_then_metadata():
    assert guess_family({"unet.down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k": (320, 768)}) == "sd1"
    assert guess_family({SDXL_CROSS_Q.replace("to_q", "to_k"): (640, 2048)}) == "sdxl"
    assert guess_family({"transformer.transformer_blocks_0_attn_to_q": (3072, 3072)}) == "flux"
    assert guess_family({"te2.text_model_encoder_layers_0_self_attn_q_proj": (1280, 1280)}) == "sdxl"
    te_only = {"te1.text_model_encoder_layers_0_self_attn_q_proj": (768, 768)}
    assert guess_family(te_only) == "unknown"
    assert guess_family(te_only, {"ss_base_model_version": "sd_v1"}) == "sd1"
    assert guess_family(te_only, {"modelspec.architecture": "flux-1-dev/lora"}) == "flux"
