"""Sketches of ΔW by fixed random projections, and the Fingerprint object built from them.

For a layer with weight update ΔW (out x in) the sketch is the k x k matrix

    S = R_outᵀ · ΔW · R_in,         R_out: (out, k), R_in: (in, k)

with R a fixed pseudo-random sign matrix (entries ±1/√k) that depends only on (dimension, side,
k, seed). Two files sketched with the same (k, seed) are comparable: the Frobenius inner product of
two sketches is an unbiased estimate of that of the ΔWs (E[R Rᵀ] = I), so the cosine of sketches
estimates the cosine of the updates with a spread of about 1/k for unrelated layers, and is 1 when
ΔW is the same — whatever the factorisation, key format or dtype the file used.

For plain LoRA we never form ΔW: S = scale · (R_outᵀ·up) · (down·R_in) costs k·r·(out+in) operations
instead of out·in·r. LoHa and LoKr are formed (their ΔW is not a low-rank product).

The sign matrices come from BLAKE3 in XOF mode over a label naming (dimension, side, k, seed), so they
are the same on every machine and every numpy version forever (numpy's Generator streams for normal
variates carry no such promise) — fingerprints stored years ago stay comparable.

A :class:`Fingerprint` holds, per canonical layer, the unit-norm sketch (rounded to float16, the
storage precision), the layer's ΔW norm (estimated from the sketch) and shape; plus a fixed-size,
L2-normalised *file vector* for the nearest-neighbour index (see :func:`file_vector`).
"""

from __future__ import annotations

import functools
import json
import math
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

import blake3
import numpy as np

from mirrorwatch.errors import MalformedFile

from .modules import Module

__all__ = [
    "DEFAULT_K",
    "DEFAULT_SEED",
    "FILE_VECTOR_DIM",
    "FORMAT_VERSION",
    "Fingerprint",
    "LayerSketch",
    "file_vector",
    "projection",
    "sketch_module",
]

#: Sketch side: each layer becomes a k x k matrix (256 numbers, 512 bytes stored as float16).
DEFAULT_K = 16
#: Seed of the projection matrices. Changing it makes old fingerprints incomparable.
DEFAULT_SEED = 0x6D77  # "mw"
#: Dimension of the file-level vector used by the nearest-neighbour index.
FILE_VECTOR_DIM = 256
#: Version of the binary format written by :meth:`Fingerprint.to_bytes`.
FORMAT_VERSION = 1

_MAGIC = b"MWFP"
_FIXED = struct.Struct("<4sBBHIII")  # magic, version, k, reserved, n_layers, vector_dim, json_len
_MAX_LAYERS = 200_000
_MAX_JSON = 64 * 1024 * 1024


