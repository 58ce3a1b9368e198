"""The content-work ledger (table content_task, migration 0008): pending work recorded before it is
submitted, a result written once, done work reused by a restarted driver, forgotten once persisted —
on SQLite and on PostgreSQL. (Ray itself is exercised in tests/e2e/test_ray_content.py.)"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from mirrorwatch.corpus import generate_lora
from mirrorwatch.hubs.base import RemoteFile
from mirrorwatch.hubs.registry import hub_spec
from mirrorwatch.store.models import ContentTask, ScanRun
from mirrorwatch.sweep.enrich import ContentJob, run_job
from mirrorwatch.sweep.ledger import Ledger, content_key
from pgdb import fresh_pg


@pytest.fixture(params=["sqlite", "postgres"])
def any_db(request, db):
    return db if request.param == "sqlite" else fresh_pg()


def _job(folder, name: str, **kw) -> ContentJob:
    size = (folder / name).stat().st_size
    f = RemoteFile(path=name, size=size, sha256=None, lfs=False, hashes={"size": size, "mtime": 1})
    return ContentJob(str(folder), f, None, header=True, content=True, fingerprint=True, expected_sha256=None,
                      max_bytes=1 << 30, **kw)


def test_results_are_written_once_and_reused_after_a_restart(any_db, tmp_path):
    for i in range(3):
        generate_lora("sd15", seed=i, rank=4, blocks=0.2).write(tmp_path / f"l{i}.safetensors")
    hub = hub_spec("dir").open(str(tmp_path))
    jobs = [_job(tmp_path, f"l{i}.safetensors") for i in range(3)]
    ledger = Ledger(any_db, "dir")
    done, keys = ledger.begin(jobs)
    assert done == {} and len(set(keys.values())) == 3
    ev = run_job(hub, jobs[0])
    assert ledger.finish(keys[jobs[0].path], ev) is True
    assert ledger.finish(keys[jobs[0].path], run_job(hub, jobs[0])) is False  # a retried task's duplicate

    # the driver dies here; the next one plans the same work
    again = Ledger(any_db, "dir")
    done, keys2 = again.begin(jobs)
    assert keys2 == keys and set(done) == {jobs[0].path} and again.reused == 1 and again.resubmitted == 2
    back = done[jobs[0].path]
    assert back.hashes == ev.hashes and back.header.signals == ev.header.signals
    assert back.fingerprint == ev.fingerprint and back.fingerprint is not ev.fingerprint
    with any_db.session() as s:
        rows = {r.path: (r.status, r.attempts) for r in s.scalars(select(ContentTask))}
    assert rows == {"l0.safetensors": ("done", 1), "l1.safetensors": ("pending", 2), "l2.safetensors": ("pending", 2)}

    # other stages, or another version of the file, are other work
    assert content_key("dir", _job(tmp_path, "l0.safetensors", stream_hash=True)) != keys[jobs[0].path]
    again.settle([str(tmp_path)])
    with any_db.session() as s:
        assert s.scalar(select(func.count()).select_from(ContentTask).where(ContentTask.status == "done")) == 0
        assert s.scalar(select(func.count()).select_from(ContentTask)) == 2


def test_a_lost_engine_stops_the_sweep_interrupted_and_resumable(db, tmp_path):
    """A cluster that loses every worker: the run is recorded interrupted with the reason (not
    finished with every repo skipped), the summary carries the engine's exit code, and a later sweep
    does the work."""
    from mirrorwatch.sweep.enrich import EngineLost
    from mirrorwatch.sweep.runner import Sweep, SweepOptions

    generate_lora("sd15", seed=1, rank=4, blocks=0.2).write(tmp_path / "l.safetensors")

    class Lost:
        def run(self, hub, jobs):
            raise EngineLost("no content task finished for 600 s (the cluster has lost its workers?)")

    def sweep(content):
        hub = hub_spec("dir").open(str(tmp_path))
        hub.hashes_by_reading = True
        return Sweep(db, hub, SweepOptions(scope={"root": str(tmp_path)}, concurrency=1, resume=False, deep=True),
                     content=content).run()

    failed = sweep(Lost())
    assert failed.status == "interrupted" and "lost its workers" in failed.reason and failed.counts["files"] == 0
    assert failed.exit_code == EngineLost.exit_code
    with db.session() as s:
        run = s.get(ScanRun, failed.run_id)
        assert run.status == "interrupted" and "lost its workers" in run.checkpoint["reason"]
    from mirrorwatch.sweep.enrich import InProcess

    again = sweep(InProcess())
    assert again.status == "finished" and again.counts["content_reads"] == 1 and again.counts["files"] == 1


def test_a_ledger_that_loses_its_database_stops_the_sweep_interrupted(db, tmp_path):
    """The content engine's record (the ledger, written from the sweep's worker threads) losing its
    database connection stops the sweep interrupted with the database's exit code; the repo is not
    recorded as skipped (it is swept again by the next run)."""
    from sqlalchemy.exc import OperationalError

    from mirrorwatch.errors import DatabaseUnavailable
    from mirrorwatch.store.models import HubRepo
    from mirrorwatch.sweep.runner import Sweep, SweepOptions

    generate_lora("sd15", seed=2, rank=4, blocks=0.2).write(tmp_path / "l.safetensors")

    class LedgerLost:
        def run(self, hub, jobs):
            raise OperationalError("UPDATE content_task ...", {}, Exception("server closed the connection unexpectedly"),
                                   connection_invalidated=True)

    hub = hub_spec("dir").open(str(tmp_path))
    hub.hashes_by_reading = True
    summary = Sweep(db, hub, SweepOptions(scope={"root": str(tmp_path)}, concurrency=1, resume=False, deep=True),
                    content=LedgerLost()).run()
    assert summary.status == "interrupted" and summary.exit_code == DatabaseUnavailable.exit_code
    assert "database connection was lost (server closed the connection unexpectedly)" in summary.reason
    assert summary.counts["skipped"] == 0
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(HubRepo)) == 0
        assert s.get(ScanRun, summary.run_id).status == "interrupted"
