"""Generated "trained-like" LoRA-family files for evaluating the weight fingerprint.

No real LoRA (and no real person) is involved: every file is synthesised from seeds. What makes them
*trained-like* rather than random:

* **kohya-like initialisation.** ``down`` starts as kaiming-uniform noise, U(-1/√in, 1/√in), drawn
  from an *init seed* (sd-scripts seeds torch once, so the same seed, ranks and module list give the
  same initial downs); ``up`` starts at zero and is what training learns. Training moves ``down``
  only a little: the stored down is the init plus a drift of 5-30 % of its size.
* **Decaying singular spectra.** Each layer's ΔW = m · A · W, where W is the orthonormalised row space
  of the final down and A (out x r) has singular values j^(-γ) (γ in [0.8, 1.5] per file), so a half-rank
  SVD resize keeps ~88-99 % of the energy, as with real LoRAs.
* **A shared base component.** LoRAs trained on the same base share gradient directions. Each
  (family, layer) has a fixed rank-4 direction G; a file's A mixes in β·(G projected onto its own
  down's row space), β in [0, 0.55] per file. Two files from the *same init* see G through the same
  row space and are therefore genuinely similar (cosine up to ~0.3): the hard negatives. Files from
  different inits share only the chance overlap of random subspaces.
* **Realistic magnitudes.** ‖ΔW‖ per layer = file scale (log-normal) x a fixed per-layer profile of the
  family x per-file jitter, so merges of two files are unequal mixtures layer by layer.
* **Real keys, shapes, alphas and metadata**: module lists from ``architectures.py``; alpha one of
  1, rank/2, rank; kohya ``ss_*``/``modelspec.*`` metadata with invented subject names.

The up factor is solved so that scale · up · down equals the intended ΔW exactly.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

import numpy as np

from .architectures import ARCHITECTURES, Architecture, ModuleSpec
from .lorafile import LoraFile, fold_scale, rng_for

__all__ = [
    "LoraFile",
    "generate_lora",
    "generate_lycoris",
    "kohya_metadata",
    "rng_for",
]

# ----------------------------------------------------------------------------------------------
# Per-family fixed structure: shared directions and layer magnitude profile.
# ----------------------------------------------------------------------------------------------
_SHARED_RANK = 4
_shared_cache: dict[tuple[str, str, int, int], tuple[np.ndarray, np.ndarray]] = {}
_profile_cache: dict[tuple[str, str], float] = {}
_stack_cache: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
_GROUP_CHUNK = 16  # layers generated together (bounds memory for rank-128 Flux)


def _shared_direction(family: str, name: str, out_f: int, in_f: int) -> tuple[np.ndarray, np.ndarray]:
    """The fixed rank-4 direction G = U·Vᵀ of a layer of a family (U scaled by a decaying spectrum)."""
    key = (family, name, out_f, in_f)
    hit = _shared_cache.get(key)
    if hit is None:
        rng = rng_for("shared", family, name)
        u = _noise(rng, (out_f, _SHARED_RANK), 1.0 / np.sqrt(out_f))
        v = _noise(rng, (in_f, _SHARED_RANK), 1.0 / np.sqrt(in_f))
        u *= np.array([1.0, 0.7, 0.5, 0.35], dtype=np.float32)
        hit = _shared_cache[key] = (u, v)
        if len(_shared_cache) > 20_000:
            _shared_cache.clear()
    return hit


def _layer_profile(family: str, name: str) -> float:
    key = (family, name)
    if key not in _profile_cache:
        _profile_cache[key] = float(np.exp(0.5 * rng_for("profile", family, name).standard_normal()))
    return _profile_cache[key]


def _inv_sqrt_psd(gram: np.ndarray) -> np.ndarray:
    """(G)^(-1/2) for a stack of symmetric positive definite matrices."""
    vals, vecs = np.linalg.eigh(gram.astype(np.float64))
    vals = np.maximum(vals, 1e-12 * np.maximum(vals.max(axis=-1, keepdims=True), 1e-30))
    return ((vecs / np.sqrt(vals)[..., None, :]) @ vecs.transpose(0, 2, 1)).astype(np.float32)


@dataclass(frozen=True)
class _Style:
    """Per-file training "style": decay of the spectrum, shared strength, drift, magnitude."""

    gamma: float
    beta: float
    drift: float
    scale: float

    @classmethod
    def draw(cls, seed: int) -> _Style:
        rng = rng_for("style", seed)
        return cls(gamma=float(rng.uniform(0.8, 1.5)), beta=float(rng.uniform(0.0, 0.55)),
                   drift=float(rng.uniform(0.05, 0.3)), scale=float(np.exp(rng.normal(np.log(0.5), 0.35))))


def _noise(rng: np.random.Generator, shape: tuple[int, int], std: float) -> np.ndarray:
    """Zero-mean uniform noise with the given standard deviation (float32; several times faster than
    normal variates, and the generator only needs independent isotropic-enough directions)."""
    out = rng.random(shape, dtype=np.float32)
    out -= np.float32(0.5)
    out *= np.float32(std * np.sqrt(12.0))
    return out


def _shared_stack(family: str, names: tuple[str, ...], out_f: int, in_f: int) -> tuple[np.ndarray, np.ndarray]:
    key = (family, names, out_f, in_f)
    hit = _stack_cache.get(key)
    if hit is None:
        pairs = [_shared_direction(family, n, out_f, in_f) for n in names]
        hit = _stack_cache[key] = (np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs]))
        if len(_stack_cache) > 2_000:
            _stack_cache.clear()
    return hit


def _trained_group(names: tuple[str, ...], out_f: int, in_f: int, rank: int, *, family: str, seed: int,
                   init_seed: int, style: _Style) -> tuple[np.ndarray, np.ndarray]:
    """(up_eff, down) stacked for same-shaped layers: up_eff[i] · down[i] is layer i's ΔW before the
    alpha/rank scale. Batched over layers because per-layer Python overhead dominated small ranks."""
    n = len(names)
    bound = 1.0 / np.sqrt(in_f)
    d0 = _noise(rng_for("init", init_seed, rank, in_f, "|".join(names)), (n, rank, in_f), bound / np.sqrt(3.0))
    rng = rng_for("train", seed, rank, "|".join(names))
    down = d0 + _noise(rng, (n, rank, in_f), style.drift * bound / np.sqrt(3.0))
    inv_sqrt = _inv_sqrt_psd(down @ down.transpose(0, 2, 1))  # W = inv_sqrt · down: orthonormal rows
    spectrum = np.arange(1, rank + 1, dtype=np.float32) ** np.float32(-style.gamma)
    # independent columns with decaying scales: singular values ~ spectrum (W's basis is already random)
    a = _noise(rng, (n, out_f, rank), 1.0 / np.sqrt(out_f)) * spectrum
    a *= (np.sqrt(1.0 - style.beta**2) / np.maximum(np.linalg.norm(a, axis=(1, 2)), 1e-30)).astype(
        np.float32)[:, None, None]
    if style.beta > 0:
        gu, gv = _shared_stack(family, names, out_f, in_f)
        a_sh = gu @ (inv_sqrt @ (down @ gv)).transpose(0, 2, 1)  # G projected on the row space
        a += a_sh * (style.beta / np.maximum(np.linalg.norm(a_sh, axis=(1, 2)), 1e-30)).astype(
            np.float32)[:, None, None]
    profile = np.array([_layer_profile(family, name) for name in names])
    magnitude = (style.scale * profile * np.exp(0.3 * rng.standard_normal(n))).astype(np.float32)
    up_eff = (magnitude[:, None, None] * a) @ inv_sqrt
    return up_eff.astype(np.float32, copy=False), down


def _alpha_for(rank: int, seed: int) -> float:
    choice = int(rng_for("alpha", seed).integers(3))
    return [1.0, max(rank / 2, 1.0), float(rank)][choice]


def kohya_metadata(arch: Architecture, *, seed: int, rank: int, alpha: float, algo: str = "lora",
                   output_name: str | None = None) -> dict[str, str]:
    """kohya/ModelSpec-like metadata with invented names (never a real person's)."""
    rng = rng_for("meta", seed)
    name = output_name or f"synthetic_subject_{int(rng.integers(10_000)):04d}"
    base = {"sd1": "sd_v1", "sdxl": "sdxl_base_v1-0", "flux": "flux1"}[arch.family]
    spec_arch = {"sd1": "stable-diffusion-v1", "sdxl": "stable-diffusion-xl-v1-base", "flux": "flux-1-dev"}[arch.family]
    module = "networks.lora" if algo == "lora" else "lycoris.kohya"
    started = 1_700_000_000 + int(rng.integers(30_000_000))
    meta = {
        "ss_network_module": module,
        "ss_network_dim": str(rank),
        "ss_network_alpha": str(alpha),
        "ss_output_name": name,
        "ss_base_model_version": base,
        "ss_training_started_at": str(started),
        "ss_session_id": str(int(rng.integers(2**31))),
        "ss_seed": str(seed % 2**31),
        "ss_tag_frequency": json.dumps({f"10_{name} person": {name: 40, "portrait": 12}}),
        "ss_dataset_dirs": json.dumps({f"10_{name} person": {"n_repeats": 10, "img_count": 40}}),
        "sshs_model_hash": hashlib.sha256(f"synthetic-{seed}".encode()).hexdigest(),
        "modelspec.architecture": f"{spec_arch}/lora",
        "modelspec.title": name,
        "modelspec.sai_model_spec": "1.0.0",
    }
    if algo != "lora":
        meta["ss_network_args"] = json.dumps({"algo": algo})
    return meta


def _shape_down(spec: ModuleSpec, down: np.ndarray) -> np.ndarray:
    return down.reshape(down.shape[0], spec.in_features, *spec.kernel) if spec.kernel else down


def _shape_up(spec: ModuleSpec, up: np.ndarray) -> np.ndarray:
    return up.reshape(up.shape[0], up.shape[1], 1, 1) if spec.kernel else up


_RE_BLOCK = re.compile(r"^.*?(?:transformer_blocks|double_blocks|single_blocks|layers)_\d+")


def _block_of(spec: ModuleSpec) -> str:
    name = spec.kohya or spec.diffusers.replace(".", "_")
    m = _RE_BLOCK.match(name)
    return m.group(0) if m else name


def _keep_blocks(specs: tuple[ModuleSpec, ...], fraction: float, seed: int) -> tuple[ModuleSpec, ...]:
    """A random subset of whole blocks (block-wise training, as with kohya block weights)."""
    blocks = sorted({_block_of(s) for s in specs})
    rng = rng_for("blocks", seed)
    chosen = {b for b in blocks if rng.random() < fraction} or {blocks[int(rng.integers(len(blocks)))]}
    return tuple(s for s in specs if _block_of(s) in chosen)


def generate_lora(arch: str | Architecture, *, seed: int, rank: int, init_seed: int | None = None,
                  alpha: float | None = None, preset: str = "default", layout: str = "kohya",
                  dtype: str = "fp16", metadata: bool = True, blocks: float = 1.0) -> LoraFile:
    """A trained-like LoRA (LoCon with preset ``"locon"``) in kohya or diffusers/PEFT layout.

    ``init_seed`` (default: ``seed``) fixes the initial downs: files sharing it are the
    "same initialisation, different data" hard negatives. In PEFT layout Flux fused layers are
    separate modules with their own downs (as ai-toolkit trains them) and alpha is folded in.
    ``blocks`` < 1 keeps a random fraction of whole transformer blocks / encoder layers.
    """
    arch = ARCHITECTURES[arch] if isinstance(arch, str) else arch
    init_seed = seed if init_seed is None else init_seed
    alpha = _alpha_for(rank, seed) if alpha is None else float(alpha)
    style = _Style.draw(seed)
    specs = arch.select(preset) if layout == "kohya" else arch.diffusers_layout(preset)
    if blocks < 1.0:
        specs = _keep_blocks(specs, blocks, seed)
    tensors: dict[str, np.ndarray] = {}
    scale = alpha / rank
    groups: dict[tuple[int, int], list] = {}
    for spec in specs:
        groups.setdefault((spec.out_features, spec.in_flat), []).append(spec)
    for (out_f, in_f), members in sorted(groups.items()):
        for start in range(0, len(members), _GROUP_CHUNK):
            chunk = members[start:start + _GROUP_CHUNK]
            names = tuple(sp.kohya or sp.diffusers for sp in chunk)
            ups, downs = _trained_group(names, out_f, in_f, rank, family=arch.family, seed=seed,
                                        init_seed=init_seed, style=style)
            for spec, up_eff, down in zip(chunk, ups, downs, strict=True):
                if layout == "kohya":
                    tensors[f"{spec.kohya}.lora_down.weight"] = _shape_down(spec, down)
                    tensors[f"{spec.kohya}.lora_up.weight"] = _shape_up(spec, up_eff / np.float32(scale))
                    tensors[f"{spec.kohya}.alpha"] = np.array(alpha, dtype=np.float32)
                elif layout == "peft":
                    up_f, down_f = fold_scale(up_eff / np.float32(scale), down, scale)
                    tensors[f"{spec.diffusers}.lora_A.weight"] = _shape_down(spec, down_f)
                    tensors[f"{spec.diffusers}.lora_B.weight"] = _shape_up(spec, up_f)
                else:
                    raise ValueError(f"unknown layout {layout!r}")
    meta = kohya_metadata(arch, seed=seed, rank=rank, alpha=alpha) if metadata and layout == "kohya" else {}
    if layout == "peft":
        meta = {"format": "pt"} if metadata else {}
    info = {"kind": "lora", "seed": seed, "init_seed": init_seed, "rank": rank, "alpha": alpha, "preset": preset,
            "gamma": style.gamma, "beta": style.beta, "modules": len(specs)}
    return LoraFile(tensors, meta, dtype, arch.name, layout, info)


def generate_lycoris(arch: str | Architecture, *, seed: int, algo: str, rank: int = 8, preset: str = "attn",
                     dtype: str = "fp16", lokr_factor: int = 8) -> LoraFile:
    """A LyCORIS LoHa (``algo="loha"``) or LoKr (``algo="lokr"``) file in kohya naming.

    LoHa: ΔW = (alpha/r)·(w1a·w1b)⊙(w2a·w2b) with decaying column scales. LoKr: w1 a full
    (f x f) block, w2 = w2_a·w2_b of rank r, ΔW = (alpha/r)·kron(w1, w2).
    """
    arch = ARCHITECTURES[arch] if isinstance(arch, str) else arch
    alpha = _alpha_for(rank, seed)
    tensors: dict[str, np.ndarray] = {}
    decay = np.arange(1, rank + 1, dtype=np.float32) ** np.float32(-1.0)
    for spec in arch.select(preset):
        if spec.kernel:
            continue
        rng = rng_for("lycoris", algo, seed, spec.kohya)
        o, n = spec.out_features, spec.in_flat
        if algo == "loha":
            for w in ("w1", "w2"):
                tensors[f"{spec.kohya}.hada_{w}_a"] = (rng.standard_normal((o, rank), dtype=np.float32) * decay
                                                      / np.float32(np.sqrt(o)))
                tensors[f"{spec.kohya}.hada_{w}_b"] = rng.standard_normal((rank, n), dtype=np.float32) / np.float32(
                    np.sqrt(n))
        elif algo == "lokr":
            f = lokr_factor
            if o % f or n % f:
                continue
            tensors[f"{spec.kohya}.lokr_w1"] = rng.standard_normal((f, f), dtype=np.float32)
            tensors[f"{spec.kohya}.lokr_w2_a"] = (rng.standard_normal((o // f, rank), dtype=np.float32) * decay
                                                  / np.float32(np.sqrt(o // f)))
            tensors[f"{spec.kohya}.lokr_w2_b"] = rng.standard_normal((rank, n // f), dtype=np.float32) / np.float32(
                np.sqrt(n // f))
        else:
            raise ValueError(f"unknown LyCORIS algo {algo!r}")
        tensors[f"{spec.kohya}.alpha"] = np.array(alpha, dtype=np.float32)
    meta = kohya_metadata(arch, seed=seed, rank=rank, alpha=alpha, algo=algo)
    info = {"kind": algo, "seed": seed, "rank": rank, "alpha": alpha, "preset": preset}
    return LoraFile(tensors, meta, dtype, arch.name, "lycoris", info)
