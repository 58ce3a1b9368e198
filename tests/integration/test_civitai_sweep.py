"""A sweep of the local Civitai API through the Sweep class: listing hashes only, re-uploads found,
the banked upload itself never a match, nsfw asked, no image fetched, 429s survived."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from civitaifixtures import civitai_hub, make_civitai_bank, scenario
from mirrorwatch.hubs.registry import web_url
from mirrorwatch.services.matches import list_matches
from mirrorwatch.store.db import Database
from mirrorwatch.store.models import HubRepo
from mirrorwatch.sweep.recheck import recheck
from mirrorwatch.sweep.runner import Sweep, SweepOptions
from mirrorwatch.testhub.civitai import CivitaiApi, serve_civitai


def _sweep(db: Database, hub, **scope) -> dict:
    return Sweep(db, hub, SweepOptions(scope={"sort": "createdAt", **scope}, concurrency=4)).run().to_dict()


def test_civitai_sweep_finds_reuploads_not_originals(tmp_path):
    models, expected = scenario(250)
    db = Database.open(str(tmp_path / "c.db"))
    entries = make_civitai_bank(db)
    with serve_civitai(CivitaiApi(models, throttle_every=3)) as running:
        hub = civitai_hub(running.url)
        summary = _sweep(db, hub)
        stats = running.stats
        assert summary["status"] == "finished"
        found = {(r.entry_id, r.repo_id) for r in list_matches(db, limit=1000)}
        assert found == {(entries[tag], rid) for tag, rid in expected.items()}
        # the listing carries every hash: no per-model or per-file request, nsfw always asked, no image
        assert stats.model_requests == 0
        assert stats.nsfw_missing == 0
        assert stats.image_requests == 0
        assert stats.throttled >= 1 and summary["counts"]["throttled"] >= 1
        versions = sum(len(m.versions) for m in models if not m.hidden)
        assert hub.client.requests / versions * 100 < 1.05 + 100 * stats.throttled / versions
        assert hub.client.requests == stats.requests == stats.listing_requests + stats.throttled
        # the re-upload of a version links to that version on its model page, the uploader to /user/
        rows = {r.repo_id: r for r in list_matches(db, limit=1000)}
        assert rows["900004"].path == "950004/full.safetensors"
        assert web_url("civitai", "900004", "950004/full.safetensors") == \
            "https://civitai.com/models/900004?modelVersionId=950004"
        with db.session() as s:
            repos = {r.repo_id: r for r in s.scalars(select(HubRepo).where(HubRepo.hub == "civitai"))}
        assert repos["900007"].status == "disabled"
        assert "900006" not in repos
        assert repos["900002"].author == "reuploader_one"

        # a second sweep: every model unchanged, nothing new, still no per-model request
        again = _sweep(db, civitai_hub(running.url))
        assert again["counts"]["matches"] == 0
        assert again["counts"]["fetched"] == 0
        assert stats.model_requests == 0

        # the re-upload is hidden now: a recheck records it removed
        running.api.models[900002].hidden = True
        result = recheck(db, civitai_hub(running.url), repo_ids=["900002"])
        assert result.statuses.get("removed") == 1


def test_civitai_since_stops_the_listing(tmp_path):
    now = datetime.utcnow()
    models, _ = scenario(400, now=now)
    db = Database.open(str(tmp_path / "s.db"))
    make_civitai_bank(db)
    with serve_civitai(CivitaiApi(models)) as running:
        summary = _sweep(db, civitai_hub(running.url), since=now - timedelta(hours=30))
        assert summary["status"] == "finished"
        assert running.stats.listing_requests == 1  # 400 models, newest 100 on page 1 reach past 30 h
        with db.session() as s:
            n = len(list(s.scalars(select(HubRepo.repo_id).where(HubRepo.hub == "civitai"))))
        assert 25 <= n <= 40


def test_civitai_cursor_loop_and_huge_page_are_refused(tmp_path):
    models, _ = scenario(250)
    db = Database.open(str(tmp_path / "l.db"))
    make_civitai_bank(db)
    with serve_civitai(CivitaiApi(models, loop_cursor=True)) as running:
        summary = _sweep(db, civitai_hub(running.url))
        assert summary["status"] == "failed"
        assert running.stats.listing_requests <= 4
    from mirrorwatch.services.scans import scan_errors

    assert any("cursor" in e.reason for e in scan_errors(db, summary["run_id"]))
    with serve_civitai(CivitaiApi(models, page_bytes=10_000_000)) as running:
        summary = _sweep(db, civitai_hub(running.url, max_bytes=8_000_000), full=True)
        assert summary["status"] == "failed"
    assert any("refused" in e.reason for e in scan_errors(db, summary["run_id"]))


def test_civitai_pacing_zero_429s_when_paced_below_the_edge_limit(tmp_path):
    models, _ = scenario(250)
    db = Database.open(str(tmp_path / "p.db"))
    make_civitai_bank(db)
    with serve_civitai(CivitaiApi(models, min_interval_s=0.15)) as running:
        summary = _sweep(db, civitai_hub(running.url, interval_s=0.2))
        assert summary["status"] == "finished"
        assert running.stats.throttled == 0 and running.stats.listing_requests == 3
    # unpaced against a much stricter limit (3 s, so even a slow machine sends within it): throttled,
    # backs off, widens its interval, still finishes
    db2 = Database.open(str(tmp_path / "p2.db"))
    make_civitai_bank(db2)
    with serve_civitai(CivitaiApi(models, min_interval_s=3.0)) as running:
        hub = civitai_hub(running.url, interval_s=0.0)
        summary = _sweep(db2, hub)
        assert summary["status"] == "finished" and summary["counts"]["matches"] == 3
        assert running.stats.throttled >= 1 and hub.client.interval_s >= 0.5
