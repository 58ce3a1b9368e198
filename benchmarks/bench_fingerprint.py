"""Benchmark and calibration of the LoRA weight fingerprint (tier 3) on the generated corpus.

    .venv/bin/python benchmarks/bench_fingerprint.py [--quick] [--json results.json]

What it does:

1. **Hard negatives** (full run: 1,029, fingerprinted in memory): per architecture (SD1.5, SDXL,
   Flux) 335 LoRAs — 15 % trained from the *same initialisation* as a bank file (same down init seed,
   rank and module list, different data), 10 % with the full module list at ranks 16-64, 75 % cheap
   for speed (ranks 4-8, a random 20-50 % of the blocks, a third of them attention-only, some Flux in
   diffusers/PEFT layout) — plus 24 LoHa/LoKr files. Their vectors and filler (half random unit vectors,
   half jittered copies of negatives) fill the index to 100,000.
2. **Bank**: 32 "original" files (SD1.5, SDXL, Flux in kohya layout, Flux in diffusers/ai-toolkit
   layout, LoCon, LoHa, LoKr; ranks 4-32 plus one rank-128 SD1.5 and one rank-64 SDXL; fp16 or bf16),
   each written to disk, fingerprinted with ``fingerprint_file`` and added to the index.
3. **Variants**: every transformation of DESIGN.md where it applies: rename, metadata edit/strip,
   fp32/fp16/bf16, kohya <-> diffusers/PEFT keys and re-factorisation go through a written file; the
   half-rank resize and two 50/50 merges per LoRA (with independently trained partners of the same
   modules) are fingerprinted in memory. Each variant's vector is searched (20 candidates) and the
   candidates compared. *Recall* = the original is among the candidates with at least the expected
   verdict (``same_weights`` for lossless changes, ``derived`` for resize/merge).
4. **False positives** = pairs of unrelated files whose verdict is not ``no_match``: every original
   against every negative of its family, every same-initialisation pair, and 50,000 random
   negative-negative pairs of a family; the shape-based fallback on 3,000 of them with names ignored.
5. **Speed**: fingerprinting a generated 150 MB SDXL LoRA file (fp16, rank 28, 722 modules), and
   p50/p99 search latency over the 100,000 stored vectors.

``--quick`` runs the same with 22 bank files, 250 negatives and 20,000 vectors (about 4 minutes on a quiet
machine). ``--speed-only`` measures only step 5 at full size (100,000 vectors; a few minutes).

BLAS threads: fingerprinting is many small matrix products, for which OpenBLAS threading costs more
than it gains on a busy machine; the benchmark runs with ``OPENBLAS_NUM_THREADS=1`` unless told
otherwise (``--blas-threads``), as sweep workers should. The 150 MB timing is also reported with the
library default when ``--blas-threads`` is not given.
"""

from __future__ import annotations

import argparse
import os
import sys

if __name__ == "__main__":  # must happen before numpy is imported
    _threads = "1"
    for i, arg in enumerate(sys.argv):
        if arg == "--blas-threads" and i + 1 < len(sys.argv):
            _threads = sys.argv[i + 1]
    os.environ.setdefault("OPENBLAS_NUM_THREADS", _threads)

import json
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mirrorwatch.corpus import (
    generate_lora,
    generate_lycoris,
    merge,
    rename_file,
    resize_half,
)
from mirrorwatch.corpus.generate import LoraFile, rng_for
from mirrorwatch.corpus.transforms import TRANSFORMS
from mirrorwatch.match.fingerprint import (
    DEFAULT_THRESHOLDS,
    Fingerprint,
    FingerprintIndex,
    compare,
    fingerprint_file,
    fingerprint_state_dict,
)

LOSSLESS = ("rename", "metadata_edit", "metadata_strip", "to_fp32", "to_fp16", "to_bf16", "key_format", "refactor",
            "kohya_int_alpha")
LOSSY = ("resize_half", "merge_50_50")
RANKS = (4, 8, 16, 32, 64, 128)


@dataclass
class Results:
    recall: dict[str, list[bool]] = field(default_factory=dict)
    direct_scores: dict[str, list[float]] = field(default_factory=dict)
    misses: list[str] = field(default_factory=list)
    neg_scores: dict[str, list[float]] = field(default_factory=dict)
    neg_claims: dict[str, int] = field(default_factory=dict)  # unrelated pairs whose relation is a claim
    neg_similar: dict[str, int] = field(default_factory=dict)  # ... or a similar_training lead
    neg_shape_scores: list[float] = field(default_factory=list)
    top_negatives: list[tuple[float, str, str]] = field(default_factory=list)
    pos_shape_scores: dict[str, list[float]] = field(default_factory=dict)


