"""The local test hub driven by the real huggingface_hub client: listing, metadata, trees, commits,
resolve HEADs through the CDN redirect, range reads, and the client's error classes."""

from __future__ import annotations

import hashlib
import json
import math
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi, get_hf_file_metadata, hf_hub_download, hf_hub_url
from huggingface_hub.errors import (
    DisabledRepoError,
    EntryNotFoundError,
    GatedRepoError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from mirrorwatch.testhub import Hub, Repo, RepoFile, generate_repos, serve

pytest_plugins = ["pytest_testhub"]

T0 = datetime(2024, 3, 1, tzinfo=UTC)
LORA_BYTES = b"\x10\x00\x00\x00\x00\x00\x00\x00" + b'{"__metadata__":{}}' + bytes(range(256)) * 40
BIG_SHA = "ab" * 32


def small_hub() -> Hub:
    """Five hand-made repos covering each access state, plus 30 generated ones."""
    repos = [
        Repo("archivist-42/lora-archive-17", created_at=T0, last_modified=T0 + timedelta(days=2), files=[
            RepoFile(".gitattributes", content=b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"),
            RepoFile("README.md", content=b"# lora archive\n"),
            RepoFile("config.json", content=b'{"rank": 8}'),
            RepoFile("loras/kavelo_v2.safetensors", content=LORA_BYTES),
            RepoFile("loras/old/zorika.safetensors", size=150_000_000, sha256=BIG_SHA),
        ], tags=["lora", "sdxl", "text-to-image"], downloads=50, likes=7, library_name="diffusers",
            pipeline_tag="text-to-image"),
        Repo("archivist-42/test-model", created_at=T0 + timedelta(hours=1), files=[
            RepoFile("model.safetensors", size=2_000_000_000, sha256="cd" * 32)], tags=["lora", "flux"],
            downloads=5, likes=1),
        Repo("quietfox-7/sdxl-loras", created_at=T0 + timedelta(hours=2), gated="manual", files=[
            RepoFile("gated_lora.safetensors", content=b"gated bytes" * 100)], tags=["lora", "sdxl"]),
        Repo("nightowl-3/LORA", created_at=T0 + timedelta(hours=3), disabled=True, files=[
            RepoFile("taken_down.safetensors", size=1000, sha256="ef" * 32)], tags=["lora"]),
        Repo("backup-5/secret-stash", created_at=T0 + timedelta(hours=4), private=True, files=[
            RepoFile("hidden.safetensors", size=1000, sha256="01" * 32)], tags=["lora"]),
    ]
    return Hub([*repos, *generate_repos(30, seed=3, start=T0 - timedelta(days=30))])


@pytest.fixture
def running(testhub):
    return testhub(small_hub(), page_size=7, tree_page_size=3)


@pytest.fixture
def api(running) -> HfApi:
    return HfApi(endpoint=running.url)


def public_ids(hub: Hub) -> list[str]:
    return [r.repo_id for r in hub.repos() if not r.private]


# -- listing -----------------------------------------------------------------------------------

def test_list_models_paginates_every_public_repo_once_sorted(running, api):
    hub = running.hub
    models = list(api.list_models(expand=["siblings", "sha", "createdAt", "lastModified", "author", "gated",
                                          "disabled", "private", "tags", "downloads", "likes"],
                                  sort="createdAt"))
    ids = [m.id for m in models]
    assert len(ids) == len(set(ids))
    assert sorted(ids) == sorted(public_ids(hub))
    assert "backup-5/secret-stash" not in ids
    created = [m.created_at for m in models]
    assert created == sorted(created, reverse=True)
    pages = math.ceil(len(ids) / 7)
    assert pages >= 5
    assert running.stats.by_endpoint["list_models"] == pages
    by_id = {m.id: m for m in models}
    lora = by_id["archivist-42/lora-archive-17"]
    assert lora.sha == hub.get(lora.id).sha
    assert lora.author == "archivist-42"
    assert [s.rfilename for s in lora.siblings] == [f.path for f in hub.get(lora.id).files]
    assert all(s.size is None and s.lfs is None for s in lora.siblings)  # listing siblings carry no hashes
    assert by_id["quietfox-7/sdxl-loras"].gated == "manual"
    assert by_id["nightowl-3/LORA"].disabled is True
    assert lora.last_modified == T0 + timedelta(days=2)


@pytest.mark.parametrize("sort,attr", [("downloads", "downloads"), ("likes", "likes"),
                                       ("last_modified", "last_modified"), ("trending_score", "trending_score")])
def test_list_models_sorts_descending(running, api, sort, attr):
    expand = {"downloads": ["downloads"], "likes": ["likes"], "last_modified": ["lastModified"],
              "trending_score": ["trendingScore"]}[sort]
    values = [getattr(m, attr) for m in api.list_models(sort=sort, expand=expand)]
    assert len(values) == len(public_ids(running.hub))
    assert values == sorted(values, reverse=True)


def test_list_models_limit_stops_early(running, api):
    models = list(api.list_models(limit=10, sort="createdAt"))
    assert len(models) == 10
    assert running.stats.by_endpoint["list_models"] == 2  # pages of 7: the client stops after 10 items


def test_list_models_default_fields_and_full(running, api):
    m = next(iter(api.list_models(search="lora-archive-17")))
    assert m.id == "archivist-42/lora-archive-17"
    assert m.downloads == 50 and m.likes == 7 and m.library_name == "diffusers"
    assert m.siblings is None and m.sha is None
    full = next(iter(api.list_models(search="lora-archive-17", full=True)))
    assert full.sha == running.hub.get(full.id).sha
    assert [s.rfilename for s in full.siblings][:2] == [".gitattributes", "README.md"]


def test_list_models_search_author_filter_gated(running, api):
    assert {m.id for m in api.list_models(author="archivist-42")} == {
        "archivist-42/lora-archive-17", "archivist-42/test-model"}
    assert {m.id for m in api.list_models(search="LORA-ARCHIVE")} >= {"archivist-42/lora-archive-17"}
    assert all("lora-archive" in m.id.lower() for m in api.list_models(search="lora-archive"))
    both = {m.id for m in api.list_models(filter=["lora", "sdxl"], author="archivist-42")}
    assert both == {"archivist-42/lora-archive-17"}
    assert {m.id for m in api.list_models(filter="diffusers", author="archivist-42")} == {
        "archivist-42/lora-archive-17"}
    gated = {m.id for m in api.list_models(gated=True)}
    assert "quietfox-7/sdxl-loras" in gated
    assert all(running.hub.get(i).gated for i in gated)
    assert "quietfox-7/sdxl-loras" not in {m.id for m in api.list_models(gated=False)}
    tti = {m.id for m in api.list_models(pipeline_tag="text-to-image")}
    assert "archivist-42/lora-archive-17" in tti and "archivist-42/test-model" not in tti


def test_list_models_bad_parameters_answer_400(running):
    with httpx.Client(base_url=running.url) as http:
        r = http.get("/api/models", params={"expand": "siblings", "full": "true"})
        assert r.status_code == 400 and r.headers["X-Error-Code"] == "BadRequest"
        assert http.get("/api/models", params={"sort": "nonsense"}).status_code == 400
        assert http.get("/api/models", params={"expand": "nonsense"}).status_code == 400
        assert http.get("/api/models", params={"cursor": "!!garbage"}).status_code == 400
        assert http.get("/api/models", params={"limit": "-3"}).status_code == 400


def test_link_header_is_absolute_and_cursor_resumes(running):
    with httpx.Client() as http:
        r = http.get(f"{running.url}/api/models", params=[("sort", "createdAt"), ("expand", "sha")])
        nxt = r.links["next"]["url"]
        assert nxt.startswith(running.url + "/api/models?") and "cursor=" in nxt and "expand=sha" in nxt
        r2 = http.get(nxt)
        first, second = [m["id"] for m in r.json()], [m["id"] for m in r2.json()]
        assert len(first) == len(second) == 7 and not set(first) & set(second)
        assert set(r2.json()[0]) == {"_id", "id", "sha"}


def test_listing_sees_changes_between_pages(running, api):
    hub = running.hub
    hub.set_private("archivist-42/test-model")
    assert "archivist-42/test-model" not in {m.id for m in api.list_models()}
    hub.set_private("archivist-42/test-model", False)
    sha = hub.update_files("archivist-42/test-model", [RepoFile("new.safetensors", size=10, sha256="aa" * 32)])
    newest = next(iter(api.list_models(sort="lastModified", expand=["sha"])))
    assert newest.id == "archivist-42/test-model" and newest.sha == sha


# -- model_info, tree, paths-info, commits ---------------------------------------------------

def test_model_info_files_metadata_gives_lfs_sha256(running, api):
    repo = running.hub.get("archivist-42/lora-archive-17")
    info = api.model_info(repo.repo_id, files_metadata=True)
    assert info.sha == repo.sha and info.created_at == T0
    sib = {s.rfilename: s for s in info.siblings}
    lora = sib["loras/kavelo_v2.safetensors"]
    assert lora.lfs.sha256 == hashlib.sha256(LORA_BYTES).hexdigest()
    assert lora.size == lora.lfs.size == len(LORA_BYTES)
    pointer = (f"version https://git-lfs.github.com/spec/v1\noid sha256:{lora.lfs.sha256}\n"
               f"size {len(LORA_BYTES)}\n").encode()
    assert lora.lfs.pointer_size == len(pointer)
    assert lora.blob_id == hashlib.sha1(b"blob %d\0" % len(pointer) + pointer).hexdigest()
    big = sib["loras/old/zorika.safetensors"]
    assert big.lfs.sha256 == BIG_SHA and big.size == 150_000_000
    readme = sib["README.md"]
    assert readme.lfs is None and readme.size == len(b"# lora archive\n")
    assert readme.blob_id == hashlib.sha1(b"blob 15\0# lora archive\n").hexdigest()
    plain = api.model_info(repo.repo_id)
    assert all(s.size is None for s in plain.siblings)


def test_model_info_of_gated_repo_is_public_and_revision_works(running, api):
    info = api.model_info("quietfox-7/sdxl-loras", files_metadata=True)
    assert info.gated == "manual"
    assert info.siblings[0].lfs.sha256 == hashlib.sha256(b"gated bytes" * 100).hexdigest()
    hub = running.hub
    old = hub.get("archivist-42/test-model").sha
    new = hub.update_files("archivist-42/test-model", [RepoFile("v2.safetensors", size=5, sha256="bb" * 32)])
    assert api.model_info("archivist-42/test-model", revision=old).siblings[0].rfilename == "model.safetensors"
    latest = api.model_info("archivist-42/test-model", files_metadata=True)
    assert latest.sha == new and latest.siblings[0].lfs.sha256 == "bb" * 32
    assert api.model_info("archivist-42/test-model", revision=new[:10]).sha == new
    picked = api.model_info("archivist-42/test-model", expand=["sha", "gated"])
    assert picked.sha == new and picked.gated is False and picked.siblings is None


def test_list_repo_tree_recursive_paged_and_expanded(running, api):
    repo_id = "archivist-42/lora-archive-17"
    entries = list(api.list_repo_tree(repo_id, recursive=True))
    paths = [e.path for e in entries]
    assert sorted(paths) == sorted([".gitattributes", "README.md", "config.json", "loras", "loras/old",
                                    "loras/kavelo_v2.safetensors", "loras/old/zorika.safetensors"])
    assert running.stats.by_endpoint["tree"] == 3  # 7 entries, pages of 3
    files = {e.path: e for e in entries if hasattr(e, "size")}
    assert files["loras/old/zorika.safetensors"].lfs.sha256 == BIG_SHA
    assert files["config.json"].lfs is None
    top = [e.path for e in api.list_repo_tree(repo_id)]
    assert sorted(top) == [".gitattributes", "README.md", "config.json", "loras"]
    sub = list(api.list_repo_tree(repo_id, path_in_repo="loras/old", expand=True))
    assert [e.path for e in sub] == ["loras/old/zorika.safetensors"]
    assert sub[0].last_commit.oid == running.hub.get(repo_id).sha
    with pytest.raises(EntryNotFoundError):
        list(api.list_repo_tree(repo_id, path_in_repo="nope"))


def test_paths_info_and_commits(running, api):
    repo_id = "archivist-42/lora-archive-17"
    infos = api.get_paths_info(repo_id, ["loras/kavelo_v2.safetensors", "missing.bin", "loras"])
    assert [i.path for i in infos] == ["loras/kavelo_v2.safetensors", "loras"]
    assert infos[0].lfs.sha256 == hashlib.sha256(LORA_BYTES).hexdigest()
    commits = api.list_repo_commits(repo_id)
    assert [c.title for c in commits] == ["Upload folder using huggingface_hub", "initial commit"]
    assert commits[0].commit_id == running.hub.get(repo_id).sha
    assert commits[1].created_at == T0 and commits[0].authors == ["archivist-42"]
    new = running.hub.update_files(repo_id, [RepoFile("only.txt", content=b"x")], title="Delete old files")
    commits = api.list_repo_commits(repo_id)
    assert commits[0].commit_id == new and commits[0].title == "Delete old files" and len(commits) == 3


# -- resolve, CDN redirect, range reads --------------------------------------------------------

def test_head_on_resolve_gives_sha256_and_size_from_the_redirect(running):
    repo = running.hub.get("archivist-42/lora-archive-17")
    meta = get_hf_file_metadata(hf_hub_url(repo.repo_id, "loras/old/zorika.safetensors", endpoint=running.url))
    assert meta.etag == BIG_SHA and meta.size == 150_000_000 and meta.commit_hash == repo.sha
    assert meta.location.startswith(running.cdn_url + "/")
    plain = get_hf_file_metadata(hf_hub_url(repo.repo_id, "config.json", endpoint=running.url))
    assert plain.etag == hashlib.sha1(b"blob 11\0" + b'{"rank": 8}').hexdigest() and plain.size == 11
    assert running.stats.by_kind["resolvers"] == 2 and running.stats.by_kind.get("api", 0) == 0


def test_range_get_through_cdn_returns_exact_bytes(running):
    repo_id, path = "archivist-42/lora-archive-17", "loras/kavelo_v2.safetensors"
    with httpx.Client() as http:
        r = http.head(running.resolve_url(repo_id, path))
        assert r.status_code == 302
        assert r.headers["X-Linked-Etag"] == f'"{hashlib.sha256(LORA_BYTES).hexdigest()}"'
        assert r.headers["X-Linked-Size"] == str(len(LORA_BYTES))
        assert not any(k.lower().startswith("x-xet") for k in r.headers)
        cdn = r.headers["Location"]
        assert cdn.startswith(running.cdn_url)
        part = http.get(cdn, headers={"Range": "bytes=0-7"})
        assert part.status_code == 206 and part.content == LORA_BYTES[:8]
        assert part.headers["Content-Range"] == f"bytes 0-7/{len(LORA_BYTES)}"
        assert "RateLimit" not in part.headers  # the CDN spends no quota
        tail = http.get(cdn, headers={"Range": "bytes=-100"})
        assert tail.content == LORA_BYTES[-100:]
        mid = http.get(cdn, headers={"Range": "bytes=1000-"})
        assert mid.content == LORA_BYTES[1000:]
        bad = http.get(cdn, headers={"Range": f"bytes={len(LORA_BYTES)}-"})
        assert bad.status_code == 416 and bad.headers["Content-Range"] == f"bytes */{len(LORA_BYTES)}"
        assert http.get(cdn, headers={"Range": "bytes=0-1,5-6"}).status_code == 416
        whole = http.get(running.resolve_url(repo_id, path), follow_redirects=True)
        assert whole.status_code == 200 and whole.content == LORA_BYTES
        cfg = http.get(running.resolve_url(repo_id, "config.json"), headers={"Range": "bytes=1-6"})
        assert cfg.status_code == 206 and cfg.content == b'"rank"'
    assert running.stats.range_bytes == 8 + 100 + (len(LORA_BYTES) - 1000) + 6
    assert running.stats.by_kind["cdn"] >= 5


def test_client_range_read_and_download_follow_the_cdn_redirect(running, tmp_path):
    from huggingface_hub.utils import get_session

    url = hf_hub_url("archivist-42/lora-archive-17", "loras/kavelo_v2.safetensors", endpoint=running.url)
    r = get_session().get(url, headers={"range": "bytes=0-100000"})
    assert r.status_code == 206 and r.content == LORA_BYTES[:100001]
    local = hf_hub_download("archivist-42/lora-archive-17", "loras/kavelo_v2.safetensors",
                            endpoint=running.url, cache_dir=tmp_path)
    assert Path(local).read_bytes() == LORA_BYTES
    readme = hf_hub_download("archivist-42/lora-archive-17", "README.md", endpoint=running.url,
                             cache_dir=tmp_path)
    assert Path(readme).read_bytes() == b"# lora archive\n"


def test_declared_only_files_have_metadata_but_no_bytes_unless_filler(running):
    url = running.resolve_url("archivist-42/test-model", "model.safetensors")
    meta = get_hf_file_metadata(url)
    assert meta.etag == "cd" * 32 and meta.size == 2_000_000_000
    with httpx.Client(follow_redirects=True) as http:
        r = http.get(url, headers={"Range": "bytes=0-15"})
        assert r.status_code == 404 and r.headers["X-Error-Code"] == "EntryNotFound"
        running.hub.serve_filler = True
        r1 = http.get(url, headers={"Range": "bytes=0-15"})
        r2 = http.get(url, headers={"Range": "bytes=65530-65545"})
        assert r1.status_code == 206 and len(r1.content) == 16
        assert r1.content == http.get(url, headers={"Range": "bytes=0-15"}).content  # deterministic
        end = http.get(url, headers={"Range": "bytes=-4"})
        assert end.status_code == 206 and end.headers["Content-Range"] == "bytes 1999999996-1999999999/2000000000"
        assert len(r2.content) == 16


# -- errors mapped by the client -------------------------------------------------------------

def test_client_errors(running, api):
    with pytest.raises(RepositoryNotFoundError) as e:
        api.model_info("nobody-1/missing")
    assert e.value.response.status_code == 401
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("backup-5/secret-stash")  # private = invisible
    with pytest.raises(RepositoryNotFoundError) as e:
        HfApi(endpoint=running.url, token="hf_fake").model_info("backup-5/secret-stash")
    assert e.value.response.status_code == 404
    with pytest.raises(DisabledRepoError):
        api.model_info("nightowl-3/LORA", files_metadata=True)
    with pytest.raises(DisabledRepoError):
        get_hf_file_metadata(running.resolve_url("nightowl-3/LORA", "taken_down.safetensors"))
    with pytest.raises(GatedRepoError) as e:
        get_hf_file_metadata(running.resolve_url("quietfox-7/sdxl-loras", "gated_lora.safetensors"))
    assert e.value.response.status_code == 401
    with pytest.raises(GatedRepoError) as e:
        get_hf_file_metadata(running.resolve_url("quietfox-7/sdxl-loras", "gated_lora.safetensors"),
                             token="hf_fake")
    assert e.value.response.status_code == 403
    with pytest.raises(RevisionNotFoundError):
        api.model_info("archivist-42/test-model", revision="no-such-branch")
    with pytest.raises(RevisionNotFoundError):
        get_hf_file_metadata(running.resolve_url("archivist-42/test-model", "model.safetensors", "0" * 40))
    with pytest.raises(RemoteEntryNotFoundError):
        get_hf_file_metadata(running.resolve_url("archivist-42/test-model", "nope.safetensors"))
    running.hub.remove("archivist-42/test-model")
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("archivist-42/test-model")
    with pytest.raises(RepositoryNotFoundError):
        get_hf_file_metadata(running.resolve_url("archivist-42/test-model", "model.safetensors"))


def test_every_error_carries_error_headers(running):
    with httpx.Client() as http:
        for url in (f"{running.url}/api/models/nobody-1/missing",
                    f"{running.url}/api/models/nightowl-3/LORA",
                    f"{running.url}/quietfox-7/sdxl-loras/resolve/main/gated_lora.safetensors",
                    f"{running.url}/archivist-42/test-model/resolve/main/nope",
                    f"{running.url}/api/unknown"):
            for method in ("GET", "HEAD"):
                r = http.request(method, url)
                assert r.status_code >= 400
                assert r.headers.get("X-Error-Code") and r.headers.get("X-Error-Message"), (method, url)
        r = http.get(f"{running.url}/api/models/nightowl-3/LORA")
        assert r.status_code == 403 and r.headers["X-Error-Message"] == "Access to this resource is disabled."
        assert json.loads(r.content)["error"]


def test_dates_end_in_z(running):
    with httpx.Client() as http:
        data = http.get(f"{running.url}/api/models/archivist-42/lora-archive-17").json()
        commits = http.get(f"{running.url}/api/models/archivist-42/lora-archive-17/commits/main").json()
    assert data["createdAt"] == "2024-03-01T00:00:00.000Z" and data["lastModified"].endswith("Z")
    assert all(c["date"].endswith("Z") for c in commits)


# -- concurrency and keep-alive ----------------------------------------------------------------

def test_serves_32_concurrent_clients(running):
    ids = [r.repo_id for r in running.hub.repos() if not (r.private or r.disabled)]
    errors: list[BaseException] = []
    results: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(32)
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)

    with httpx.Client(timeout=10, limits=limits) as http:
        def worker(k: int) -> None:
            try:
                start.wait(5)
                for j in range(6):
                    rid = ids[(k + j) % len(ids)]
                    r = http.get(f"{running.url}/api/models/{rid}", params={"blobs": "true"})
                    with lock:
                        results.append(r.status_code)
            except BaseException as e:  # reported below
                with lock:
                    errors.append(e)

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(32)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
    assert not errors
    assert results == [200] * 192
    assert running.errors == [] and running.stats.internal_errors == 0
    assert running.stats.connections > 1


def test_keep_alive_reuses_one_connection(running):
    with httpx.Client() as http:
        for _ in range(20):
            r = http.get(f"{running.url}/api/models/archivist-42/lora-archive-17")
            assert r.status_code == 200 and r.http_version == "HTTP/1.1"
        r = http.get(running.resolve_url("archivist-42/lora-archive-17", "config.json"))
        assert r.content == b'{"rank": 8}'
    assert running.stats.connections == 1


def test_stop_frees_the_port_and_is_idempotent(hf_env):
    running = serve(Hub(generate_repos(3, seed=1)))
    port = running.port
    with httpx.Client() as http:
        assert http.get(running.url + "/").status_code == 200
    running.stop()
    running.stop()
    with pytest.raises(httpx.ConnectError), httpx.Client() as http:
        http.get(f"http://127.0.0.1:{port}/")


def test_client_reads_a_safetensors_header_with_range_requests(testhub):
    import numpy as np
    from safetensors.numpy import save

    blob = save({"lora_unet_down.lora_down.weight": np.ones((4, 8), dtype=np.float16),
                 "lora_unet_down.lora_up.weight": np.zeros((8, 4), dtype=np.float16)},
                metadata={"ss_output_name": "invented_style", "sshs_model_hash": "00" * 32})
    repo = Repo("archivist-9/test-model", files=[RepoFile("model.safetensors", content=blob)])
    running = testhub(Hub([repo]))
    meta = HfApi(endpoint=running.url).get_safetensors_metadata(repo.repo_id)
    header = meta.files_metadata["model.safetensors"]
    assert header.metadata["ss_output_name"] == "invented_style"
    assert set(header.tensors) == {"lora_unet_down.lora_down.weight", "lora_unet_down.lora_up.weight"}
    assert running.stats.by_endpoint["resolve_head"] == 1 and running.stats.by_endpoint["cdn_get"] >= 1
    assert running.stats.range_bytes == len(blob)  # the whole (small) file fits in the first range


def test_disabled_repos_can_look_missing_to_anonymous_callers(testhub):
    running = testhub(small_hub(), disabled_anonymous_as_missing=True)
    with pytest.raises(RepositoryNotFoundError) as e:
        HfApi(endpoint=running.url).model_info("nightowl-3/LORA")
    assert not isinstance(e.value, GatedRepoError) and e.value.response.status_code == 401
    with pytest.raises(DisabledRepoError):
        HfApi(endpoint=running.url, token="hf_fake").model_info("nightowl-3/LORA")
    listed = {m.id: m for m in HfApi(endpoint=running.url).list_models(expand=["disabled"])}
    assert listed["nightowl-3/LORA"].disabled is True
