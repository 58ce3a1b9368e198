"""Canonical module names: one name per layer, whatever the key format of the file.

The same trained layer is stored under very different keys depending on the tool that wrote the
file. For the first cross-attention query projection of an SDXL UNet, for example:

    kohya (sd-scripts)      lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_q.lora_down.weight
    diffusers / PEFT        unet.down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_q.lora_A.weight
    diffusers (legacy)      unet.down_blocks.1.attentions.0.transformer_blocks.0.attn2.processor.to_q_lora.down.weight
    PEFT (raw save)         base_model.model.down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_q.lora_A.weight

All of them get the canonical name

    unet.down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_q

The canonical name is ``<component>.<path>`` where component is one of ``unet`` (SD1.x/SD2/SDXL UNet),
``transformer`` (Flux and other DiT denoisers), ``te1``/``te2``/``te3`` (text encoders: CLIP-L, OpenCLIP-G
or CLIP-G, T5) or ``other``; and path is the diffusers module path with every dot replaced by an
underscore (the kohya convention). We chose the diffusers module names (not the ldm/sgm names the brief
also allows) because the mapping *from* ldm names (``input_blocks_4_1``...) to diffusers names can be
decided from the name alone, while the reverse needs to know which UNet blocks have attention (an SD1.5
``output_blocks_2_1_conv`` is an upsampler, an SDXL ``output_blocks_2_1`` is an attention block).
kohya's SD1.x files already use diffusers block names, so for the most common trainer the canonical
path is simply the key without its prefix and suffix.

Flux: kohya and the original (BFL) checkpoints store the image/text attention projections fused
(``double_blocks_N_img_attn_qkv``, up of shape (3*3072, r)) and single blocks' ``linear1`` fused as
q|k|v|mlp (3*3072 + 12288 rows); diffusers/ai-toolkit store them split (``attn.to_q``, ``to_k``,
``to_v``, ``proj_mlp``). We canonicalise to the split form: a fused module is cut along its output rows
into parts that share the same down factor, which gives exactly the diffusers layers' ΔW. The Flux final
layer's modulation is stored (shift, scale) in BFL order and (scale, shift) in diffusers order; we
swap the halves when reading the BFL form.

Where formats cannot be aligned by name (an exotic trainer, SD3 kohya ``joint_blocks``), the canonical
name is still a deterministic normalisation of the key and the shape-based comparison in
``similarity.py`` covers the rest.

Learned from diffusers' ``loaders/lora_conversion_utils.py`` (``_maybe_map_sgm_blocks_to_diffusers``,
``_convert_kohya_flux_lora_to_diffusers``); written here independently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "IGNORED_ROLES",
    "ParsedKey",
    "Split",
    "canonical_module_name",
    "guess_family",
    "parse_key",
]

# ---------------------------------------------------------------------------------------------
# Roles: what a tensor is within its module. Ordered: the first matching suffix wins.
# ---------------------------------------------------------------------------------------------
_ROLE_SUFFIXES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p), role)
    for p, role in (
        (r"\.lora_down\.weight$", "down"),
        (r"\.lora_up\.weight$", "up"),
        (r"\.lora_mid\.weight$", "mid"),
        (r"\.lora_A(?:\.[A-Za-z0-9_\-]+)?\.weight$", "down"),  # PEFT, optionally with adapter name
        (r"\.lora_B(?:\.[A-Za-z0-9_\-]+)?\.weight$", "up"),
        (r"\.lora_linear_layer\.down\.weight$", "down"),  # diffusers LoRALinearLayer
        (r"\.lora_linear_layer\.up\.weight$", "up"),
        (r"\.lora\.down\.weight$", "down"),  # diffusers legacy LoRACompatible layers
        (r"\.lora\.up\.weight$", "up"),
        (r"_lora\.down\.weight$", "down"),  # diffusers attention processors: processor.to_q_lora.down
        (r"_lora\.up\.weight$", "up"),
        (r"\.alpha$", "alpha"),
        (r"\.hada_w1_a$", "hada_w1_a"),
        (r"\.hada_w1_b$", "hada_w1_b"),
        (r"\.hada_w2_a$", "hada_w2_a"),
        (r"\.hada_w2_b$", "hada_w2_b"),
        (r"\.hada_t1$", "hada_t1"),
        (r"\.hada_t2$", "hada_t2"),
        (r"\.lokr_w1$", "lokr_w1"),
        (r"\.lokr_w1_a$", "lokr_w1_a"),
        (r"\.lokr_w1_b$", "lokr_w1_b"),
        (r"\.lokr_w2$", "lokr_w2"),
        (r"\.lokr_w2_a$", "lokr_w2_a"),
        (r"\.lokr_w2_b$", "lokr_w2_b"),
        (r"\.lokr_t2$", "lokr_t2"),
        (r"\.diff$", "diff"),  # a full weight difference (LyCORIS "full", some merges)
        # Tensors that belong to a module but do not enter ΔW of the weight matrix.
        (r"\.dora_scale$", "ignored"),
        (r"\.lora_magnitude_vector(?:\.[A-Za-z0-9_\-]+)?(?:\.weight)?$", "ignored"),
        (r"\.diff_b$", "ignored"),
        (r"\.bias$", "ignored"),
        (r"\.lora_embedding_[AB](?:\.[A-Za-z0-9_\-]+)?$", "ignored"),
    )
)

#: Roles that are recognised but not used for ΔW (DoRA magnitudes, biases, bias diffs).
IGNORED_ROLES = frozenset({"ignored"})

# ---------------------------------------------------------------------------------------------
# Component prefixes.
# ---------------------------------------------------------------------------------------------
_KOHYA_PREFIXES: tuple[tuple[str, str], ...] = (
    ("lora_unet_", "unet"),
    ("lora_te1_", "te1"),
    ("lora_te2_", "te2"),
    ("lora_te3_", "te3"),
    ("lora_te_", "te1"),
    ("lora_transformer_", "transformer"),  # "mixture" Flux exports
)

# Dotted prefixes (after an optional "base_model.model."), longest first.
_DOTTED_PREFIXES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("text_encoders", "clip_l", "transformer"), "te1"),
    (("text_encoders", "clip_g", "transformer"), "te2"),
    (("text_encoders", "t5xxl", "transformer"), "te3"),
    (("model", "diffusion_model"), "unet"),
    (("diffusion_model",), "unet"),
    (("text_encoder_2",), "te2"),
    (("text_encoder_3",), "te3"),
    (("text_encoder",), "te1"),
    (("unet",), "unet"),
    (("transformer",), "transformer"),
    (("lora_unet",), "unet"),
    (("lora_te1",), "te1"),
    (("lora_te2",), "te2"),
    (("lora_te",), "te1"),
)

# When no prefix names the model (raw PEFT saves), the first path element tells.
_UNET_HEADS = ("down_blocks", "mid_block", "up_blocks", "conv_in", "conv_out", "time_embedding",
               "add_embedding", "input_blocks", "middle_block", "output_blocks", "time_embed", "label_emb")
_TRANSFORMER_HEADS = ("transformer_blocks", "single_transformer_blocks", "x_embedder", "context_embedder",
                      "time_text_embed", "norm_out", "double_blocks", "single_blocks", "img_in", "txt_in")

# ---------------------------------------------------------------------------------------------
# ldm/sgm UNet names (kohya SDXL, original checkpoints) -> diffusers names. layers_per_block = 2
# for SD1.x, SD2.x and SDXL, so input block n>=1 is down block (n-1)//3, slot (n-1)%3 (slot 2 is
# the downsampler) and output block n is up block n//3, slot n%3.
# ---------------------------------------------------------------------------------------------
_LAYERS_PER_BLOCK = 2
_RESNET_RENAMES = (
    ("in_layers_2", "conv1"),
    ("out_layers_3", "conv2"),
    ("emb_layers_1", "time_emb_proj"),
    ("skip_connection", "conv_shortcut"),
)
_LDM_TOP = {
    "input_blocks_0_0": "conv_in",
    "out_2": "conv_out",
    "time_embed_0": "time_embedding_linear_1",
    "time_embed_2": "time_embedding_linear_2",
    "label_emb_0_0": "add_embedding_linear_1",
    "label_emb_0_2": "add_embedding_linear_2",
}
_RE_INPUT = re.compile(r"^input_blocks_(\d+)_(\d+)(?:_(.*))?$")
_RE_MIDDLE = re.compile(r"^middle_block_(\d+)(?:_(.*))?$")
_RE_OUTPUT = re.compile(r"^output_blocks_(\d+)_(\d+)(?:_(.*))?$")


def _resnet_rest(rest: str) -> str:
    for old, new in _RESNET_RENAMES:
        if rest == old or rest.startswith(old + "_"):
            return new + rest[len(old):]
    return rest


def _join(*parts: str | None) -> str:
    return "_".join(p for p in parts if p)


def _ldm_unet_to_diffusers(path: str) -> str:
    if path in _LDM_TOP:
        return _LDM_TOP[path]
    m = _RE_INPUT.match(path)
    if m:
        n, j, rest = int(m.group(1)), int(m.group(2)), m.group(3) or ""
        if n == 0:
            return _join("conv_in", rest)
        block, slot = divmod(n - 1, _LAYERS_PER_BLOCK + 1)
        if slot == _LAYERS_PER_BLOCK:  # downsampler: input_blocks_3_0_op
            return _join(f"down_blocks_{block}_downsamplers_0_conv", rest.removeprefix("op").lstrip("_"))
        if j == 0:
            return _join(f"down_blocks_{block}_resnets_{slot}", _resnet_rest(rest))
        return _join(f"down_blocks_{block}_attentions_{slot}", rest)
    m = _RE_MIDDLE.match(path)
    if m:
        n, rest = int(m.group(1)), m.group(2) or ""
        if n == 1:
            return _join("mid_block_attentions_0", rest)
        return _join(f"mid_block_resnets_{0 if n == 0 else 1}", _resnet_rest(rest))
    m = _RE_OUTPUT.match(path)
    if m:
        n, j, rest = int(m.group(1)), int(m.group(2)), m.group(3) or ""
        block, slot = divmod(n, _LAYERS_PER_BLOCK + 1)
        if j == 0:
            return _join(f"up_blocks_{block}_resnets_{slot}", _resnet_rest(rest))
        # j == 1 is the attention, unless the block has none and it is the upsampler conv;
        # j == 2 is always the upsampler (blocks with attention).
        if j == 2 or rest == "conv":
            return _join(f"up_blocks_{block}_upsamplers_0", rest)
        return _join(f"up_blocks_{block}_attentions_{slot}", rest)
    return path


_RE_LDM_HEAD = re.compile(r"^(input_blocks_\d|middle_block_\d|output_blocks_\d|time_embed_\d|label_emb_0_\d|out_2$)")

# ---------------------------------------------------------------------------------------------
# Flux: BFL / kohya names -> diffusers names, with the fused modules split.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Split:
    """How a fused module is cut along the output rows of its ΔW.

    ``rule`` is ``"equal"`` (``len(parts)`` equal slices: fused q|k|v) or ``"flux_linear1"`` (q|k|v
    each of the block's hidden size, which is the module's *input* size, then the MLP rows).
    ``parts`` are canonical names in row order.
    """

    parts: tuple[str, ...]
    rule: str = "equal"

    def row_ranges(self, out_features: int, in_features: int) -> list[tuple[int, int]] | None:
        """Row ranges per part, or None when the shape does not fit the rule."""
        n = len(self.parts)
        if self.rule == "equal":
            if out_features % n:
                return None
            step = out_features // n
            sizes = [step] * n
        elif self.rule == "flux_linear1":
            hidden = in_features
            mlp = out_features - 3 * hidden
            if mlp <= 0 or n != 4:
                return None
            sizes = [hidden, hidden, hidden, mlp]
        else:  # pragma: no cover - programming error
            raise ValueError(self.rule)
        ranges, start = [], 0
        for size in sizes:
            ranges.append((start, start + size))
            start += size
        return ranges


_FLUX_DOUBLE = {
    "img_attn_proj": "attn_to_out_0",
    "img_mlp_0": "ff_net_0_proj",
    "img_mlp_2": "ff_net_2",
    "img_mod_lin": "norm1_linear",
    "txt_attn_proj": "attn_to_add_out",
    "txt_mlp_0": "ff_context_net_0_proj",
    "txt_mlp_2": "ff_context_net_2",
    "txt_mod_lin": "norm1_context_linear",
}
_FLUX_DOUBLE_FUSED = {
    "img_attn_qkv": ("attn_to_q", "attn_to_k", "attn_to_v"),
    "txt_attn_qkv": ("attn_add_q_proj", "attn_add_k_proj", "attn_add_v_proj"),
}
_FLUX_SINGLE = {"linear2": "proj_out", "modulation_lin": "norm_linear"}
_FLUX_TOP = {
    "img_in": "x_embedder",
    "txt_in": "context_embedder",
    "time_in_in_layer": "time_text_embed_timestep_embedder_linear_1",
    "time_in_out_layer": "time_text_embed_timestep_embedder_linear_2",
    "vector_in_in_layer": "time_text_embed_text_embedder_linear_1",
    "vector_in_out_layer": "time_text_embed_text_embedder_linear_2",
    "guidance_in_in_layer": "time_text_embed_guidance_embedder_linear_1",
    "guidance_in_out_layer": "time_text_embed_guidance_embedder_linear_2",
    "final_layer_linear": "proj_out",
    "final_layer_adaLN_modulation_1": "norm_out_linear",
}
_RE_FLUX_DOUBLE = re.compile(r"^double_blocks_(\d+)_(.+)$")
_RE_FLUX_SINGLE = re.compile(r"^single_blocks_(\d+)_(.+)$")
_RE_BFL_HEAD = re.compile(
    r"^(double_blocks_\d|single_blocks_\d|img_in$|txt_in$|time_in_|vector_in_|guidance_in_|final_layer_)"
)


def _flux_bfl_to_diffusers(path: str) -> tuple[str, Split | None, bool]:
    """Return (diffusers path, split for fused modules, swap halves of the rows)."""
    if path in _FLUX_TOP:
        return _FLUX_TOP[path], None, path == "final_layer_adaLN_modulation_1"
    m = _RE_FLUX_DOUBLE.match(path)
    if m:
        i, rest = m.group(1), m.group(2)
        if rest in _FLUX_DOUBLE:
            return f"transformer_blocks_{i}_{_FLUX_DOUBLE[rest]}", None, False
        if rest in _FLUX_DOUBLE_FUSED:
            parts = tuple(f"transformer_blocks_{i}_{p}" for p in _FLUX_DOUBLE_FUSED[rest])
            return f"transformer_blocks_{i}_{rest}", Split(parts), False
        return f"transformer_blocks_{i}_{rest}", None, False
    m = _RE_FLUX_SINGLE.match(path)
    if m:
        i, rest = m.group(1), m.group(2)
        if rest in _FLUX_SINGLE:
            return f"single_transformer_blocks_{i}_{_FLUX_SINGLE[rest]}", None, False
        if rest == "linear1":
            parts = tuple(f"single_transformer_blocks_{i}_{p}"
                          for p in ("attn_to_q", "attn_to_k", "attn_to_v", "proj_mlp"))
            return f"single_transformer_blocks_{i}_linear1", Split(parts, "flux_linear1"), False
        return f"single_transformer_blocks_{i}_{rest}", None, False
    return path, None, False


# ---------------------------------------------------------------------------------------------
# Small per-component clean-ups (legacy diffusers attention processors, text encoder aliases).
# ---------------------------------------------------------------------------------------------
_RE_PROCESSOR = re.compile(r"_processor_")
_TE_ALIASES = (
    (re.compile(r"self_attn_to_q$"), "self_attn_q_proj"),
    (re.compile(r"self_attn_to_k$"), "self_attn_k_proj"),
    (re.compile(r"self_attn_to_v$"), "self_attn_v_proj"),
    (re.compile(r"self_attn_to_out(_0)?$"), "self_attn_out_proj"),
)
_RE_TO_OUT = re.compile(r"(attn\d?_to_out)$")


@dataclass(frozen=True)
class ParsedKey:
    """A tensor key understood as (module, role).

    ``module`` is the canonical module name; ``raw_module`` the key without its role suffix (two raw
    modules mapping to the same canonical name are duplicates); ``split`` is set for fused modules
    (then ``module`` names the fused module and ``split.parts`` the canonical layers it yields);
    ``swap_halves`` marks BFL modules whose output rows are stored in the other order.
    """

    key: str
    raw_module: str
    module: str
    role: str
    split: Split | None = None
    swap_halves: bool = False


def _strip_role(key: str) -> tuple[str, str] | None:
    for pattern, role in _ROLE_SUFFIXES:
        m = pattern.search(key)
        if m:
            return key[: m.start()], role
    return None


def _component_and_path(module: str) -> tuple[str, str]:
    for prefix, comp in _KOHYA_PREFIXES:
        if module.startswith(prefix) and "." not in module:
            return comp, module[len(prefix):]
    segs = module.split(".")
    if segs[:2] == ["base_model", "model"]:
        segs = segs[2:]
    for prefix, comp in _DOTTED_PREFIXES:
        if tuple(segs[: len(prefix)]) == prefix:
            return comp, "_".join(segs[len(prefix):])
    if len(segs) == 1:  # underscore-joined without a known prefix
        for prefix, comp in _KOHYA_PREFIXES:
            if module.startswith(prefix):
                return comp, module[len(prefix):]
    path = "_".join(segs)
    head = segs[0] if segs else ""
    if head == "text_model" or path.startswith("text_model_"):
        return "te1", path
    if head in _UNET_HEADS or path.startswith(_UNET_HEADS):
        return "unet", path
    if head in _TRANSFORMER_HEADS or path.startswith(_TRANSFORMER_HEADS):
        return "transformer", path
    return "other", path


def _normalise(comp: str, path: str) -> tuple[str, str, Split | None, bool]:
    path = _RE_PROCESSOR.sub("_", path)
    path = path.removeprefix("processor_")
    path = path.removesuffix("_lora")  # processor.to_q_lora / to_out_lora
    split: Split | None = None
    swap = False
    if comp in ("unet", "transformer", "other") and _RE_BFL_HEAD.match(path):
        comp = "transformer"
        path, split, swap = _flux_bfl_to_diffusers(path)
        if split is not None:
            split = Split(tuple(f"{comp}.{p}" for p in split.parts), split.rule)
    elif comp in ("unet", "other") and _RE_LDM_HEAD.match(path):
        comp = "unet"
        path = _ldm_unet_to_diffusers(path)
    if comp in ("unet", "transformer"):
        path = _RE_TO_OUT.sub(r"\1_0", path)
    elif comp.startswith("te"):
        for pattern, repl in _TE_ALIASES:
            path = pattern.sub(repl, path)
    return comp, path, split, swap


def parse_key(key: str) -> ParsedKey | None:
    """Understand one state-dict key, or None if it is not part of a LoRA-family module."""
    stripped = _strip_role(key)
    if stripped is None:
        return None
    raw_module, role = stripped
    if not raw_module:
        return None
    comp, path = _component_and_path(raw_module)
    comp, path, split, swap = _normalise(comp, path)
    return ParsedKey(key=key, raw_module=raw_module, module=f"{comp}.{path}", role=role,
                     split=split, swap_halves=swap)


def canonical_module_name(key: str) -> str | None:
    """The canonical module name for a tensor key (or for a bare module path), None if unknown.

    For a fused Flux module this is the name of the fused module; use :func:`parse_key` to get its
    split parts.
    """
    parsed = parse_key(key)
    if parsed is None:
        # a bare module path without role suffix
        comp, path = _component_and_path(key)
        comp, path, _split, _swap = _normalise(comp, path)
        return f"{comp}.{path}"
    return parsed.module


# ---------------------------------------------------------------------------------------------
# Which base model family a set of canonical layers looks like.
# ---------------------------------------------------------------------------------------------
_CROSS_ATTN_FAMILY = {768: "sd1", 1024: "sd2", 2048: "sdxl"}
_METADATA_FAMILIES = (
    ("ss_base_model_version", (("sdxl", "sdxl"), ("sd_v1", "sd1"), ("sd_v2", "sd2"), ("flux", "flux"),
                               ("sd3", "sd3"))),
    ("modelspec.architecture", (("stable-diffusion-xl", "sdxl"), ("stable-diffusion-v1", "sd1"),
                                ("stable-diffusion-v2", "sd2"), ("stable-diffusion-v3", "sd3"),
                                ("flux", "flux"))),
)


def _family_from_metadata(metadata: dict[str, str] | None) -> str | None:
    if not metadata:
        return None
    for field_name, table in _METADATA_FAMILIES:
        value = str(metadata.get(field_name, "")).lower()
        for needle, family in table:
            if needle in value:
                return family
    return None


def guess_family(shapes: dict[str, tuple[int, int]], metadata: dict[str, str] | None = None) -> str:
    """The base family (``sd1``, ``sd2``, ``sdxl``, ``flux``, ``sd3`` or ``unknown``) that layers look like.

    Structure first (it cannot be edited away like metadata): a Flux/DiT transformer by its hidden
    size, a UNet by its cross-attention key input size (768 SD1, 1024 SD2, 2048 SDXL), an OpenCLIP-G
    second text encoder for SDXL. Metadata (``ss_base_model_version``, ``modelspec.architecture``)
    decides only when the structure does not.
    """
    transformer_dims = {s[1] for n, s in shapes.items() if n.startswith("transformer.") and "attn_to_q" in n}
    if transformer_dims:
        if 3072 in transformer_dims:
            return "flux"
        if transformer_dims & {1536, 2432}:
            return "sd3"
    for name, (_out, in_features) in shapes.items():
        if name.startswith("unet.") and name.endswith("attn2_to_k") and in_features in _CROSS_ATTN_FAMILY:
            return _CROSS_ATTN_FAMILY[in_features]
    if any(n.startswith("te2.") for n in shapes):
        te2_dims = {s[1] for n, s in shapes.items() if n.startswith("te2.") and n.endswith("q_proj")}
        if 1280 in te2_dims:
            return "sdxl"
    hinted = _family_from_metadata(metadata)
    if hinted:
        return hinted
    if any(n.startswith("transformer.single_transformer_blocks") for n in shapes):
        return "flux"
    return "unknown"