def log(msg: str) -> None:
    print(msg, flush=True)


def pick_rank(rng: np.random.Generator, family: str) -> int:
    weights = {"sd1": (2, 3, 3, 2, 0, 0), "sdxl": (2, 3, 3, 2, 0, 0), "flux": (2, 3, 3, 2, 0, 0)}[family]
    p = np.array(weights, dtype=float) / sum(weights)
    return int(rng.choice(RANKS, p=p))


@dataclass(frozen=True)
class Recipe:
    """How to (re)generate a corpus file: files are regenerated when needed instead of kept in memory."""

    label: str
    algo: str  # "lora", "loha", "lokr"
    arch: str
    kwargs: tuple

    def make(self) -> LoraFile:
        kw = dict(self.kwargs)
        if self.algo == "lora":
            return generate_lora(self.arch, **kw)
        return generate_lycoris(self.arch, algo=self.algo, **kw)

    def get(self, name: str, default=None):
        return dict(self.kwargs).get(name, default)


def recipe(label: str, arch: str, algo: str = "lora", **kwargs) -> Recipe:
    return Recipe(label, algo, arch, tuple(sorted(kwargs.items())))


def make_originals(quick: bool) -> list[Recipe]:
    """The bank originals: ranks 4-32, plus one SD1.5 at rank 128 and one SDXL at rank 64 (bigger ranks
    cost time and memory in every variant without changing what is measured)."""
    rng = rng_for("bench-originals")
    n = {"sd15": 6, "sdxl": 4, "flux": 4, "flux_peft": 2, "locon": 2, "loha": 2, "lokr": 2} if quick else \
        {"sd15": 10, "sdxl": 6, "flux": 6, "flux_peft": 2, "locon": 3, "loha": 2, "lokr": 3}
    out: list[Recipe] = []
    seed = 1000
    for label, count in n.items():
        for i in range(count):
            seed += 1
            dtype = "bf16" if rng.random() < 0.3 else "fp16"
            name = f"{label}#{i}"
            if label == "sd15":
                rank = 128 if i == 0 else pick_rank(rng, "sd1")
                out.append(recipe(name, "sd15", seed=seed, rank=rank, dtype=dtype, preset="default", layout="kohya"))
            elif label == "sdxl":
                rank = 64 if i == 1 else pick_rank(rng, "sdxl")
                out.append(recipe(name, "sdxl", seed=seed, rank=rank, dtype=dtype, layout="kohya",
                                  preset="full" if i % 3 == 0 else "default"))
            elif label == "flux":
                out.append(recipe(name, "flux", seed=seed, rank=pick_rank(rng, "flux"), dtype=dtype, layout="kohya",
                                  preset="default" if i % 2 == 0 else "double"))
            elif label == "flux_peft":
                out.append(recipe(name, "flux", seed=seed, rank=pick_rank(rng, "flux"), dtype=dtype, layout="peft",
                                  preset="default"))
            elif label == "locon":
                out.append(recipe(name, "sd15", seed=seed, rank=int(rng.choice((8, 16, 32))), preset="locon",
                                  dtype=dtype, layout="kohya"))
            elif label == "loha":
                out.append(recipe(name, "sd15", "loha", seed=seed, rank=int(rng.choice((4, 8, 16))), preset="default",
                                  dtype=dtype))
            else:
                out.append(recipe(name, "sdxl", "lokr", seed=seed, rank=int(rng.choice((4, 8))), dtype=dtype))
    return out



