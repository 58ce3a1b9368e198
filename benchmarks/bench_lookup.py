"""Benchmark: a generated bank of 1,000,000 entries — import time, hash lookup and name search latency.

Runs through the same code the CLI uses (`import_file`, `lookup`). Usage:
    .venv/bin/python benchmarks/bench_lookup.py [--entries 1000000] [--queries 2000] [--keep DIR]
Targets (issue 2): import < 60 s; hash lookup p99 < 5 ms; name search p99 < 50 ms.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import tempfile
import time
from pathlib import Path

from mirrorwatch.services.banks import create_bank
from mirrorwatch.services.imports import import_file
from mirrorwatch.services.lookup import lookup
from mirrorwatch.services.serial import to_json_bytes
from mirrorwatch.store.db import Database

SYLLABLES = ["ka", "ri", "to", "mo", "na", "el", "ve", "sa", "lin", "dor", "mi", "ra", "zo", "en", "ta",
             "qui", "bel", "ar", "os", "ne", "lu", "fa", "ge", "ho", "ja", "ke", "pe", "su", "vi", "ya"]
SUFFIXES = ["LoRA", "v1", "v2", "SDXL", "Pony", "Flux", "(actress)", "(singer)", "- LyCORIS", "XL", ""]


def invented_name(rng: random.Random) -> str:
    first = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))).title()
    last = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))).title()
    return f"{first} {last} {rng.choice(SUFFIXES)}".strip()


def make_sheet(path: Path, n: int, seed: int = 7) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    samples = []
    with path.open("w", encoding="utf-8") as f:
        f.write("Model Name,Civitai URL,SHA256\n")
        for i in range(n):
            name = invented_name(rng)
            sha = hashlib.sha256(f"entry-{seed}-{i}".encode()).hexdigest()
            f.write(f"{name},https://civitai.com/models/{100000 + i}?modelVersionId={5000000 + i},{sha}\n")
            if i % max(1, n // 5000) == 0:
                samples.append((name, sha))
    return samples


def typo(rng: random.Random, text: str) -> str:
    chars = list(text)
    i = rng.randrange(1, max(2, len(chars) - 1))
    if chars[i] != " ":
        chars[i] = rng.choice("aeiourst")
    return "".join(chars)


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--keep", type=Path, default=None, help="keep the database in this folder")
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="mw-bench-lookup-"))
    work.mkdir(parents=True, exist_ok=True)
    sheet = work / "bank.csv"
    dbfile = work / "bench.db"
    if dbfile.exists():
        dbfile.unlink()
    t = time.perf_counter()
    samples = make_sheet(sheet, args.entries)
    gen_s = time.perf_counter() - t
    db = Database.open(str(dbfile))
    create_bank(db, "bench")
    t = time.perf_counter()
    summary = import_file(db, "bench", sheet)
    import_s = time.perf_counter() - t
    assert summary.added == args.entries, summary.to_dict()

    rng = random.Random(1)
    lookup(db, samples[0][1])  # warm caches as a long-running server would be
    lookup(db, "warm up query")
    hash_lat, forms_lat, name_lat, typo_lat, json_hash, json_name = [], [], [], [], [], []
    hits = 0
    for _ in range(args.queries):
        name, sha = rng.choice(samples)
        t = time.perf_counter()
        r = lookup(db, sha)
        hash_lat.append((time.perf_counter() - t) * 1000)
        hits += bool(r.results)
        t = time.perf_counter()
        to_json_bytes(r)  # what GET /api/lookup writes
        json_hash.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        lookup(db, sha[:10])
        forms_lat.append((time.perf_counter() - t) * 1000)
    name_hits = 0
    for _ in range(max(200, args.queries // 5)):
        name, _sha = rng.choice(samples)
        t = time.perf_counter()
        r = lookup(db, name)
        name_lat.append((time.perf_counter() - t) * 1000)
        name_hits += any(v.name == name for v in r.results)
        t = time.perf_counter()
        to_json_bytes(r)
        json_name.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        lookup(db, typo(rng, name))
        typo_lat.append((time.perf_counter() - t) * 1000)

    print(f"entries: {args.entries:,}  (sheet generated in {gen_s:.1f} s, {sheet.stat().st_size / 1e6:.0f} MB)")
    print(f"import: {import_s:.1f} s  ({args.entries / import_s:,.0f} rows/s)   target < 60 s")
    print(f"{'query':<28}{'n':>6}{'p50 ms':>10}{'p99 ms':>10}{'mean ms':>10}")
    for label, lat in [("hash (64 hex SHA256)", hash_lat), ("hash (10 hex AutoV2)", forms_lat),
                       ("name (exact)", name_lat), ("name (one typo)", typo_lat),
                       ("API JSON of a hash result", json_hash), ("API JSON of a name result", json_name)]:
        print(f"{label:<28}{len(lat):>6}{pct(lat, 50):>10.2f}{pct(lat, 99):>10.2f}{statistics.mean(lat):>10.2f}")
    print(f"hash hit rate {hits / len(hash_lat):.3f}; exact-name top-20 hit rate {name_hits / len(name_lat):.3f}")
    print(f"targets: hash p99 < 5 ms -> {pct(hash_lat, 99) / 5:.2f}x of budget; "
          f"name p99 < 50 ms -> {max(pct(name_lat, 99), pct(typo_lat, 99)) / 50:.2f}x of budget")
    if args.keep is None:
        for p in work.iterdir():
            p.unlink()
        work.rmdir()


if __name__ == "__main__":
    main()
