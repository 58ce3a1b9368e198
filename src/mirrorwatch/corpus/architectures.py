"""Real module lists and shapes of SD1.5, SDXL and Flux.1 LoRAs, with kohya and diffusers names.

These tables drive the generated evaluation corpus (``generate.py``) and the key-format conversions
(``transforms.py``). They are built from the models' configurations the way the libraries build the
networks, and were written independently of ``match/fingerprint/names.py`` so the tests can check one
against the other.

* SD1.5: diffusers ``UNet2DConditionModel`` (blocks 320/640/1280/1280, cross-attention 768, 1x1-conv
  ``proj_in``/``proj_out``) and CLIP ViT-L/14 text encoder (12 layers, 768). kohya's SD1 networks use the
  diffusers module names, so the kohya name is ``lora_unet_`` + the diffusers path with underscores.
* SDXL: UNet with blocks 320/640/1280, transformer depths 0/2/10 (mid 10), cross-attention 2048,
  linear ``proj_in``; CLIP-L (te1) and OpenCLIP bigG (te2: 32 layers, 1280). kohya's SDXL network uses
  the original (sgm) module names: ``input_blocks``/``middle_block``/``output_blocks``.
* Flux.1: 19 double-stream and 38 single-stream blocks, hidden 3072, MLP 12288. kohya (sd-scripts) uses
  the BFL names with fused ``img_attn_qkv``/``txt_attn_qkv`` (q|k|v) and single-block ``linear1``
  (q|k|v|mlp); diffusers/ai-toolkit split them. Fused modules carry ``parts``.

Each :class:`ModuleSpec` has tags used by the module presets (which layers a trainer trains).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

__all__ = ["ARCHITECTURES", "FLUX", "SD15", "SDXL", "Architecture", "ModuleSpec"]


@dataclass(frozen=True)
class ModuleSpec:
    """One LoRA-targetable layer.

    ``kohya`` is the kohya module name (``lora_unet_…``/``lora_te1_…``); ``diffusers`` the dotted
    diffusers path with its model prefix (``unet.…``, ``text_encoder.…``, ``transformer.…``); for a fused
    kohya module ``diffusers`` is empty and ``parts`` lists (diffusers path, output rows) in row order.
    ``kernel`` is ``()`` for linear layers, ``(kh, kw)`` for convs (``in_features`` is the conv's input
    channels; the flattened input size is ``in_features * kh * kw``).
    """

    kohya: str
    diffusers: str
    out_features: int
    in_features: int
    kernel: tuple[int, ...] = ()
    tags: frozenset[str] = field(default_factory=frozenset)
    parts: tuple[tuple[str, int], ...] = ()

    @property
    def in_flat(self) -> int:
        n = self.in_features
        for k in self.kernel:
            n *= k
        return n

    @property
    def name(self) -> str:
        return self.kohya


@dataclass(frozen=True)
class Architecture:
    """A base model's LoRA-targetable layers (kohya layout) and module presets."""

    name: str
    family: str
    modules: tuple[ModuleSpec, ...]
    presets: dict[str, tuple[frozenset[str], frozenset[str]]]  # name -> (all of, none of) tags

    @cached_property
    def by_kohya(self) -> dict[str, ModuleSpec]:
        return {m.kohya: m for m in self.modules}

    @cached_property
    def by_diffusers(self) -> dict[str, tuple[ModuleSpec, int | None]]:
        """diffusers path -> (kohya-layout spec, part index or None)."""
        out: dict[str, tuple[ModuleSpec, int | None]] = {}
        for m in self.modules:
            if m.parts:
                for i, (name, _rows) in enumerate(m.parts):
                    out[name] = (m, i)
            else:
                out[m.diffusers] = (m, None)
        return out

    def select(self, preset: str) -> tuple[ModuleSpec, ...]:
        """The modules a trainer with this preset trains (kohya layout)."""
        required_any, excluded = self.presets[preset]
        return tuple(m for m in self.modules if m.tags & required_any and not m.tags & excluded)

    def diffusers_layout(self, preset: str = "default") -> tuple[ModuleSpec, ...]:
        """The same modules as separate diffusers layers (fused modules split into their parts)."""
        out: list[ModuleSpec] = []
        for m in self.select(preset):
            if not m.parts:
                out.append(m)
                continue
            for name, rows in m.parts:
                out.append(ModuleSpec("", name, rows, m.in_features, m.kernel, m.tags))
        return tuple(out)


