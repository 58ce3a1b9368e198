"""Hub answers are size-capped: a listing page over 32 MB, a model_info over 16 MB, a page of too many
items or too many files in a repo are refused with a recorded reason, in bounded memory
(issue 13, defect 14)."""

from __future__ import annotations

import tracemalloc

import pytest
from sqlalchemy import select

from mirrorwatch.hubs.huggingface import hub as hfhub
from mirrorwatch.hubs.huggingface.transport import MAX_API_BYTES, MAX_LISTING_BYTES
from mirrorwatch.store.models import ScanError
from mirrorwatch.sweep.runner import Sweep, SweepOptions
from mirrorwatch.testhub import Faults, Hub, Repo, RepoFile
from pytest_testhub import hf_env, testhub  # noqa: F401
from sweepfixtures import hf


def _sweep(db, running):
    tracemalloc.start()
    try:
        out = Sweep(db, hf(running), SweepOptions(scope={"sort": "createdAt"}, concurrency=2, headers=False)).run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    with db.session() as s:
        reasons = [e.reason for e in s.scalars(select(ScanError))]
    return out, peak, reasons


@pytest.mark.parametrize("no_length", [False, True], ids=["announced", "unannounced"])
def test_a_huge_listing_page_is_refused_in_bounded_memory(db, testhub, no_length):  # noqa: F811
    size = MAX_LISTING_BYTES + 28 * 1024 * 1024  # 60 MB: the audit's page was 107 MB
    running = testhub(Hub([Repo("someone/model-1", files=[RepoFile("m.safetensors", size=2_000_000)])]),
                      faults=Faults(huge_listing_bytes=size, huge_listing_no_length=no_length))
    out, peak, reasons = _sweep(db, running)
    assert out.status == "failed"
    assert any("listing stopped" in r and "32 MB cap" in r for r in reasons), reasons
    assert peak < 2.5 * MAX_LISTING_BYTES, f"peak {peak / 1e6:.0f} MB"


def test_a_listing_page_of_too_many_items_is_refused(db, testhub, monkeypatch):  # noqa: F811
    monkeypatch.setattr(hfhub, "MAX_PAGE_ITEMS", 500)
    running = testhub(Hub([]), faults=Faults(huge_listing_bytes=600 * 100, huge_listing_item_bytes=99))  # 599
    out, _, reasons = _sweep(db, running)
    assert out.status == "failed"
    assert any("listing page of 599 items (more than 500" in r for r in reasons), reasons


def test_a_huge_model_info_skips_that_repo_only(db, testhub):  # noqa: F811
    files = [RepoFile("m.safetensors", size=2_000_000)]
    big = {"cardData": {"junk": "x" * (MAX_API_BYTES + 1024)}}
    running = testhub(Hub([Repo("someone/big", files=files), Repo("someone/fine", files=files)]),
                      faults=Faults(hostile_fields={"someone/big": big}))
    # (the listing is fine: the big field only lands in model_info, which the hashes come from)
    hub = hf(running, resolver_max_files=0)
    out = Sweep(db, hub, SweepOptions(scope={"sort": "createdAt"}, concurrency=2, headers=False)).run()
    assert out.status == "finished"
    with db.session() as s:
        errors = {e.repo_id: e.reason for e in s.scalars(select(ScanError))}
    assert "16 MB cap" in errors.get("someone/big", ""), errors
    assert out.counts["fetched"] == 1


def test_a_repo_with_too_many_files_for_one_answer_is_paged_through_its_tree(db, testhub, monkeypatch):  # noqa: F811
    """(Before repo types such a repo was recorded as a listing problem and never hashed; a file list
    that long may be cut short, so the repo's tree is paged instead: issue 10.)"""
    from mirrorwatch.hubs.huggingface import hub as hf_hub
    from mirrorwatch.hubs.huggingface import listing

    monkeypatch.setattr(listing, "MAX_SIBLINGS", 50)
    monkeypatch.setattr(hf_hub, "TREE_FROM", 50)
    files = [RepoFile(f"m{i}.safetensors", size=2_000_000) for i in range(60)]
    running = testhub(Hub([Repo("someone/many", files=files)]), tree_page_size=25)
    out, _, reasons = _sweep(db, running)
    assert out.status == "finished" and not reasons, reasons
    assert out.counts["hashes"] == 60
    assert running.stats.by_endpoint["tree"] == 3 and running.stats.by_endpoint["model_info"] == 0
