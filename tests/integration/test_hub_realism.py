"""Issue 8, hub side, against the local test hub and the real huggingface_hub client:
- defect 7: a weight file the sweep sees but cannot hash is recorded (scan error with its reason) and counted;
- defect 8: legacy ids without a namespace and renamed repos (307) are followed and the final id recorded;
- Xet-backed files: hashes, header reads and the content tier work without the Xet protocol, while the
  client's own download (`hf_hub_download`) switches to it on the same answers;
- what real answers do that the test hub now serves too: siblings without `lfs`, gated "manual",
  the extra model_info fields."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx2
import pytest
from huggingface_hub import HfApi, get_hf_file_metadata, hf_hub_download
from huggingface_hub.errors import HfHubHTTPError
from huggingface_hub.utils._runtime import is_xet_available
from sqlalchemy import select

from mirrorwatch.corpus.generate import generate_lora
from mirrorwatch.hubs.base import RepoListing
from mirrorwatch.store.models import HubFile, HubRepo, ScanError
from mirrorwatch.sweep.runner import Sweep, SweepOptions
from mirrorwatch.testhub import Faults, Hub, Quotas, Repo, RepoFile
from pytest_testhub import hf_env, testhub  # noqa: F401
from sweepfixtures import bank_sha, hf, make_bank, match_pairs, sweep

# Few API calls left, many resolver calls: the hub port chooses resolver HEADs for small repos.
RESOLVER_FAVOURED = Quotas(api=40, resolvers=3000, window_s=300)


def scan_errors(db) -> dict[tuple[str | None, str | None], str]:
    with db.session() as s:
        return {(e.repo_id, e.path): e.reason for e in s.scalars(select(ScanError))}


def hash_sweep(db, hub, **scope) -> dict:
    """A sweep of hashes only (no header reads: most files here are declared, without bytes)."""
    opts = SweepOptions(scope={"sort": "createdAt", **scope}, concurrency=4, headers=False, resume=False)
    return Sweep(db, hub, opts).run().to_dict()


def lora_bytes(tmp_path: Path, seed: int) -> bytes:
    return generate_lora("sd15", seed=seed, rank=4).write(tmp_path / f"lora-{seed}.safetensors").read_bytes()


# -- defect 7 ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("resolver_max_files", [4, 0], ids=["resolver", "api"])
def test_a_weight_file_the_hub_gives_no_sha256_for_is_recorded_and_counted(db, testhub, resolver_max_files):  # noqa: F811
    make_bank(db, 1)
    files = [RepoFile("tiny.safetensors", content=b"\x08" + b"\0" * 99, lfs=False),  # small, kept in git
             RepoFile("lora.safetensors", size=150_000_000, sha256=bank_sha(0))]
    running = testhub(Hub([Repo("u1/mixed", files=files)]), quotas=RESOLVER_FAVOURED)
    out = hash_sweep(db, hf(running, resolver_max_files=resolver_max_files))
    c = out["counts"]
    assert (c["fetched"], c["hashes"], c["unhashed"], c["matches"], c["errors"]) == (1, 1, 1, 1, 1), c
    reason = scan_errors(db)[("u1/mixed", "tiny.safetensors")]
    assert "not hashed" in reason and "kept in git" in reason and "100 bytes" in reason
    if resolver_max_files:  # the resolver had no X-Linked-Etag for it: the API was asked too
        by_endpoint = running.hub.stats.snapshot()["by_endpoint"]
        assert by_endpoint.get("resolve_head", 0) >= 1 and by_endpoint.get("model_info", 0) >= 1


def test_an_lfs_file_whose_resolver_drops_x_linked_etag_is_hashed_through_the_api(db, testhub):  # noqa: F811
    """A proxy that strips X-Linked-Etag: the resolver's ETag (a git blob id) is never taken for a
    sha256, and the API, asked instead, gives the file's sha256."""
    make_bank(db, 1)
    files = [RepoFile("lora.safetensors", size=150_000_000, sha256=bank_sha(0))]
    running = testhub(Hub([Repo("u1/lora", files=files)]), quotas=RESOLVER_FAVOURED,
                      faults=Faults(stripped_linked_repos={"u1/lora"}))
    out = hash_sweep(db, hf(running))
    c = out["counts"]
    assert (c["hashes"], c["unhashed"], c["matches"]) == (1, 0, 1), (c, scan_errors(db))
    assert not [r for r in scan_errors(db).values() if "not hashed" in r]
    snap = running.hub.stats.snapshot()
    assert snap["faults"].get("stripped_linked", 0) >= 1 and snap["by_endpoint"].get("model_info", 0) >= 1


