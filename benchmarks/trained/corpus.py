"""The trained corpus, stage 2 (numpy only): variants, fingerprints and labelled pairs.

``build_corpus.py`` (torch, a separate virtualenv) trains the LoRAs and writes ``manifest.json`` and
``files/``. This module derives the re-uploader's variants of each concept's final ``main``
checkpoint with the project's own transforms (fp16 / bf16 / fp32 re-saves, metadata stripped,
re-factorised, resized to half rank, 50/50 merges with another concept's LoRA), fingerprints every
file and lists the pairs to judge, each with its *pair kind* and the verdicts it may get:

=======================  ==========================================  ===============================
pair kind                what                                         acceptable verdicts
=======================  ==========================================  ===============================
lossless                 kohya keys, fp16/bf16/fp32, stripped, ...    same_weights
checkpoint_early         a checkpoint of the same run at 1/3           derived
checkpoint               a checkpoint at 2/3                           derived
continued                a continued fine-tune of the run              derived
resize_half              SVD resize to half rank                       derived (same_weights if lossless)
merge_50_50              a 50/50 merge containing the run              derived
retrain_same_data        same concept and data, another seed           similar_training, unrelated
lookalike_same_seed      a look-alike concept, the same seed           similar_training, unrelated
lookalike_other_seed     a look-alike concept, another seed            similar_training, unrelated
unrelated_same_seed      another concept, the same seed                similar_training, unrelated
unrelated                another concept, another seed                 similar_training, unrelated
=======================  ==========================================  ===============================

Every file belongs to one concept (look-alikes to their original's concept), and every concept to one
half (``calib``: even index, ``heldout``: odd). Pairs never cross halves except merges' partners,
which are taken from the same half.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mirrorwatch.corpus.lorafile import LoraFile
from mirrorwatch.corpus.transforms import convert_dtype, merge, refactor, resize_half, strip_metadata
from mirrorwatch.match.fingerprint import Fingerprint, fingerprint_file
from mirrorwatch.match.fingerprint.tensors import open_tensors

DERIVED_KINDS = ("checkpoint_early", "checkpoint", "continued", "resize_half", "merge_50_50")
CORRELATED_KINDS = ("retrain_same_data", "lookalike_same_seed", "lookalike_other_seed", "unrelated_same_seed",
                    "unrelated")
PAIR_KINDS = ("lossless", *DERIVED_KINDS, *CORRELATED_KINDS)
EXPECTED: dict[str, tuple[str, ...]] = {
    "lossless": ("same_weights",),
    **{k: ("derived",) for k in DERIVED_KINDS},
    # a half-rank resize of a trained rank-16/32 LoRA whose update has effective rank <= 8 drops nothing:
    # it is the same weights (score >= 0.999), which is the stronger claim and true
    "resize_half": ("derived", "same_weights"),
    **{k: ("similar_training", "unrelated") for k in CORRELATED_KINDS},
}


@dataclass
class Item:
    """One fingerprinted file of the corpus."""

    id: str
    concept: int
    half: str
    run: str  # e.g. c03-main
    kind: str  # run kind (main, shared, retrain, look, looks, cont) or variant name
    seed: int
    step: int
    steps: int
    variant: str = ""
    fp: Fingerprint | None = field(default=None, repr=False)
    data: str = ""  # the training data: "c03" (the concept), "c03L" (its look-alike), "c03N" (near look-alike)
    rank: int = 4
    parent: str | None = None  # the run a continued fine-tune started from


def _manifests(root: Path) -> dict:
    """The manifest of ``root``: ``manifest.json``, or every shard's ``manifest-PofN.json`` joined (the
    shards of one build share the pre-trained base, which each one checks by digest)."""
    paths = sorted(root.glob("manifest*.json"))
    if not paths:
        raise FileNotFoundError(f"{root}: no manifest.json (build it with build_corpus.py)")
    manifests = [json.loads(q.read_text()) for q in paths]
    first = manifests[0]
    for m in manifests[1:]:
        if m.get("base") != first.get("base") or m["steps"] != first["steps"]:
            raise ValueError(f"{root}: manifests from different builds (base or steps differ)")
    runs = [r for m in manifests for r in m["runs"]]
    runs.sort(key=lambda r: (int(r["base_concept"]), r["run"]))
    return {**first, "runs": runs, "complete": all(m.get("complete") for m in manifests)}


def _read_lora(path: Path) -> LoraFile:
    with open_tensors(path) as st:
        tensors = {k: (np.array(st.scalar(k, label=k), dtype=np.float32) if k.endswith(".alpha") else np.asarray(st[k]))
                   for k in st}
        meta = dict(st.metadata or {})
    # a diffusers/PEFT file (``lora_A``/``lora_B``, no alpha: build_flux.py's, which has no kohya writer)
    layout = "peft" if any(k.endswith(".lora_A.weight") for k in tensors) else "kohya"
    return LoraFile(tensors, meta, "fp32", "sd15", layout, {})


def _kohya_suffixed(lf: LoraFile) -> LoraFile:
    """A PEFT-layout file with kohya's suffixes (``lora_down``/``lora_up``, ``alpha`` = rank: scale 1, as
    ``lora_alpha = r`` trains it), the same ΔW under its own module names, for ``merge`` (kohya layout only).
    Not the project's ``peft_to_kohya``: that maps to the real architecture's kohya names and fuses Flux's
    q/k/v by the real model's widths, which the tiny base does not have."""
    if lf.layout != "peft":
        return lf
    out: dict[str, np.ndarray] = {}
    for k, v in lf.tensors.items():
        if k.endswith(".lora_A.weight"):
            out[k.replace(".lora_A.weight", ".lora_down.weight")] = v
            out[k.replace(".lora_A.weight", ".alpha")] = np.array(float(v.shape[0]), dtype=np.float32)
        elif k.endswith(".lora_B.weight"):
            out[k.replace(".lora_B.weight", ".lora_up.weight")] = v
    return LoraFile(out, dict(lf.metadata), lf.dtype, lf.arch, "kohya", dict(lf.info))


