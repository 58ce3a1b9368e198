"""The Civitai listing parser, links and the re-upload rule, on real (documented) and hostile answers."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from mirrorwatch.hubs.base import ListingProblem
from mirrorwatch.hubs.civitai.links import CivitaiLinks
from mirrorwatch.hubs.civitai.listing import CivitaiListing, parse_model, parse_page
from mirrorwatch.hubs.registry import hub_spec, report_route, uploader_url, web_url
from mirrorwatch.match.hits import is_itself

REAL = Path(__file__).resolve().parents[1] / "data" / "real" / "civitai"


def _listing(page) -> list[CivitaiListing]:
    return [x for x in page if isinstance(x, CivitaiListing)]


def test_real_page_parses_with_documented_fields():
    page, cursor = parse_page(json.loads((REAL / "models-page.json").read_text()))
    assert cursor == "75363|932023|257749"
    (model,) = _listing(page)
    assert model.repo_id == "827184" and model.author == "invented_uploader"
    assert model.created_at == datetime(2025, 12, 18, 9, 16, 12, 62000)
    (f,) = model.files
    assert f.path == "2514310/waiIllustriousSDXL_v160.safetensors"
    assert f.size == round(6775430.35 * 1024)
    # the docs truncate SHA256 and BLAKE3 ("A5F58EB1C33616..."): dropped with a reason, the rest kept
    assert f.sha256 is None
    assert f.hashes == {"autov1": "4748a7f6", "autov2": "a5f58eb1c3", "crc32": "daee95b7", "autov3": "22d8cb95b807"}
    assert f.source == {"civitai_model_id": 827184, "civitai_version_id": 2514310, "nsfw": False,
                        "primary": True, "civitai_file_id": 2402203}
    reasons = [p.reason for p in page if isinstance(p, ListingProblem)]
    assert len(reasons) == 2 and all("dropped" in r for r in reasons)


def _model(**kw):
    base = {"id": 5, "name": "Invented", "nsfw": True, "mode": None, "creator": {"username": "someone"},
            "modelVersions": [{"id": 7, "publishedAt": "2026-01-02T03:04:05.000Z", "files": [
                {"id": 1, "name": "a.safetensors", "sizeKB": 10.0, "primary": True,
                 "hashes": {"SHA256": "AB" * 32, "AutoV2": "AB" * 5}},
                {"id": 2, "name": "b.safetensors", "sizeKB": 12.5, "primary": False, "hashes": {"CRC32": "0011AABB"}}]}]}
    base.update(kw)
    return base


def test_every_file_of_every_version_and_nsfw_as_metadata():
    listing, problems = parse_model(_model())
    assert problems == []
    assert listing.paths == ["7/a.safetensors", "7/b.safetensors"]
    assert listing.files[0].sha256 == "ab" * 32
    assert "nsfw" in listing.tags and listing.files[1].source["nsfw"] is True
    assert not listing.disabled


def test_taken_down_and_archived_are_recorded_disabled():
    for mode in ("TakenDown", "Archived"):
        listing, _ = parse_model(_model(mode=mode))
        assert listing.disabled and listing.mode == mode


def test_hostile_items_are_problems_not_exceptions():
    page, cursor = parse_page({"items": [None, {"id": "x"}, {"id": 10**20}, _model(modelVersions="no"),
                                         _model(id=6, modelVersions=[{"id": 8, "files": [
                                             {"name": "../../etc/passwd", "hashes": {}},
                                             {"name": "ok.safetensors", "hashes": {"SHA256": "12" * 40}},
                                             {"name": "ok2.safetensors", "hashes": "nope", "sizeKB": float("nan")}]}])],
                               "metadata": {"nextCursor": None}})
    assert cursor is None
    listings = _listing(page)
    assert [x.repo_id for x in listings] == ["6"]
    assert listings[0].paths == ["8/ok.safetensors", "8/ok2.safetensors"]
    assert listings[0].files[0].sha256 is None and listings[0].files[1].size is None
    assert sum(isinstance(x, ListingProblem) for x in page) >= 6


def test_digest_changes_with_a_new_version():
    a, _ = parse_model(_model())
    m = _model()
    m["modelVersions"].append({"id": 9, "files": [{"name": "c.safetensors", "hashes": {"AutoV2": "CD" * 5}}]})
    b, _ = parse_model(m)
    assert a.sha != b.sha and parse_model(_model())[0].sha == a.sha


def test_links_and_report_route():
    links = CivitaiLinks()
    assert links.file_url("12", "34/x.safetensors") == "https://civitai.com/models/12?modelVersionId=34"
    assert links.repo_url("12") == "https://civitai.com/models/12"
    assert links.repo_url("12/../x") is None
    assert web_url("civitai", "12", "34/x.safetensors") == "https://civitai.com/models/12?modelVersionId=34"
    assert uploader_url("civitai", "some one") == "https://civitai.com/user/some%20one"
    assert "Report" in report_route("civitai") and "Terms of Service" in report_route("civitai")
    assert hub_spec("civitai").kind == "remote"


def test_is_itself_rule():
    src = {"civitai_model_id": 12, "civitai_version_id": 34, "nsfw": False}
    assert is_itself({"civitai_model_id": 12, "civitai_version_id": 34}, src)  # the banked version itself
    assert is_itself({"civitai_model_id": 12, "civitai_version_id": None}, src)  # banked model, no version
    assert is_itself({"civitai_model_id": None, "civitai_version_id": 34}, src)
    assert not is_itself({"civitai_model_id": 12, "civitai_version_id": 35}, src)  # another version: re-upload
    assert not is_itself({"civitai_model_id": 99, "civitai_version_id": None}, src)
    assert not is_itself({"civitai_model_id": None, "civitai_version_id": None}, src)  # no ids: a match
    assert not is_itself({"civitai_model_id": 12, "civitai_version_id": 34}, {})  # another hub's file


def test_real_2023_page_full_hashes_and_no_cursor():
    page, cursor = parse_page(json.loads((REAL / "models-page-wiki-2023.json").read_text()))
    assert cursor is None  # page-number metadata only: the end of a cursor listing
    (model,) = _listing(page)
    assert not [p for p in page if isinstance(p, ListingProblem)]
    (f,) = model.files
    assert f.path == "9857/21charturnerv2.pt"
    assert f.sha256 == "f253abb016c22dd426d6e482f4f8c3960766de6e4c02f151478bfb98f6985383"
    assert f.hashes == {"autov2": "f253abb016", "crc32": "f500aadd",
                        "blake3": "e7163c1a3f6b135a3e473cdd749bc1e6f4ed2d1ab43feb1acc4beb1e5c205260"}
    assert model.created_at == datetime(2023, 2, 12, 22, 44, 1, 442000)  # createdAt when no publishedAt


def test_listing_builds_next_requests_on_its_own_origin_and_key_stays_there(monkeypatch):
    from mirrorwatch.hubs.civitai.hub import CivitaiHub

    monkeypatch.setenv("CIVITAI_API_KEY", "secret-key")
    hub = CivitaiHub("https://civitai.example", interval_s=0)
    calls = []
    pages = [{"items": [], "metadata": {"nextCursor": "c1", "nextPage": "https://elsewhere.example/api/v1/models?cursor=c1"}},
             {"items": [], "metadata": {}}]

    def fake(path, params=None):
        calls.append((path, params))
        return pages[len(calls) - 1]

    monkeypatch.setattr(hub.client, "get_json", fake)
    assert len(list(hub.list_pages({"author": "someone"}))) == 2
    assert [c[0] for c in calls] == ["/api/v1/models", "/api/v1/models"]
    first, second = dict(calls[0][1]), dict(calls[1][1])
    assert first["nsfw"] == "true" and first["sort"] == "Newest" and first["limit"] == "100"
    assert first["period"] == "AllTime" and first["username"] == "someone" and "cursor" not in first
    assert second["cursor"] == "c1"
    assert hub.client._headers("https://civitai.example/api/v1/models") == {"Authorization": "Bearer secret-key"}
    assert hub.client._headers("https://elsewhere.example/api/v1/models") == {}
    assert hub.client._headers("http://civitai.example/api/v1/models") == {}  # another scheme is another origin
