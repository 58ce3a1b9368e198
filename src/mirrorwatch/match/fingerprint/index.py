"""Nearest-neighbour index over fingerprint file vectors: finds candidates for per-layer comparison.

Every stored fingerprint (bank files, confirmed mirrors) contributes its file vector under an integer
key chosen by the caller (a database row id). ``search`` returns the ``k`` keys whose vectors have the
highest cosine with the query; the caller then runs :func:`~.similarity.compare` on those candidates.
The index never decides a match by itself.

Backed by usearch (HNSW graph, cosine metric, vectors stored as float16: 100,000 vectors take about
60 MB in memory and on disk). On disk the index is a folder — the database keeps it beside the
SQLite file — holding ``vectors.usearch`` and ``index.json`` (format, dimension, count); both are
replaced atomically on :meth:`FingerprintIndex.save`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from usearch.index import Index

from mirrorwatch.errors import InvalidInput, MalformedFile

from .sketch import FILE_VECTOR_DIM

__all__ = ["FingerprintIndex"]

_FORMAT = 1
_VECTORS = "vectors.usearch"
_META = "index.json"
_MAX_KEY = 2**63 - 1


class FingerprintIndex:
    """A persistent (or in-memory, with ``path=None``) cosine index of file vectors keyed by int.

    Opening a folder that already holds a saved index loads it; ``dim`` must then agree.
    """

    def __init__(self, path: Path | str | None = None, dim: int = FILE_VECTOR_DIM, *,
                 expansion_search: int = 128):
        if not 1 <= dim <= 65536:
            raise InvalidInput(f"index dimension {dim} is out of range")
        self.path = Path(path) if path is not None else None
        self.dim = dim
        self._expansion_search = expansion_search
        self._index = self._new()
        if self.path is not None and (self.path / _META).exists():
            self.load()

    def _new(self) -> Index:
        return Index(ndim=self.dim, metric="cos", dtype="i8", connectivity=16, expansion_add=64,
                     expansion_search=self._expansion_search)

    # -- contents -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, int | np.integer) and 0 <= int(key) <= _MAX_KEY and int(key) in self._index

    def _check_vectors(self, vectors: np.ndarray) -> np.ndarray:
        v = np.asarray(vectors, dtype=np.float32)
        if v.ndim == 1:
            v = v[None, :]
        if v.ndim != 2 or v.shape[1] != self.dim:
            raise InvalidInput(f"vectors must have dimension {self.dim}, got shape {np.shape(vectors)}")
        if not np.isfinite(v).all():
            raise InvalidInput("vectors hold NaN or infinite values")
        norms = np.linalg.norm(v, axis=1, keepdims=True)
        if (norms == 0).any():
            raise InvalidInput("a zero vector cannot be indexed")
        return v / norms

    @staticmethod
    def _check_key(key: int) -> int:
        if isinstance(key, bool) or not isinstance(key, int | np.integer) or not 0 <= int(key) <= _MAX_KEY:
            raise InvalidInput(f"index keys are integers in [0, 2**63), got {key!r}")
        return int(key)

    def add(self, key: int, vector: np.ndarray) -> None:
        """Store (or replace) the vector under ``key``."""
        self.add_many([key], np.asarray(vector)[None, :] if np.ndim(vector) == 1 else vector)

    def add_many(self, keys: list[int] | np.ndarray, vectors: np.ndarray) -> None:
        """Store (or replace) many vectors at once (much faster than repeated :meth:`add`)."""
        ks = [self._check_key(k) for k in (keys.tolist() if isinstance(keys, np.ndarray) else keys)]
        v = self._check_vectors(vectors)
        if len(ks) != len(v):
            raise InvalidInput(f"{len(ks)} keys for {len(v)} vectors")
        if len(set(ks)) != len(ks):
            raise InvalidInput("keys repeat within one add_many call")
        for k in ks:
            if k in self._index:
                self._index.remove(k)
        if ks:
            self._index.add(np.array(ks, dtype=np.uint64), v)

    def remove(self, key: int) -> bool:
        """Forget ``key``; returns whether it was present."""
        k = self._check_key(key)
        if k not in self._index:
            return False
        self._index.remove(k)
        return True

    def search(self, vector: np.ndarray, k: int = 20) -> list[tuple[int, float]]:
        """The up to ``k`` stored keys most similar to ``vector``, as (key, cosine), best first."""
        if k <= 0:
            raise InvalidInput("k must be positive")
        q = self._check_vectors(vector)[0]
        if len(self._index) == 0:
            return []
        matches = self._index.search(q, min(k, len(self._index)))
        return [(int(key), float(1.0 - dist)) for key, dist in zip(matches.keys, matches.distances, strict=True)]

    # -- persistence ----------------------------------------------------------------------------
    def save(self) -> None:
        """Write the index to its folder (atomically replacing the previous files)."""
        if self.path is None:
            raise InvalidInput("this index has no folder (path=None): nothing to save to")
        self.path.mkdir(parents=True, exist_ok=True)
        tmp_vec = self.path / (_VECTORS + ".tmp")
        self._index.save(str(tmp_vec))
        os.replace(tmp_vec, self.path / _VECTORS)
        meta = {"format": _FORMAT, "dim": self.dim, "metric": "cos", "dtype": "i8", "count": len(self)}
        tmp_meta = self.path / (_META + ".tmp")
        tmp_meta.write_text(json.dumps(meta, sort_keys=True), encoding="utf-8")
        os.replace(tmp_meta, self.path / _META)

    def load(self) -> None:
        """(Re)load the index from its folder, replacing what is in memory."""
        if self.path is None:
            raise InvalidInput("this index has no folder (path=None): nothing to load from")
        meta_path, vec_path = self.path / _META, self.path / _VECTORS
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise MalformedFile(f"fingerprint index {meta_path}: unreadable ({exc.__class__.__name__})") from None
        if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
            raise MalformedFile(f"fingerprint index {meta_path}: unknown format")
        if meta.get("dim") != self.dim:
            raise MalformedFile(f"fingerprint index {self.path}: dimension {meta.get('dim')}, expected {self.dim}")
        index = self._new()
        if meta.get("count", 0) or vec_path.exists():
            try:
                index.load(str(vec_path))
            except Exception as exc:  # usearch raises RuntimeError/ValueError for bad files
                raise MalformedFile(f"fingerprint index {vec_path}: cannot be loaded ({exc})") from None
            if index.ndim != self.dim or len(index) != meta.get("count", len(index)):
                raise MalformedFile(f"fingerprint index {vec_path}: contents disagree with {_META}")
        index.expansion_search = self._expansion_search
        self._index = index
