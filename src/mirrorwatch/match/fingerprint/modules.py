"""Group a LoRA-family state dict into modules: one weight update ΔW per canonical layer.

A *module* is what a trainer attaches to one layer of the base model: for LoRA/LoCon an ``up``
(out x r) and ``down`` (r x in) factor, an optional Tucker ``mid`` core for conv layers, and an
``alpha`` (default: the rank) giving ``ΔW = (alpha / r) · up · down``; for LoHa four factors with
``ΔW = (alpha/r) · (w1a·w1b) ⊙ (w2a·w2b)``; for LoKr two Kronecker factors (each optionally a
product) with ``ΔW = scale · kron(w1, w2)``; or a stored full difference (``.diff``).

Conv weights (out, in, kh, kw) are flattened to 2-D (out, in·kh·kw) in PyTorch's memory order, so a
1x1 conv and a linear layer of the same size have the same ΔW and the same 2-D shape (SD1.5 stores
``proj_in`` as a 1x1 conv, SDXL as a linear layer).

Fused Flux modules (``img_attn_qkv``, single-block ``linear1``) are split here into their canonical
q/k/v(/mlp) layers: the parts share the down factor and take slices of the up factor's rows, which
is exactly ΔW's row blocks (see ``names.py``).

Structural problems that only a broken or hostile file has (an up without its down, ranks that do
not agree, zero rank, non-finite values, unsupported layouts) raise MalformedFile; keys that are
not LoRA-family tensors at all are ignored and counted.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np

from mirrorwatch.errors import MalformedFile

from .names import IGNORED_ROLES, ParsedKey, Split, parse_key
from .tensors import SafetensorsTensors, check_finite, scalar_value, to_float32

__all__ = ["Module", "ModuleStats", "collect_modules", "group_keys", "iter_modules"]

_LORA_ROLES = {"up", "down", "mid"}
_LOHA_ROLES = {"hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b", "hada_t1", "hada_t2"}
_LOKR_ROLES = {"lokr_w1", "lokr_w1_a", "lokr_w1_b", "lokr_w2", "lokr_w2_a", "lokr_w2_b", "lokr_t2"}


@dataclass(frozen=True)
class Module:
    """One canonical layer's weight update, in factored form (float32, 2-D factors).

    ``kind`` is ``"lora"`` (factors ``up`` (out, r), ``down`` (r, in)), ``"loha"`` (``w1a``, ``w1b``,
    ``w2a``, ``w2b``; or ``w1``, ``w2`` when a Tucker core was folded in), ``"lokr"`` (``w1`` (a, b),
    ``w2`` (c, d·k)) or ``"full"`` (``delta`` (out, in)). ``in_features`` is the flattened input size.
    """

    name: str
    kind: str
    out_features: int
    in_features: int
    rank: int
    alpha: float
    scale: float
    factors: Mapping[str, np.ndarray]
    kernel: tuple[int, ...] = ()
    source: str = ""

    @property
    def shape(self) -> tuple[int, int]:
        return (self.out_features, self.in_features)

    def delta(self) -> np.ndarray:
        """Form ΔW (out, in) as float32. Expensive for big layers; sketching avoids it for LoRA."""
        f = self.factors
        if self.kind == "lora":
            return (self.scale * (f["up"] @ f["down"])).astype(np.float32, copy=False)
        if self.kind == "loha":
            w1 = f["w1"] if "w1" in f else f["w1a"] @ f["w1b"]
            w2 = f["w2"] if "w2" in f else f["w2a"] @ f["w2b"]
            return (self.scale * (w1 * w2)).astype(np.float32, copy=False)
        if self.kind == "lokr":
            return (self.scale * np.kron(f["w1"], f["w2"])).astype(np.float32, copy=False)
        return (self.scale * f["delta"]).astype(np.float32, copy=False)


@dataclass
class ModuleStats:
    """What grouping found besides the modules (reported in fingerprints for reviewers)."""

    modules: int = 0
    kinds: dict[str, int] = field(default_factory=dict)
    split_modules: int = 0
    duplicates: int = 0
    ignored_keys: int = 0
    unknown_keys: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "modules": self.modules,
            "kinds": dict(self.kinds),
            "split_modules": self.split_modules,
            "duplicates": self.duplicates,
            "ignored_keys": self.ignored_keys,
            "unknown_keys": self.unknown_keys,
        }


@dataclass
class _Group:
    raw_module: str
    parsed: ParsedKey
    roles: dict[str, str] = field(default_factory=dict)


def group_keys(keys: list[str] | tuple[str, ...] | Iterator[str],
               stats: ModuleStats | None = None) -> list[_Group]:
    """Group tensor keys by raw module; one group per canonical module (first raw module wins)."""
    stats = stats if stats is not None else ModuleStats()
    by_raw: dict[str, _Group] = {}
    for key in sorted(keys):
        parsed = parse_key(key)
        if parsed is None:
            stats.unknown_keys += 1
            continue
        if parsed.role in IGNORED_ROLES:
            stats.ignored_keys += 1
            continue
        group = by_raw.get(parsed.raw_module)
        if group is None:
            group = by_raw[parsed.raw_module] = _Group(parsed.raw_module, parsed)
        if parsed.role in group.roles:
            stats.duplicates += 1
            continue
        group.roles[parsed.role] = key
    groups: list[_Group] = []
    seen: set[str] = set()
    for raw in sorted(by_raw):
        group = by_raw[raw]
        if set(group.roles) <= {"alpha"}:
            stats.ignored_keys += len(group.roles)
            continue
        if group.parsed.module in seen:
            stats.duplicates += 1
            continue
        seen.add(group.parsed.module)
        groups.append(group)
    return groups


def _get(tensors: Mapping[str, np.ndarray], key: str, checked: bool) -> np.ndarray:
    arr = to_float32(tensors[key], name=f"tensor {key!r}")
    if not checked:
        check_finite(arr, name=f"tensor {key!r}")
    return arr


def _flat(arr: np.ndarray) -> np.ndarray:
    return arr.reshape(arr.shape[0], -1) if arr.ndim != 2 else arr


def _alpha(group: _Group, tensors: Mapping[str, np.ndarray], checked: bool, default: float) -> float:
    """The module's alpha: a float or integer scalar (diffusers' kohya conversion writes int64), 0-dim
    or a 1-element vector; the rank when the file has none."""
    key = group.roles.get("alpha")
    if key is None:
        return float(default)
    where = f"module {group.raw_module!r}: alpha"
    if isinstance(tensors, SafetensorsTensors):
        return tensors.scalar(key, label=where)
    return scalar_value(tensors[key], name=where)


def _bad(group: _Group, reason: str) -> MalformedFile:
    return MalformedFile(f"module {group.raw_module!r}: {reason}")


def _build_lora(group: _Group, t: Mapping[str, np.ndarray], checked: bool) -> Module:
    roles = group.roles
    if "up" not in roles or "down" not in roles:
        missing = "up" if "up" not in roles else "down"
        raise _bad(group, f"LoRA factor '{missing}' is missing")
    up, down = _get(t, roles["up"], checked), _get(t, roles["down"], checked)
    if up.ndim not in (2, 4) or down.ndim not in (2, 4):
        raise _bad(group, f"factors must be 2-D or 4-D, got up {up.shape} and down {down.shape}")
    if up.ndim == 4 and up.shape[2:] != (1, 1):
        raise _bad(group, f"unsupported conv layout: up has kernel {up.shape[2:]}")
    up2 = _flat(up)
    rank = up2.shape[1]
    kernel: tuple[int, ...] = tuple(down.shape[2:]) if down.ndim == 4 else ()
    if "mid" in roles:  # LoCon with a Tucker core: mid (r_up, r_down, kh, kw), down (r_down, in, 1, 1)
        mid = _get(t, roles["mid"], checked)
        if mid.ndim != 4 or down.ndim != 4 or down.shape[2:] != (1, 1):
            raise _bad(group, f"unsupported Tucker layout: mid {mid.shape}, down {down.shape}")
        if mid.shape[0] != rank or mid.shape[1] != down.shape[0]:
            raise _bad(group, f"Tucker ranks disagree: up {up.shape}, mid {mid.shape}, down {down.shape}")
        kernel = tuple(mid.shape[2:])
        k = kernel[0] * kernel[1]
        d2 = down.reshape(down.shape[0], down.shape[1])
        # D_eff[a, i, p] = sum_b mid[a, b, p] * down[b, i]  -> (r, in * kh * kw) in PyTorch order
        down_eff = np.einsum("abp,bi->aip", mid.reshape(mid.shape[0], mid.shape[1], k), d2, optimize=True)
        down2 = np.ascontiguousarray(down_eff.reshape(rank, -1), dtype=np.float32)
    else:
        down2 = _flat(down)
    if rank == 0 or down2.shape[0] == 0:
        raise _bad(group, "zero rank")
    if down2.shape[0] != rank:
        raise _bad(group, f"ranks disagree: up {up.shape} has rank {rank}, down {down.shape} has {down.shape[0]}")
    if up2.shape[0] == 0 or down2.shape[1] == 0:
        raise _bad(group, f"empty layer: up {up.shape}, down {down.shape}")
    alpha = _alpha(group, t, checked, rank)
    return Module(group.parsed.module, "lora", up2.shape[0], down2.shape[1], rank, alpha, alpha / rank,
                  {"up": up2, "down": down2}, kernel, group.raw_module)


def _tucker(t: np.ndarray, wa: np.ndarray, wb: np.ndarray) -> np.ndarray:
    """LyCORIS Tucker rebuild: einsum('i j k l, j r, i p -> p r k l', t, wb, wa) flattened to 2-D."""
    full = np.einsum("ijkl,jr,ip->prkl", t, wb, wa, optimize=True)
    return full.reshape(full.shape[0], -1).astype(np.float32, copy=False)


def _build_loha(group: _Group, t: Mapping[str, np.ndarray], checked: bool) -> Module:
    roles = group.roles
    need = ("hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b")
    missing = [r for r in need if r not in roles]
    if missing:
        raise _bad(group, f"LoHa factor '{missing[0]}' is missing")
    w1a, w1b, w2a, w2b = (_get(t, roles[r], checked) for r in need)
    rank = w1b.shape[0] if w1b.ndim >= 1 else 0
    if rank == 0 or w1a.size == 0 or w2a.size == 0:
        raise _bad(group, "zero rank")
    factors: dict[str, np.ndarray]
    try:
        if "hada_t1" in roles or "hada_t2" in roles:
            if "hada_t1" not in roles or "hada_t2" not in roles:
                raise _bad(group, "LoHa Tucker core 'hada_t1'/'hada_t2' is missing")
            t1, t2 = _get(t, roles["hada_t1"], checked), _get(t, roles["hada_t2"], checked)
            w1, w2 = _tucker(t1, w1a, w1b), _tucker(t2, w2a, w2b)
            if w1.shape != w2.shape:
                raise _bad(group, "LoHa factors describe different layer shapes")
            kernel = tuple(t1.shape[2:])
            factors = {"w1": w1, "w2": w2}
            out_f, in_f = w1.shape
        else:
            w1a2, w1b2, w2a2, w2b2 = _flat(w1a), _flat(w1b), _flat(w2a), _flat(w2b)
            if w1a2.shape[1] != w1b2.shape[0] or w2a2.shape[1] != w2b2.shape[0]:
                raise _bad(group, "LoHa ranks disagree")
            out_f, in_f = w1a2.shape[0], w1b2.shape[1]
            if (w2a2.shape[0], w2b2.shape[1]) != (out_f, in_f):
                raise _bad(group, "LoHa factors describe different layer shapes")
            kernel = ()
            factors = {"w1a": w1a2, "w1b": w1b2, "w2a": w2a2, "w2b": w2b2}
    except ValueError as exc:  # einsum shape mismatch
        raise _bad(group, f"LoHa factor shapes do not fit together ({exc})") from None
    alpha = _alpha(group, t, checked, rank)
    return Module(group.parsed.module, "loha", out_f, in_f, rank, alpha, alpha / rank, factors, kernel,
                  group.raw_module)


def _build_lokr(group: _Group, t: Mapping[str, np.ndarray], checked: bool) -> Module:
    roles = group.roles
    rank = 0
    try:
        if "lokr_w1" in roles:
            w1 = _flat(_get(t, roles["lokr_w1"], checked))
        elif "lokr_w1_a" in roles and "lokr_w1_b" in roles:
            a, b = _get(t, roles["lokr_w1_a"], checked), _get(t, roles["lokr_w1_b"], checked)
            rank = b.shape[0]
            w1 = _flat(a) @ _flat(b)
        else:
            raise _bad(group, "LoKr factor 'lokr_w1' is missing")
        kernel: tuple[int, ...] = ()
        if "lokr_w2" in roles:
            w2_raw = _get(t, roles["lokr_w2"], checked)
            kernel = tuple(w2_raw.shape[2:])
            w2 = _flat(w2_raw)
        elif "lokr_w2_a" in roles and "lokr_w2_b" in roles:
            a, b = _get(t, roles["lokr_w2_a"], checked), _get(t, roles["lokr_w2_b"], checked)
            rank = rank or b.shape[0]
            if "lokr_t2" in roles:
                t2 = _get(t, roles["lokr_t2"], checked)
                kernel = tuple(t2.shape[2:])
                w2 = _tucker(t2, a, b)
            else:
                kernel = tuple(b.shape[2:])
                w2 = _flat(a) @ _flat(b)
        else:
            raise _bad(group, "LoKr factor 'lokr_w2' is missing")
    except ValueError as exc:
        raise _bad(group, f"LoKr factor shapes do not fit together ({exc})") from None
    if w1.size == 0 or w2.size == 0 or ("lokr_w1_b" in roles and rank == 0):
        raise _bad(group, "zero rank")
    out_f, in_f = w1.shape[0] * w2.shape[0], w1.shape[1] * w2.shape[1]
    # LyCORIS scales by alpha / rank only when a factor is decomposed; with both factors full, 1.
    if rank:
        alpha = _alpha(group, t, checked, rank)
        scale = alpha / rank
    else:
        alpha, scale = 1.0, 1.0
    return Module(group.parsed.module, "lokr", out_f, in_f, rank, alpha, scale, {"w1": w1, "w2": w2}, kernel,
                  group.raw_module)


def _build_full(group: _Group, t: Mapping[str, np.ndarray], checked: bool) -> Module:
    delta = _get(t, group.roles["diff"], checked)
    if delta.ndim < 2:
        raise _bad(group, f"weight difference has shape {delta.shape}, expected at least 2-D")
    d2 = _flat(delta)
    if d2.size == 0:
        raise _bad(group, "empty layer")
    return Module(group.parsed.module, "full", d2.shape[0], d2.shape[1], 0, 1.0, 1.0, {"delta": d2},
                  tuple(delta.shape[2:]), group.raw_module)


def _build(group: _Group, tensors: Mapping[str, np.ndarray], checked: bool) -> Module:
    roles = set(group.roles) - {"alpha"}
    if roles <= _LORA_ROLES:
        return _build_lora(group, tensors, checked)
    if roles <= _LOHA_ROLES:
        return _build_loha(group, tensors, checked)
    if roles <= _LOKR_ROLES:
        return _build_lokr(group, tensors, checked)
    if roles == {"diff"}:
        return _build_full(group, tensors, checked)
    raise _bad(group, f"mixes tensors of different module types ({', '.join(sorted(roles))})")


def _swap_rows(arr: np.ndarray) -> np.ndarray:
    half = arr.shape[0] // 2
    return np.concatenate([arr[half:], arr[:half]], axis=0)


def _apply_layout(module: Module, split: Split | None, swap: bool, stats: ModuleStats) -> list[Module]:
    """Swap BFL halves and cut fused modules into their canonical parts."""
    if swap and module.out_features % 2 == 0:
        if module.kind == "lora":
            factors = {"up": _swap_rows(module.factors["up"]), "down": module.factors["down"]}
            module = Module(module.name, "lora", module.out_features, module.in_features, module.rank,
                            module.alpha, module.scale, factors, module.kernel, module.source)
        else:
            module = Module(module.name, "full", module.out_features, module.in_features, 0, 1.0, 1.0,
                            {"delta": _swap_rows(module.delta())}, module.kernel, module.source)
    if split is None:
        return [module]
    ranges = split.row_ranges(module.out_features, module.in_features)
    if ranges is None:  # the shape does not fit the fused layout: keep it whole under its own name
        return [module]
    stats.split_modules += 1
    parts: list[Module] = []
    delta = None if module.kind == "lora" else module.delta()
    for name, (a, b) in zip(split.parts, ranges, strict=True):
        if delta is None:
            factors = {"up": module.factors["up"][a:b], "down": module.factors["down"]}
            parts.append(Module(name, "lora", b - a, module.in_features, module.rank, module.alpha,
                                module.scale, factors, module.kernel, module.source))
        else:
            parts.append(Module(name, "full", b - a, module.in_features, 0, 1.0, 1.0,
                                {"delta": delta[a:b]}, module.kernel, module.source))
    return parts


def iter_modules(tensors: Mapping[str, np.ndarray], stats: ModuleStats | None = None) -> Iterator[Module]:
    """Yield the canonical modules of a state dict, reading each module's tensors only when needed.

    ``tensors`` maps keys to float arrays (float16/32/64; decode bfloat16 bits first with
    ``tensors.bf16_bits_to_float32``) or is a lazy :class:`~.tensors.SafetensorsTensors`.
    """
    stats = stats if stats is not None else ModuleStats()
    checked = isinstance(tensors, SafetensorsTensors) and tensors.rejects_nonfinite
    for group in group_keys(list(tensors.keys()), stats):
        module = _build(group, tensors, checked)
        for part in _apply_layout(module, group.parsed.split, group.parsed.swap_halves, stats):
            stats.modules += 1
            stats.kinds[part.kind] = stats.kinds.get(part.kind, 0) + 1
            yield part


def collect_modules(tensors: Mapping[str, np.ndarray]) -> tuple[dict[str, Module], ModuleStats]:
    """All canonical modules of a state dict, keyed by canonical name, with grouping statistics."""
    stats = ModuleStats()
    modules: dict[str, Module] = {}
    for module in iter_modules(tensors, stats):
        if module.name in modules:  # a split part colliding with an unfused layer of the same name
            stats.duplicates += 1
            continue
        modules[module.name] = module
    return modules, stats
