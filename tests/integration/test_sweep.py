"""Sweeps of a local test hub driven by the real huggingface_hub client: matches, skipping what is
unchanged, quotas, gated/disabled/private repos, and what happens with a misbehaving hub."""

from __future__ import annotations

from sqlalchemy import select

from mirrorwatch.store.models import HubRepo, ScanError
from mirrorwatch.testhub import Faults, Hub, Quotas, Repo, RepoFile, generate_repos
from pytest_testhub import hf_env, testhub  # noqa: F401
from sweepfixtures import hf, make_bank, match_count, match_pairs, planted, sweep


def test_sweep_finds_reuploads_and_skips_unchanged(db, testhub):  # noqa: F811
    make_bank(db, 30)
    hub = Hub(generate_repos(300, seed=5, planted=planted(12)))
    running = testhub(hub, page_size=100)
    first = sweep(db, hf(running))
    c = first["counts"]
    assert first["status"] == "finished"
    assert c["matches"] == 12 and c["pages"] >= 3
    assert {r for _, r, _ in match_pairs(db)} == {f"reuploader-{i % 3}/lora-{i}" for i in range(12)}
    listed = c["listed"]
    api_calls = running.hub.stats.snapshot()["by_kind"]["api"]
    assert api_calls / listed < 1.1, (api_calls, listed)
    assert c["throttled"] == 0

    running.hub.reset_stats()
    second = sweep(db, hf(running))
    assert second["counts"]["fetched"] == 0 and second["counts"]["unchanged"] == c["fetched"]
    assert second["counts"]["matches"] == 0 and match_count(db) == 12
    assert running.hub.stats.snapshot()["by_endpoint"].get("model_info", 0) == 0

    # a new commit on one repo makes it a candidate again; a re-upload added now is found
    hub.update_files("reuploader-0/lora-0", [RepoFile("renamed.safetensors", size=1, sha256=planted(1)["reuploader-0/lora-0"][0].sha256)])
    third = sweep(db, hf(running))
    assert third["counts"]["fetched"] == 1
    assert ("Invented Person 0", "reuploader-0/lora-0", "renamed.safetensors") in match_pairs(db)


def test_gated_disabled_private(db, testhub):  # noqa: F811
    make_bank(db, 3)
    p = planted(3, extra_files=False)
    repos = [Repo(rid, files=files) for rid, files in p.items()]
    repos[0].gated = "auto"
    repos[1].disabled = True
    repos[2].private = True
    running = testhub(Hub(repos))
    out = sweep(db, hf(running))
    assert out["counts"]["disabled"] == 1
    pairs = match_pairs(db)
    assert {r for _, r, _ in pairs} == {"reuploader-0/lora-0"}  # gated: found through the API
    with db.session() as s:
        status = dict(s.execute(select(HubRepo.repo_id, HubRepo.status)).all())
    assert status == {"reuploader-0/lora-0": "gated", "reuploader-1/lora-1": "disabled"}


def test_scopes(db, testhub):  # noqa: F811
    make_bank(db, 6)
    running = testhub(Hub(generate_repos(60, seed=2, planted=planted(6))))
    assert sweep(db, hf(running), author="reuploader-1")["counts"]["matches"] == 2
    assert sweep(db, hf(running), repos=["reuploader-2/lora-5", "nobody/missing"])["counts"]["matches"] == 1
    with db.session() as s:
        errs = [e.reason for e in s.scalars(select(ScanError))]
    assert any("nobody/missing" in e or "RepositoryNotFound" in e for e in errs) or errs


def test_quota_pacing_avoids_429(db, testhub):  # noqa: F811
    make_bank(db, 10)
    running = testhub(Hub(generate_repos(150, seed=9, planted=planted(10))),
                      quotas=Quotas(api=25, resolvers=40, window_s=1.5), page_size=50)
    out = sweep(db, hf(running))
    stats = running.hub.stats.snapshot()
    assert out["status"] == "finished" and out["counts"]["matches"] == 10
    assert stats["rate_limited"] == 0, stats
    assert out["counts"]["throttled"] == 0
    assert out["quota"]["api"]["waited_s"] + out["quota"]["resolvers"]["waited_s"] > 0


