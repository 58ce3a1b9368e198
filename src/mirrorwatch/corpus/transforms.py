"""The changes re-uploaders make to a LoRA file, as functions LoraFile -> LoraFile.

One function per row of the "which signal survives which change" table in DESIGN.md:

=====================  ============================================================================
``rename_file``        copy the file under a new name (bytes identical)
``edit_metadata``      change/add ``ss_*``/``modelspec.*`` fields, reorder (weights identical)
``strip_metadata``     drop all metadata but ``{"format": "pt"}`` (weights identical)
``convert_dtype``      re-save as fp32, fp16 or bf16
``kohya_to_peft``      kohya keys -> diffusers/PEFT keys (``lora_A``/``lora_B``), alpha folded into the
                       factors; Flux fused qkv / linear1 split into parts sharing the down
``peft_to_kohya``      diffusers/PEFT keys -> kohya keys with ``alpha = rank``; Flux parts fused (block-
                       diagonal when their downs differ)
``kohya_int_alpha``    the diffusers round trip: to diffusers/PEFT keys, then back to kohya keys with
                       ``alpha = rank`` as an int64 scalar, as diffusers' ``convert_state_dict_to_kohya``
                       writes it
``refactor``           up·M, M⁻¹·down with a random well-conditioned M (cond(M) <= e); ΔW unchanged
``resize_half``        rank r -> r/2 by the SVD of ΔW (computed from the factors, exact)
``merge``              0.5·ΔW_a + 0.5·ΔW_b, represented by concatenating the factors
=====================  ============================================================================

Plus :func:`write_safetensors`, a minimal writer that can store bfloat16 (numpy has no bfloat16 type;
values are rounded to nearest even through their bit patterns).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from .architectures import ARCHITECTURES
from .lorafile import DTYPES, LoraFile, fold_scale, rng_for
from .lorafile import write_safetensors as write_safetensors  # re-exported (the package lists the names)

# ----------------------------------------------------------------------------------------------
# Byte- and metadata-level changes.
# ----------------------------------------------------------------------------------------------


def rename_file(src: str | Path, dst: str | Path) -> Path:
    """The re-upload under a generic name: same bytes, new file name."""
    return Path(shutil.copyfile(src, dst))


def edit_metadata(lf: LoraFile, seed: int = 0) -> LoraFile:
    """Change the training name, add a comment, drop the embedded hashes, shuffle field order."""
    rng = rng_for("edit-meta", seed)
    meta = {k: v for k, v in lf.metadata.items() if not k.startswith("sshs_")}
    meta["ss_output_name"] = "LORA"
    meta["modelspec.title"] = "Test model"
    meta["ss_training_comment"] = f"reupload {int(rng.integers(1000))}"
    keys = list(meta)
    rng.shuffle(keys)
    return LoraFile(dict(lf.tensors), {k: meta[k] for k in keys}, lf.dtype, lf.arch, lf.layout, dict(lf.info))


def strip_metadata(lf: LoraFile) -> LoraFile:
    return LoraFile(dict(lf.tensors), {"format": "pt"}, lf.dtype, lf.arch, lf.layout, dict(lf.info))


def convert_dtype(lf: LoraFile, dtype: str) -> LoraFile:
    """Re-save in another precision (values are rounded when written)."""
    if dtype not in DTYPES:
        raise ValueError(dtype)
    return LoraFile(dict(lf.tensors), dict(lf.metadata), dtype, lf.arch, lf.layout, dict(lf.info))


# ----------------------------------------------------------------------------------------------
# Key-format conversions.
# ----------------------------------------------------------------------------------------------

_KOHYA_SUFFIX = {".lora_down.weight": "down", ".lora_up.weight": "up", ".alpha": "alpha"}
_PEFT_SUFFIX = {".lora_A.weight": "down", ".lora_B.weight": "up"}


def _split_kohya(tensors: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    mods: dict[str, dict[str, np.ndarray]] = {}
    for key, value in tensors.items():
        for suffix, role in _KOHYA_SUFFIX.items():
            if key.endswith(suffix):
                mods.setdefault(key[: -len(suffix)], {})[role] = np.asarray(value, dtype=np.float32)
                break
        else:
            raise ValueError(f"not a kohya LoRA key: {key}")
    return mods


def _split_peft(tensors: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    mods: dict[str, dict[str, np.ndarray]] = {}
    for key, value in tensors.items():
        for suffix, role in _PEFT_SUFFIX.items():
            if key.endswith(suffix):
                mods.setdefault(key[: -len(suffix)], {})[role] = np.asarray(value, dtype=np.float32)
                break
        else:
            raise ValueError(f"not a PEFT LoRA key: {key}")
    return mods


def _scale(parts: dict[str, np.ndarray]) -> float:
    rank = parts["down"].shape[0]
    alpha = float(parts["alpha"].reshape(-1)[0]) if "alpha" in parts else float(rank)
    return alpha / rank


def kohya_to_peft(lf: LoraFile) -> LoraFile:
    """kohya -> diffusers/PEFT keys (``unet.…``, ``text_encoder.…``, ``transformer.…``), no alpha."""
    arch = ARCHITECTURES[lf.arch]
    out: dict[str, np.ndarray] = {}
    for name, parts in _split_kohya(lf.tensors).items():
        spec = arch.by_kohya[name]
        up, down = fold_scale(parts["up"], parts["down"], _scale(parts))
        if not spec.parts:
            out[f"{spec.diffusers}.lora_A.weight"] = down
            out[f"{spec.diffusers}.lora_B.weight"] = up
            continue
        start = 0
        for part_name, rows in spec.parts:
            out[f"{part_name}.lora_A.weight"] = down.copy()
            out[f"{part_name}.lora_B.weight"] = up[start:start + rows].copy()
            start += rows
    return LoraFile(out, {"format": "pt"}, lf.dtype, lf.arch, "peft", dict(lf.info))


def peft_to_kohya(lf: LoraFile, *, int_alpha: bool = False) -> LoraFile:
    """diffusers/PEFT -> kohya keys with ``alpha = rank``; Flux parts are fused into one module.
    ``int_alpha`` stores each alpha as an int64 scalar (diffusers' ``convert_state_dict_to_kohya``:
    ``torch.tensor(len(weight))``) instead of a float."""

    def alpha(rank: int) -> np.ndarray:
        return np.array(rank, dtype=np.int64) if int_alpha else np.array(float(rank), dtype=np.float32)

    arch = ARCHITECTURES[lf.arch]
    out: dict[str, np.ndarray] = {}
    fused: dict[str, dict[int, dict[str, np.ndarray]]] = {}
    for name, parts in _split_peft(lf.tensors).items():
        spec, index = arch.by_diffusers[name]
        if index is None:
            rank = parts["down"].shape[0]
            out[f"{spec.kohya}.lora_down.weight"] = parts["down"]
            out[f"{spec.kohya}.lora_up.weight"] = parts["up"]
            out[f"{spec.kohya}.alpha"] = alpha(rank)
        else:
            fused.setdefault(spec.kohya, {})[index] = parts
    for kohya, by_index in fused.items():
        spec = arch.by_kohya[kohya]
        present = [by_index[i] for i in sorted(by_index)]
        downs = [p["down"] for p in present]
        in_flat = downs[0].reshape(downs[0].shape[0], -1).shape[1]
        if len(present) == len(spec.parts) and all(np.array_equal(d, downs[0]) for d in downs[1:]):
            down = downs[0]
            up = np.concatenate([p["up"] for p in present], axis=0)
        else:  # block-diagonal: each part keeps its own down rows
            down = np.concatenate(downs, axis=0) if downs else np.zeros((0, in_flat), np.float32)
            total_rank = down.shape[0]
            up = np.zeros((sum(rows for _n, rows in spec.parts), total_rank), dtype=np.float32)
            row, col = 0, 0
            for i, (_part, rows) in enumerate(spec.parts):
                if i in by_index:
                    r = by_index[i]["down"].shape[0]
                    up[row:row + rows, col:col + r] = by_index[i]["up"].reshape(rows, r)
                    col += r
                row += rows
        out[f"{kohya}.lora_down.weight"] = down
        out[f"{kohya}.lora_up.weight"] = up
        out[f"{kohya}.alpha"] = alpha(down.shape[0])
    return LoraFile(out, {}, lf.dtype, lf.arch, "kohya", dict(lf.info))


def kohya_int_alpha(lf: LoraFile) -> LoraFile:
    """The diffusers round trip a kohya or PEFT LoRA goes through to come back as an A1111/ComfyUI file:
    diffusers/PEFT keys (alpha folded in), then kohya keys with int64 ``alpha = rank`` (diffusers'
    ``convert_state_dict_to_kohya``). No metadata, as ``save_file`` there is called without any."""
    peft = kohya_to_peft(lf) if lf.layout == "kohya" else lf
    return peft_to_kohya(peft, int_alpha=True)


# ----------------------------------------------------------------------------------------------
# Factor-level changes.
# ----------------------------------------------------------------------------------------------


def _well_conditioned(rank: int, rng: np.random.Generator) -> np.ndarray:
    q1, _ = np.linalg.qr(rng.standard_normal((rank, rank)))
    q2, _ = np.linalg.qr(rng.standard_normal((rank, rank)))
    return (q1 * np.exp(rng.uniform(-0.5, 0.5, rank))) @ q2


def _pairs(lf: LoraFile) -> list[tuple[str, str]]:
    """(up key, down key) of every plain LoRA module in either layout."""
    pairs = []
    for key in lf.tensors:
        if key.endswith(".lora_down.weight"):
            pairs.append((key[: -len("down.weight")] + "up.weight", key))
        elif key.endswith(".lora_A.weight"):
            pairs.append((key[: -len("A.weight")] + "B.weight", key))
    return pairs


def refactor(lf: LoraFile, seed: int = 0) -> LoraFile:
    """up·M, M⁻¹·down per module (LoHa: on both Hadamard factors); ΔW is unchanged."""
    rng = rng_for("refactor", seed)
    out = dict(lf.tensors)
    pairs = _pairs(lf)
    for w in ("w1", "w2"):
        pairs += [(k, k[:-1] + "b") for k in lf.tensors if k.endswith(f".hada_{w}_a")]
    for up_key, down_key in pairs:
        up, down = np.asarray(out[up_key], np.float64), np.asarray(out[down_key], np.float64)
        r = down.shape[0]
        m = _well_conditioned(r, rng)
        up2 = up.reshape(up.shape[0], r) @ m
        down2 = np.linalg.solve(m, down.reshape(r, -1))
        out[up_key] = up2.reshape(up.shape).astype(np.float32)
        out[down_key] = down2.reshape(down.shape).astype(np.float32)
    return LoraFile(out, dict(lf.metadata), lf.dtype, lf.arch, lf.layout, dict(lf.info))


def resize_half(lf: LoraFile) -> LoraFile:
    """Rank r -> r // 2 per module by the truncated SVD of ΔW (kohya ``resize_lora`` style alpha)."""
    out: dict[str, np.ndarray] = {}
    handled: set[str] = set()
    for up_key, down_key in _pairs(lf):
        base = down_key[: -len(".lora_down.weight")] if down_key.endswith(".lora_down.weight") else None
        up, down = np.asarray(lf.tensors[up_key], np.float64), np.asarray(lf.tensors[down_key], np.float64)
        r = down.shape[0]
        alpha_key = f"{base}.alpha" if base else None
        scale = float(np.asarray(lf.tensors[alpha_key]).reshape(-1)[0]) / r if alpha_key in lf.tensors else 1.0
        up2, down2 = up.reshape(up.shape[0], r), down.reshape(r, -1)
        qu, ru = np.linalg.qr(up2)
        qd, rd = np.linalg.qr(down2.T)
        u, s, vt = np.linalg.svd(ru @ rd.T, full_matrices=False)
        h = min(max(r // 2, 1), len(s))  # a rank above min(out, in) (LoCon conv_out) has fewer values
        root = np.sqrt(s[:h])
        new_up = (qu @ u[:, :h]) * root  # = ΔW's top-h factors / scale
        new_down = (root[:, None] * vt[:h]) @ qd.T
        out[up_key] = new_up.reshape(up.shape[0], h, *up.shape[2:]).astype(np.float32)
        out[down_key] = new_down.reshape(h, *down.shape[1:]).astype(np.float32)
        handled |= {up_key, down_key}
        if alpha_key in lf.tensors:
            out[alpha_key] = np.array(scale * h, dtype=np.float32)
            handled.add(alpha_key)
    for key, value in lf.tensors.items():
        if key not in handled:
            out[key] = value
    info = dict(lf.info, rank=max(int(lf.info.get("rank", 2)) // 2, 1))
    return LoraFile(out, dict(lf.metadata), lf.dtype, lf.arch, lf.layout, info)


def merge(a: LoraFile, b: LoraFile, weight: float = 0.5) -> LoraFile:
    """weight·ΔW_a + (1-weight)·ΔW_b as one kohya LoRA with concatenated factors (alpha = total rank)."""
    if a.layout != "kohya" or b.layout != "kohya" or a.arch != b.arch:
        raise ValueError("merge takes two kohya-layout files of the same architecture")
    ma, mb = _split_kohya(a.tensors), _split_kohya(b.tensors)
    out: dict[str, np.ndarray] = {}
    for name in sorted(set(ma) | set(mb)):
        ups, downs = [], []
        for mods, w in ((ma, weight), (mb, 1.0 - weight)):
            if name in mods:
                p = mods[name]
                r = p["down"].shape[0]
                ups.append(p["up"].reshape(p["up"].shape[0], r, *p["up"].shape[2:]) * np.float32(w * _scale(p)))
                downs.append(p["down"])
        up = np.concatenate(ups, axis=1)
        down = np.concatenate(downs, axis=0)
        out[f"{name}.lora_up.weight"] = up
        out[f"{name}.lora_down.weight"] = down
        out[f"{name}.alpha"] = np.array(float(down.shape[0]), dtype=np.float32)
    info = {"kind": "merge", "of": [a.info.get("seed"), b.info.get("seed")], "weight": weight}
    return LoraFile(out, dict(a.metadata), a.dtype, a.arch, "kohya", info)


#: Transformations by name, as (function of (LoraFile, seed) -> LoraFile, expected verdict).
#: ``rename`` is a file-level copy (see :func:`rename_file`); merge needs a partner file.
TRANSFORMS: dict[str, tuple[object, str]] = {
    "rename": (None, "same_weights"),
    "metadata_edit": (lambda lf, seed: edit_metadata(lf, seed), "same_weights"),
    "metadata_strip": (lambda lf, seed: strip_metadata(lf), "same_weights"),
    "to_fp32": (lambda lf, seed: convert_dtype(lf, "fp32"), "same_weights"),
    "to_fp16": (lambda lf, seed: convert_dtype(lf, "fp16"), "same_weights"),
    "to_bf16": (lambda lf, seed: convert_dtype(lf, "bf16"), "same_weights"),
    "key_format": (lambda lf, seed: kohya_to_peft(lf) if lf.layout == "kohya" else peft_to_kohya(lf), "same_weights"),
    "refactor": (lambda lf, seed: refactor(lf, seed), "same_weights"),
    "kohya_int_alpha": (lambda lf, seed: kohya_int_alpha(lf), "same_weights"),
    "resize_half": (lambda lf, seed: resize_half(lf), "derived"),
    "merge_50_50": (None, "derived"),
}
