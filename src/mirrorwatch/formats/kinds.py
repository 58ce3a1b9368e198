"""Guess what a safetensors file is (LoRA, LyCORIS, checkpoint, embedding) and for which base model.

Only the header is used: tensor names, shapes and ``__metadata__``. The guess steers later work
(only the LoRA family gets a weight fingerprint) and tells a reviewer what they are looking at, so
every guess carries its reasons. Evidence, strongest first:

* metadata written by the trainer: ``modelspec.architecture`` (e.g. ``stable-diffusion-xl-v1-base/lora``),
  kohya's ``ss_base_model_version`` (``sd_v1``, ``sdxl_base_v1-0``, ``flux1``) and
  ``ss_network_module`` / ``ss_network_args`` (LyCORIS algorithm);
* key names: kohya ``lora_unet_`` / ``lora_te_`` (one text encoder: SD1/SD2) / ``lora_te1_`` +
  ``lora_te2_`` (SDXL) / ``lora_unet_double_blocks_`` (Flux); diffusers/PEFT ``unet.`` /
  ``transformer.`` with ``lora_A``/``lora_B``; LyCORIS ``hada_w1_a`` (LoHa), ``lokr_w1`` (LoKr);
  full checkpoints ``model.diffusion_model.``; textual-inversion ``emb_params`` / ``clip_l`` + ``clip_g``;
* shapes: the cross-attention input width (``attn2.to_k``) is 768 in SD1, 1024 in SD2 and 2048 in
  SDXL; an embedding's vector width likewise.
Metadata can be stripped or wrong, so when keys or shapes disagree with it the reasons say so.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass

from .safetensors import SafetensorsHeader, metadata_json

__all__ = ["BASES", "FAMILIES", "KindGuess", "guess_kind"]

FAMILIES = ("lora", "lycoris", "checkpoint", "embedding", "unknown")
BASES = ("SD1", "SD2", "SDXL", "SD3", "Flux", "unknown")

_CROSS_ATTN_WIDTH = {768: "SD1", 1024: "SD2", 2048: "SDXL"}
_EMBEDDING_WIDTH = {768: "SD1", 1024: "SD2", 1280: "SDXL"}
_TEXT_WIDTH = {768: "SD1", 1024: "SD2"}
_LYCORIS_ALGOS = {
    "loha": "LoHa",
    "lokr": "LoKr",
    "locon": "LoCon",
    "lora": "LoCon",
    "ia3": "IA3",
    "dylora": "DyLoRA",
    "glora": "GLoRA",
    "full": "Full",
    "diag-oft": "OFT",
    "boft": "BOFT",
}


@dataclass(frozen=True)
class KindGuess:
    """What a file probably is. ``variant`` names a LyCORIS algorithm (LoHa, LoKr, LoCon...)."""

    family: str
    variant: str | None
    base: str
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["reasons"] = list(self.reasons)
        return d


def _base_from_architecture(arch: str) -> str | None:
    a = arch.lower()
    if a.startswith("flux"):
        return "Flux"
    if a.startswith("stable-diffusion-xl") or a.startswith("sdxl"):
        return "SDXL"
    if a.startswith("stable-diffusion-v3") or a.startswith("sd3"):
        return "SD3"
    if a.startswith("stable-diffusion-v2"):
        return "SD2"
    if a.startswith("stable-diffusion-v1"):
        return "SD1"
    return None


def _base_from_kohya_version(version: str) -> str | None:
    v = version.lower()
    for prefix, base in (
        ("sdxl", "SDXL"),
        ("sd3", "SD3"),
        ("flux", "Flux"),
        ("sd_v2", "SD2"),
        ("sd_v1", "SD1"),
    ):
        if v.startswith(prefix):
            return base
    return None


def _lycoris_variant(metadata: dict[str, str]) -> str | None:
    """The LyCORIS algorithm named in kohya's network metadata, if any."""
    module = metadata.get("ss_network_module", "")
    args_text = metadata.get("ss_network_args", "")
    algo = None
    if args_text:
        args = metadata_json(args_text)
        if isinstance(args, dict) and isinstance(args.get("algo"), str):
            algo = args["algo"].lower()
    if module.startswith("lycoris") or algo:
        return _LYCORIS_ALGOS.get(algo or "locon", algo.upper() if algo else "LoCon")
    return None


