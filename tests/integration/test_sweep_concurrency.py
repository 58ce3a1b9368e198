"""Two sweeps at once on one database (SQLite file and PostgreSQL), one sweep per scope at a time,
and a sweep that dies of an exception recorded `failed` (resumable), never `finished`."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select, text, update

from mirrorwatch.store.locks import STALE_AFTER, SweepBusy, acquire_sweep_lock
from mirrorwatch.store.models import HubFile, HubRepo, Match, ScanError, ScanRun, SweepLock, utcnow
from mirrorwatch.sweep import runner
from mirrorwatch.sweep.runner import Sweep, SweepOptions, scope_key
from mirrorwatch.testhub import Hub, generate_repos
from pytest_testhub import hf_env, testhub  # noqa: F401
from sweepfixtures import anydb, hf, make_bank, match_pairs, planted  # noqa: F401


def _opts(**scope) -> SweepOptions:
    return SweepOptions(scope={"sort": "createdAt", **scope}, concurrency=8, headers=False)


def test_two_sweeps_of_overlapping_scopes_at_once(anydb, testhub):  # noqa: F811
    n = 60
    make_bank(anydb, n)
    running = testhub(Hub(generate_repos(40, seed=3, planted=planted(n))), page_size=20)
    results: dict[str, object] = {}
    barrier = threading.Barrier(2)

    def go(name: str, opts: SweepOptions) -> None:
        hub = hf(running)
        barrier.wait()
        try:
            results[name] = Sweep(anydb, hub, opts).run().to_dict()
        except Exception as exc:  # pragma: no cover - what the test is about
            results[name] = exc

    # the whole hub, and only the re-uploads: both write the same repos, files and matches at once
    threads = [threading.Thread(target=go, args=("all", _opts())),
               threading.Thread(target=go, args=("lora", _opts(search="lora")))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for name in ("all", "lora"):
        out = results[name]
        assert isinstance(out, dict), out
        assert out["status"] == "finished", out.get("reason")
        assert out["counts"]["errors"] == 0, out
    assert {r for _, r, _ in match_pairs(anydb)} == {f"reuploader-{i % 3}/lora-{i}" for i in range(n)}
    with anydb.session() as s:
        repos = s.execute(select(HubRepo.hub, HubRepo.repo_id)).all()
        assert len(repos) >= n and len(repos) == len(set(repos))
        files = s.execute(select(HubFile.repo_pk, HubFile.path)).all()
        assert len(files) == len(set(files))
        assert s.scalar(select(text("count(*)")).select_from(Match)) == n
        assert s.scalar(select(text("count(*)")).select_from(SweepLock)) == 0  # both released


def test_a_second_sweep_of_the_same_scope_is_refused_until_the_lock_expires(anydb, testhub):  # noqa: F811
    make_bank(anydb, 2)
    running = testhub(Hub(generate_repos(5, seed=1, planted=planted(2))))
    opts = _opts()
    hub = hf(running)
    key = scope_key(hub.name, opts.params())
    held = acquire_sweep_lock(anydb, key, hub.name)  # another sweep (another process) holds the scope
    held.beat(run_id=41)
    with pytest.raises(SweepBusy, match=r"another sweep of this scope is running \(run 41, started .*pid \d+"):
        Sweep(anydb, hub, opts).run()
    # a different scope is not blocked
    assert Sweep(anydb, hf(running), _opts(author="reuploader-0")).run().status == "finished"
    # the holder dies: no heartbeat for longer than STALE_AFTER, and the next sweep takes over
    held._stop.set()
    with anydb.session() as s:
        s.execute(update(SweepLock).where(SweepLock.scope_key == key)
                  .values(heartbeat_at=utcnow() - STALE_AFTER - timedelta(seconds=1)))
    out = Sweep(anydb, hub, opts).run()
    assert out.status == "finished" and out.counts["matches"] == 1  # the other scope found one of the two


def test_a_sweep_that_dies_of_an_exception_is_failed_and_resumed(anydb, testhub, monkeypatch):  # noqa: F811
    make_bank(anydb, 6)
    running = testhub(Hub(generate_repos(10, seed=2, planted=planted(6))), page_size=4)
    real = runner.match_repo
    calls = {"n": 0}

    def flaky(*args, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("a bug in matching")
        return real(*args, **kw)

    monkeypatch.setattr(runner, "match_repo", flaky)
    opts = SweepOptions(scope={"sort": "createdAt"}, concurrency=1, headers=False)
    first = Sweep(anydb, hf(running), opts).run()
    assert first.status == "failed"
    assert "RuntimeError: a bug in matching" in (first.reason or "")
    with anydb.session() as s:
        run = s.get(ScanRun, first.run_id)
        assert run.status == "failed" and run.checkpoint["crashed"] is True
        assert "a bug in matching" in run.checkpoint["reason"]
        assert any("a bug in matching" in e.reason for e in s.scalars(select(ScanError)))
    monkeypatch.setattr(runner, "match_repo", real)
    again = Sweep(anydb, hf(running), opts).run()
    assert again.status == "finished" and again.resumed and again.run_id == first.run_id
    assert {r for _, r, _ in match_pairs(anydb)} == {f"reuploader-{i % 3}/lora-{i}" for i in range(6)}