def make_negatives(originals: list[Recipe], quick: bool) -> list[Recipe]:
    """Hard negatives per architecture: 15 % trained from the same initialisation as an original (same
    init seed, rank and module list, different data; originals up to rank 16), 10 % full module lists at
    ranks 16-64, 75 % cheap (ranks 4-8, a random 20-50 % of the blocks; a third of them attention-only;
    some Flux in PEFT layout)."""
    rng = rng_for("bench-negatives")
    per_family = 80 if quick else 335
    plain = [o for o in originals if o.algo == "lora" and o.get("rank") <= 16]
    out: list[Recipe] = []
    seed = 500_000
    for arch in ("sd15", "sdxl", "flux"):
        fam_orig = [o for o in plain if o.arch == arch]
        for i in range(per_family):
            seed += 1
            u = i / per_family
            name = f"neg-{arch}-{i}"
            if u < 0.15 and fam_orig:
                o = fam_orig[i % len(fam_orig)]
                out.append(recipe(f"{name} same-init({o.label})", arch, seed=seed, init_seed=o.get("seed"),
                                  rank=o.get("rank"), preset=o.get("preset"), layout=o.get("layout")))
            elif u < 0.25:
                rank = int(rng.choice((16, 32, 64) if arch == "sd15" else (16, 16, 32)))
                out.append(recipe(f"{name} full r{rank}", arch, seed=seed, rank=rank, preset="default",
                                  layout="kohya"))
            else:
                rank = int(rng.choice((4, 8)))
                preset = "attn" if rng.random() < 0.3 else "default"
                layout = "peft" if arch == "flux" and rng.random() < 0.3 else "kohya"
                blocks = round(float(rng.uniform(0.2, 0.5)), 2)
                out.append(recipe(f"{name} {preset} r{rank} {layout} blocks {blocks}", arch, seed=seed, rank=rank,
                                  preset=preset, layout=layout, blocks=blocks))
    for i in range(10 if quick else 24):  # a few LyCORIS negatives
        seed += 1
        if i % 2 == 0:
            out.append(recipe(f"neg-loha-{i}", "sd15", "loha", seed=seed, rank=int(rng.choice((4, 8))),
                              preset="attn"))
        else:
            out.append(recipe(f"neg-lokr-{i}", "sdxl", "lokr", seed=seed, rank=int(rng.choice((4, 8)))))
    return out


def applicable(r: Recipe, transform: str) -> bool:
    if r.algo != "lora":
        return transform in ("rename", "metadata_edit", "metadata_strip", "to_fp32", "to_fp16", "to_bf16", "refactor")
    if transform == "merge_50_50":
        return r.get("layout") == "kohya"
    if transform == "resize_half":
        return r.get("rank") >= 8
    return True


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q)) if values else float("nan")