def _key_matcher(header: SafetensorsHeader) -> Callable[..., bool]:
    """A function telling whether any tensor name contains any of the given parts."""
    names = list(header.tensors)

    def has(*parts: str) -> bool:
        return any(p in n for n in names for p in parts)

    return has


def _family_from_keys(header: SafetensorsHeader, reasons: list[str]) -> tuple[str, str | None]:
    names = list(header.tensors)
    has = _key_matcher(header)
    if has(".hada_w1_a", ".hada_w2_a"):
        reasons.append("keys hada_w1_a/hada_w2_a: LyCORIS LoHa")
        return "lycoris", "LoHa"
    if has(".lokr_w1", ".lokr_w2"):
        reasons.append("keys lokr_w1/lokr_w2: LyCORIS LoKr")
        return "lycoris", "LoKr"
    kohya = has(".lora_down.weight", ".lora_up.weight")
    peft = has(".lora_A.", ".lora_B.")
    old_diffusers = has(".lora.down.weight", ".lora.up.weight", "lora_linear_layer.down")
    if kohya or peft or old_diffusers:
        style = (
            "kohya lora_down/lora_up"
            if kohya
            else "PEFT lora_A/lora_B"
            if peft
            else "diffusers lora.down/lora.up"
        )
        conv3 = [
            n
            for n, t in header.tensors.items()
            if len(t.shape) == 4 and t.shape[2:] != (1, 1) and ("down" in n or "lora_A" in n)
        ]
        if conv3:
            reasons.append(f"keys {style} with {len(conv3)} convolution (k×k) layers: LoCon")
            return "lycoris", "LoCon"
        reasons.append(f"keys {style}: LoRA")
        return "lora", None
    if has("model.diffusion_model.") or (has("double_blocks.") and has("single_blocks.") and not has("lora")):
        reasons.append("keys model.diffusion_model.* / double_blocks.*: full model weights")
        return "checkpoint", None
    if has("down_blocks.") and has("up_blocks.") and has("attentions."):
        reasons.append("keys down_blocks/up_blocks.*.attentions: diffusers UNet weights")
        return "checkpoint", None
    if has("transformer_blocks.") and has("single_transformer_blocks."):
        reasons.append("keys transformer_blocks/single_transformer_blocks: diffusers Flux transformer")
        return "checkpoint", None
    embedding_keys = {"emb_params", "clip_l", "clip_g"}
    if (
        names
        and len(names) <= 4
        and all(
            (n in embedding_keys or n.startswith("string_to_param")) and len(header.tensors[n].shape) == 2
            for n in names
        )
    ):
        reasons.append(f"only {', '.join(sorted(names))}: textual-inversion embedding")
        return "embedding", None
    if has("encoder.down.") and has("decoder.up."):
        reasons.append("keys encoder.down/decoder.up only: a VAE, not a model we classify")
    return "unknown", None


def _base_from_keys(header: SafetensorsHeader, family: str, reasons: list[str]) -> str | None:
    has = _key_matcher(header)
    if has("lora_unet_double_blocks_", "lora_unet_single_blocks_", "single_transformer_blocks.") or (
        has("double_blocks.") and has("single_blocks.")
    ):
        reasons.append("Flux double/single blocks in keys")
        return "Flux"
    if has("lora_unet_joint_blocks_", "joint_blocks."):
        reasons.append("SD3 joint blocks in keys")
        return "SD3"
    if has("lora_te1_", "lora_te2_", "conditioner.embedders.1", "text_encoder_2."):
        reasons.append("two text encoders in keys (lora_te1_/lora_te2_ or equivalent): SDXL")
        return "SDXL"
    if family == "embedding" and "clip_g" in header.tensors:
        reasons.append("embedding has clip_l and clip_g vectors: SDXL")
        return "SDXL"
    if has("cond_stage_model.model."):
        reasons.append("OpenCLIP text encoder (cond_stage_model.model.) in keys: SD2")
        return "SD2"
    return None