def test_a_file_neither_resolver_nor_api_hashes_is_recorded_and_retried(db, testhub):  # noqa: F811
    """Resolver without X-Linked-Etag and an API answer without `lfs`: recorded as not hashed, and the
    repo is left without a sha so the next sweep asks again."""
    make_bank(db, 1)
    files = [RepoFile("lora.safetensors", size=150_000_000, sha256=bank_sha(0))]
    running = testhub(Hub([Repo("u1/lora", files=files)]), quotas=RESOLVER_FAVOURED,
                      faults=Faults(missing_fields_repos={"u1/lora"}))
    out = hash_sweep(db, hf(running))
    assert (out["counts"]["hashes"], out["counts"]["unhashed"]) == (0, 1)
    assert "no sha256" in scan_errors(db)[("u1/lora", "lora.safetensors")]
    with db.session() as s:
        assert s.scalar(select(HubRepo.sha)) is None
    running.faults = None
    again = hash_sweep(db, hf(running))
    assert (again["counts"]["fetched"], again["counts"]["hashes"], again["counts"]["matches"]) == (1, 1, 1)


# -- defect 8 ----------------------------------------------------------------------------------------

def test_legacy_id_is_followed_and_recorded_under_its_final_id(db, testhub):  # noqa: F811
    make_bank(db, 2)
    hub = Hub([Repo("openai-community/gpt2", files=[RepoFile("model.safetensors", size=150_000_000,
                                                             sha256=bank_sha(0))]),
               Repo("google-bert/bert-base-uncased", files=[RepoFile("model.safetensors", size=150_000_001,
                                                                     sha256=bank_sha(1))])])
    hub.add_alias("gpt2", "openai-community/gpt2")
    hub.add_alias("bert-base-uncased", "google-bert/bert-base-uncased")
    running = testhub(hub, quotas=RESOLVER_FAVOURED)
    out = hash_sweep(db, hf(running), repos=["gpt2"])
    assert out["counts"]["matches"] == 1 and out["counts"]["errors"] == 0
    # a listing item with a legacy id (as old listings and user lists carry them)
    got = hf(running).fetch_files(RepoListing("bert-base-uncased", paths=["model.safetensors"]), None)
    assert got.repo.repo_id == "google-bert/bert-base-uncased" and got.repo.author == "google-bert"
    assert [f.sha256 for f in got.files] == [bank_sha(1)]
    with db.session() as s:
        assert list(s.scalars(select(HubRepo.repo_id))) == ["openai-community/gpt2"]
    assert {r for _, r, _ in match_pairs(db)} == {"openai-community/gpt2"}
    assert running.hub.stats.snapshot()["by_endpoint"]["redirect"] >= 2


@pytest.mark.parametrize("resolver_max_files", [4, 0], ids=["resolver", "api"])
def test_renamed_repo_is_followed_and_recorded_under_its_new_id(testhub, resolver_max_files):  # noqa: F811
    hub = Hub([Repo("old-ns/lora", files=[RepoFile("lora.safetensors", size=150_000_000, sha256=bank_sha(0))])])
    hub.rename("old-ns/lora", "new-ns/lora-v2")
    running = testhub(hub, quotas=RESOLVER_FAVOURED)
    got = hf(running, resolver_max_files=resolver_max_files).fetch_files(
        RepoListing("old-ns/lora", paths=["lora.safetensors"]), None)
    assert got.repo.repo_id == "new-ns/lora-v2"
    assert [(f.path, f.sha256) for f in got.files] == [("lora.safetensors", bank_sha(0))]
    raw = httpx2.get(f"{running.url}/old-ns/lora/resolve/main/lora.safetensors", follow_redirects=False)
    assert raw.status_code == 307 and raw.headers["Location"] == "/new-ns/lora-v2/resolve/main/lora.safetensors"


# -- Xet-backed files ------------------------------------------------------------------------------

@pytest.mark.parametrize("one_origin", [False, True], ids=["cdn-origin", "one-origin"])
def test_xet_backed_files_are_hashed_and_read_without_the_xet_protocol(db, testhub, tmp_path, one_origin):  # noqa: F811
    content = lora_bytes(tmp_path, 811)
    sha = hashlib.sha256(content).hexdigest()
    f = RepoFile("lora.safetensors", content=content, xet=True)
    assert f.xet_hash and f.xet_hash != sha
    make_bank(db, 0)
    with db.session() as s:
        from mirrorwatch.store.models import Entry, EntrySignal

        e = Entry(bank_id=1, key=f"sha256:{sha}", name="Invented Xet Person", name_norm="invented xet person")
        s.add(e)
        s.flush()
        s.add(EntrySignal(entry_id=e.id, form="sha256", value=sha))
    kw = {"cdn_host": "127.0.0.1"} if one_origin else {}
    running = testhub(Hub([Repo("u1/xet-lora", files=[f])]), quotas=RESOLVER_FAVOURED, **kw)
    opts = SweepOptions(scope={"sort": "createdAt"}, concurrency=2, deep=True, resume=False)
    out = Sweep(db, hf(running), opts).run().to_dict()
    c = out["counts"]
    assert (c["hashes"], c["unhashed"], c["matches"], c["headers_read"]) == (1, 0, 1, 1), (c, scan_errors(db))
    with db.session() as s:
        row = s.scalar(select(HubFile))
        assert row.sha256 == sha  # the pointer's sha256, never the Xet hash (the bridge's ETag)
        assert row.header_signals and row.hashes.get("autov3_full")
    stats = running.hub.stats.snapshot()["by_endpoint"]
    assert stats.get("resolve_head", 0) >= 1  # hashed through the resolver (X-Linked-Etag)
    assert stats.get("cdn_get", 0) >= 2  # header range reads and the content tier followed to the bridge
    assert stats.get("xet_token", 0) == 0  # and nothing asked for a Xet token

    # through the API too
    got = hf(running, resolver_max_files=0).fetch_files(RepoListing("u1/xet-lora", paths=["lora.safetensors"]), None)
    assert got.method == "api" and [x.sha256 for x in got.files] == [sha]

    # the client's own download switches to the Xet protocol on these answers (hf_xet installed)
    # or falls back to the same plain GET (without it): the answers are Xet-shaped enough.
    # (With one origin the client follows the redirect itself, unlike on the Hub, whose bridge is elsewhere.)
    if one_origin:
        return
    if is_xet_available():
        with pytest.raises(HfHubHTTPError):
            hf_hub_download("u1/xet-lora", "lora.safetensors", endpoint=running.url, token=False,
                            cache_dir=tmp_path / "cache")
        assert running.hub.stats.snapshot()["by_endpoint"].get("xet_token", 0) == 1
    else:
        path = hf_hub_download("u1/xet-lora", "lora.safetensors", endpoint=running.url, token=False,
                               cache_dir=tmp_path / "cache")
        assert hashlib.sha256(Path(path).read_bytes()).hexdigest() == sha


