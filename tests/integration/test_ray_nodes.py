"""Content scans on a multi-node Ray cluster that loses nodes (issue 11: "a node lost", "a cluster that
loses every worker").

A local cluster of a head node (no CPU) and two worker nodes of one CPU each (`raycluster`: Ray's own
`ray.cluster_utils.Cluster`, in a helper process); `mirrorwatch scan dir --ray ADDRESS` is the driver,
a process of its own. A folder of generated LoRA files (fp32 re-saves of banked originals, found by
their fingerprints, and unrelated files) is swept in process for the reference, then on the cluster:

- a worker node removed (its raylet, object store and workers SIGKILLed) while one of its workers
  runs a content task: the scan ends with exactly the reference's matches, every file's result
  written once to the content ledger, nothing doubled;
- every worker node removed mid-scan: a clear message, a non-zero exit, no traceback; the run
  recorded interrupted with nothing of the folder written (its results done so far kept in the
  ledger); the scan run again without Ray, or with Ray once a node is back, ends with the reference's
  matches, the second re-using the results already done;
- files past the content tier's read cap, of a folder and of a bucket: every hash form from a stream
  inside a Ray task."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from _hash_helpers import big_safetensors, hashlib_forms
from mirrorwatch.corpus import generate_lora
from mirrorwatch.hubs.registry import hub_spec
from mirrorwatch.services.matches import list_matches
from mirrorwatch.store.db import Database
from mirrorwatch.store.models import ContentTask, Fingerprint, HubFile, HubRepo, ScanRun
from mirrorwatch.sweep.enrich import EngineLost
from mirrorwatch.sweep.runner import Sweep, SweepOptions
from procs import reaped
from raycluster import RayCluster
from rayfixtures import bank_of_originals, lora_folder, match_set

pytest_plugins = ("s3server",)
pytestmark = pytest.mark.slow

N = 16


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, list[Path], set]:
    root = tmp_path_factory.mktemp("nodecorpus")
    folder, originals = lora_folder(root, N, seed=300)
    ref = Database.open(str(root / "reference.db"))
    bank_of_originals(ref, originals)
    summary = Sweep(ref, hub_spec("dir").open(str(folder)),
                    SweepOptions(scope={"root": str(folder)}, concurrency=1, resume=False, deep=True)).run()
    expected = match_set(ref)
    assert summary.status == "finished" and len(expected) >= N // 2  # every re-save found, by fingerprint
    return folder, originals, expected


@pytest.fixture
def cluster() -> Iterator[RayCluster]:
    c = RayCluster(workers=2)
    try:
        yield c
    finally:
        c.close()


def _scan(tmp_path: Path, db_path: Path, folder: Path, address: str, env: dict[str, str] | None = None,
          ) -> tuple[subprocess.Popen, Path, Path]:
    """`mirrorwatch scan dir FOLDER --ray ADDRESS --json` started (its output in files)."""
    out, err = tmp_path / "scan.out", tmp_path / "scan.err"
    proc = subprocess.Popen([sys.executable, "-m", "mirrorwatch.cli.main", "scan", "dir", str(folder), "--ray",
                             address, "--json"], stdout=out.open("w"), stderr=err.open("w"),
                            env={**os.environ, "MIRRORWATCH_DB": str(db_path), **(env or {})})
    return proc, out, err


def _done(db: Database) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(ContentTask).where(ContentTask.status == "done"))


def _until(cond: Callable[[], bool], proc: subprocess.Popen, what: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert proc.poll() is None, f"the scan ended before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _rows(db: Database) -> dict[str, int]:
    with db.session() as s:
        return {"files": s.scalar(select(func.count()).select_from(HubFile)),
                "fingerprints": s.scalar(select(func.count()).select_from(Fingerprint)
                                         .where(Fingerprint.hub_file_id.is_not(None))),
                "ledger": s.scalar(select(func.count()).select_from(ContentTask)),
                "matches": len(list_matches(db))}


def test_a_worker_node_lost_mid_task_changes_nothing(db, db_path, tmp_path, corpus, cluster):
    folder, originals, expected = corpus
    bank_of_originals(db, originals)
    proc, out, err = _scan(tmp_path, db_path, folder, cluster.address)
    with reaped(proc):
        _until(lambda: _done(db) >= 2, proc, "two results came back")
        killed = None
        deadline = time.monotonic() + 60
        while killed is None and proc.poll() is None and time.monotonic() < deadline:
            killed = cluster.ask("kill-busy content_task")["killed"]  # a node whose worker runs a task now
            time.sleep(0 if killed else 0.05)
        assert killed, "no worker node was caught running a content task"
        assert len(cluster.ask("nodes")["nodes"]) == 1
        rc = proc.wait(timeout=300)
    assert rc == 0, err.read_text()[-2000:]
    assert "Traceback" not in err.read_text()
    summary = json.loads(out.read_text())
    assert summary["status"] == "finished"
    assert summary["counts"]["content_reads"] == N and summary["counts"]["fingerprinted"] == N
    engine = summary["engine"]
    assert engine["results_written"] == N and engine["failed"] == 0  # every file's result written once
    assert match_set(db) == expected
    # nothing doubled: one row per file, one fingerprint per file, one per match; the ledger settled
    assert _rows(db) == {"files": N, "fingerprints": N, "ledger": 0, "matches": len(expected)}


def test_a_cluster_that_loses_every_worker_stops_interrupted_and_resumes(db, db_path, tmp_path, cli, corpus,
                                                                        cluster):
    folder, originals, expected = corpus
    bank_of_originals(db, originals)
    proc, out, err = _scan(tmp_path, db_path, folder, cluster.address, env={"MIRRORWATCH_RAY_LOST_GRACE_S": "3"})
    with reaped(proc):
        _until(lambda: _done(db) >= 2, proc, "two results came back")
        assert len(cluster.ask("kill-all")["killed"]) == 2
        rc = proc.wait(timeout=180)
    stderr = err.read_text()
    assert rc == EngineLost.exit_code, stderr[-2000:]
    assert "the Ray cluster lost every worker" in stderr and "recorded in the database" in stderr
    assert "Traceback" not in stderr
    assert json.loads(out.read_text())["status"] == "interrupted"
    with db.session() as s:
        run = s.scalars(select(ScanRun)).one()
        assert run.status == "interrupted" and "lost every worker" in run.checkpoint["reason"]
        ledger = s.execute(select(ContentTask.status, ContentTask.evidence)).all()
    # nothing half-written: no file of the folder, no match; the results done so far kept in the ledger
    done = [ev for st, ev in ledger if st == "done"]
    assert len(done) >= 2 and all(ev and ev["hashes"].get("sha256") for ev in done)
    assert {st for st, _ in ledger} <= {"done", "pending"}
    rows = _rows(db)
    assert rows["files"] == 0 and rows["fingerprints"] == 0 and rows["matches"] == 0

    # run again without Ray (on a copy of the database) ...
    copy = tmp_path / "copy.db"
    with db.engine.connect() as conn:
        conn.execute(text(f"VACUUM INTO '{copy}'"))
    again = cli("scan", "dir", str(folder), "--json", db=copy)
    assert again.returncode == 0, again.stderr
    assert match_set(Database.open(str(copy))) == expected
    assert _rows(Database.open(str(copy)))["ledger"] == 0  # the lost run's recorded work: done, forgotten

    # ... and with Ray once a worker node is back: the results done before are used, not redone
    cluster.ask("add")
    resumed = cli("scan", "dir", str(folder), "--ray", cluster.address, "--json", timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    engine = json.loads(resumed.stdout)["engine"]
    assert engine["reused"] == len(done) and engine["results_written"] == N - len(done)
    assert match_set(db) == expected
    assert _rows(db) == {"files": N, "fingerprints": N, "ledger": 0, "matches": len(expected)}


def test_files_over_the_read_cap_are_hashed_from_a_stream_in_ray_tasks(db, tmp_path, cli, s3_bucket):
    """With a 1 MiB cap (MIRRORWATCH_CONTENT_CAP, read by the driver: its tasks carry it), a 3 MiB
    file of a folder and of a bucket is hashed in every form from a stream inside a Ray task (read in
    place, resp. by ETag-pinned ranged reads), never copied nor fingerprinted; the forms equal
    hashlib's over the same bytes; a small LoRA beside it is read and fingerprinted as usual."""
    folder = tmp_path / "capped"
    folder.mkdir()
    big = big_safetensors(folder, 21)
    generate_lora("sd15", seed=22, rank=4, blocks=0.2).write(folder / "small.safetensors")
    for p in folder.iterdir():
        s3_bucket.put(f"capped/{p.name}", p.read_bytes())
    want = hashlib_forms(big)
    cap = {"MIRRORWATCH_CONTENT_CAP": "1MiB"}
    one = RayCluster(workers=1, env=s3_bucket.env)  # (its workers read the store's credentials from their env)
    try:
        for args, env in ((["dir", str(folder)], cap), ([s3_bucket.url("capped")], {**s3_bucket.env, **cap})):
            out = cli("scan", *args, "--ray", one.address, "--json", env=env, timeout=300)
            assert out.returncode == 0, out.stderr
            summary = json.loads(out.stdout)
            assert summary["counts"]["content_reads"] == 2 and summary["counts"]["fingerprinted"] == 1
            assert summary["counts"]["errors"] == 0 and summary["engine"]["results_written"] == 2
    finally:
        one.close()
    with db.session() as s:
        stored = {(r.hub, f.path): f for f, r in s.execute(select(HubFile, HubRepo).join(HubRepo))}
    for hub in ("dir", "s3"):
        f = stored[(hub, "big21.safetensors")]
        assert {"sha256": f.sha256, **{k: f.hashes.get(k) for k in want if k != "sha256"}} == want, hub