_DOWN_FACTORS = ("lora_down", "lora_A", "lora_linear_layer_down", "hada_w1_b", "hada_w2_b")


def _base_from_shapes(header: SafetensorsHeader, family: str, reasons: list[str]) -> str | None:
    """Base model from a layer's input width: UNet cross-attention (attn2.to_k), else the text
    encoder's attention (self_attn.q_proj), else an embedding's vector width."""
    cross: Counter[int] = Counter()
    text: Counter[int] = Counter()
    for name, info in header.tensors.items():
        if len(info.shape) != 2:
            continue
        flat = name.replace(".", "_")
        if family == "embedding":
            text[info.shape[-1]] += 1
            continue
        # the factor (or a checkpoint's plain weight) whose last dimension is the layer's input width
        is_input_side = any(p in flat for p in _DOWN_FACTORS) or (
            family == "checkpoint" and flat.endswith("_weight")
        )
        if not is_input_side:
            continue
        if "attn2_to_k" in flat:
            cross[info.shape[-1]] += 1
        elif "self_attn_q_proj" in flat:
            text[info.shape[-1]] += 1
    checks = [
        (cross, _CROSS_ATTN_WIDTH, "cross-attention input width"),
        (
            text,
            _EMBEDDING_WIDTH if family == "embedding" else _TEXT_WIDTH,
            "embedding vector width" if family == "embedding" else "text-encoder width",
        ),
    ]
    for widths, table, what in checks:
        for width, _ in widths.most_common():
            if width in table:
                reasons.append(f"{what} {width}: {table[width]}")
                return table[width]
    return None


def guess_kind(header: SafetensorsHeader) -> KindGuess:
    """Guess family (lora/lycoris/checkpoint/embedding/unknown), LyCORIS variant and base model."""
    reasons: list[str] = []
    md = header.metadata
    family, variant = _family_from_keys(header, reasons)

    meta_variant = _lycoris_variant(md)
    if meta_variant and family in ("lora", "lycoris"):
        if family == "lora" or variant is None:
            reasons.append(f"ss_network_module/ss_network_args name LyCORIS {meta_variant}")
            family, variant = "lycoris", meta_variant
        elif meta_variant != variant:
            reasons.append(f"ss_network_args name {meta_variant} but keys say {variant}")
    arch = md.get("modelspec.architecture", "")
    if family == "unknown" and arch:
        suffix = arch.lower().rpartition("/")[2] if "/" in arch else ""
        hinted = {"lora": "lora", "lycoris": "lycoris", "textual-inversion": "embedding"}.get(suffix)
        if hinted:
            reasons.append(f"modelspec.architecture {arch!r} names a {hinted}")
            family = hinted

    base: str | None = None
    if arch and (base := _base_from_architecture(arch)):
        reasons.append(f"modelspec.architecture {arch!r}: {base}")
    version = md.get("ss_base_model_version", "")
    if version:
        from_version = _base_from_kohya_version(version)
        if base is None and from_version:
            base = from_version
            reasons.append(f"ss_base_model_version {version!r}: {base}")
    if base is None and md.get("ss_v2", "").lower() == "true":
        base = "SD2"
        reasons.append("ss_v2 is True: SD2")

    structural: list[str] = []
    from_keys = _base_from_keys(header, family, structural)
    from_shapes = None if from_keys else _base_from_shapes(header, family, structural)
    evidence = from_keys or from_shapes
    if base is None:
        reasons.extend(structural)
        base = evidence
    elif evidence and evidence != base:
        reasons.append(f"but {structural[-1]} (metadata says {base})")
    return KindGuess(family=family, variant=variant, base=base or "unknown", reasons=tuple(reasons))
