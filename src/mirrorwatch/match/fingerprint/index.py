"""Candidate search over fingerprint file vectors: finds what the per-layer comparison should check.

Every stored fingerprint (bank files, confirmed mirrors) contributes its file vector under an integer
key chosen by the caller (a database row id). ``search`` returns the ``k`` keys whose vectors have the
highest cosine with the query; the caller then runs :func:`~.similarity.compare` on those candidates.
The index never decides a match by itself.

Why an exact scan and not a graph index (HNSW, e.g. usearch): file vectors of unrelated LoRAs are
close to orthogonal random vectors, the worst case for graph search, and the queries that matter
most are only moderately similar to their target (a 50/50 merge has cosine 0.3-0.7 with each parent).
Measured with usearch on 100,000 such vectors, HNSW found a cosine-0.5 target in the top 20 for only
35-95 % of queries depending on its parameters (and 20-80 % at cosine 0.3), while an exact scan finds
every one. The scan is a single float32 matrix-vector product: about 10 ms for 100,000 vectors of
dimension 256 on one core (see ``benchmarks/bench_fingerprint.py``). Past a few hundred thousand
vectors a partitioned or quantised scan would be the next step.

On disk the index is a folder — the database keeps it beside the SQLite file — holding
``vectors.npy`` (float16, one row per key), ``keys.npy`` (int64) and ``index.json`` (format,
dimension, count). Files are written to temporary names and renamed, ``index.json`` last, and read
with ``allow_pickle=False``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from mirrorwatch.errors import InvalidInput, MalformedFile

from .sketch import FILE_VECTOR_DIM

__all__ = ["FingerprintIndex"]

_FORMAT = 1
_VECTORS = "vectors.npy"
_KEYS = "keys.npy"
_META = "index.json"
_MAX_KEY = 2**63 - 1


class FingerprintIndex:
    """A persistent (or in-memory, with ``path=None``) cosine index of file vectors keyed by int.

    Opening a folder that already holds a saved index loads it; ``dim`` must then agree.
    Not thread-safe: use one instance per process (writes) and reload to see another's saves.
    """

    def __init__(self, path: Path | str | None = None, dim: int = FILE_VECTOR_DIM):
        if not 1 <= dim <= 65536:
            raise InvalidInput(f"index dimension {dim} is out of range")
        self.path = Path(path) if path is not None else None
        self.dim = dim
        self._vectors = np.zeros((0, dim), dtype=np.float32)  # capacity rows; the first _n are live
        self._keys = np.zeros(0, dtype=np.int64)
        self._row: dict[int, int] = {}
        if self.path is not None and (self.path / _META).exists():
            self.load()

    # -- contents -------------------------------------------------------------------------------
    @property
    def _n(self) -> int:
        return len(self._row)

    def __len__(self) -> int:
        return self._n

    def __contains__(self, key: object) -> bool:
        return isinstance(key, int | np.integer) and int(key) in self._row

    def keys(self) -> np.ndarray:
        """The stored keys (int64), in storage order."""
        return self._keys[: self._n].copy()

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
    def _check_key(key: object) -> int:
        if isinstance(key, bool) or not isinstance(key, int | np.integer) or not 0 <= int(key) <= _MAX_KEY:
            raise InvalidInput(f"index keys are integers in [0, 2**63), got {key!r}")
        return int(key)

    def _reserve(self, rows: int) -> None:
        if rows <= len(self._vectors):
            return
        capacity = max(rows, 2 * len(self._vectors), 1024)
        grown = np.zeros((capacity, self.dim), dtype=np.float32)
        grown[: self._n] = self._vectors[: self._n]
        keys = np.zeros(capacity, dtype=np.int64)
        keys[: self._n] = self._keys[: self._n]
        self._vectors, self._keys = grown, keys

    def add(self, key: int, vector: np.ndarray) -> None:
        """Store (or replace) the vector under ``key``."""
        self.add_many([key], np.asarray(vector)[None, :] if np.ndim(vector) == 1 else vector)

    def add_many(self, keys: list[int] | np.ndarray, vectors: np.ndarray) -> None:
        """Store (or replace) many vectors at once."""
        ks = [self._check_key(k) for k in (keys.tolist() if isinstance(keys, np.ndarray) else keys)]
        v = self._check_vectors(vectors)
        if len(ks) != len(v):
            raise InvalidInput(f"{len(ks)} keys for {len(v)} vectors")
        if len(set(ks)) != len(ks):
            raise InvalidInput("keys repeat within one add_many call")
        new = [i for i, k in enumerate(ks) if k not in self._row]
        self._reserve(self._n + len(new))
        for i, k in enumerate(ks):
            row = self._row.get(k)
            if row is not None:
                self._vectors[row] = v[i]
        start = self._n
        if new:
            rows = np.arange(start, start + len(new))
            self._vectors[rows] = v[new]
            self._keys[rows] = [ks[i] for i in new]
            for offset, i in enumerate(new):
                self._row[ks[i]] = start + offset

    def remove(self, key: int) -> bool:
        """Forget ``key``; returns whether it was present (the last row moves into its place)."""
        k = self._check_key(key)
        row = self._row.pop(k, None)
        if row is None:
            return False
        last = self._n  # after the pop, the old last row index equals the new count
        if row != last:
            self._vectors[row] = self._vectors[last]
            moved = int(self._keys[last])
            self._keys[row] = moved
            self._row[moved] = row
        return True

    def search(self, vector: np.ndarray, k: int = 20) -> list[tuple[int, float]]:
        """The up to ``k`` stored keys most similar to ``vector``, as (key, cosine), best first."""
        if k <= 0:
            raise InvalidInput("k must be positive")
        q = self._check_vectors(vector)[0]
        n = self._n
        if n == 0:
            return []
        scores = self._vectors[:n] @ q
        k = min(k, n)
        top = np.argpartition(-scores, k - 1)[:k] if k < n else np.arange(n)
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(self._keys[i]), float(scores[i])) for i in top]

    # -- persistence ----------------------------------------------------------------------------
    def save(self) -> None:
        """Write the index to its folder, replacing the previous files (``index.json`` last)."""
        if self.path is None:
            raise InvalidInput("this index has no folder (path=None): nothing to save to")
        self.path.mkdir(parents=True, exist_ok=True)
        n = self._n
        for name, array in ((_VECTORS, self._vectors[:n].astype("<f2")), (_KEYS, self._keys[:n].astype("<i8"))):
            tmp = self.path / (name + ".tmp")
            with open(tmp, "wb") as f:
                np.save(f, array, allow_pickle=False)
            os.replace(tmp, self.path / name)
        meta = {"format": _FORMAT, "dim": self.dim, "count": n, "vectors": "float16"}
        tmp_meta = self.path / (_META + ".tmp")
        tmp_meta.write_text(json.dumps(meta, sort_keys=True), encoding="utf-8")
        os.replace(tmp_meta, self.path / _META)

    def load(self) -> None:
        """(Re)load the index from its folder, replacing what is in memory."""
        if self.path is None:
            raise InvalidInput("this index has no folder (path=None): nothing to load from")
        where = f"fingerprint index {self.path}"
        try:
            meta = json.loads((self.path / _META).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise MalformedFile(f"{where}: {_META} unreadable ({exc.__class__.__name__})") from None
        if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
            raise MalformedFile(f"{where}: unknown format")
        if meta.get("dim") != self.dim:
            raise MalformedFile(f"{where}: dimension {meta.get('dim')}, expected {self.dim}")
        try:
            vectors = np.load(self.path / _VECTORS, allow_pickle=False)
            keys = np.load(self.path / _KEYS, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise MalformedFile(f"{where}: cannot read its arrays ({exc.__class__.__name__})") from None
        n = meta.get("count")
        if (vectors.dtype != np.float16 or keys.dtype != np.int64 or vectors.ndim != 2 or keys.ndim != 1
                or vectors.shape != (n, self.dim) or keys.shape != (n,)):
            raise MalformedFile(f"{where}: arrays disagree with {_META}")
        if n and (keys.min() < 0 or len(np.unique(keys)) != n or not np.isfinite(vectors).all()):
            raise MalformedFile(f"{where}: repeated or negative keys, or non-finite vectors")
        self._vectors = vectors.astype(np.float32)
        norms = np.linalg.norm(self._vectors, axis=1, keepdims=True)
        self._vectors /= np.where(norms > 0, norms, 1.0)
        self._keys = keys.copy()
        self._row = {int(k): i for i, k in enumerate(keys.tolist())}