def run(args: argparse.Namespace) -> dict:
    quick = args.quick
    t_start = time.time()
    shm = Path("/dev/shm")  # variant files are written and read back at once: keep them off the disk
    work = Path(tempfile.mkdtemp(prefix="mw-bench-fp-", dir=shm if shm.is_dir() else None))
    results = Results()
    report: dict = {"quick": quick, "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS")}
    index = FingerprintIndex(work / "index")
    originals = make_originals(quick)
    try:
        # ---------------------------------------------------------------- hard negatives (in memory)
        t0 = time.time()
        negatives: list[tuple[Recipe, Fingerprint]] = []
        full_shape = 0
        cost: dict[str, float] = {}
        for r in make_negatives(originals, quick):
            ts = time.perf_counter()
            lf = r.make()
            negatives.append((r, fingerprint_state_dict(lf.tensors, lf.metadata)))
            full_shape += r.get("blocks") is None and r.get("preset") in ("default", "full") and r.get("rank", 0) >= 16
            del lf
            kind = "same-init" if "same-init" in r.label else "full" if " full " in r.label else \
                "cheap" if r.algo == "lora" else r.algo
            cost[kind] = cost.get(kind, 0.0) + time.perf_counter() - ts
        neg_key0 = 1_000_000
        index.add_many(list(range(neg_key0, neg_key0 + len(negatives))), np.stack([n[1].vector for n in negatives]))
        log(f"negatives: {len(negatives)} generated and fingerprinted in {time.time() - t0:.1f}s "
            f"({full_shape} with the full module list at rank >= 16; seconds by kind "
            f"{ {k: round(v) for k, v in cost.items()} })")
        report["negatives"] = len(negatives)
        report["negatives_full_shape_rank16plus"] = int(full_shape)

        # ---------------------------------------------------------------- filler up to the target size
        target = 20_000 if quick else 100_000
        rng = rng_for("bench-filler")
        n_fill = target - len(index) - len(originals)
        half = n_fill // 2
        random_fill = rng.standard_normal((half, index.dim)).astype(np.float32)
        neg_vecs = np.stack([n[1].vector for n in negatives])
        jitter = neg_vecs[rng.integers(len(negatives), size=n_fill - half)] + \
            np.float32(0.08) * rng.standard_normal((n_fill - half, index.dim)).astype(np.float32)
        t0 = time.time()
        index.add_many(list(range(10_000_000, 10_000_000 + n_fill)), np.concatenate([random_fill, jitter]))
        log(f"index: {len(index)} vectors ({n_fill} filler) built in {time.time() - t0:.1f}s")

        # ---------------------------------------------------------------- bank originals and their variants
        t0 = time.time()
        partners = [n[0] for n in negatives if n[0].algo == "lora" and n[0].get("layout") == "kohya"
                    and n[0].get("blocks") is None and "same-init" not in n[0].label]
        bank: list[tuple[int, Recipe, Fingerprint]] = []
        search_times: list[float] = []
        for key, r in enumerate(originals, start=1):
            lf = r.make()
            src = lf.write(work / "orig.safetensors")
            ofp = fingerprint_file(src)
            index.add(key, ofp.vector)
            bank.append((key, r, ofp))
            jobs: list[tuple[str, object]] = [(t, None) for t in LOSSLESS + ("resize_half",) if applicable(r, t)]
            if applicable(r, "merge_50_50"):  # two independent partners of the same architecture and modules
                pool = [p for p in partners if p.arch == r.arch]
                for j in range(2):
                    pick = pool[int(rng_for("partner", key, j).integers(len(pool)))]
                    prank = int(rng_for("partner-rank", key, j).choice((4, 8, 16, 32)))
                    jobs.append(("merge_50_50", (pick.get("seed") + 77_000 + j, prank)))
            for tname, extra in jobs:
                fn, expected = TRANSFORMS[tname]
                path = None
                if tname == "rename":
                    path = rename_file(src, work / "LORA.safetensors")
                elif tname in LOSSLESS:  # lossless changes go through a real file: dtype rounding included
                    variant = fn(lf, key * 100 + len(tname))  # type: ignore[operator]
                    path = variant.write(work / "variant.safetensors")
                    del variant
                elif tname == "resize_half":  # lossy changes are fingerprinted in memory (saves time)
                    variant = resize_half(lf)
                else:
                    pseed, prank = extra  # type: ignore[misc]
                    partner = generate_lora(r.arch, seed=pseed, rank=prank, preset=r.get("preset"))
                    variant = merge(lf, partner)
                    del partner
                if path is not None:
                    vfp = fingerprint_file(path)
                else:
                    vfp = fingerprint_state_dict(variant.tensors, variant.metadata)
                    del variant
                ts = time.perf_counter()
                candidates = index.search(vfp.vector, k=20)
                search_times.append(time.perf_counter() - ts)
                direct = compare(vfp, ofp)
                results.direct_scores.setdefault(tname, []).append(direct.score)
                results.pos_shape_scores.setdefault(tname, []).append(compare(vfp, ofp, method="shapes").score)
                keys = [k for k, _cos in candidates]
                hit = False
                if key in keys:
                    verdict = compare(vfp, ofp).verdict()
                    hit = verdict == "same_weights" or (expected == "derived" and verdict == "derived")
                results.recall.setdefault(tname, []).append(hit)
                if not hit:
                    position = keys.index(key) if key in keys else None
                    results.misses.append(f"{tname} of {r.label} r{r.get('rank')}: direct score {direct.score:.4f} "
                                          f"({direct.verdict()}), ANN position {position}")
            del lf
        log(f"bank: {len(bank)} originals; {sum(len(v) for v in results.recall.values())} variants written, "
            f"fingerprinted, searched and compared in {time.time() - t0:.1f}s")
        report["originals"] = len(bank)
        report["index_size"] = len(index)

        # ---------------------------------------------------------------- false positives
        t0 = time.time()
        neg_by_family: dict[str, list[tuple[str, Fingerprint]]] = {}
        for r, fp in negatives:
            neg_by_family.setdefault(fp.family, []).append((r.label, fp))
        scores = results.neg_scores
        top: list[tuple[float, str, str]] = []

        def record(kind: str, la: str, a: Fingerprint, lb: str, b: Fingerprint) -> None:
            sim = compare(a, b)
            score = sim.score
            scores.setdefault(kind, []).append(score)
            rel = sim.relation()
            results.neg_claims[kind] = results.neg_claims.get(kind, 0) + (rel in ("same_weights", "derived"))
            results.neg_similar[kind] = results.neg_similar.get(kind, 0) + (rel == "similar_training")
            if score > 0.1:
                top.append((score, la, lb))

        for _key, r, ofp in bank:
            for label, fp in neg_by_family.get(ofp.family, []):
                record("original_vs_negative", r.label, ofp, label, fp)
        groups: dict[tuple, list[tuple[str, Fingerprint]]] = {}
        for _key, r, ofp in bank:
            if r.algo == "lora":
                groups.setdefault((r.arch, r.get("seed")), []).append((r.label, ofp))
        for r, fp in negatives:
            if r.get("init_seed") is not None:
                groups.setdefault((r.arch, r.get("init_seed")), []).append((r.label, fp))
        for members in groups.values():
            for i in range(len(members)):
                for j in range(i + 1, len(members)):
                    record("same_init", *members[i], *members[j])
        prng = rng_for("bench-pairs")
        fams = [f for f in neg_by_family if len(neg_by_family[f]) > 1]
        for _ in range(20_000 if quick else 50_000):
            fam = neg_by_family[fams[int(prng.integers(len(fams)))]]
            i, j = prng.choice(len(fam), size=2, replace=False)
            record("negative_vs_negative", *fam[int(i)], *fam[int(j)])
        results.top_negatives = sorted(set(top), reverse=True)[:5]
        log(f"false positives: {sum(len(v) for v in scores.values())} unrelated pairs compared in "
            f"{time.time() - t0:.1f}s")
        t0 = time.time()
        for _ in range(400 if quick else 3_000):
            _key, _r, ofp = bank[int(prng.integers(len(bank)))]
            fam = neg_by_family.get(ofp.family)
            if fam:
                other = fam[int(prng.integers(len(fam)))][1]
                results.neg_shape_scores.append(compare(ofp, other, method="shapes").score)
        log(f"shape fallback: {len(results.neg_shape_scores)} unrelated pairs compared by shapes in "
            f"{time.time() - t0:.1f}s")

        # ---------------------------------------------------------------- search latency
        queries = [b[2].vector for b in bank] + [n[1].vector for n in negatives[:300]]
        queries += list(rng.standard_normal((max(0, 1000 - len(queries)), index.dim)).astype(np.float32))
        lat = []
        for q in queries:
            ts = time.perf_counter()
            index.search(q, k=20)
            lat.append(time.perf_counter() - ts)
        lat_all = np.array(lat + search_times) * 1000
        report["search_ms"] = {"p50": float(np.percentile(lat_all, 50)), "p99": float(np.percentile(lat_all, 99)),
                               "queries": len(lat_all)}
        t0 = time.time()
        index.save()
        reloaded = FingerprintIndex(work / "index")
        report["index_save_load_s"] = time.time() - t0
        report["index_bytes_on_disk"] = sum(f.stat().st_size for f in (work / "index").iterdir())
        assert len(reloaded) == len(index)
        del reloaded

        # ---------------------------------------------------------------- 150 MB SDXL file
        big = generate_lora("sdxl", seed=4242, rank=28, dtype="fp16")
        big_path = big.write(work / "sdxl_150mb.safetensors")
        del big
        size_mb = big_path.stat().st_size / 1e6
        fingerprint_file(big_path)  # warm the page cache and the projection cache
        times = []
        for _ in range(3):
            ts = time.perf_counter()
            fingerprint_file(big_path)
            times.append(time.perf_counter() - ts)
        report["sdxl_150mb"] = {"size_mb": size_mb, "seconds_min": min(times), "seconds_median": float(np.median(times))}
        if not args.blas_threads:
            code = ("import time,sys;from mirrorwatch.match.fingerprint import fingerprint_file as f;"
                    "p=sys.argv[1];f(p);t=[];\nfor _ in range(3):\n s=time.perf_counter();f(p);"
                    "t.append(time.perf_counter()-s)\nprint(min(t))")
            env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
            out = subprocess.run([sys.executable, "-c", code, str(big_path)], capture_output=True, text=True, env=env)
            if out.returncode == 0:
                report["sdxl_150mb"]["seconds_min_default_blas_threads"] = float(out.stdout.strip())
    finally:
        shutil.rmtree(work, ignore_errors=True)

    # -------------------------------------------------------------------- report
    report["recall"] = {t: {"hits": sum(v), "total": len(v), "rate": sum(v) / len(v)} for t, v in results.recall.items()}
    t_names = DEFAULT_THRESHOLDS["names"]
    t_shapes = DEFAULT_THRESHOLDS["shapes"]
    report["direct_score"] = {t: {"min": min(v), "median": float(np.median(v)), "max": max(v)}
                              for t, v in results.direct_scores.items()}
    report["shape_method_score"] = {
        t: {"min": min(v), "median": float(np.median(v)),
            "at_expected_verdict": sum(s >= (t_shapes.derived if t in LOSSY else t_shapes.same_weights) for s in v)
            / len(v)}
        for t, v in results.pos_shape_scores.items()}
    all_neg = [s for v in results.neg_scores.values() for s in v]
    report["negatives_names"] = {
        kind: {"pairs": len(v), "max": max(v), "p99.99": percentile(v, 99.99),
               "false_positives": sum(s >= t_names.derived for s in v)}
        for kind, v in results.neg_scores.items()
    }
    report["false_positive_rate"] = sum(s >= t_names.derived for s in all_neg) / len(all_neg)
    # with relations (issue 14): pairs called derived/same_weights, and pairs kept as similar_training leads
    report["relation_claims"] = dict(results.neg_claims)
    report["relation_similar_training"] = dict(results.neg_similar)
    report["negative_pairs"] = len(all_neg)
    report["negatives_shapes"] = {"pairs": len(results.neg_shape_scores), "max": max(results.neg_shape_scores),
                                  "false_positives": sum(s >= t_shapes.derived for s in results.neg_shape_scores)}
    report["misses"] = results.misses
    report["top_negative_pairs"] = [[round(sc, 4), a, b] for sc, a, b in results.top_negatives]
    report["thresholds"] = {m: {"same_weights": t.same_weights, "derived": t.derived}
                            for m, t in DEFAULT_THRESHOLDS.items()}
    report["total_seconds"] = time.time() - t_start
    return report


