"""Benchmark: `scan hf` against a naive loop on a latency-injected local hub, and SIGKILL resilience.

    .venv/bin/python benchmarks/bench_sweep.py                 # 2,000 repos, 50 ms per request
    .venv/bin/python benchmarks/bench_sweep.py --kill 20 --repos 20000 --latency-ms 2

The test hub runs in its own process (so it does not share the GIL with the sweeper). Printed
side by side in one run: repos/s and requests per repo for the naive loop (`list_models`, then
`model_info(files_metadata=True)` for every repo, one at a time) and for `scan hf`; 429s seen when
the hub announces a small quota; with --kill, the matches of a sweep SIGKILLed N times at random
moments against an uninterrupted one.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import multiprocessing as mp
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1")
os.environ.pop("HF_TOKEN", None)


def bank_sha(i: int) -> str:
    return hashlib.sha256(f"bench-banked-{i}".encode()).hexdigest()


def planted(n: int):
    from mirrorwatch.testhub import RepoFile

    return {f"bulk-uploader-{i % 7}/lora-{i}": [RepoFile("lora.safetensors", size=140_000_000 + i, sha256=bank_sha(i))]
            for i in range(n)}


def serve_hub(repos: int, plants: int, latency_ms: float, quotas: tuple | None, port_q) -> None:
    from mirrorwatch.testhub import Faults, Hub, Quotas, generate_repos, serve

    hub = Hub(generate_repos(repos, seed=42, planted=planted(plants)))
    q = Quotas(api=quotas[0], resolvers=quotas[1], window_s=quotas[2]) if quotas else None
    running = serve(hub, faults=Faults(latency_s=latency_ms / 1000.0), quotas=q)
    port_q.put(running.url)
    signal.sigwait({signal.SIGTERM})


class HubProcess:
    def __init__(self, repos: int, plants: int, latency_ms: float, quotas: tuple | None = None) -> None:
        ctx = mp.get_context("fork")
        q = ctx.Queue()
        self.proc = ctx.Process(target=serve_hub, args=(repos, plants, latency_ms, quotas, q), daemon=True)
        self.proc.start()
        self.url = q.get(timeout=120)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.join(10)


def make_db(path: Path, plants: int):
    from mirrorwatch.services.banks import create_bank
    from mirrorwatch.store.db import Database
    from mirrorwatch.store.models import Entry, EntrySignal

    for p in path.parent.glob(path.name + "*"):
        p.unlink()
    db = Database.open(str(path))
    create_bank(db, "bench")
    with db.session() as s:
        for i in range(plants):
            e = Entry(bank_id=1, key=f"k{i}", name=f"Bench Person {i}", name_norm=f"bench person {i}")
            s.add(e)
            s.flush()
            s.add(EntrySignal(entry_id=e.id, form="sha256", value=bank_sha(i)))
    return db




def naive(url: str, max_s: float) -> tuple[int, int, float]:
    from huggingface_hub import HfApi

    api = HfApi(endpoint=url, token=False)
    t = time.perf_counter()
    repos = 0
    requests = 0
    listing = list(api.list_models())
    requests += max(1, (len(listing) + 999) // 1000)
    for m in listing:
        with contextlib.suppress(Exception):
            api.model_info(m.id, files_metadata=True)
        requests += 1
        repos += 1
        if time.perf_counter() - t > max_s:
            break
    return repos, requests, time.perf_counter() - t


def ours(db, url: str, concurrency: int):
    from mirrorwatch.hubs.huggingface.hub import HuggingFaceHub
    from mirrorwatch.sweep.runner import Sweep, SweepOptions

    hub = HuggingFaceHub(url)
    t = time.perf_counter()
    # exact tier only: the hub's generated files have no bytes for header reads (measured separately)
    opts = SweepOptions(scope={"sort": "createdAt"}, concurrency=concurrency, resume=False, headers=False)
    summary = Sweep(db, hub, opts).run()
    return summary, time.perf_counter() - t


def matches(db) -> set:
    from mirrorwatch.services.matches import list_matches

    return {(r.entry_name, r.repo_id, r.path) for r in list_matches(db, limit=10**6)}


def speed(args, work: Path) -> None:
    print(f"hub: {args.repos:,} generated repos, {args.plants} planted re-uploads, {args.latency_ms:.0f} ms per request")
    hub = HubProcess(args.repos, args.plants, args.latency_ms)
    try:
        n_repos, n_req, secs = naive(hub.url, args.naive_max_s)
        naive_rps = n_repos / secs
        db = make_db(work / "speed.db", args.plants)
        summary, ours_s = ours(db, hub.url, args.concurrency)
        c = summary.counts
        api = c["pages"] + c["api_requests"]
        total = api + c["resolver_requests"]
        ours_rps = c["listed"] / ours_s
        print(f"{'':<22}{'repos':>8}{'seconds':>10}{'repos/s':>10}{'API req/repo':>14}{'all req/repo':>14}{'matches':>9}")
        print(f"{'naive loop':<22}{n_repos:>8}{secs:>10.1f}{naive_rps:>10.1f}{n_req / n_repos:>14.3f}{n_req / n_repos:>14.3f}{'-':>9}")
        print(f"{'mirrorwatch scan hf':<22}{c['listed']:>8}{ours_s:>10.1f}{ours_rps:>10.1f}{api / c['listed']:>14.3f}"
              f"{total / c['listed']:>14.3f}{c['matches']:>9}")
        print(f"speed-up: {ours_rps / naive_rps:.1f}x repos/s (target >= 10x); API requests per repo "
              f"{api / c['listed']:.3f} (target < 1.1); candidates {c['candidates']}, by model_info "
              f"{c['api_requests']}, by resolver HEAD {c['resolver_requests']}; 429s {c['throttled']}")
    finally:
        hub.stop()
    # the same sweep against a hub announcing a small quota: paced, no 429
    quotas = (args.quota_api, args.quota_resolvers, args.quota_window)
    hub = HubProcess(min(args.repos, 1000), args.plants, 0.0, quotas=quotas)
    try:
        db = make_db(work / "quota.db", args.plants)
        summary, secs = ours(db, hub.url, args.concurrency)
        q = summary.quota
        print(f"quota run: hub announces api={quotas[0]}, resolvers={quotas[1]} per {quotas[2]:.0f}s window; "
              f"{summary.counts['listed']} repos in {secs:.1f}s, 429s seen: {summary.counts['throttled']}, "
              f"waited api {q.get('api', {}).get('waited_s')}s / resolvers {q.get('resolvers', {}).get('waited_s')}s, "
              f"matches {summary.counts['matches']}")
    finally:
        hub.stop()


def kill_test(args, work: Path) -> None:
    print(f"kill test: {args.repos:,} repos, {args.plants} planted, {args.kill} SIGKILLs at random moments")
    hub = HubProcess(args.repos, args.plants, args.latency_ms)
    try:
        ref = make_db(work / "ref.db", args.plants)
        summary, secs = ours(ref, hub.url, args.concurrency)
        expected = matches(ref)
        print(f"uninterrupted: {len(expected)} matches in {secs:.1f}s")
        target = work / "killed.db"
        make_db(target, args.plants)
        env = dict(os.environ, MIRRORWATCH_DB=str(target))
        cmd = [sys.executable, "-m", "mirrorwatch.cli.main", "scan", "hf", "--endpoint", hub.url, "--json", "--no-headers",
               "--sort", "createdAt", "--concurrency", str(args.concurrency)]
        rng = random.Random(args.seed)
        kills = 0
        t = time.perf_counter()
        while kills < args.kill:
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(1.0, max(1.5, secs / args.kill * 1.5)))
            if proc.poll() is not None:
                break
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
        final = subprocess.run(cmd, env=env, capture_output=True, text=True)
        from mirrorwatch.store.db import Database

        got = matches(Database.open(str(target)))
        print(f"interrupted {kills} times by SIGKILL, then completed (exit {final.returncode}) in "
              f"{time.perf_counter() - t:.1f}s total: {len(got)} matches; identical to uninterrupted: {got == expected}; "
              f"lost {len(expected - got)}, extra {len(got - expected)}")
    finally:
        hub.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repos", type=int, default=2000)
    ap.add_argument("--plants", type=int, default=60)
    ap.add_argument("--latency-ms", type=float, default=50.0)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--naive-max-s", type=float, default=600.0, help="stop the naive loop after this long")
    ap.add_argument("--quota-api", type=int, default=100)
    ap.add_argument("--quota-resolvers", type=int, default=300)
    ap.add_argument("--quota-window", type=float, default=5.0)
    ap.add_argument("--kill", type=int, default=0, help="run the SIGKILL test with this many kills instead")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mw-bench-sweep-"))
    if args.kill:
        kill_test(args, work)
    else:
        speed(args, work)


if __name__ == "__main__":
    main()
