"""Benchmark: the content tier on Ray (local instance, 2 workers) against the in-process path, Ray
workers SIGKILLed mid-scan, and a projection to 10 and 100 nodes from the measured per-file costs.

    .venv/bin/python benchmarks/bench_ray.py                       # 500 LoRA files, 10 worker kills
    .venv/bin/python benchmarks/bench_ray.py --files 100 --kills 3

A folder of generated LoRA files (`mirrorwatch.corpus`: kohya SD 1.5, rank 8; every tenth an fp32
re-save of a banked original, found only by its fingerprint) is swept with `scan dir`'s content work
three times on fresh copies of one bank: in process (today's path), as Ray tasks, and as Ray tasks
while a Ray worker busy with a task is SIGKILLed --kills times. Printed side by side: files/s, the
Ray/in-process throughput ratio, whether the matches are identical, and the projection.

Then bulk hashing per core (issue 11: "the same per-core throughput inside Ray tasks"): `hash_file`
of one --hash-mb file (in the page cache) in this process and inside a Ray task (one CPU asked, as a
content task does), timed where it runs: MB/s, and MB per CPU-second (the engine's four hasher
threads together, from getrusage), best of --hash-runs, side by side; and the task's round trip.

    .venv/bin/python benchmarks/bench_ray.py --hash-only --hash-mb 512   # only the hashing figures
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "support"))
from procs import children, cmdline


def kill_busy_worker() -> int | None:
    """SIGKILL one of this process's Ray workers while it runs a content task (found by its title)."""
    for daemon in children(os.getpid()):
        if "raylet" not in cmdline(daemon):
            continue
        for pid in children(daemon):
            if cmdline(pid).startswith("ray::content_task"):
                try:
                    os.kill(pid, signal.SIGKILL)
                    return pid
                except ProcessLookupError:
                    continue
    return None


def make_corpus(root: Path, n: int, every: int) -> tuple[Path, list[Path]]:
    from mirrorwatch.corpus import convert_dtype, generate_lora

    folder, originals = root / "storage", []
    folder.mkdir()
    for i in range(n):
        lf = generate_lora("sd15", seed=5000 + i, rank=8, blocks=0.3)
        if i % every == 0:
            originals.append(lf.write(root / f"original_{i}.safetensors"))
            lf = convert_dtype(lf, "fp32")
        lf.write(folder / f"u{i % 20}" / f"lora_{i}.safetensors") if (folder / f"u{i % 20}").is_dir() else \
            ((folder / f"u{i % 20}").mkdir(), lf.write(folder / f"u{i % 20}" / f"lora_{i}.safetensors"))
    return folder, originals


def new_db(path: Path, originals: list[Path]):
    from mirrorwatch.services.banks import create_bank
    from mirrorwatch.services.expansion import add_file
    from mirrorwatch.store.db import Database
    from mirrorwatch.store.models import Entry

    db = Database.open(str(path))
    create_bank(db, "b")
    ids = []
    with db.session() as s:
        for i in range(len(originals)):
            e = Entry(bank_id=1, key=f"k{i}", name=f"Invented Person {i}", name_norm=f"invented person {i}")
            s.add(e)
            s.flush()
            ids.append(e.id)
    for eid, p in zip(ids, originals, strict=True):
        add_file(db, eid, p)
    return db


def matches(db) -> set[tuple]:
    from mirrorwatch.services.matches import list_matches

    return {(m.entry_name, m.path, m.tier, round(m.score, 4)) for m in list_matches(db, limit=100_000)}


