"""Benchmark: a dataset repo with tens of thousands of files, swept with its tree paged.

    .venv/bin/python benchmarks/bench_bigrepo.py                  # 50,000 files, all LoRAs (the worst case)
    .venv/bin/python benchmarks/bench_bigrepo.py --files 5000 --weights 0.1

The test hub runs in its own process and serves one dataset repo of `--files` files (`--weights` of
them `.safetensors` LoRAs, a few banked; the others previews and captions) with the Hub's page size
(1,000 tree entries a page). Printed side by side, each measured in a fresh process: `scan hf
--repo-type dataset` (tree paged, only weight files kept; headers off: the files are declared, not
held) and the naive single answer (`dataset_info(files_metadata=True)`, every file's metadata in one
JSON body, which a big repo's may not even hold whole): requests, seconds, weight files hashed,
peak RSS. Target (issue 10): hashes fetched with paging, peak RSS under 300 MB.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing as mp
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1")
os.environ.pop("HF_TOKEN", None)
REPO = "bulk-archivist/removed-loras-full"
TARGET_MB = 300


def bank_sha(i: int) -> str:
    return hashlib.sha256(f"bigrepo-banked-{i}".encode()).hexdigest()


def serve_hub(files: int, weights: float, port_q) -> None:
    from mirrorwatch.testhub import Hub, Repo, RepoFile, serve

    n_weights = int(files * weights)
    out = [RepoFile(f"loras/{i // 1000:03d}/person-{i:06d}.safetensors", size=9_000_000 + i,
                    sha256=bank_sha(i) if i % 1000 == 0 else None) for i in range(n_weights)]
    out += [RepoFile(f"previews/{i // 1000:03d}/{i:06d}.png" if i % 2 else f"captions/{i // 1000:03d}/{i:06d}.txt",
                     size=2_000 + i % 5_000) for i in range(files - n_weights)]
    running = serve(Hub([Repo(REPO, repo_type="dataset", files=out)]))
    port_q.put(running.url)
    signal.sigwait({signal.SIGTERM})


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker_sweep(url: str, banked: int) -> dict:
    from mirrorwatch.hubs.huggingface.hub import HuggingFaceHub
    from mirrorwatch.services.banks import create_bank
    from mirrorwatch.store.db import Database
    from mirrorwatch.store.models import Entry, EntrySignal
    from mirrorwatch.sweep.runner import Sweep, SweepOptions

    with tempfile.TemporaryDirectory() as tmp:
        db = Database.open(os.path.join(tmp, "mw.db"))
        create_bank(db, "bench")
        with db.session() as s:
            for i in range(0, banked, 1000):
                e = Entry(bank_id=1, key=f"sha256:{bank_sha(i)}", name=f"Invented Person {i}",
                          name_norm=f"invented person {i}")
                s.add(e)
                s.flush()
                s.add(EntrySignal(entry_id=e.id, form="sha256", value=bank_sha(i)))
        base = peak_mb()
        t0 = time.perf_counter()
        out = Sweep(db, HuggingFaceHub(url), SweepOptions(scope={"sort": "createdAt", "repo_types": ["dataset"]},
                                                          concurrency=4, headers=False)).run()
        seconds = time.perf_counter() - t0
        c = out.counts
        return {"how": "scan hf --repo-type dataset (tree paged)", "status": out.status, "seconds": round(seconds, 1),
                "requests": c["api_requests"] + c["pages"], "weight_files_hashed": c["hashes"],
                "matches": c["matches"], "peak_rss_mb": round(peak_mb(), 1), "rss_before_mb": round(base, 1)}


def worker_naive(url: str) -> dict:
    from huggingface_hub import HfApi

    base = peak_mb()
    t0 = time.perf_counter()
    info = HfApi(endpoint=url, token=False).dataset_info(REPO, files_metadata=True)
    hashed = sum(1 for s in info.siblings if s.rfilename.endswith(".safetensors") and s.lfs)
    return {"how": "dataset_info(files_metadata=True), one answer", "status": "-",
            "seconds": round(time.perf_counter() - t0, 1), "requests": 1, "weight_files_hashed": hashed,
            "matches": "-", "peak_rss_mb": round(peak_mb(), 1), "rss_before_mb": round(base, 1)}


def run_worker(kind: str, url: str, banked: int) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    out = subprocess.run([sys.executable, __file__, "--worker", kind, "--url", url, "--banked", str(banked)],
                         capture_output=True, text=True, env=env, timeout=3600)
    if out.returncode != 0:
        raise SystemExit(f"{kind} worker failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=50_000)
    ap.add_argument("--weights", type=float, default=1.0, help="fraction of the files that are LoRAs")
    ap.add_argument("--worker", choices=("sweep", "naive"))
    ap.add_argument("--url")
    ap.add_argument("--banked", type=int, default=0)
    args = ap.parse_args()
    if args.worker:
        result = worker_sweep(args.url, args.banked) if args.worker == "sweep" else worker_naive(args.url)
        print(json.dumps(result))
        return
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    hub = ctx.Process(target=serve_hub, args=(args.files, args.weights, q), daemon=True)
    hub.start()
    try:
        url = q.get(timeout=600)
        n_weights = int(args.files * args.weights)
        rows = [run_worker("sweep", url, n_weights), run_worker("naive", url, n_weights)]
    finally:
        os.kill(hub.pid, signal.SIGTERM)
        hub.join(10)
    print(f"dataset repo of {args.files:,} files ({n_weights:,} LoRAs, {len(range(0, n_weights, 1000))} banked), "
          f"tree pages of 1,000")
    print(f"{'how':<48} {'status':>8} {'s':>7} {'requests':>9} {'hashed':>8} {'matches':>8} {'peak RSS MB':>12}")
    for r in rows:
        print(f"{r['how']:<48} {r['status']:>8} {r['seconds']:>7} {r['requests']:>9} {r['weight_files_hashed']:>8} "
              f"{r['matches']!s:>8} {r['peak_rss_mb']:>12}")
    ok = rows[0]["peak_rss_mb"] < TARGET_MB and rows[0]["weight_files_hashed"] == n_weights
    print(f"target: every LoRA hashed with paging, peak RSS under {TARGET_MB} MB: {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