def build(root: Path, *, variants: bool = True) -> list[Item]:
    """Fingerprint every trained file and variant under ``root`` (writing variants to ``root/variants``)."""
    manifest = _manifests(root)
    items: list[Item] = []
    finals: dict[int, Path] = {}
    high_rank: dict[tuple[int, str], tuple[Path, dict]] = {}
    for run in manifest["runs"]:
        c = int(run["base_concept"])
        rank = int(run.get("rank", 4))
        data = run.get("data") or run["concept"]
        for f in run["files"]:
            item = Item(f"{run['run']}-s{f['step']:04d}", c, run["half"], run["run"], run["kind"], int(run["seed"]),
                        int(f["step"]), int(f["steps"]), "", fingerprint_file(root / f["file"]), data, rank,
                        run.get("parent"))
            items.append(item)
            if f.get("kohya"):
                items.append(Item(item.id + "-kohya", c, run["half"], run["run"], run["kind"], item.seed, item.step,
                                  item.steps, "kohya", fingerprint_file(root / f["kohya"]), data, rank,
                                  run.get("parent")))
                if run["kind"] == "main":
                    finals[c] = root / f["kohya"]
                elif run["kind"] in ("r16main", "r32main"):
                    high_rank[(c, run["kind"])] = (root / f["kohya"], run)
            elif run["kind"] == "main" and f["step"] == f["steps"]:
                finals[c] = root / f["file"]  # no kohya file (build_flux.py): the variants of the diffusers file
    if not variants:
        return items
    out = root / "variants"
    out.mkdir(exist_ok=True)
    halves = {c: ("calib" if c % 2 == 0 else "heldout") for c in finals}
    steps = int(manifest["steps"])
    for c, path in sorted(finals.items()):
        lf = _read_lora(path)
        made = {
            "fp16": convert_dtype(lf, "fp16"),
            "bf16": convert_dtype(lf, "bf16"),
            "fp32": convert_dtype(lf, "fp32"),
            "stripped": strip_metadata(lf),
            "refactor": refactor(lf, seed=c),
            "resize_half": resize_half(lf),
        }
        same_half = sorted(o for o in finals if halves[o] == halves[c] and o != c)
        partner = same_half[(same_half.index(c + 2) if c + 2 in same_half else 0)] if same_half else None
        if partner is not None:
            made["merge_50_50"] = merge(_kohya_suffixed(lf), _kohya_suffixed(_read_lora(finals[partner])), 0.5)
        _write_variants(items, made, out, f"c{c:02d}-main", c, halves[c], "main", 1000 + c, steps, 4, partner)
    for (c, kind), (path, run) in sorted(high_rank.items()):  # rank 16 / 32: a re-save and a half-rank resize
        lf = _read_lora(path)
        _write_variants(items, {"fp16": convert_dtype(lf, "fp16"), "resize_half": resize_half(lf)}, out,
                        run["run"], c, run["half"], kind, int(run["seed"]), steps, int(run["rank"]), None)
    return items


