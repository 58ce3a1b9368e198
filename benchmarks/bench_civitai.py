"""Benchmark: a Civitai sweep against the local Civitai API — requests per 100 listed versions, and
429s when the client paces below the server's edge limit (and when it does not).

    .venv/bin/python benchmarks/bench_civitai.py                  # 3,000 models
    .venv/bin/python benchmarks/bench_civitai.py --models 10000 --edge-ms 150 --pace-ms 200

Printed side by side: models, versions, files, requests (listing pages, per-model calls, 429s),
requests per 100 versions, matches, seconds; once paced (`--pace-ms`) and once unpaced (0 ms).
Target (issue 10): under 1.05 requests per 100 listed versions; zero 429s when paced.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests" / "support")]


def run(models: int, edge_ms: float, pace_ms: float) -> dict:
    from civitaifixtures import civitai_hub, make_civitai_bank, scenario
    from mirrorwatch.store.db import Database
    from mirrorwatch.sweep.runner import Sweep, SweepOptions
    from mirrorwatch.testhub.civitai import CivitaiApi, serve_civitai

    items, _ = scenario(models)
    shown = [m for m in items if not m.hidden]
    versions = sum(len(m.versions) for m in shown)
    files = sum(len(v.files) for m in shown for v in m.versions)
    with tempfile.TemporaryDirectory() as d:
        db = Database.open(str(Path(d) / "bench.db"))
        make_civitai_bank(db)
        with serve_civitai(CivitaiApi(items, min_interval_s=edge_ms / 1000)) as running:
            hub = civitai_hub(running.url, interval_s=pace_ms / 1000)
            started = time.monotonic()
            summary = Sweep(db, hub, SweepOptions(scope={"sort": "createdAt"}, concurrency=8)).run()
            took = time.monotonic() - started
            st = running.stats
    return {"pace_ms": pace_ms, "models": len(shown), "versions": versions, "files": files,
            "requests": st.requests, "pages": st.listing_requests, "per_model": st.model_requests,
            "429s": st.throttled, "req_per_100_versions": round(100 * st.requests / versions, 3),
            "matches": summary.counts["matches"], "status": summary.status, "seconds": round(took, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", type=int, default=3000)
    ap.add_argument("--edge-ms", type=float, default=150.0, help="server: 429 for requests closer than this")
    ap.add_argument("--pace-ms", type=float, default=200.0, help="client: interval between requests")
    a = ap.parse_args()
    rows = [run(a.models, a.edge_ms, a.pace_ms), run(a.models, a.edge_ms, 0.0)]
    keys = list(rows[0])
    print(f"{'':24}" + "".join(f"{'paced' if r['pace_ms'] else 'unpaced':>14}" for r in rows))
    for k in keys:
        print(f"{k:24}" + "".join(f"{r[k]!s:>14}" for r in rows))


if __name__ == "__main__":
    main()
