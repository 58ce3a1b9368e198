"""Real recorded Hugging Face answers (tests/data/real/hub/, from huggingface_hub's own cassettes; see
its README) replayed to the real huggingface_hub client and fed through mirrorwatch's parsing, and
the test hub's answers checked against them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx2
from huggingface_hub import HfApi
from sqlalchemy import select

from mirrorwatch.hubs.base import RepoListing
from mirrorwatch.hubs.huggingface.listing import listing_from_item
from mirrorwatch.store.models import HubRepo, ScanError
from mirrorwatch.sweep.runner import Sweep, SweepOptions
from mirrorwatch.testhub import Hub, Repo, RepoFile
from pytest_testhub import hf_env, testhub  # noqa: F401
from sweepfixtures import hf

REAL = Path(__file__).resolve().parents[1] / "data" / "real" / "hub"


def recorded(name: str) -> dict[str, Any]:
    return json.loads((REAL / name).read_text())


def replay(running, rec: dict[str, Any]) -> None:
    """Serve a recorded answer verbatim at its request path (the query string is not matched)."""
    resp = rec["response"]
    body = resp["body"]
    raw = body.encode() if isinstance(body, str) else json.dumps(body, separators=(",", ":")).encode()
    path = httpx2.URL(rec["request"]["uri"]).path
    running.replays[path] = (resp["status"], list(resp["headers"].items()), raw)


BART = recorded("model_info_facebook_bart-base.json")
T5_REDIRECT = recorded("redirect_legacy_t5-small.json")
T5 = recorded("model_info_google-t5_t5-small.json")
RENAMED = recorded("redirect_renamed_llama-3.1-8b-instruct.json")


def test_recorded_bodies_parse_as_listings():
    for rec, rid, author in ((BART, "facebook/bart-base", "facebook"), (T5, "google-t5/t5-small", "google-t5")):
        listing = listing_from_item(rec["response"]["body"])
        assert (listing.repo_id, listing.author, listing.gated, listing.disabled) == (rid, author, False, False)
        assert "model.safetensors" in (listing.paths or []) and "pytorch_model.bin" in (listing.paths or [])
        assert listing.sha == rec["response"]["body"]["sha"] and listing.last_modified is not None


def test_recorded_legacy_redirect_through_the_real_client_and_the_hub_port(db, testhub):  # noqa: F811
    running = testhub(Hub([]))
    replay(running, T5_REDIRECT)
    replay(running, T5)
    info = HfApi(endpoint=running.url, token=False).model_info("t5-small")
    assert info.id == "google-t5/t5-small" and info.safetensors.total == 60506880
    assert all(s.lfs is None for s in info.siblings)  # the real body's siblings carry no lfs key

    listing = hf(running).repo_listing("t5-small")
    assert (listing.repo_id, listing.author) == ("google-t5/t5-small", "google-t5")
    got = hf(running).fetch_files(RepoListing("t5-small", paths=listing.paths), None)
    assert got.repo.repo_id == "google-t5/t5-small"

    # A sweep of the legacy id, answered without file details (as this recording is): the repo is
    # recorded under its final id and each weight file is recorded as not hashed, none silently.
    opts = SweepOptions(scope={"sort": "createdAt", "repos": ["t5-small"]}, concurrency=1, headers=False,
                        resume=False)
    out = Sweep(db, hf(running), opts).run().to_dict()
    assert (out["counts"]["fetched"], out["counts"]["hashes"], out["counts"]["unhashed"]) == (1, 0, 2)
    with db.session() as s:
        assert list(s.scalars(select(HubRepo.repo_id))) == ["google-t5/t5-small"]
        assert s.scalar(select(HubRepo.sha)) is None  # asked again next sweep
        errors = {e.path: e.reason for e in s.scalars(select(ScanError))}
    assert set(errors) == {"model.safetensors", "pytorch_model.bin"}
    assert all("not hashed" in r for r in errors.values())
    assert running.hub.stats.snapshot()["by_endpoint"]["replay"] >= 4


def test_testhub_redirects_like_the_recorded_hub(testhub):  # noqa: F811
    hub = Hub([Repo("google-t5/t5-small", files=[RepoFile("model.safetensors", size=242_041_896)]),
               Repo("meta-llama/Meta-Llama-3.1-8B-Instruct")])
    hub.add_alias("t5-small", "google-t5/t5-small")
    hub.rename("meta-llama/Meta-Llama-3.1-8B-Instruct", "meta-llama/Llama-3.1-8B-Instruct")
    running = testhub(hub)
    for rec in (T5_REDIRECT, RENAMED):
        want = rec["response"]
        url = httpx2.URL(rec["request"]["uri"])
        got = httpx2.get(f"{running.url}{url.raw_path.decode()}", follow_redirects=False)
        assert got.status_code == want["status"] == 307
        assert got.headers["Location"] == want["headers"]["Location"]
        assert got.text == want["body"]
        assert got.headers["Content-Type"] == want["headers"]["Content-Type"]


def test_testhub_model_info_carries_what_the_recorded_body_carries(testhub):  # noqa: F811
    """The test hub's model_info has every field of the real body, the same types, and the real
    client reads both the same way."""
    real = T5["response"]["body"]
    known = {"_id", "id", "modelId", "author", "sha", "lastModified", "createdAt", "private", "disabled", "gated",
             "downloads", "likes", "tags", "pipeline_tag", "library_name", "siblings", "spaces", "usedStorage"}
    extra = {k: v for k, v in real.items() if k not in known}
    assert set(extra) == {"model-index", "config", "cardData", "transformersInfo", "safetensors", "inference"}
    files = [RepoFile(s["rfilename"], size=1000, lfs=s["rfilename"].endswith((".safetensors", ".bin", ".onnx")))
             for s in real["siblings"]]
    running = testhub(Hub([Repo("google-t5/t5-small", files=files, pipeline_tag="translation",
                                library_name="transformers", tags=real["tags"], extra=extra)]))
    ours = httpx2.get(f"{running.url}/api/models/google-t5/t5-small").json()
    assert set(real) <= set(ours), set(real) - set(ours)
    assert {k: type(v) for k, v in real.items()} == {k: type(ours[k]) for k in real}
    assert ours["siblings"] == real["siblings"]

    api = HfApi(endpoint=running.url, token=False)
    a = api.model_info("google-t5/t5-small")
    running.replays["/api/models/google-t5/t5-small"] = (200, list(T5["response"]["headers"].items()),
                                                         json.dumps(real).encode())
    b = api.model_info("google-t5/t5-small")
    for attr in ("id", "author", "pipeline_tag", "library_name", "tags", "config", "transformers_info", "gated"):
        assert getattr(a, attr) == getattr(b, attr), attr
    assert a.safetensors == b.safetensors and [s.rfilename for s in a.siblings] == [s.rfilename for s in b.siblings]