# ----------------------------------------------------------------------------------------------
# Text encoders (HF CLIPTextModel naming).
# ----------------------------------------------------------------------------------------------


def _clip(kohya_prefix: str, diffusers_prefix: str, layers: int, hidden: int, mlp: int, tag: str) -> list[ModuleSpec]:
    out = []
    for i in range(layers):
        base = f"text_model.encoder.layers.{i}"
        for sub, o, n, kind in (
            ("self_attn.q_proj", hidden, hidden, "attn"),
            ("self_attn.k_proj", hidden, hidden, "attn"),
            ("self_attn.v_proj", hidden, hidden, "attn"),
            ("self_attn.out_proj", hidden, hidden, "attn"),
            ("mlp.fc1", mlp, hidden, "ff"),
            ("mlp.fc2", hidden, mlp, "ff"),
        ):
            path = f"{base}.{sub}"
            out.append(ModuleSpec(kohya_prefix + path.replace(".", "_"), f"{diffusers_prefix}.{path}", o, n, (),
                                  frozenset({"te", tag, kind})))
    return out


# ----------------------------------------------------------------------------------------------
# UNets (diffusers UNet2DConditionModel naming, with the sgm names for SDXL's kohya keys).
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _UNetConfig:
    channels: tuple[int, ...]
    down_depth: tuple[int, ...]  # transformer depth per down block (0 = no attention)
    mid_depth: int
    cross_dim: int
    linear_proj: bool
    addition_embed_in: int | None  # SDXL add_embedding input size
    temb: int = 1280
    layers_per_block: int = 2


def _sgm_name(diffusers: str, up_has_attention: tuple[bool, ...]) -> str:
    """diffusers UNet path (no prefix) -> sgm path, for layers_per_block = 2 (written for SDXL)."""
    p = diffusers.split(".")
    resnet_map = {"conv1": "in_layers.2", "conv2": "out_layers.3", "time_emb_proj": "emb_layers.1",
                  "conv_shortcut": "skip_connection"}
    top = {"conv_in": "input_blocks.0.0", "conv_out": "out.2", "time_embedding.linear_1": "time_embed.0",
           "time_embedding.linear_2": "time_embed.2", "add_embedding.linear_1": "label_emb.0.0",
           "add_embedding.linear_2": "label_emb.0.2"}
    if diffusers in top:
        return top[diffusers]
    if p[0] == "down_blocks":
        b = int(p[1])
        if p[2] == "downsamplers":
            return f"input_blocks.{3 + 3 * b}.0.op"
        n = 1 + 3 * b + int(p[3])
        if p[2] == "resnets":
            return f"input_blocks.{n}.0.{resnet_map[p[4]]}"
        return f"input_blocks.{n}.1." + ".".join(p[4:])
    if p[0] == "mid_block":
        if p[1] == "attentions":
            return "middle_block.1." + ".".join(p[3:])
        return f"middle_block.{0 if p[2] == '0' else 2}.{resnet_map[p[3]]}"
    if p[0] == "up_blocks":
        b = int(p[1])
        if p[2] == "upsamplers":
            return f"output_blocks.{3 * b + 2}.{2 if up_has_attention[b] else 1}.conv"
        n = 3 * b + int(p[3])
        if p[2] == "resnets":
            return f"output_blocks.{n}.0.{resnet_map[p[4]]}"
        return f"output_blocks.{n}.1." + ".".join(p[4:])
    raise ValueError(diffusers)


def _transformer_modules(prefix: str, c: int, depth: int, cfg: _UNetConfig) -> list[tuple[str, int, int, tuple, str]]:
    proj_kernel: tuple[int, ...] = () if cfg.linear_proj else (1, 1)
    out = [(f"{prefix}.proj_in", c, c, proj_kernel, "proj")]
    for t in range(depth):
        tb = f"{prefix}.transformer_blocks.{t}"
        out += [
            (f"{tb}.attn1.to_q", c, c, (), "attn"),
            (f"{tb}.attn1.to_k", c, c, (), "attn"),
            (f"{tb}.attn1.to_v", c, c, (), "attn"),
            (f"{tb}.attn1.to_out.0", c, c, (), "attn"),
            (f"{tb}.attn2.to_q", c, c, (), "attn"),
            (f"{tb}.attn2.to_k", c, cfg.cross_dim, (), "attn"),
            (f"{tb}.attn2.to_v", c, cfg.cross_dim, (), "attn"),
            (f"{tb}.attn2.to_out.0", c, c, (), "attn"),
            (f"{tb}.ff.net.0.proj", 8 * c, c, (), "ff"),
            (f"{tb}.ff.net.2", c, 4 * c, (), "ff"),
        ]
    out.append((f"{prefix}.proj_out", c, c, proj_kernel, "proj"))
    return out