def print_report(r: dict) -> None:
    print()
    print(f"== fingerprint benchmark ({'quick' if r['quick'] else 'full'}; OPENBLAS_NUM_THREADS={r['blas_threads']})")
    print(f"thresholds: {r['thresholds']}")
    print(f"{'transformation':16} {'recall':>14} {'score min':>10} {'median':>8} {'max':>8}   "
          f"{'shapes min':>10} {'shapes ok':>9}")
    for t, v in r["recall"].items():
        d = r["direct_score"][t]
        s = r["shape_method_score"][t]
        print(f"{t:16} {v['hits']:>5}/{v['total']:<4} {100 * v['rate']:5.1f}% {d['min']:10.5f} {d['median']:8.5f} "
              f"{d['max']:8.5f}   {s['min']:10.5f} {100 * s['at_expected_verdict']:8.1f}%")
    print(f"negatives: {r['negatives']} ({r['negatives_full_shape_rank16plus']} full module lists at rank >= 16), "
          f"{r['negative_pairs']} unrelated pairs")
    for kind, v in r["negatives_names"].items():
        print(f"  {kind:22} pairs {v['pairs']:>7}  max {v['max']:.4f}  p99.99 {v['p99.99']:.4f}  "
              f"false positives {v['false_positives']}")
    print(f"false-positive rate (names method, score >= derived threshold): {r['false_positive_rate']:.2e}")
    print(f"relations of unrelated pairs: derived/same_weights {r['relation_claims']}, "
          f"similar_training leads {r['relation_similar_training']}")
    for sc, a, b in r["top_negative_pairs"]:
        print(f"  highest unrelated pair {sc:.4f}: {a} / {b}")
    s = r["negatives_shapes"]
    print(f"shape fallback on unrelated pairs: {s['pairs']} pairs, max {s['max']:.4f}, false positives "
          f"{s['false_positives']}")
    b = r["sdxl_150mb"]
    extra = (f", {b['seconds_min_default_blas_threads']:.3f}s with default BLAS threads"
             if "seconds_min_default_blas_threads" in b else "")
    print(f"150 MB SDXL file ({b['size_mb']:.1f} MB): fingerprint {b['seconds_min']:.3f}s min, "
          f"{b['seconds_median']:.3f}s median{extra}")
    q = r["search_ms"]
    print(f"search over {r['index_size']} vectors: p50 {q['p50']:.2f} ms, p99 {q['p99']:.2f} ms ({q['queries']} queries); "
          f"index on disk {r['index_bytes_on_disk'] / 1e6:.1f} MB, save+load {r['index_save_load_s']:.1f}s")
    if r["misses"]:
        print("misses:")
        for m in r["misses"]:
            print("  " + m)
    print(f"total {r['total_seconds']:.0f}s")


