"""The committed fingerprints of genuinely trained LoRAs (tests/data/trained/fingerprints.json).

Built by ``benchmarks/trained/build_corpus.py`` (real gradient descent: a tiny diffusers UNet with SD1.5
module names and a small CLIP text encoder, rank-4 peft LoRAs) and exported by
``benchmarks/bench_trained.py --corpus DIR --export``. Each item is one file of the corpus (its concept,
run, seed, checkpoint step and variant); ``pairs`` lists the labelled pairs among them with the relations
each may get. ``sdxl_fingerprints.json`` and the ``*.sdxl.*.safetensors`` files come from
``benchmarks/trained/build_sdxl.py`` (SDXL block layout, two text encoders), exported with ``--export-sdxl``;
``long_fingerprints.json`` from ``build_corpus.py --steps 240`` (runs four times longer), with ``--export-set long`` (and ``sdxl_long_``, ``flux_``, ``flux_long_fingerprints.json`` with the other sets)."""

from __future__ import annotations

import base64
import functools
import json
from pathlib import Path

from mirrorwatch.match.fingerprint import Fingerprint

DATA = Path(__file__).resolve().parent.parent / "data" / "trained"


@functools.lru_cache(maxsize=4)
def trained_set(name: str = "fingerprints.json") -> dict:
    return json.loads((DATA / name).read_text())


def fingerprint(item_id: str, name: str = "fingerprints.json") -> Fingerprint:
    for rec in trained_set(name)["items"]:
        if rec["id"] == item_id:
            return Fingerprint.from_bytes(base64.b64decode(rec["fingerprint"]))
    raise KeyError(item_id)


def labelled_pairs(name: str = "fingerprints.json") -> list[dict]:
    return list(trained_set(name)["pairs"])