def _resnet_modules(prefix: str, cin: int, cout: int, cfg: _UNetConfig) -> list[tuple[str, int, int, tuple, str]]:
    out = [
        (f"{prefix}.conv1", cout, cin, (3, 3), "conv"),
        (f"{prefix}.time_emb_proj", cout, cfg.temb, (), "conv"),
        (f"{prefix}.conv2", cout, cout, (3, 3), "conv"),
    ]
    if cin != cout:
        out.append((f"{prefix}.conv_shortcut", cout, cin, (1, 1), "conv"))
    return out


def _unet(cfg: _UNetConfig, sgm_kohya: bool) -> list[ModuleSpec]:
    rows: list[tuple[str, int, int, tuple, str]] = [("conv_in", cfg.channels[0], 4, (3, 3), "conv")]
    rows += [("time_embedding.linear_1", cfg.temb, cfg.channels[0], (), "conv"),
             ("time_embedding.linear_2", cfg.temb, cfg.temb, (), "conv")]
    if cfg.addition_embed_in:
        rows += [("add_embedding.linear_1", cfg.temb, cfg.addition_embed_in, (), "conv"),
                 ("add_embedding.linear_2", cfg.temb, cfg.temb, (), "conv")]
    n_blocks = len(cfg.channels)
    prev = cfg.channels[0]
    for b, c in enumerate(cfg.channels):
        for j in range(cfg.layers_per_block):
            rows += _resnet_modules(f"down_blocks.{b}.resnets.{j}", prev if j == 0 else c, c, cfg)
            if cfg.down_depth[b]:
                rows += _transformer_modules(f"down_blocks.{b}.attentions.{j}", c, cfg.down_depth[b], cfg)
        if b < n_blocks - 1:
            rows.append((f"down_blocks.{b}.downsamplers.0.conv", c, c, (3, 3), "conv"))
        prev = c
    c_mid = cfg.channels[-1]
    rows += _resnet_modules("mid_block.resnets.0", c_mid, c_mid, cfg)
    rows += _transformer_modules("mid_block.attentions.0", c_mid, cfg.mid_depth, cfg)
    rows += _resnet_modules("mid_block.resnets.1", c_mid, c_mid, cfg)
    rev = list(reversed(cfg.channels))
    up_depth = list(reversed(cfg.down_depth))
    out_c = rev[0]
    for i in range(n_blocks):
        prev_out, out_c = out_c, rev[i]
        in_c = rev[min(i + 1, n_blocks - 1)]
        layers = cfg.layers_per_block + 1
        for j in range(layers):
            skip = in_c if j == layers - 1 else out_c
            res_in = prev_out if j == 0 else out_c
            rows += _resnet_modules(f"up_blocks.{i}.resnets.{j}", res_in + skip, out_c, cfg)
            if up_depth[i]:
                rows += _transformer_modules(f"up_blocks.{i}.attentions.{j}", out_c, up_depth[i], cfg)
        if i < n_blocks - 1:
            rows.append((f"up_blocks.{i}.upsamplers.0.conv", out_c, out_c, (3, 3), "conv"))
    rows.append(("conv_out", 4, cfg.channels[0], (3, 3), "conv"))
    up_has_attention = tuple(bool(d) for d in up_depth)
    specs = []
    for path, o, n, kernel, kind in rows:
        kohya_path = _sgm_name(path, up_has_attention) if sgm_kohya else path
        tags = {"unet", kind}
        if kind in ("attn", "ff", "proj"):
            tags.add("transformer")
        specs.append(ModuleSpec("lora_unet_" + kohya_path.replace(".", "_"), f"unet.{path}", o, n, kernel,
                                frozenset(tags)))
    return specs


_SD15_UNET = _UNetConfig(channels=(320, 640, 1280, 1280), down_depth=(1, 1, 1, 0), mid_depth=1, cross_dim=768,
                         linear_proj=False, addition_embed_in=None)
_SDXL_UNET = _UNetConfig(channels=(320, 640, 1280), down_depth=(0, 2, 10), mid_depth=10, cross_dim=2048,
                         linear_proj=True, addition_embed_in=2816)

_ANY = frozenset({"transformer", "te", "conv", "double", "single", "mod", "attn", "ff"})

