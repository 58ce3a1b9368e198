"""Grouping state dicts into modules and their ΔW: LoRA, LoCon (incl. Tucker), LoHa, LoKr, fused Flux."""

from __future__ import annotations

import numpy as np
import pytest

from mirrorwatch.errors import MalformedFile
from mirrorwatch.match.fingerprint import fingerprint_state_dict
from mirrorwatch.match.fingerprint.modules import collect_modules

RNG = np.random.default_rng(7)


def rand(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def only(tensors: dict) -> object:
    modules, _stats = collect_modules(tensors)
    assert len(modules) == 1
    return next(iter(modules.values()))


def test_lora_delta_uses_alpha_over_rank_and_alpha_defaults_to_rank():
    up, down = rand(64, 4), rand(4, 32)
    m = only({"lora_unet_x_to_q.lora_up.weight": up, "lora_unet_x_to_q.lora_down.weight": down,
              "lora_unet_x_to_q.alpha": np.array(2.0, dtype=np.float32)})
    assert (m.kind, m.shape, m.rank, m.scale) == ("lora", (64, 32), 4, 0.5)
    np.testing.assert_allclose(m.delta(), 0.5 * up @ down, rtol=1e-5)
    m = only({"lora_unet_x_to_q.lora_up.weight": up, "lora_unet_x_to_q.lora_down.weight": down})
    assert m.alpha == 4 and m.scale == 1.0


def test_float16_and_float64_inputs_are_accepted():
    up, down = rand(16, 2), rand(2, 8)
    a = only({"unet.a.lora_B.weight": up.astype(np.float16), "unet.a.lora_A.weight": down.astype(np.float64)})
    np.testing.assert_allclose(a.delta(), up.astype(np.float16).astype(np.float32) @ down, rtol=1e-5)


def test_locon_conv_is_flattened_in_pytorch_order():
    up, down = rand(8, 3, 1, 1), rand(3, 5, 3, 3)
    m = only({"lora_unet_down_blocks_0_resnets_0_conv1.lora_up.weight": up,
              "lora_unet_down_blocks_0_resnets_0_conv1.lora_down.weight": down})
    assert m.shape == (8, 45) and m.kernel == (3, 3)
    conv = np.einsum("or,rikl->oikl", up[:, :, 0, 0], down)  # the composed conv weight
    np.testing.assert_allclose(m.delta(), conv.reshape(8, 45), rtol=1e-5)


def test_one_by_one_conv_and_linear_give_the_same_layer():
    up, down = rand(320, 4), rand(4, 320)
    conv = only({"lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight": up[:, :, None, None],
                 "lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": down[:, :, None, None]})
    linear = only({"unet.down_blocks.0.attentions.0.proj_in.lora_B.weight": up,
                   "unet.down_blocks.0.attentions.0.proj_in.lora_A.weight": down})
    assert conv.name == linear.name and conv.shape == linear.shape == (320, 320)
    np.testing.assert_allclose(conv.delta(), linear.delta(), rtol=1e-6)


def test_locon_tucker_core_matches_lycoris_rebuild():
    up, mid, down = rand(6, 3, 1, 1), rand(3, 2, 3, 3), rand(2, 4, 1, 1)
    m = only({"lora_unet_c.lora_up.weight": up, "lora_unet_c.lora_mid.weight": mid,
              "lora_unet_c.lora_down.weight": down, "lora_unet_c.alpha": np.array(3.0, dtype=np.float32)})
    # LyCORIS: rebuild = einsum('i j k l, j r, i p -> p r k l', t, down, up)
    expected = np.einsum("ijkl,jr,ip->prkl", mid, down[:, :, 0, 0], up[:, :, 0, 0].T)
    assert m.shape == (6, 36)
    np.testing.assert_allclose(m.delta(), (3.0 / 3) * expected.reshape(6, 36), rtol=1e-4, atol=1e-5)


def test_loha_delta_is_hadamard_of_two_products():
    w1a, w1b, w2a, w2b = rand(12, 4), rand(4, 10), rand(12, 4), rand(4, 10)
    m = only({"lora_unet_l.hada_w1_a": w1a, "lora_unet_l.hada_w1_b": w1b, "lora_unet_l.hada_w2_a": w2a,
              "lora_unet_l.hada_w2_b": w2b, "lora_unet_l.alpha": np.array(2.0, dtype=np.float32)})
    assert (m.kind, m.shape, m.rank) == ("loha", (12, 10), 4)
    np.testing.assert_allclose(m.delta(), 0.5 * (w1a @ w1b) * (w2a @ w2b), rtol=1e-4)


def test_loha_tucker():
    t1, t2 = rand(2, 2, 3, 3), rand(2, 2, 3, 3)
    w1a, w1b, w2a, w2b = rand(2, 5), rand(2, 4), rand(2, 5), rand(2, 4)  # LyCORIS tucker: (r, out), (r, in)
    m = only({"lora_unet_l.hada_t1": t1, "lora_unet_l.hada_t2": t2, "lora_unet_l.hada_w1_a": w1a,
              "lora_unet_l.hada_w1_b": w1b, "lora_unet_l.hada_w2_a": w2a, "lora_unet_l.hada_w2_b": w2b})
    r1 = np.einsum("ijkl,jr,ip->prkl", t1, w1b, w1a)
    r2 = np.einsum("ijkl,jr,ip->prkl", t2, w2b, w2a)
    np.testing.assert_allclose(m.delta(), (r1 * r2).reshape(5, 36), rtol=1e-4, atol=1e-5)


def test_lokr_delta_is_kronecker_product():
    w1, w2a, w2b = rand(4, 2), rand(8, 3), rand(3, 5)
    m = only({"lora_unet_k.lokr_w1": w1, "lora_unet_k.lokr_w2_a": w2a, "lora_unet_k.lokr_w2_b": w2b,
              "lora_unet_k.alpha": np.array(1.5, dtype=np.float32)})
    assert (m.kind, m.shape) == ("lokr", (32, 10))
    np.testing.assert_allclose(m.delta(), 0.5 * np.kron(w1, w2a @ w2b), rtol=1e-4)
    # both factors full: LyCORIS applies no alpha/rank scale
    full = only({"lora_unet_k.lokr_w1": w1, "lora_unet_k.lokr_w2": w2a @ w2b,
                 "lora_unet_k.alpha": np.array(99.0, dtype=np.float32)})
    np.testing.assert_allclose(full.delta(), np.kron(w1, w2a @ w2b), rtol=1e-4)


def test_lokr_conv_flattening_matches_the_4d_kronecker():
    w1, w2 = rand(2, 3), rand(4, 5, 3, 3)
    m = only({"lora_unet_k.lokr_w1": w1, "lora_unet_k.lokr_w2": w2})
    full = np.kron(w1[:, :, None, None], w2)  # torch.kron semantics: (8, 15, 3, 3)
    np.testing.assert_allclose(m.delta(), full.reshape(8, 15 * 9), rtol=1e-5)


def test_flux_fused_qkv_splits_into_parts_sharing_the_down():
    h, r = 12, 3
    up, down = rand(3 * h, r), rand(r, h)
    fused, stats = collect_modules({"lora_unet_double_blocks_0_img_attn_qkv.lora_up.weight": up,
                                    "lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight": down})
    assert stats.split_modules == 1
    split, _ = collect_modules({f"transformer.transformer_blocks.0.attn.to_{p}.lora_B.weight": up[i * h:(i + 1) * h]
                                for i, p in enumerate("qkv")} |
                               {f"transformer.transformer_blocks.0.attn.to_{p}.lora_A.weight": down for p in "qkv"})
    assert sorted(fused) == sorted(split) == [f"transformer.transformer_blocks_0_attn_to_{p}" for p in "kqv"]
    for name in fused:
        np.testing.assert_allclose(fused[name].delta(), split[name].delta(), rtol=1e-6)


def test_flux_linear1_split_uses_hidden_size_then_mlp():
    h, mlp, r = 8, 32, 2
    up, down = rand(3 * h + mlp, r), rand(r, h)
    mods, _ = collect_modules({"lora_unet_single_blocks_1_linear1.lora_up.weight": up,
                               "lora_unet_single_blocks_1_linear1.lora_down.weight": down})
    assert mods["transformer.single_transformer_blocks_1_proj_mlp"].shape == (mlp, h)
    np.testing.assert_allclose(mods["transformer.single_transformer_blocks_1_attn_to_v"].delta(),
                               up[2 * h:3 * h] @ down, rtol=1e-6)


def test_flux_final_layer_rows_are_swapped_to_diffusers_order():
    up, down = rand(8, 2), rand(2, 4)
    bfl = only({"lora_unet_final_layer_adaLN_modulation_1.lora_up.weight": up,
                "lora_unet_final_layer_adaLN_modulation_1.lora_down.weight": down})
    diffusers = only({"transformer.norm_out.linear.lora_B.weight": np.concatenate([up[4:], up[:4]]),
                      "transformer.norm_out.linear.lora_A.weight": down})
    assert bfl.name == diffusers.name == "transformer.norm_out_linear"
    np.testing.assert_allclose(bfl.delta(), diffusers.delta(), rtol=1e-6)


def test_ignored_and_unknown_keys_are_counted_not_fatal():
    tensors = {"lora_unet_a.lora_up.weight": rand(4, 2), "lora_unet_a.lora_down.weight": rand(2, 4),
               "lora_unet_a.dora_scale": rand(1, 4), "model.some.weight": rand(3, 3)}
    modules, stats = collect_modules(tensors)
    assert list(modules) == ["unet.a"] and stats.ignored_keys == 1 and stats.unknown_keys == 1


@pytest.mark.parametrize(("tensors", "reason"), [
    ({"lora_unet_a.lora_up.weight": rand(4, 2)}, "'down' is missing"),
    ({"lora_unet_a.lora_up.weight": rand(4, 2), "lora_unet_a.lora_down.weight": rand(3, 4)}, "ranks disagree"),
    ({"lora_unet_a.lora_up.weight": np.zeros((4, 0), np.float32),
      "lora_unet_a.lora_down.weight": np.zeros((0, 4), np.float32)}, "zero rank"),
    ({"lora_unet_a.lora_up.weight": rand(4, 2), "lora_unet_a.lora_down.weight": rand(2, 4, 2, 2, 2)}, "2-D or 4-D"),
    ({"lora_unet_a.lora_up.weight": rand(4, 2), "lora_unet_a.hada_w1_a": rand(4, 2)}, "mixes"),
    ({"lora_unet_a.lora_up.weight": rand(4, 2), "lora_unet_a.lora_down.weight": np.full((2, 4), np.nan, np.float32)},
     "NaN"),
    ({"lora_unet_a.lora_up.weight": rand(4, 2), "lora_unet_a.lora_down.weight": rand(2, 4),
      "lora_unet_a.alpha": np.array([1.0, 2.0], np.float32)}, "alpha has 2 values"),
    ({"lora_unet_a.lora_up.weight": rand(4, 2), "lora_unet_a.lora_down.weight": np.ones((2, 4), np.uint16)},
     "bf16_bits_to_float32"),
])
def test_broken_modules_raise_malformed_file(tensors, reason):
    with pytest.raises(MalformedFile, match=reason):
        fingerprint_state_dict(tensors)


def test_overflowing_values_are_rejected():
    big = np.full((4, 2), 3e38, np.float32)
    with pytest.raises(MalformedFile, match="overflow"):
        fingerprint_state_dict({"lora_unet_a.lora_up.weight": big, "lora_unet_a.lora_down.weight": big.T.copy()})