def sweep(db, folder: Path, content=None):
    from mirrorwatch.hubs.registry import hub_spec
    from mirrorwatch.sweep.runner import Sweep, SweepOptions

    hub = hub_spec("dir").open(str(folder))
    if content is not None:
        hub.hashes_by_reading = True
    t = time.monotonic()
    summary = Sweep(db, hub, SweepOptions(scope={"root": str(folder)}, concurrency=1, resume=False, deep=True),
                    content=content).run()
    return summary, time.monotonic() - t


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def per_file_costs(folder: Path, sample: int) -> tuple[float, float, float]:
    """Mean wall and CPU seconds (all threads: the hashers run side by side) of one file's content
    work (every hash form, header, fingerprint), and the mean file size in MB, over a sample."""
    from mirrorwatch.hubs.base import RemoteFile
    from mirrorwatch.hubs.registry import hub_spec
    from mirrorwatch.sweep.enrich import ContentJob, run_job

    hub = hub_spec("dir").open(str(folder))
    files = sorted(folder.rglob("*.safetensors"))[:sample]
    times, sizes = [], []
    c0 = cpu_s()
    for p in files:
        rel = str(p.relative_to(folder))
        f = RemoteFile(path=rel, size=p.stat().st_size, lfs=False)
        job = ContentJob(str(folder), f, None, header=True, content=True, fingerprint=True, expected_sha256=None,
                         max_bytes=1 << 31, one_read=True)
        t = time.perf_counter()
        run_job(hub, job)
        times.append(time.perf_counter() - t)
        sizes.append(p.stat().st_size / 1e6)
    return statistics.mean(times), (cpu_s() - c0) / len(files), statistics.mean(sizes)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=500)
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--every", type=int, default=10, help="Every Nth file is a re-save of a banked original.")
    ap.add_argument("--hash-mb", type=int, default=1024, help="Size of the file hashed per core (MB).")
    ap.add_argument("--hash-runs", type=int, default=3, help="Hashing runs per side (the best is kept).")
    ap.add_argument("--hash-only", action="store_true", help="Only the hashing-per-core figures.")
    args = ap.parse_args()
    import ray

    from mirrorwatch.sweep.rayrun import HubOpener, connect

    if args.hash_only:
        ray.init(num_cpus=2, include_dashboard=False, object_store_memory=100 * 1024**2, log_to_driver=False,
                 logging_level="ERROR", configure_logging=False)
        with tempfile.TemporaryDirectory(prefix="mw-bench-ray-hash-") as tmp:
            hash_per_core(Path(tmp), args.hash_mb, args.hash_runs)
        ray.shutdown()
        return

    with tempfile.TemporaryDirectory(prefix="mw-bench-ray-") as tmp:
        root = Path(tmp)
        t = time.monotonic()
        folder, originals = make_corpus(root, args.files, args.every)
        mb = sum(p.stat().st_size for p in folder.rglob("*.safetensors")) / 1e6
        print(f"corpus: {args.files} LoRA files, {mb:.0f} MB, {len(originals)} banked originals "
              f"({time.monotonic() - t:.0f}s to generate)", flush=True)

        db = new_db(root / "inproc.db", originals)
        c0 = cpu_s()
        s_in, el_in = sweep(db, folder)
        cpu_in = cpu_s() - c0
        ref = matches(db)
        print(f"in process: {el_in:.1f}s, {args.files / el_in:.2f} files/s, {cpu_in:.1f} CPU s, "
              f"{len(ref)} matches", flush=True)

        t = time.monotonic()
        ray.init(num_cpus=2, include_dashboard=False, object_store_memory=100 * 1024**2, log_to_driver=False,
                 logging_level="ERROR", configure_logging=False)
        ray.get([ray.remote(lambda: 0).remote() for _ in range(2)])  # the two workers started
        print(f"local Ray instance up in {time.monotonic() - t:.1f}s", flush=True)

        db2 = new_db(root / "ray.db", originals)
        s_ray, el_ray = sweep(db2, folder, connect(None, db2, HubOpener("dir", str(folder))))
        same = matches(db2) == ref
        print(f"Ray: {el_ray:.1f}s, {args.files / el_ray:.2f} files/s, matches identical: {same}", flush=True)

        kills: list[int] = []
        same_k = None
        el_k = 0.0
        if args.kills:
            db3 = new_db(root / "ray-kills.db", originals)
            runner = connect(None, db3, HubOpener("dir", str(folder)))
            stop = threading.Event()
            # (the content stage is the first part of the sweep; matching and writing follow)
            gap = max(0.5, min(3.0, 0.4 * el_ray / (args.kills + 1)))

            def killer() -> None:
                time.sleep(gap / 2)
                while not stop.is_set() and len(kills) < args.kills:
                    pid = kill_busy_worker()
                    if pid is None:
                        time.sleep(0.02)
                        continue
                    kills.append(pid)
                    stop.wait(gap)

            th = threading.Thread(target=killer, daemon=True)
            th.start()
            s_k, el_k = sweep(db3, folder, runner)
            stop.set()
            th.join()
            got = matches(db3)
            same_k = got == ref
            print(f"Ray with {len(kills)} worker SIGKILLs: {el_k:.1f}s, {s_k.counts['content_reads']} files read, "
                  f"matches identical: {same_k} ({len(got)} vs {len(ref)}); driver re-submissions {runner.retried}",
                  flush=True)
        hash_per_core(root, args.hash_mb, args.hash_runs)
        ray.shutdown()

        cost, cpu_cost, size = per_file_costs(folder, min(40, args.files))
        ratio = (args.files / el_ray) / (args.files / el_in)
        print("\n| path | seconds | files/s | matches identical |")
        print("|---|---|---|---|")
        print(f"| in process (scan dir) | {el_in:.1f} | {args.files / el_in:.2f} | (reference, {len(ref)}) |")
        print(f"| Ray, local, 2 workers | {el_ray:.1f} | {args.files / el_ray:.2f} | {same} |")
        if args.kills:
            print(f"| Ray, {len(kills)} worker SIGKILLs | {el_k:.1f} | {args.files / el_k:.2f} | {same_k} |")
        print(f"\nRay / in-process throughput: {ratio:.2f}x")
        print(f"measured per-file content work (every form + header + fingerprint, one task): {cost * 1000:.0f} ms "
              f"wall, {cpu_cost * 1000:.0f} ms CPU for {size:.1f} MB -> {cpu_cost / size * 1000:.1f} ms CPU per MB")
        project(cpu_cost / size)
        if not same or (args.kills and not same_k):
            sys.exit(1)