SD15 = Architecture(
    "sd15", "sd1",
    tuple(_unet(_SD15_UNET, sgm_kohya=False) + _clip("lora_te_", "text_encoder", 12, 768, 3072, "te1")),
    {
        "default": (frozenset({"transformer", "te"}), frozenset({"conv"})),  # kohya LoRA: 264 modules
        "unet": (frozenset({"transformer"}), frozenset({"conv", "te"})),
        "locon": (frozenset({"transformer", "te", "conv"}), frozenset()),  # + resnet/sampler convs
        "attn": (frozenset({"attn"}), frozenset({"te", "conv"})),
    },
)

SDXL = Architecture(
    "sdxl", "sdxl",
    tuple(_unet(_SDXL_UNET, sgm_kohya=True) + _clip("lora_te1_", "text_encoder", 12, 768, 3072, "te1")
          + _clip("lora_te2_", "text_encoder_2", 32, 1280, 5120, "te2")),
    {
        "default": (frozenset({"transformer"}), frozenset({"conv", "te"})),  # kohya SDXL UNet-only: 722
        "full": (frozenset({"transformer", "te"}), frozenset({"conv"})),  # with both text encoders: 986
        "attn": (frozenset({"attn"}), frozenset({"te", "conv"})),
        "locon": (frozenset({"transformer", "conv"}), frozenset({"te"})),
    },
)

# ----------------------------------------------------------------------------------------------
# Flux.1 (BFL/kohya names, fused; diffusers parts).
# ----------------------------------------------------------------------------------------------


def _flux() -> list[ModuleSpec]:
    h, mlp = 3072, 12288
    specs: list[ModuleSpec] = []
    for i in range(19):
        t = f"transformer.transformer_blocks.{i}"
        for stream, attn_parts, proj, mlp0, mlp2, mod in (
            ("img", ("attn.to_q", "attn.to_k", "attn.to_v"), "attn.to_out.0", "ff.net.0.proj", "ff.net.2",
             "norm1.linear"),
            ("txt", ("attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj"), "attn.to_add_out",
             "ff_context.net.0.proj", "ff_context.net.2", "norm1_context.linear"),
        ):
            k = f"lora_unet_double_blocks_{i}_{stream}"
            tags = {"double", stream}
            specs += [
                ModuleSpec(f"{k}_attn_qkv", "", 3 * h, h, (), frozenset(tags | {"attn"}),
                           tuple((f"{t}.{p}", h) for p in attn_parts)),
                ModuleSpec(f"{k}_attn_proj", f"{t}.{proj}", h, h, (), frozenset(tags | {"attn"})),
                ModuleSpec(f"{k}_mlp_0", f"{t}.{mlp0}", mlp, h, (), frozenset(tags | {"ff"})),
                ModuleSpec(f"{k}_mlp_2", f"{t}.{mlp2}", h, mlp, (), frozenset(tags | {"ff"})),
                ModuleSpec(f"{k}_mod_lin", f"{t}.{mod}", 6 * h, h, (), frozenset(tags | {"mod"})),
            ]
    for i in range(38):
        t = f"transformer.single_transformer_blocks.{i}"
        k = f"lora_unet_single_blocks_{i}"
        specs += [
            ModuleSpec(f"{k}_linear1", "", 3 * h + mlp, h, (), frozenset({"single", "attn", "ff"}),
                       ((f"{t}.attn.to_q", h), (f"{t}.attn.to_k", h), (f"{t}.attn.to_v", h), (f"{t}.proj_mlp", mlp))),
            ModuleSpec(f"{k}_linear2", f"{t}.proj_out", h, h + mlp, (), frozenset({"single", "attn", "ff"})),
            ModuleSpec(f"{k}_modulation_lin", f"{t}.norm.linear", 3 * h, h, (), frozenset({"single", "mod"})),
        ]
    return specs


FLUX = Architecture(
    "flux", "flux",
    tuple(_flux() + _clip("lora_te1_", "text_encoder", 12, 768, 3072, "te1")),
    {
        "default": (frozenset({"double", "single"}), frozenset({"te"})),  # kohya Flux: 304 (494 split)
        "attn": (frozenset({"attn"}), frozenset({"te", "ff", "mod"})),  # attention-only
        "double": (frozenset({"double"}), frozenset({"te"})),
        "te": (frozenset({"double", "single", "te"}), frozenset()),
    },
)

ARCHITECTURES: dict[str, Architecture] = {a.name: a for a in (SD15, SDXL, FLUX)}
