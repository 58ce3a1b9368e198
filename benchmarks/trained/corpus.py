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
resize_half              SVD resize to half rank                       derived
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


def _read_lora(path: Path) -> LoraFile:
    with open_tensors(path) as st:
        tensors = {k: (np.array(st.scalar(k, label=k), dtype=np.float32) if k.endswith(".alpha") else np.asarray(st[k]))
                   for k in st}
        meta = dict(st.metadata or {})
    return LoraFile(tensors, meta, "fp32", "sd15", "kohya", {})


def build(root: Path, *, variants: bool = True) -> list[Item]:
    """Fingerprint every trained file and variant under ``root`` (writing variants to ``root/variants``)."""
    manifest = json.loads((root / "manifest.json").read_text())
    items: list[Item] = []
    finals: dict[int, Path] = {}
    for run in manifest["runs"]:
        c = int(run["base_concept"])
        for f in run["files"]:
            item = Item(f"{run['run']}-s{f['step']:04d}", c, run["half"], run["run"], run["kind"], int(run["seed"]),
                        int(f["step"]), int(f["steps"]))
            item.fp = fingerprint_file(root / f["file"])
            items.append(item)
            if f.get("kohya"):
                items.append(Item(item.id + "-kohya", c, run["half"], run["run"], run["kind"], item.seed, item.step,
                                  item.steps, "kohya", fingerprint_file(root / f["kohya"])))
                if run["kind"] == "main":
                    finals[c] = root / f["kohya"]
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
            made["merge_50_50"] = merge(lf, _read_lora(finals[partner]), 0.5)
        for name, v in made.items():
            if name in ("fp16", "bf16", "fp32"):
                v.dtype = name
            else:
                v.dtype = "fp16"
            p = v.write(out / f"c{c:02d}-main-{name}.safetensors")
            items.append(Item(f"c{c:02d}-main-{name}", c, halves[c], f"c{c:02d}-main", "main", 1000 + c, steps,
                              steps, name, fingerprint_file(p)))
            if name == "merge_50_50":
                items[-1].variant = f"merge_50_50:{partner}"
    return items


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
        if b.step == a.step and b.variant != "resize_half":
            return "lossless"
        if a.step != a.steps or b.variant:
            return None
        return "checkpoint_early" if b.step * 3 <= b.steps else "checkpoint"
    if b.kind == "cont" and a.run == f"c{a.concept:02d}-main" and b.concept == a.concept:
        return "continued" if a.step == a.steps else None
    if (a.kind == "cont" or b.kind == "cont") and a.concept == b.concept:
        return None  # a continued run against the parent's other relatives: not judged
    if b.variant == "resize_half":
        return None if a.concept == b.concept else "unrelated" if a.seed != b.seed else "unrelated_same_seed"
    look_a, look_b = a.kind in ("look", "looks"), b.kind in ("look", "looks")
    same_seed = a.seed == b.seed
    if a.concept == b.concept:
        if look_a == look_b:
            return "retrain_same_data"  # same data, other seed (same seed and same data = the same run)
        return "lookalike_same_seed" if same_seed else "lookalike_other_seed"
    return "unrelated_same_seed" if same_seed else "unrelated"


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