def _write_variants(items: list[Item], made: dict, out: Path, run: str, c: int, half: str, kind: str, seed: int,
                    steps: int, rank: int, partner: int | None) -> None:
    for name, v in made.items():
        v.dtype = name if name in ("fp16", "bf16", "fp32") else "fp16"
        p = v.write(out / f"{run}-{name}.safetensors")
        variant = f"merge_50_50:{partner}" if name == "merge_50_50" else name
        items.append(Item(f"{run}-{name}", c, half, run, kind, seed, steps, steps, variant, fingerprint_file(p),
                          f"c{c:02d}", rank // 2 if name == "resize_half" else rank))


def _root(item: Item) -> str:
    """The run a file's training lineage starts from (a continued fine-tune's parent run)."""
    return item.parent or item.run


def pair_kind(a: Item, b: Item) -> str | None:
    """The kind of the pair (``a`` is the bank file: a run's final checkpoint), or None when the pair
    is not one we judge (the same file, or a pair the table above does not describe)."""
    if a.id == b.id:
        return None
    if b.variant.startswith("merge_50_50"):
        partner = int(b.variant.split(":")[1])
        if a.run == b.run and a.step == a.steps and not a.variant:
            return "merge_50_50"
        if a.run == f"c{partner:02d}-main" and a.step == a.steps and not a.variant:
            return "merge_50_50"
        return None if a.concept in (b.concept, partner) else "unrelated"
    if a.run == b.run:
        if b.variant == "resize_half":
            return "resize_half"
        if b.step == a.step:
            return "lossless"
        if a.step != a.steps or b.variant:
            return None
        return "checkpoint_early" if b.step * 3 <= b.steps else "checkpoint"
    if b.parent == a.run and a.step == a.steps and not a.variant:
        return "continued"
    if _root(a) == _root(b):
        return None  # a continued run against its parent's other files: not judged
    same_seed = a.seed == b.seed
    if a.concept != b.concept:
        return "unrelated_same_seed" if same_seed else "unrelated"
    if b.variant == "resize_half" or a.variant == "resize_half":
        return None  # a resize of another run of the same concept: not judged
    if a.data == b.data:
        return "retrain_same_data"  # same data, another seed or rank (an independent training)
    return "lookalike_same_seed" if same_seed else "lookalike_other_seed"


def pairs(items: list[Item], half: str | None = None) -> list[tuple[Item, Item, str]]:
    """Labelled pairs: every final (un-varied) checkpoint of a trained run against every other file of
    the same half."""
    pool = [i for i in items if half is None or i.half == half]
    banks = [i for i in pool if i.step == i.steps and not i.variant]
    out = []
    seen: set[frozenset[str]] = set()
    for a in banks:
        for b in pool:
            kind = pair_kind(a, b)
            key = frozenset((a.id, b.id))
            if kind is not None and key not in seen:  # two finals make one pair, not two
                seen.add(key)
                out.append((a, b, kind))
    return out