def test_testhub_serves_xet_answers_like_the_hub(testhub, tmp_path):  # noqa: F811
    content = lora_bytes(tmp_path, 812)
    f = RepoFile("lora.safetensors", content=content, xet=True)
    running = testhub(Hub([Repo("u1/xet", files=[f, RepoFile("README.md", content=b"# x\n")])]))
    url = running.resolve_url("u1/xet", "lora.safetensors")
    head = httpx2.head(url, follow_redirects=False)
    assert head.status_code == 302
    assert head.headers["X-Linked-Etag"] == f'"{f.sha256}"' and head.headers["X-Xet-Hash"] == f.xet_hash
    assert 'rel="xet-auth"' in head.headers["Link"] and "/xet-bridge/" in head.headers["Location"]
    bridge = httpx2.get(head.headers["Location"], headers={"Range": "bytes=0-7"})
    assert bridge.status_code == 206 and bridge.content == content[:8]
    assert bridge.headers["ETag"] == f'"{f.xet_hash}"'  # the bridge's ETag is not the sha256
    meta = get_hf_file_metadata(url, token=False, endpoint=running.url)
    assert meta.xet_file_data is not None and meta.xet_file_data.file_hash == f.xet_hash
    assert meta.etag == f.sha256
    api = HfApi(endpoint=running.url, token=False)
    tree = {e.path: e for e in api.list_repo_tree("u1/xet")}
    assert tree["lora.safetensors"].xet_hash == f.xet_hash and tree["README.md"].xet_hash is None
    raw = httpx2.get(f"{running.url}/api/models/u1/xet", params={"expand": "xetEnabled"}).json()
    assert raw["xetEnabled"] is True


# -- what real answers carry ----------------------------------------------------------------------

def test_siblings_without_lfs_gated_manual_and_extra_fields(db, testhub):  # noqa: F811
    extra = {"config": {"architectures": ["BartModel"], "model_type": "bart"}, "cardData": {"license": "apache-2.0"},
             "transformersInfo": {"auto_model": "AutoModel"}, "safetensors": {"parameters": {"F32": 10}, "total": 10},
             "mask_token": "<mask>", "model-index": None, "inference": "warm"}
    make_bank(db, 2)
    open_repo = Repo("u1/open", files=[RepoFile("README.md", content=b"# r\n"),
                                       RepoFile("lora.safetensors", size=150_000_000, sha256=bank_sha(0))],
                     extra=extra)
    manual = Repo("u2/manual", gated="manual",
                  files=[RepoFile("lora.safetensors", size=150_000_001, sha256=bank_sha(1))])
    running = testhub(Hub([open_repo, manual]))
    raw = httpx2.get(f"{running.url}/api/models/u1/open", params={"blobs": "true"}).json()
    siblings = {s["rfilename"]: s for s in raw["siblings"]}
    assert "lfs" not in siblings["README.md"] and siblings["lora.safetensors"]["lfs"]["sha256"] == bank_sha(0)
    assert {k: raw[k] for k in extra} == extra
    listing = httpx2.get(f"{running.url}/api/models", params=[("expand", "gated"), ("expand", "siblings")]).json()
    assert {x["id"]: x["gated"] for x in listing} == {"u1/open": False, "u2/manual": "manual"}
    info = HfApi(endpoint=running.url, token=False).model_info("u1/open", files_metadata=True)
    assert info.safetensors.total == 10 and info.config["model_type"] == "bart" and info.mask_token == "<mask>"
    out = sweep(db, hf(running))
    assert out["counts"]["matches"] == 2
    with db.session() as s:
        assert dict(s.execute(select(HubRepo.repo_id, HubRepo.status)).all()) == {"u1/open": "live",
                                                                                 "u2/manual": "gated"}
