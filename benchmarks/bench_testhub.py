"""Benchmark of the local test hub: generation, a full listing and per-repo metadata through the real
huggingface_hub client, as the sweeper will drive it.

    .venv/bin/python benchmarks/bench_testhub.py [--repos 20000] [--threads 8] [--lookups 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

os.environ.setdefault("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1")
os.environ.pop("HF_TOKEN", None)
os.environ.setdefault("HF_HOME", tempfile.mkdtemp(prefix="bench-testhub-"))

from huggingface_hub import HfApi, get_hf_file_metadata

from mirrorwatch.testhub import Hub, generate_repos, serve


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--repos", type=int, default=20_000)
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--lookups", type=int, default=2_000, help="model_info calls and resolver HEADs each")
    args = p.parse_args()

    t = time.perf_counter()
    repos = generate_repos(args.repos, seed=1)
    gen_s = time.perf_counter() - t
    with serve(Hub(repos)) as running:
        api = HfApi(endpoint=running.url)
        t = time.perf_counter()
        listed = list(api.list_models(expand=["siblings", "sha", "createdAt", "lastModified", "gated", "disabled"],
                                      sort="createdAt"))
        list_s = time.perf_counter() - t
        candidates = [m.id for m in listed if not m.gated and not m.disabled
                      and any(s.rfilename.endswith(".safetensors") for s in m.siblings or [])]
        sample = (candidates * (args.lookups // max(1, len(candidates)) + 1))[: args.lookups]

        t = time.perf_counter()
        with ThreadPoolExecutor(args.threads) as pool:
            infos = list(pool.map(lambda rid: api.model_info(rid, files_metadata=True), sample))
        info_s = time.perf_counter() - t

        files = [(i.id, s.rfilename) for i in infos for s in i.siblings if s.lfs][: args.lookups]
        t = time.perf_counter()
        with ThreadPoolExecutor(args.threads) as pool:
            metas = list(pool.map(lambda f: get_hf_file_metadata(running.resolve_url(*f)), files))
        head_s = time.perf_counter() - t
        assert all(m.etag and len(m.etag) == 64 for m in metas)
        print(json.dumps({
            "repos": args.repos,
            "generate_s": round(gen_s, 2),
            "list_models_pages": running.stats.by_endpoint["list_models"],
            "list_models_s": round(list_s, 2),
            "listed": len(listed),
            "candidates": len(candidates),
            "model_info_per_s": round(len(sample) / info_s),
            "resolver_head_per_s": round(len(files) / head_s),
            "threads": args.threads,
            "internal_errors": running.stats.internal_errors,
        }, indent=2))


if __name__ == "__main__":
    main()