def _signs(label: str, rows: int, cols: int, scale: float) -> np.ndarray:
    n = rows * cols
    stream = blake3.blake3(label.encode("ascii")).digest(length=(n + 7) // 8)
    bits = np.unpackbits(np.frombuffer(stream, dtype=np.uint8), bitorder="little")[:n]
    out = (1.0 - 2.0 * bits.astype(np.float32)).reshape(rows, cols) * np.float32(scale)
    out.setflags(write=False)
    return out


@functools.lru_cache(maxsize=512)
def projection(dim: int, side: str = "out", k: int = DEFAULT_K, seed: int = DEFAULT_SEED) -> np.ndarray:
    """The (dim, k) float32 sign matrix for one side ("out" or "in") of a layer; cached, read-only."""
    if side not in ("out", "in"):
        raise ValueError(f"side must be 'out' or 'in', not {side!r}")
    return _signs(f"mirrorwatch/sketch/v1/{side}/{dim}/{k}/{seed}", dim, k, 1.0 / math.sqrt(k))


@functools.lru_cache(maxsize=512)
def _vector_projection(out_features: int, in_features: int, k: int, seed: int, dim: int) -> np.ndarray:
    """(k*k, dim) sign matrix mapping a layer sketch into the file vector; one per layer shape."""
    return _signs(f"mirrorwatch/filevec/v1/{out_features}x{in_features}/{k}/{seed}/{dim}", k * k, dim,
                  1.0 / math.sqrt(dim))


def sketch_module(module: Module, k: int = DEFAULT_K, seed: int = DEFAULT_SEED) -> np.ndarray:
    """S = R_outᵀ · ΔW · R_in as a (k, k) float32 array (ΔW not formed for plain LoRA)."""
    r_out = projection(module.out_features, "out", k, seed)
    r_in = projection(module.in_features, "in", k, seed)
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is detected just below
        if module.kind == "lora":
            left = r_out.T @ module.factors["up"]  # (k, r)
            right = module.factors["down"] @ r_in  # (r, k)
            s = np.float32(module.scale) * (left @ right)
        else:
            s = r_out.T @ module.delta() @ r_in
    s = np.asarray(s, dtype=np.float32)
    if not np.isfinite(s).all():
        raise MalformedFile(f"module {module.source or module.name!r}: values overflow float32")
    return s


def file_vector(shapes: np.ndarray, sketches: np.ndarray, norms: np.ndarray, *, k: int = DEFAULT_K,
                seed: int = DEFAULT_SEED, dim: int = FILE_VECTOR_DIM) -> np.ndarray:
    """The file-level vector: Σ_layers sqrt(‖ΔW‖) · P_shape · vec(unit sketch), L2-normalised.

    P depends on the layer's *shape*, not its name, so the vector needs no name alignment: two files
    with the same ΔWs get the same vector whatever their key format. The inner product of two
    vectors approximates the score of :func:`~.similarity.compare` (square-root-norm weighted mean of
    per-layer cosines) up to cross terms between same-shape layers, which are noise of order 1/k.
    """
    out = np.zeros(dim, dtype=np.float64)
    if len(norms) == 0:
        return out.astype(np.float32)
    weights = np.sqrt(np.maximum(norms.astype(np.float64), 0.0))
    flat = sketches.reshape(len(norms), k * k).astype(np.float64) * weights[:, None]
    keys = [(int(o), int(i)) for o, i in shapes]
    order = sorted(range(len(keys)), key=keys.__getitem__)
    start = 0
    while start < len(order):
        end = start
        while end < len(order) and keys[order[end]] == keys[order[start]]:
            end += 1
        summed = flat[order[start:end]].sum(axis=0)
        o, i = keys[order[start]]
        out += summed @ _vector_projection(o, i, k, seed, dim)
        start = end
    norm = np.linalg.norm(out)
    if norm > 0:
        out /= norm
    return out.astype(np.float32)


@dataclass(frozen=True)
class LayerSketch:
    """One layer of a fingerprint: canonical name, ΔW shape (out, in), unit sketch, ‖ΔW‖ estimate."""

    name: str
    shape: tuple[int, int]
    sketch: np.ndarray
    norm: float


@dataclass(frozen=True, eq=False)
class Fingerprint:
    """The weight fingerprint of one LoRA-family file.

    ``names`` are canonical layer names (sorted); row ``i`` of ``shapes`` (int64, (L, 2)),
    ``sketches`` (float32, (L, k, k), unit Frobenius norm, values exactly representable in float16)
    and ``norms`` (float32, (L,), estimated ‖ΔW‖_F) describe layer ``names[i]``. ``vector`` is the
    L2-normalised float32 file vector for the index. ``family`` is the base model family the layers
    look like (``sd1``, ``sd2``, ``sdxl``, ``flux``, ``sd3``, ``unknown``); ``stats`` records what
    grouping found (module kinds, splits, duplicates, ignored keys) for reviewers.
    """

    names: tuple[str, ...]
    shapes: np.ndarray
    sketches: np.ndarray
    norms: np.ndarray
    vector: np.ndarray
    family: str = "unknown"
    k: int = DEFAULT_K
    seed: int = DEFAULT_SEED
    stats: dict = field(default_factory=dict)

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_sketches(cls, layers: Iterable[tuple[str, tuple[int, int], np.ndarray]], *, family: str = "unknown",
                      k: int = DEFAULT_K, seed: int = DEFAULT_SEED, stats: dict | None = None) -> Fingerprint:
        """Build from raw (name, shape, sketch) triples; zero sketches (ΔW = 0) are dropped."""
        rows = []
        for name, shape, s in layers:
            norm = float(np.linalg.norm(s))
            if norm == 0.0:
                continue
            unit = (s / norm).astype(np.float16).astype(np.float32)
            rows.append((name, (int(shape[0]), int(shape[1])), unit, norm))
        rows.sort(key=lambda r: r[0])
        n = len(rows)
        shapes = np.array([r[1] for r in rows], dtype=np.int64).reshape(n, 2)
        sketches = np.stack([r[2] for r in rows]) if rows else np.zeros((0, k, k), np.float32)
        norms = np.array([r[3] for r in rows], dtype=np.float32)
        vector = file_vector(shapes, sketches, norms, k=k, seed=seed)
        return cls(tuple(r[0] for r in rows), shapes, sketches, norms, vector, family, k, seed, dict(stats or {}))

    # -- access -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.names)

    @functools.cached_property
    def row(self) -> dict[str, int]:
        """Canonical name -> row index."""
        return {name: i for i, name in enumerate(self.names)}

    @functools.cached_property
    def unit(self) -> np.ndarray:
        """Sketches flattened to (L, k*k) rows of exactly unit norm (for cosines)."""
        flat = self.sketches.reshape(len(self.names), -1)
        norms = np.linalg.norm(flat, axis=1, keepdims=True)
        return flat / np.where(norms > 0, norms, 1.0)

    @property
    def layers(self) -> dict[str, LayerSketch]:
        """Per-layer sketches keyed by canonical name."""
        return {
            name: LayerSketch(name, (int(self.shapes[i, 0]), int(self.shapes[i, 1])), self.sketches[i],
                              float(self.norms[i]))
            for i, name in enumerate(self.names)
        }

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Fingerprint):
            return NotImplemented
        return self.to_bytes() == other.to_bytes()

    __hash__ = None  # type: ignore[assignment]

    # -- binary format ------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """Serialise (format v1, little-endian, no pickle):

        ``"MWFP"`` | u8 version | u8 k | u16 0 | u32 L | u32 D | u32 J | J bytes UTF-8 JSON
        ``{"family", "seed", "names", "stats"}`` | float32 norms[L] | uint32 shapes[L, 2] |
        float32 vector[D] | float16 sketches[L, k, k].

        About 530 bytes per layer at k = 16: a full SD1.5 LoRA ~155 KB, SDXL ~430 KB, Flux ~290 KB.
        """
        header = json.dumps({"family": self.family, "seed": self.seed, "names": list(self.names),
                             "stats": self.stats}, separators=(",", ":"), sort_keys=True).encode("utf-8")
        n = len(self.names)
        return b"".join([
            _FIXED.pack(_MAGIC, FORMAT_VERSION, self.k, 0, n, len(self.vector), len(header)),
            header,
            self.norms.astype("<f4").tobytes(),
            self.shapes.astype("<u4").tobytes(),
            self.vector.astype("<f4").tobytes(),
            self.sketches.astype("<f2").tobytes(),
        ])

    @classmethod
    def from_bytes(cls, blob: bytes | bytearray | memoryview) -> Fingerprint:
        """Parse :meth:`to_bytes` output; raise MalformedFile for anything else."""
        blob = bytes(blob)

        def bad(reason: str) -> MalformedFile:
            return MalformedFile(f"fingerprint blob: {reason}")

        if len(blob) < _FIXED.size:
            raise bad(f"{len(blob)} bytes is too short")
        magic, version, k, _reserved, n, dim, jlen = _FIXED.unpack_from(blob, 0)
        if magic != _MAGIC:
            raise bad("wrong magic (not a mirrorwatch fingerprint)")
        if version != FORMAT_VERSION:
            raise bad(f"format version {version} is not supported (this code reads {FORMAT_VERSION})")
        if not 1 <= k <= 64 or n > _MAX_LAYERS or not 1 <= dim <= 65536 or jlen > _MAX_JSON:
            raise bad(f"implausible sizes (k={k}, layers={n}, vector={dim}, json={jlen})")
        expected = _FIXED.size + jlen + 4 * n + 8 * n + 4 * dim + 2 * n * k * k
        if len(blob) != expected:
            raise bad(f"{len(blob)} bytes, expected {expected}")
        pos = _FIXED.size
        try:
            header = json.loads(blob[pos:pos + jlen].decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            raise bad("header is not valid JSON") from None
        if not isinstance(header, dict):
            raise bad("header is not an object")
        names = header.get("names")
        family, seed, stats = header.get("family"), header.get("seed"), header.get("stats", {})
        if (not isinstance(names, list) or len(names) != n or not all(isinstance(x, str) for x in names)
                or len(set(names)) != n):
            raise bad("layer names are missing, repeated or do not match the layer count")
        if not isinstance(family, str) or not isinstance(seed, int) or not isinstance(stats, dict):
            raise bad("family, seed or stats has the wrong type")
        pos += jlen
        norms = np.frombuffer(blob, "<f4", n, pos).astype(np.float32)
        pos += 4 * n
        shapes = np.frombuffer(blob, "<u4", 2 * n, pos).astype(np.int64).reshape(n, 2)
        pos += 8 * n
        vector = np.frombuffer(blob, "<f4", dim, pos).astype(np.float32)
        pos += 4 * dim
        sketches = np.frombuffer(blob, "<f2", n * k * k, pos).astype(np.float32).reshape(n, k, k)
        if not (np.isfinite(norms).all() and np.isfinite(vector).all() and np.isfinite(sketches).all()):
            raise bad("holds NaN or infinite values")
        if n and (shapes.min() <= 0 or norms.min() < 0):
            raise bad("holds non-positive shapes or negative norms")
        return cls(tuple(names), shapes, sketches, norms, vector, family, k, seed, stats)
