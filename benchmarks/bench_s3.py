"""Benchmark: `scan s3` of many small objects on a local S3-compatible server (moto's server mode).

    .venv/bin/python benchmarks/bench_s3.py                    # 10,000 objects
    .venv/bin/python benchmarks/bench_s3.py --objects 2000 --ray

The server runs in its own process (it does not share the GIL with the sweep). Printed side by side:
the first sweep (every object read once: hashed in every form, header read, fingerprint tried) and
the second (nothing changed: no object read), each with its objects read and its time.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import signal
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ENV = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}


def _serve(ports) -> None:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)  # (a free port)
    server.start()
    ports.put(server.get_host_and_port()[1])
    signal.sigwait({signal.SIGTERM})


def small_safetensors(i: int) -> bytes:
    import numpy as np
    from safetensors.numpy import save

    rng = np.random.default_rng(i)
    return save({"w": rng.standard_normal((16, 16), dtype=np.float32)}, metadata={"ss_output_name": f"bench_{i}"})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--objects", type=int, default=10_000)
    ap.add_argument("--ray", action="store_true", help="Run the content work as Ray tasks (a local Ray instance).")
    args = ap.parse_args()
    os.environ.update(ENV)
    ctx = mp.get_context("spawn")
    ports = ctx.Queue()
    proc = ctx.Process(target=_serve, args=(ports,), daemon=True)
    proc.start()
    port = ports.get(timeout=60)
    endpoint = f"http://127.0.0.1:{port}"
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    try:
        import boto3

        client = boto3.client("s3", endpoint_url=endpoint)
        for _ in range(100):
            try:
                client.create_bucket(Bucket="bench")
                break
            except Exception:
                time.sleep(0.1)
        t = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: client.put_object(Bucket="bench", Key=f"uploads/u{i % 97}/m{i}.safetensors",
                                                      Body=small_safetensors(i)), range(args.objects)))
        print(f"uploaded {args.objects:,} objects in {time.monotonic() - t:.1f}s", flush=True)
        run(args, endpoint)
    finally:
        proc.terminate()
        proc.join(10)


def run(args: argparse.Namespace, endpoint: str) -> None:
    from mirrorwatch.hubs.registry import hub_spec
    from mirrorwatch.services.scans import known_hashes
    from mirrorwatch.store.db import Database
    from mirrorwatch.sweep.runner import Sweep, SweepOptions

    with tempfile.TemporaryDirectory(prefix="mw-bench-s3-") as tmp:
        db = Database.open(str(Path(tmp) / "bench.db"))
        from mirrorwatch.sweep.enrich import InProcess

        content = InProcess(8)
        if args.ray:
            from mirrorwatch.sweep.rayrun import HubOpener, connect

            content = connect(None, db, HubOpener("s3", "s3://bench/uploads", {"endpoint": endpoint}))
        rows = []
        for label in ("first scan", "second scan"):
            hub = hub_spec("s3").open("s3://bench/uploads", endpoint=endpoint)
            hub.known = known_hashes(db, "s3", hub.location)
            t = time.monotonic()
            s = Sweep(db, hub, SweepOptions(scope={"root": hub.location}, concurrency=1, resume=False, deep=True),
                      content=content).run()
            el = time.monotonic() - t
            c = s.counts
            rows.append((label, c["files"], c["content_reads"], c["headers_read"], c["errors"], el))
            print(f"{label}: {c['files']:,} objects listed, {c['content_reads']:,} read and hashed, "
                  f"{c['headers_read']:,} headers, {c['errors']} errors, {el:.1f}s "
                  f"({c['files'] / el:.0f} objects/s)", flush=True)
        print("\n| scan | objects | read+hashed | headers read | errors | seconds |")
        print("|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r[0]} | {r[1]:,} | {r[2]:,} | {r[3]:,} | {r[4]} | {r[5]:.1f} |")
        ok = rows[0][2] == args.objects and rows[1][2] == 0
        print(f"\nevery object hashed once, none on the second scan: {'yes' if ok else 'NO'}")
        if not ok:
            sys.exit(1)


if __name__ == "__main__":
    main()
