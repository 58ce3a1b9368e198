"""Test files in the exact form real writers give them (key sets, dtypes, metadata, hashes).

No torch here: each writer's output is reproduced with numpy and the real `safetensors` serializer
(`safetensors.numpy.save` runs the same Rust code as `safetensors.torch.save`, so bytes and header
layout are those of the real tools). Each function names the source it follows; the code is written
here from the rules those sources apply, not copied.

diffusers (huggingface/diffusers):
  examples/dreambooth/train_dreambooth_lora_sdxl.py, end of `main`: the unet's PEFT state dict
  (`get_peft_model_state_dict(unet.to(torch.float32))`) -> `convert_state_dict_to_diffusers` ->
  `StableDiffusionXLPipeline.save_lora_weights` ("unet." prefix) = pytorch_lora_weights.safetensors;
  with --output_kohya_format that file is reloaded and passed through
  src/diffusers/utils/state_dict_utils.py `convert_all_state_dict_to_peft` (for a unet-only file:
  `convert_unet_state_dict_to_peft`, ".lora.down" -> ".lora_A") then `convert_state_dict_to_kohya`:
  lora_A -> lora_down, lora_B -> lora_up, "unet" -> "lora_unet", every "." but the last two -> "_",
  and for each lora_down an "<module>.alpha" = `torch.tensor(len(weight))`, i.e. an int64 0-dim
  tensor holding the rank; saved with `safetensors.torch.save_file` and no metadata.

kohya-ss/sd-scripts:
  library/train_util.py `precalculate_safetensors_hashes(tensors, metadata)`: keeps only the ss_*
  metadata, serializes in memory with `safetensors.torch.save`, then `addnet_hash_safetensors` (sha256
  of everything after the 8-byte length and the header: the tensor bytes) -> sshs_model_hash and
  `addnet_hash_legacy` (sha256 of the 0x10000 bytes at 0x100000, first 8 hex) -> sshs_legacy_hash.
  networks/lora.py `LoRANetwork.save_weights`: casts to the save dtype, adds the model spec
  (library/sai_model_spec.py `build_metadata`: modelspec.* keys), computes the two hashes on the
  ss_*-only copy, sets metadata["sshs_model_hash"], ["sshs_legacy_hash"], then `save_file(state_dict,
  file, metadata)`.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
from safetensors.numpy import save, save_file

# SDXL UNet layers (diffusers names, real shapes: block 1 is 640 wide, cross-attention context 2048).
SDXL_LAYERS: dict[str, tuple[int, int]] = {
    "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q": (640, 640),
    "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_k": (640, 640),
    "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_v": (640, 640),
    "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_out.0": (640, 640),
    "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_q": (640, 640),
    "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k": (640, 2048),
    "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_v": (640, 2048),
    "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_out.0": (640, 640),
}


def peft_unet_state_dict(rank: int = 4, seed: int = 5, layers: dict[str, tuple[int, int]] | None = None,
                         ) -> dict[str, np.ndarray]:
    """`get_peft_model_state_dict(unet)` after training, as float32: "<module>.lora_A.weight" (r, in),
    "<module>.lora_B.weight" (out, r); PEFT drops the adapter name from the keys."""
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for module, (o, i) in (layers or SDXL_LAYERS).items():
        out[f"{module}.lora_A.weight"] = (rng.standard_normal((rank, i)) / np.sqrt(i)).astype(np.float32)
        out[f"{module}.lora_B.weight"] = (rng.standard_normal((o, rank)) * 0.01).astype(np.float32)
    return out


CLIP_L_LAYERS: dict[str, tuple[int, int]] = {
    f"text_model.encoder.layers.{i}.self_attn.{p}_proj": (768, 768) for i in range(2) for p in ("q", "k", "v", "out")
}


def diffusers_lora_file(path: Path, peft: dict[str, np.ndarray],
                        te_peft: dict[str, np.ndarray] | None = None) -> Path:
    """pytorch_lora_weights.safetensors: `convert_state_dict_to_diffusers` (PEFT_TO_DIFFUSERS: the
    unet's "to_q.lora_A" -> "to_q.lora.down"; a CLIP text encoder's "q_proj.lora_A" ->
    "q_proj.lora_linear_layer.down") then `save_lora_weights` ("unet." / "text_encoder." prefixes).
    No metadata."""
    sd = {}
    for key, value in peft.items():
        new = key.replace(".lora_A.weight", ".lora.down.weight").replace(".lora_B.weight", ".lora.up.weight")
        sd["unet." + new] = value
    for key, value in (te_peft or {}).items():
        new = key.replace(".lora_A.", ".lora_linear_layer.down.").replace(".lora_B.", ".lora_linear_layer.up.")
        sd["text_encoder." + new] = value
    save_file(sd, str(path))
    return path


def kohya_from_diffusers(diffusers_sd: dict[str, np.ndarray], alpha_dtype: str = "int64",
                         alpha_shape: tuple[int, ...] = ()) -> dict[str, np.ndarray]:
    """`convert_all_state_dict_to_peft` then `convert_state_dict_to_kohya`, as diffusers runs them.

    To PEFT: a file with "lora_linear_layer" keys is the DIFFUSERS type and only DIFFUSERS_TO_PEFT's
    patterns apply (".lora_linear_layer.down" -> ".lora_A"; the unet's ".lora.down" keys stay as they
    are); otherwise `convert_unet_state_dict_to_peft` (".lora.down" -> ".lora_A"). To kohya: lora_A ->
    lora_down, lora_B -> lora_up, "text_encoder." -> "lora_te1.", "unet" -> "lora_unet", every "." but
    the last two -> "_", and for each key holding "lora_down" an "<module>.alpha" of
    `torch.tensor(len(weight))` (int64, 0-dim; `alpha_dtype`/`alpha_shape` let a test vary it)."""
    diffusers_type = any("lora_linear_layer" in k for k in diffusers_sd)
    out: dict[str, np.ndarray] = {}
    for key, value in diffusers_sd.items():
        if diffusers_type:
            peft_key = key.replace(".lora_linear_layer.down", ".lora_A").replace(".lora_linear_layer.up", ".lora_B")
        else:
            peft_key = key.replace(".lora.down", ".lora_A").replace(".lora.up", ".lora_B")
        k = peft_key.replace("lora_A", "lora_down").replace("lora_B", "lora_up")
        if "text_encoder." in k:
            k = k.replace("text_encoder.", "lora_te1.")
        elif "unet" in k:
            k = k.replace("unet", "lora_unet")
        k = k.replace(".", "_", k.count(".") - 2)
        out[k] = value
        if "lora_down" in k:
            out[f"{k.split('.')[0]}.alpha"] = np.full(alpha_shape, len(value), dtype=alpha_dtype)
    return out


def load(path: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(path))


# -- sd-scripts ----------------------------------------------------------------------------------
def addnet_hash_safetensors(b: io.BytesIO) -> str:
    """sd-scripts library/train_util.py `addnet_hash_safetensors`: sha256 of the bytes after the header."""
    b.seek(0)
    n = int.from_bytes(b.read(8), "little")
    b.seek(n + 8)
    return hashlib.sha256(b.read()).hexdigest()


def addnet_hash_legacy(b: io.BytesIO) -> str:
    """sd-scripts library/train_util.py `addnet_hash_legacy`: sha256 of 0x10000 bytes at 0x100000, 8 hex."""
    b.seek(0x100000)
    return hashlib.sha256(b.read(0x10000)).hexdigest()[0:8]


def precalculate_safetensors_hashes(tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> tuple[str, str]:
    """sd-scripts library/train_util.py `precalculate_safetensors_hashes`: on an in-memory copy that
    carries only the ss_* metadata."""
    ss_only = {k: v for k, v in metadata.items() if k.startswith("ss_")}
    b = io.BytesIO(save(tensors, ss_only))
    return addnet_hash_safetensors(b), addnet_hash_legacy(b)


def kohya_state_dict(rank: int = 16, seed: int = 7, dtype: str = "float16") -> dict[str, np.ndarray]:
    """What `LoRANetwork.save_weights` saves for an SDXL LoRA: "lora_unet_<sgm path>.lora_down.weight",
    ".lora_up.weight" and ".alpha", all in the save dtype (fp16 here). About 53 KiB per unit of rank:
    from rank 40 on the file is over 2 MiB, the size from which AutoV1 is defined, and its legacy
    hash window (0x100000..0x110000) holds tensor bytes."""
    rng = np.random.default_rng(seed)
    sd: dict[str, np.ndarray] = {}
    for block in range(4):
        for proj, (o, i) in (("to_q", (640, 640)), ("to_k", (640, 2048)), ("to_v", (640, 2048))):
            name = f"lora_unet_input_blocks_4_1_transformer_blocks_{block}_attn2_{proj}"
            sd[f"{name}.lora_down.weight"] = (rng.standard_normal((rank, i)) * 0.02).astype(dtype)
            sd[f"{name}.lora_up.weight"] = (rng.standard_normal((o, rank)) * 0.02).astype(dtype)
            sd[f"{name}.alpha"] = np.array(rank / 2, dtype=dtype)
    return sd


def ss_metadata(output_name: str = "aurelie_synthetic_v5") -> dict[str, str]:
    """A subset of the ss_* training metadata sd-scripts writes (train_network.py `train`)."""
    return {
        "ss_session_id": "2771936442",
        "ss_training_started_at": "1718000000.123",
        "ss_output_name": output_name,
        "ss_network_module": "networks.lora",
        "ss_network_dim": "16",
        "ss_network_alpha": "8.0",
        "ss_base_model_version": "sdxl_base_v1-0",
        "ss_tag_frequency": json.dumps({"10_aurelie woman": {"aurelie woman": 20}}),
        "ss_epoch": "10",
    }


def modelspec_metadata(title: str = "aurelie_synthetic_v5") -> dict[str, str]:
    """library/sai_model_spec.py `build_metadata` for an SDXL LoRA (the keys sd-scripts writes)."""
    return {
        "modelspec.sai_model_spec": "1.0.0",
        "modelspec.architecture": "stable-diffusion-xl-v1-base/lora",
        "modelspec.implementation": "https://github.com/Stability-AI/generative-models",
        "modelspec.title": title,
        "modelspec.resolution": "1024x1024",
        "modelspec.prediction_type": "epsilon",
        "modelspec.date": "2024-06-10T08:00:00",
    }


def sd_scripts_save(path: Path, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> tuple[str, str]:
    """networks/lora.py `LoRANetwork.save_weights`: model spec added, hashes on the ss_*-only copy,
    sshs_* added, then saved. Returns (sshs_model_hash, sshs_legacy_hash)."""
    md = dict(metadata)
    md.update(modelspec_metadata(md.get("ss_output_name", "untitled")))
    model_hash, legacy_hash = precalculate_safetensors_hashes(tensors, md)
    md["sshs_model_hash"] = model_hash
    md["sshs_legacy_hash"] = legacy_hash
    save_file(tensors, str(path), md)
    return model_hash, legacy_hash
