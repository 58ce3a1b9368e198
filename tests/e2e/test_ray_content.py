"""Content scans on Ray: the same matches as the in-process path, whatever is killed.

One local Ray instance for the session (`rayfixtures.ray_address`); CLI subprocesses join it by its
address. A folder of generated LoRA files (fp32 re-saves of banked originals: fingerprint matches,
and unrelated files) is swept without Ray for the reference, then with Ray: undisturbed, with Ray
workers SIGKILLed mid-task, and with the driver SIGKILLed and started again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from sqlalchemy import func, select

from mirrorwatch.hubs.registry import hub_spec
from mirrorwatch.services.scans import known_hashes
from mirrorwatch.store.db import Database
from mirrorwatch.store.models import ContentTask
from mirrorwatch.sweep.rayrun import HubOpener, connect
from mirrorwatch.sweep.runner import Sweep, SweepOptions
from rayfixtures import bank_of_originals, kill_busy_worker, lora_folder, match_set

pytest_plugins = ("rayfixtures", "s3server", "pytest_testhub")
pytestmark = pytest.mark.slow


def _sweep_dir(db: Database, folder, content=None):
    hub = hub_spec("dir").open(str(folder), known=known_hashes(db, "dir", str(folder)))
    if content is not None:
        hub.hashes_by_reading = True
    return Sweep(db, hub, SweepOptions(scope={"root": str(folder)}, concurrency=1, resume=False, deep=True),
                 content=content).run()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("raycorpus")
    folder, originals = lora_folder(root, 12)
    ref = Database.open(str(root / "reference.db"))
    bank_of_originals(ref, originals)
    summary = _sweep_dir(ref, folder)
    expected = match_set(ref)
    assert summary.status == "finished" and len(expected) >= 6  # every re-save found, by fingerprint
    return folder, originals, expected


def test_scan_dir_and_s3_with_ray_match_the_in_process_path(db, db_path, cli, corpus, ray_address, s3_bucket):
    folder, originals, expected = corpus
    bank_of_originals(db, originals)
    out = cli("scan", "dir", str(folder), "--ray", ray_address, "--json")
    assert out.returncode == 0, out.stderr
    counts = json.loads(out.stdout)["counts"]
    assert counts["content_reads"] == 12 and counts["fingerprinted"] == 12
    assert match_set(db) == expected
    again = cli("scan", "dir", str(folder), "--ray", ray_address, "--json")
    assert json.loads(again.stdout)["counts"]["content_reads"] == 0
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(ContentTask)) == 0  # persisted: the ledger is empty

    # the same objects in a bucket, read by Ray tasks through boto3 in the workers
    for p in sorted(folder.rglob("*.safetensors")):
        s3_bucket.put(f"up/{p.name}", p.read_bytes())
    s3 = cli("scan", s3_bucket.url("up"), "--ray", ray_address, "--json", env=s3_bucket.env)
    assert s3.returncode == 0, s3.stderr
    assert json.loads(s3.stdout)["counts"]["content_reads"] == 12
    assert match_set(db, "s3") == expected

    bad = cli("scan", "dir", str(folder), "--ray", "127.0.0.1:9")
    assert bad.returncode != 0 and "cannot reach the Ray cluster at 127.0.0.1:9" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_ray_workers_killed_mid_task_change_nothing(db, corpus, ray_address):
    folder, originals, expected = corpus
    bank_of_originals(db, originals)
    runner = connect(ray_address, db, HubOpener("dir", str(folder)))
    kills: list[int] = []
    stop = threading.Event()

    def killer() -> None:
        while not stop.is_set() and len(kills) < 3:
            pid = kill_busy_worker()
            if pid is not None:
                kills.append(pid)
                time.sleep(0.5)
            else:
                time.sleep(0.05)

    t = threading.Thread(target=killer)
    t.start()
    try:
        summary = _sweep_dir(db, folder, content=runner)
    finally:
        stop.set()
        t.join()
    assert kills, "no Ray worker was caught mid-task"
    assert summary.status == "finished" and summary.counts["content_reads"] == 12
    assert match_set(db) == expected


def test_driver_sigkilled_and_restarted_resumes_pending_work(db, db_path, cli, corpus, ray_address):
    folder, originals, expected = corpus
    bank_of_originals(db, originals)
    env = {**os.environ, "MIRRORWATCH_DB": str(db_path)}
    proc = subprocess.Popen([sys.executable, "-m", "mirrorwatch.cli.main", "scan", "dir", str(folder), "--ray",
                             ray_address, "--json"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    done = 0
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            with db.session() as s:
                done = s.scalar(select(func.count()).select_from(ContentTask).where(ContentTask.status == "done"))
            if done >= 3:
                break
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert done >= 3, "the driver finished before it could be killed"
    with db.session() as s:
        recorded = dict(s.execute(select(ContentTask.status, func.count()).group_by(ContentTask.status)).all())
    assert recorded.get("done", 0) >= 3 and sum(recorded.values()) <= 12

    out = cli("scan", "dir", str(folder), "--ray", ray_address, "--json")
    assert out.returncode == 0, out.stderr
    assert match_set(db) == expected
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(ContentTask)) == 0


def test_scan_hf_deep_with_ray_matches_the_in_process_path(db, db_path, tmp_path, cli, corpus, ray_address,
                                                           testhub):
    from mirrorwatch.testhub import Hub, Repo, RepoFile

    folder, originals, expected = corpus
    files = sorted(folder.rglob("*.safetensors"))[:6]
    running = testhub(Hub([Repo(f"uploader-{i % 2}/model-{i}", files=[RepoFile(p.name, content=p.read_bytes())])
                           for i, p in enumerate(files)]))
    want = {m for m in expected if m[1] in {p.name for p in files}}
    assert want
    results = {}
    for label, extra in (("in process", []), ("ray", ["--ray", ray_address])):
        path = tmp_path / f"{label}.db"
        bank_of_originals(Database.open(str(path)), originals)
        out = cli("scan", "hf", "--endpoint", running.url, "--deep", "--json", *extra, db=path)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["counts"]["fingerprinted"] == 6
        results[label] = match_set(Database.open(str(path)))
    assert results["ray"] == results["in process"] == want
    no_deep = cli("scan", "hf", "--endpoint", running.url, "--ray", ray_address)
    assert no_deep.returncode != 0 and "--deep" in no_deep.stderr


def test_a_task_that_raises_is_recorded_once_not_submitted_again(db, tmp_path, ray_address):
    """A task that raised (its worker cannot open the hub: the same would happen again) is not
    re-submitted like a lost worker's: its file gets the task's own error in one line (no Ray
    traceback text), and its work stays pending in the ledger for the next sweep."""
    from mirrorwatch.hubs.base import RemoteFile
    from mirrorwatch.sweep.enrich import ContentJob

    gone = str(tmp_path / "gone")
    runner = connect(ray_address, db, HubOpener("dir", gone))
    job = ContentJob(gone, RemoteFile(path="x.safetensors", size=10, lfs=False), None, header=False, content=True,
                     fingerprint=False, expected_sha256=None, max_bytes=1 << 20, one_read=True)
    out = runner.run(None, [job])
    reason = out["x.safetensors"].errors["content"]
    assert reason.startswith("content task failed: InvalidInput: ") and "is not a folder" in reason
    assert "\n" not in reason and "Traceback" not in reason
    stats = runner.stats()
    assert stats["tasks"] == 1 and stats["resubmitted"] == 0 and stats["failed"] == 1
    with db.session() as s:
        assert s.scalars(select(ContentTask.status)).all() == ["pending"]