def test_misbehaving_hub_is_recorded_and_the_sweep_goes_on(db, testhub):  # noqa: F811
    make_bank(db, 12)
    p = planted(12)
    bad = {
        "error_repos": {"reuploader-0/lora-0"},
        "malformed_json_repos": {"reuploader-1/lora-1"},
        "wrong_types_repos": {"reuploader-2/lora-2": "sha256_not_hex", "reuploader-0/lora-3": "absurd_size",
                              "reuploader-1/lora-4": "siblings_not_list", "reuploader-2/lora-5": "size_as_string"},
        "missing_fields_repos": {"reuploader-0/lora-6"},
        "slowloris_repos": {"reuploader-1/lora-7"},
    }
    faults = Faults(**bad, slowloris_interval_s=0.5, storm=(40, 4), seed=1)  # a storm shorter than the 5 tries
    running = testhub(Hub(generate_repos(120, seed=4, planted=p)), faults=faults)
    out = sweep(db, hf(running, deadline_s=5.0, resolver_max_files=0))
    assert out["status"] == "finished"
    found = {r for _, r, _ in match_pairs(db)}
    # untouched re-uploads are all found despite the 503 storm (retried)
    assert {f"reuploader-{i % 3}/lora-{i}" for i in range(8, 12)} <= found
    for rid in ("reuploader-0/lora-0", "reuploader-1/lora-1", "reuploader-1/lora-7", "reuploader-2/lora-2"):
        assert rid not in found
    with db.session() as s:
        errors = {e.repo_id: e.reason for e in s.scalars(select(ScanError))}
        statuses = dict(s.execute(select(HubRepo.repo_id, HubRepo.status)).all())
    for rid in ("reuploader-0/lora-0", "reuploader-1/lora-1", "reuploader-1/lora-7", "reuploader-2/lora-2"):
        assert rid in errors, (rid, errors)
    assert statuses["reuploader-0/lora-0"] == "error"
    assert "500" in errors["reuploader-0/lora-0"] and "gave up" in errors["reuploader-0/lora-0"]
    assert "timed out" in errors["reuploader-1/lora-7"] or "ReadTimeout" in errors["reuploader-1/lora-7"]

    # the hub recovers: the next sweep picks up exactly the repos that failed
    running.faults = None
    again = sweep(db, hf(running))
    assert {f"reuploader-{i % 3}/lora-{i}" for i in range(12)} == {r for _, r, _ in match_pairs(db)}
    assert again["counts"]["fetched"] <= len(errors) + 1


def test_link_loop_stops_the_listing_but_keeps_results(db, testhub):  # noqa: F811
    make_bank(db, 4)
    running = testhub(Hub(generate_repos(40, seed=1, planted=planted(4))), faults=Faults(link_loop=True),
                      page_size=10)
    out = sweep(db, hf(running))
    assert out["status"] == "failed"
    assert out["counts"]["matches"] == 4
    with db.session() as s:
        reasons = [e.reason for e in s.scalars(select(ScanError))]
    assert any("Link loop" in r for r in reasons)


def test_bank_import_after_a_sweep_matches_stored_files(db, testhub, tmp_path):  # noqa: F811
    """Matching is retroactive: a model banked today finds the re-upload swept earlier."""
    from mirrorwatch.services.imports import import_file
    from sweepfixtures import bank_sha

    make_bank(db, 2)
    running = testhub(Hub(generate_repos(30, seed=3, planted=planted(5))))
    sweep(db, hf(running))
    assert match_count(db) == 2
    sheet = tmp_path / "late.csv"
    sheet.write_text("name,sha256,autov2\n" + f"Late Person,{bank_sha(3)},\n" + f"Short Hash Person,,{bank_sha(4)[:10]}\n")
    summary = import_file(db, "bank", sheet)
    assert summary.matches == 2
    assert {(n, r) for n, r, _ in match_pairs(db)} >= {("Late Person", "reuploader-0/lora-3"),
                                                        ("Short Hash Person", "reuploader-1/lora-4")}
