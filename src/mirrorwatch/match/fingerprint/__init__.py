"""Tier 3: the weight fingerprint of LoRA-family files (LoRA, LoCon, LoHa, LoKr), pure numpy.

A LoRA re-uploaded after renaming, re-saving, dtype or key-format conversion, or re-factorisation
has different bytes and different hashes, but the same weight update ΔW per layer. We name each
layer canonically (``names``), group the file's tensors into per-layer modules (``modules``),
sketch each ΔW by fixed random projections without forming it (``sketch``) and compare sketches
layer by layer (``similarity``). A fixed-size file vector feeds a nearest-neighbour index
(``index``) that finds candidates among many stored fingerprints; the per-layer comparison confirms.

Typical use::

    from mirrorwatch.match.fingerprint import fingerprint_file, compare, FingerprintIndex

    bank_fp = fingerprint_file("removed.safetensors")
    index = FingerprintIndex(Path("mw.db.fingerprints"))
    index.add(entry_id, bank_fp.vector); index.save()
    ...
    hub_fp = fingerprint_file("downloaded.safetensors")          # transient file, then deleted
    for key, _ in index.search(hub_fp.vector, k=20):
        sim = compare(hub_fp, Fingerprint.from_bytes(stored_blob(key)))
        if sim.verdict() != "no_match": record(key, sim.score, sim.method, sim.details)

Scores and thresholds: see :mod:`.similarity` (``DEFAULT_THRESHOLDS``, ``SCORE_MEANINGS``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np

from mirrorwatch.errors import MalformedFile

from .index import FingerprintIndex
from .modules import Module, ModuleStats, collect_modules, iter_modules
from .names import canonical_module_name, guess_family, parse_key
from .similarity import (
    DEFAULT_THRESHOLDS,
    SCORE_MEANINGS,
    IncompatibleFingerprints,
    Similarity,
    Thresholds,
    compare,
)
from .sketch import DEFAULT_K, DEFAULT_SEED, FILE_VECTOR_DIM, Fingerprint, LayerSketch, sketch_module
from .tensors import DEFAULT_MAX_BYTES, bf16_bits_to_float32, float32_to_bf16_bits, open_tensors

__all__ = [
    "DEFAULT_K",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_SEED",
    "DEFAULT_THRESHOLDS",
    "FILE_VECTOR_DIM",
    "SCORE_MEANINGS",
    "Fingerprint",
    "FingerprintIndex",
    "IncompatibleFingerprints",
    "LayerSketch",
    "Module",
    "NothingToFingerprint",
    "Similarity",
    "Thresholds",
    "bf16_bits_to_float32",
    "canonical_module_name",
    "collect_modules",
    "compare",
    "fingerprint_file",
    "fingerprint_state_dict",
    "float32_to_bf16_bits",
    "guess_family",
    "parse_key",
]


class NothingToFingerprint(MalformedFile):
    """The file holds no LoRA-family module with a non-zero ΔW (a full checkpoint, an untrained LoRA)."""


def fingerprint_state_dict(tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None = None, *,
                           k: int = DEFAULT_K, seed: int = DEFAULT_SEED) -> Fingerprint:
    """Fingerprint an in-memory (or lazily read) state dict of LoRA-family tensors.

    ``tensors`` maps keys in any supported format (kohya, diffusers/PEFT, LyCORIS) to float16/32/64
    arrays (alphas may also be integer scalars, as diffusers' kohya conversion writes them); bfloat16
    data must be decoded first with :func:`bf16_bits_to_float32`. ``metadata`` is
    the safetensors ``__metadata__`` (only used to guess the family when the structure does not
    tell). Raises MalformedFile for broken modules and :class:`NothingToFingerprint` when no layer
    has a non-zero ΔW.
    """
    stats = ModuleStats()
    layers = []
    seen: set[str] = set()
    for module in iter_modules(tensors, stats):
        if module.name in seen:
            stats.duplicates += 1
            continue
        seen.add(module.name)
        layers.append((module.name, module.shape, sketch_module(module, k, seed)))
    if not layers:
        raise NothingToFingerprint("no LoRA, LoCon, LoHa or LoKr modules found: nothing to fingerprint")
    shapes = {name: shape for name, shape, _ in layers}
    family = guess_family(shapes, dict(metadata) if metadata else None)
    fp = Fingerprint.from_sketches(layers, family=family, k=k, seed=seed, stats=stats.as_dict())
    if len(fp) == 0:
        raise NothingToFingerprint("every layer's weight update is zero (an untrained LoRA): nothing to fingerprint")
    return fp


def fingerprint_file(path: str | os.PathLike[str], *, max_bytes: int = DEFAULT_MAX_BYTES,
                     k: int = DEFAULT_K, seed: int = DEFAULT_SEED) -> Fingerprint:
    """Fingerprint a safetensors file on disk, reading tensors one module at a time with bounds.

    Raises MalformedFile (with a one-line reason) for files over ``max_bytes``, malformed headers,
    offsets that lie, non-float factors, non-numeric or non-finite tensors, zero ranks and absurd
    shapes (integer alphas of any width are read, as writers store them); OSError for
    files that cannot be opened.
    """
    with open_tensors(path, max_bytes=max_bytes) as st:
        return fingerprint_state_dict(st, st.metadata, k=k, seed=seed)
