"""A local Ray instance for the content-tier tests, started once per session (Ray's start-up is slow
on a small machine): `ray.init(num_cpus=2, include_dashboard=False)` with a small object store.

The test process is one driver; CLI subprocesses join the same instance as drivers of their own by
its address (`--ray 127.0.0.1:PORT`). Workers are found (to kill one mid-task) by their process
title: Ray names a worker running a task `ray::<function>`, and only workers of this instance are
children of its raylet."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from procs import children, cmdline


@pytest.fixture(scope="session")
def ray_address(tmp_path_factory) -> Iterator[str]:
    """The address of the session's Ray instance. Its workers are started with the S3 test server's
    placeholder credentials in their environment (as a real cluster's nodes carry their own)."""
    import ray

    from s3server import ENV

    saved = {k: os.environ.get(k) for k in ENV}
    os.environ.update({k: v for k, v in ENV.items()})
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=80 * 1024**2, log_to_driver=False,
             logging_level="ERROR", configure_logging=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def busy_workers(task: str = "content_task") -> list[int]:
    """Pids of this session's Ray workers running `task` now (children of our raylets)."""
    import ray

    raylets = [n["NodeManagerAddress"] for n in ray.nodes() if n.get("Alive")]
    assert raylets, "no live Ray node"
    mine = {pid for pid in children(os.getpid()) if "raylet" in cmdline(pid) or "gcs_server" in cmdline(pid)}
    workers: set[int] = set()
    for pid in mine:
        workers |= children(pid)
    return sorted(pid for pid in workers if cmdline(pid).startswith(f"ray::{task}"))


def kill_busy_worker(task: str = "content_task") -> int | None:
    """SIGKILL one worker of this session busy with `task`; its pid, or None when none is busy."""
    for pid in busy_workers(task):
        try:
            os.kill(pid, signal.SIGKILL)
            return pid
        except ProcessLookupError:
            continue
    return None


def lora_folder(root: Path, n: int, *, seed: int = 100) -> tuple[Path, list[Path]]:
    """A folder of n LoRA files (kohya, SD 1.5, rank 8: about half a second of content work each):
    the even ones fp32 re-saves of originals kept outside it, the odd ones unrelated; returns
    (folder, originals)."""
    from mirrorwatch.corpus import convert_dtype, generate_lora

    folder, originals = root / "storage", []
    (folder / "uploads").mkdir(parents=True)
    for i in range(n):
        lf = generate_lora("sd15", seed=seed + i, rank=8)
        if i % 2 == 0:
            originals.append(lf.write(root / f"original_{i}.safetensors"))
            lf = convert_dtype(lf, "fp32")
        lf.write(folder / "uploads" / f"lora_{i}.safetensors")
    return folder, originals


def bank_of_originals(db, originals: list[Path]) -> None:
    """A bank with one entry per original file (its hashes, header and fingerprint)."""
    from mirrorwatch.services.banks import create_bank
    from mirrorwatch.services.expansion import add_file
    from mirrorwatch.store.models import Entry

    create_bank(db, "b")
    with db.session() as s:
        ids = []
        for i, _ in enumerate(originals):
            e = Entry(bank_id=1, key=f"k{i}", name=f"Invented Person {i}", name_norm=f"invented person {i}")
            s.add(e)
            s.flush()
            ids.append(e.id)
    for eid, path in zip(ids, originals, strict=True):
        add_file(db, eid, path)


def match_set(db, hub: str | None = None) -> set[tuple[str, str, int, float]]:
    """(entry, file name, tier, score) of every match (of one hub's files)."""
    from mirrorwatch.services.matches import list_matches

    return {(m.entry_name, m.path.rsplit("/", 1)[-1], m.tier, round(m.score, 4)) for m in list_matches(db)
            if hub is None or m.hub == hub}