def run_speed(args: argparse.Namespace) -> dict:
    """Only the cost figures, at full size: candidate search over 100,000 stored vectors (the vectors of
    60 generated negatives of every family and filler, as the full run fills its index) and the 150 MB
    SDXL fingerprint. Minutes instead of the full run's hour; recall and false positives are not measured."""
    work = Path(tempfile.mkdtemp(prefix="mw-bench-fp-speed-"))
    report: dict = {"speed_only": True, "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
                    "load_average_start": os.getloadavg()}
    try:
        index = FingerprintIndex(work / "index")
        negs = []
        for r in make_negatives(make_originals(True), True)[:60]:
            lf = r.make()
            negs.append(fingerprint_state_dict(lf.tensors, lf.metadata).vector)
            del lf
        rng = rng_for("bench-filler")
        neg_vecs = np.stack(negs)
        n_fill = 100_000 - len(negs)
        jitter = neg_vecs[rng.integers(len(negs), size=n_fill - n_fill // 2)] + \
            np.float32(0.08) * rng.standard_normal((n_fill - n_fill // 2, index.dim)).astype(np.float32)
        index.add_many(list(range(len(negs))), neg_vecs)
        index.add_many(list(range(10_000_000, 10_000_000 + n_fill)),
                       np.concatenate([rng.standard_normal((n_fill // 2, index.dim)).astype(np.float32), jitter]))
        queries = list(neg_vecs) + list(rng.standard_normal((1000 - len(negs), index.dim)).astype(np.float32))
        lat, cpu = [], []
        for q in queries:
            ts, cs = time.perf_counter(), time.process_time()
            index.search(q, k=20)
            lat.append(time.perf_counter() - ts)
            cpu.append(time.process_time() - cs)
        ms, cpu_ms = np.array(lat) * 1000, np.array(cpu) * 1000
        report["index_size"] = len(index)
        report["search_ms"] = {"p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)),
                               "queries": len(ms)}
        # CPU time of this process per query: what the search costs, whatever else the machine runs
        report["search_cpu_ms"] = {"p50": float(np.percentile(cpu_ms, 50)), "p99": float(np.percentile(cpu_ms, 99))}
        big = generate_lora("sdxl", seed=4242, rank=28, dtype="fp16")
        big_path = big.write(work / "sdxl_150mb.safetensors")
        del big
        fingerprint_file(big_path)
        times = []
        for _ in range(3):
            ts = time.perf_counter()
            fingerprint_file(big_path)
            times.append(time.perf_counter() - ts)
        report["sdxl_150mb"] = {"size_mb": big_path.stat().st_size / 1e6, "seconds_min": min(times),
                                "seconds_median": float(np.median(times))}
        report["load_average_end"] = os.getloadavg()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    q, b = report["search_ms"], report["sdxl_150mb"]
    c = report["search_cpu_ms"]
    print(f"search over {report['index_size']} vectors: p50 {q['p50']:.2f} ms, p99 {q['p99']:.2f} ms wall "
          f"({q['queries']} queries); CPU time p50 {c['p50']:.2f} ms, p99 {c['p99']:.2f} ms")
    print(f"150 MB SDXL file ({b['size_mb']:.1f} MB): fingerprint {b['seconds_min']:.3f}s min, "
          f"{b['seconds_median']:.3f}s median")
    print(f"load average: {report['load_average_start']} at the start, {report['load_average_end']} at the end")
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller corpus and index (about a minute)")
    parser.add_argument("--speed-only", action="store_true", help="only the 100,000-vector search and the 150 MB "
                        "fingerprint timings (no recall or false-positive figures)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--blas-threads", type=str, default=None, help="OPENBLAS_NUM_THREADS (default 1)")
    args = parser.parse_args()
    if args.speed_only:
        report = run_speed(args)
        if args.json:
            args.json.write_text(json.dumps(report, indent=2))
        return 0
    report = run(args)
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
