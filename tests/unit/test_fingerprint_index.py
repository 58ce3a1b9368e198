"""The nearest-neighbour index of file vectors: add, replace, remove, search, save, load."""

from __future__ import annotations

import numpy as np
import pytest

from mirrorwatch.corpus import generate_lora, kohya_to_peft
from mirrorwatch.errors import InvalidInput, MalformedFile
from mirrorwatch.match.fingerprint import FILE_VECTOR_DIM, FingerprintIndex, compare, fingerprint_state_dict


def unit(rng: np.random.Generator, n: int, dim: int = FILE_VECTOR_DIM) -> np.ndarray:
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_add_search_remove_replace():
    rng = np.random.default_rng(1)
    vectors = unit(rng, 500)
    index = FingerprintIndex(None)
    index.add_many(list(range(1000, 1500)), vectors)
    assert len(index) == 500 and 1007 in index and 7 not in index
    hits = index.search(vectors[7], k=5)
    assert hits[0][0] == 1007 and hits[0][1] == pytest.approx(1.0, abs=1e-5)
    assert len(hits) == 5 and all(a[1] >= b[1] for a, b in zip(hits, hits[1:], strict=False))
    assert index.remove(1007) and not index.remove(1007)
    assert 1007 not in [k for k, _ in index.search(vectors[7], k=5)]
    index.add(1008, vectors[7])  # replace key 1008's vector
    assert index.search(vectors[7], k=1)[0][0] == 1008 and len(index) == 499


def test_save_and_load(tmp_path):
    rng = np.random.default_rng(2)
    vectors = unit(rng, 300)
    folder = tmp_path / "mw.db.fingerprints"
    index = FingerprintIndex(folder)
    index.add_many(np.arange(300), vectors)
    index.remove(3)
    index.save()
    assert sorted(p.name for p in folder.iterdir()) == ["index.json", "keys.npy", "vectors.npy"]
    reopened = FingerprintIndex(folder)  # opening a folder with a saved index loads it
    assert len(reopened) == 299 and 3 not in reopened
    assert reopened.search(vectors[42], k=1)[0][0] == 42
    reopened.add(1_000_000, vectors[3])
    reopened.save()
    index.load()
    assert len(index) == 300 and index.search(vectors[3], k=1)[0][0] == 1_000_000


def test_finds_a_converted_lora_among_others():
    bank = [generate_lora("sd15", seed=s, rank=4, preset="attn") for s in range(60, 66)]
    fps = [fingerprint_state_dict(lf.tensors) for lf in bank]
    index = FingerprintIndex(None)
    rng = np.random.default_rng(3)
    index.add_many(list(range(100, 2100)), unit(rng, 2000))  # filler
    for key, fp in enumerate(fps):
        index.add(key, fp.vector)
    query = fingerprint_state_dict(kohya_to_peft(bank[4]).tensors)
    candidates = index.search(query.vector, k=20)
    assert candidates[0][0] == 4
    best = max(candidates, key=lambda kc: compare(query, fps[kc[0]]).score if kc[0] < len(fps) else -1)
    assert best[0] == 4


def test_bad_inputs(tmp_path):
    index = FingerprintIndex(None, dim=8)
    with pytest.raises(InvalidInput, match="dimension"):
        index.add(1, np.ones(9, np.float32))
    with pytest.raises(InvalidInput, match="zero vector"):
        index.add(1, np.zeros(8, np.float32))
    with pytest.raises(InvalidInput, match="NaN"):
        index.add(1, np.full(8, np.nan, np.float32))
    with pytest.raises(InvalidInput, match="keys"):
        index.add(-1, np.ones(8, np.float32))
    with pytest.raises(InvalidInput, match="repeat"):
        index.add_many([1, 1], np.ones((2, 8), np.float32))
    with pytest.raises(InvalidInput, match="no folder"):
        index.save()
    assert index.search(np.ones(8, np.float32)) == []
    folder = tmp_path / "idx"
    saved = FingerprintIndex(folder, dim=8)
    saved.add(1, np.ones(8, np.float32))
    saved.save()
    with pytest.raises(MalformedFile, match="dimension"):
        FingerprintIndex(folder, dim=16)
    (folder / "keys.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(MalformedFile, match="cannot read"):
        FingerprintIndex(folder, dim=8)
    saved.add(2, np.ones(8, np.float32) * -1)
    saved.save()
    np.save(folder / "keys.npy", np.array([5], dtype=np.int64))  # count no longer matches
    with pytest.raises(MalformedFile, match="disagree"):
        FingerprintIndex(folder, dim=8)
    (folder / "index.json").write_text("{")
    with pytest.raises(MalformedFile, match="unreadable"):
        FingerprintIndex(folder, dim=8)
