"""Hub answers with values too long for their columns, or holding NULs, on SQLite and PostgreSQL:
every sweep write path fits them (store.fit), or records the repo with a reason; the sweep goes on
and is never marked finished after dying (issue 13, defect 10)."""

from __future__ import annotations

from sqlalchemy import select

from mirrorwatch.store.models import HubFile, HubRepo, ScanError, ScanRun
from mirrorwatch.sweep.runner import Sweep, SweepOptions
from mirrorwatch.testhub import Faults, Hub, Repo, RepoFile, generate_repos
from pytest_testhub import hf_env, testhub  # noqa: F401
from sweepfixtures import anydb, bank_sha, hf, make_bank, match_pairs, planted  # noqa: F401

LONG_AUTHOR = "A" * 250
LONG_ID = "someone/" + "x" * 5000


def test_hostile_values_fit_every_sweep_write_path(anydb, testhub):  # noqa: F811
    make_bank(anydb, 6)
    repos = generate_repos(10, seed=8, planted=planted(6))
    repos.append(Repo("long-author/lora-a", files=[RepoFile("a.safetensors", size=5_000_000, sha256=bank_sha(100))]))
    repos.append(Repo("failing/lora-b", files=[RepoFile("b.safetensors", size=5_000_000, sha256=bank_sha(101))]))
    repos.append(Repo("off/lora-c", files=[RepoFile("c.safetensors", size=5_000_000)], disabled=True))
    faults = Faults(
        faults_in_listing=True,
        error_repos={"failing/lora-b"},
        hostile_fields={
            # an author longer than its column, a sha longer than its column (listing and model_info)
            "long-author/lora-a": {"author": LONG_AUTHOR, "sha": "f" * 100},
            "failing/lora-b": {"author": "B" * 300 + "\x00"},  # recorded as an error repo
            "off/lora-c": {"author": "C" * 400},  # a disabled repo is stored from the listing alone
        },
        # a listing item whose id is 5,000 characters (a listing problem: its scan error keeps a prefix)
        hostile_items=[{"id": LONG_ID, "author": "x\x00y", "siblings": [{"rfilename": "z.safetensors"}]}],
    )
    running = testhub(Hub(repos), faults=faults)
    opts = SweepOptions(scope={"sort": "createdAt", "search": "", "author": None}, concurrency=4, headers=False)
    out = Sweep(anydb, hf(running), opts).run()
    assert out.status == "finished", out.reason
    assert {r for _, r, _ in match_pairs(anydb)} == {f"reuploader-{i % 3}/lora-{i}" for i in range(6)}
    with anydb.session() as s:
        repos_by_id = {r.repo_id: r for r in s.scalars(select(HubRepo))}
        assert repos_by_id["long-author/lora-a"].author == LONG_AUTHOR[:200]
        assert repos_by_id["long-author/lora-a"].status == "live"
        assert repos_by_id["failing/lora-b"].status == "error"
        assert repos_by_id["failing/lora-b"].author == "B" * 200
        assert repos_by_id["off/lora-c"].status == "disabled"
        errors = list(s.scalars(select(ScanError)))
        long_id_errors = [e for e in errors if e.repo_id and e.repo_id.startswith("someone/xxx")]
        assert long_id_errors and len(long_id_errors[0].repo_id) <= 400
        assert any(e.repo_id == "failing/lora-b" for e in errors)
        run = s.get(ScanRun, out.run_id)
        assert run.status == "finished"


def test_scope_with_a_nul_and_a_long_author_is_stored(anydb, testhub):  # noqa: F811
    running = testhub(Hub(generate_repos(3, seed=1)))
    opts = SweepOptions(scope={"sort": "createdAt", "author": "a\x00b" + "c" * 5000}, concurrency=2, headers=False)
    out = Sweep(anydb, hf(running), opts).run()
    assert out.status == "finished", out.reason
    with anydb.session() as s:
        run = s.get(ScanRun, out.run_id)
        assert "\x00" not in run.params["scope"]["author"]


def test_a_row_the_database_refuses_skips_the_repo_not_the_sweep(anydb, testhub, monkeypatch):  # noqa: F811
    """Whatever slips past the fitting (here: a row added unfitted), the database's refusal costs one
    repo, recorded with its reason; the others are stored."""
    from mirrorwatch.sweep import persist

    make_bank(anydb, 3)
    running = testhub(Hub(generate_repos(4, seed=2, planted=planted(3))))
    real_store = persist.store_files

    def store(session, repo, files, **kw):
        if repo.repo_id == "reuploader-1/lora-1":
            session.add(HubFile(repo_pk=repo.id, path="x" * 10, revision="r" * 100))  # too long for PostgreSQL
            if anydb.is_sqlite:  # SQLite takes any length: make it refuse a duplicate instead
                session.add(HubFile(repo_pk=repo.id, path="x" * 10))
        return real_store(session, repo, files, **kw)

    monkeypatch.setattr(persist, "store_files", store)
    out = Sweep(anydb, hf(running), SweepOptions(scope={"sort": "createdAt"}, concurrency=2, headers=False)).run()
    assert out.status == "finished", out.reason
    assert {r for _, r, _ in match_pairs(anydb)} == {"reuploader-0/lora-0", "reuploader-2/lora-2"}
    with anydb.session() as s:
        errors = {e.repo_id: e.reason for e in s.scalars(select(ScanError))}
        assert "database refused the repo" in errors["reuploader-1/lora-1"]
        assert s.scalar(select(HubRepo.status).where(HubRepo.repo_id == "reuploader-1/lora-1")) == "error"