def _timed_hash(path: str) -> tuple[float, float, str]:
    """hash_file of `path` here: (wall s, CPU s of this process, all threads, sha256)."""
    from mirrorwatch.hashing.engine import hash_file

    c0, t0 = cpu_s(), time.perf_counter()
    h = hash_file(path)
    return time.perf_counter() - t0, cpu_s() - c0, h.sha256


def hash_per_core(root: Path, mb: int, runs: int) -> None:
    """hash_file MB/s and MB per CPU-second in this process and inside a Ray task, side by side."""
    import json
    import struct

    import ray

    path = root / "hash-bench.safetensors"  # (a safetensors file: every form, AutoV3's second SHA-256 too)
    block = os.urandom(1 << 20)
    n = mb << 20
    header = json.dumps({"w": {"dtype": "U8", "shape": [n], "data_offsets": [0, n]}}).encode()
    with path.open("wb") as f:
        f.write(struct.pack("<Q", len(header)) + header)
        for _ in range(mb):
            f.write(block)
    size_mb = path.stat().st_size / 1e6
    _timed_hash(str(path))  # (into the page cache; the engine's threads started once)
    local = [_timed_hash(str(path)) for _ in range(runs)]
    task = ray.remote(_timed_hash).options(num_cpus=1)
    ray.get(task.remote(str(path)))  # (a worker started, the module imported, the page cache warm)
    remote, trips = [], []
    for _ in range(runs):
        t = time.perf_counter()
        remote.append(ray.get(task.remote(str(path))))
        trips.append(time.perf_counter() - t)
    assert len({r[2] for r in local + remote}) == 1, "the task hashed other bytes"
    from mirrorwatch.hashing.engine import hash_file

    assert hash_file(path).autov3_full, "not hashed as a safetensors file"
    print(f"\nhash_file of a {size_mb:.0f} MB file (page cache), best of {runs}, timed where it runs:")
    print("| where | seconds | MB/s | CPU seconds | MB per CPU-second | cores busy |")
    print("|---|---|---|---|---|---|")
    rows = {}
    for label, got in (("in process", local), ("inside a Ray task (num_cpus=1)", remote)):
        wall, cpu, _ = min(got)
        rows[label] = (size_mb / wall, size_mb / cpu)
        print(f"| {label} | {wall:.2f} | {size_mb / wall:.0f} | {cpu:.2f} | {size_mb / cpu:.0f} | {cpu / wall:.2f} |")
    (w_in, c_in), (w_ray, c_ray) = rows.values()
    print(f"Ray task / in process: {w_ray / w_in:.2f}x MB/s, {c_ray / c_in:.2f}x MB per CPU-second; task round "
          f"trip (submit to result) {min(trips):.2f} s for {min(r[0] for r in remote):.2f} s of hashing")


def project(s_per_mb: float) -> None:
    """Files a day for 1, 10 and 100 nodes, from the measured CPU cost per MB, under stated assumptions."""
    size_mb = 144.0  # a typical SDXL LoRA (rank 32, fp16)
    cores = 16  # per node
    bw_mb_s = 125.0  # 1 Gbit/s per node, sustained from the hub's CDN
    resolver_per_day = 12_000 * 288  # HF PRO plan: 12,000 resolver requests per 5 minutes, per token
    cpu_per_file = s_per_mb * size_mb
    print(f"\nprojection (assumptions: {size_mb:.0f} MB per file, {cores} cores and {bw_mb_s * 8 / 1000:.0f} Gbit/s "
          f"per node, CPU cost {s_per_mb * 1000:.1f} ms/MB as measured, 2 resolver requests per file (header + "
          f"download) against a PRO token's {resolver_per_day:,} a day; the database only writes results)")
    print("| nodes | CPU-bound files/day | bandwidth-bound files/day | quota-bound files/day (1 token) | files/day |")
    print("|---|---|---|---|---|")
    for nodes in (1, 10, 100):
        cpu = nodes * cores * 86400 / cpu_per_file
        bw = nodes * bw_mb_s * 86400 / size_mb
        quota = resolver_per_day / 2
        print(f"| {nodes} | {cpu:,.0f} | {bw:,.0f} | {quota:,.0f} | {min(cpu, bw, quota):,.0f} |")


if __name__ == "__main__":
    main()
