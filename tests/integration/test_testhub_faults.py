"""Rate limits and injected faults of the test hub, each observed through the real client or raw HTTP."""

from __future__ import annotations

import itertools
import time

import httpx
import pytest
from huggingface_hub import HfApi, get_hf_file_metadata
from huggingface_hub.errors import HfHubHTTPError
from huggingface_hub.utils import parse_ratelimit_headers

from mirrorwatch.testhub import Faults, Hub, Quotas, Repo, RepoFile, generate_repos

pytest_plugins = ["pytest_testhub"]

GOOD = "good-user/lora-archive-1"
NAMES = ["size-user/lora-a", "hex-user/lora-b", "list-user/lora-c", "huge-user/lora-d", "gone-user/lora-e",
         "slow-user/lora-f", "bad-user/lora-g", "junk-user/lora-h"]
LORA = b"\x00" * 64 + b"lora-bytes" * 50


def fault_hub() -> Hub:
    repos = [Repo(rid, files=[RepoFile("README.md", content=b"# hi\n"),
                              RepoFile("lora.safetensors", content=LORA),
                              RepoFile("big.ckpt", size=3_000_000_000, sha256="ab" * 32)])
             for rid in [GOOD, *NAMES]]
    return Hub(repos)


@pytest.fixture
def running(testhub):
    return testhub(fault_hub(), page_size=4)


def statuses(url: str, n: int) -> list[int]:
    with httpx.Client() as http:
        return [http.get(url).status_code for _ in range(n)]


# -- rate limits ---------------------------------------------------------------------------

def test_ratelimit_headers_on_every_api_and_resolver_response(running):
    with httpx.Client() as http:
        for path in ("/api/models", f"/api/models/{GOOD}", "/api/models/nobody-1/missing",
                     f"/api/models/{GOOD}/tree/main", f"/api/models/{GOOD}/commits/main"):
            r = http.get(running.url + path)
            info = parse_ratelimit_headers(r.headers)
            assert info is not None and info.resource_type == "api", path
            assert info.limit == 1_000_000_000 and info.window_seconds == 300 and info.reset_in_seconds >= 1
            assert r.headers["RateLimit-Policy"] == '"fixed window";"api";q=1000000000;w=300'
        head = http.head(running.resolve_url(GOOD, "lora.safetensors"))
        info = parse_ratelimit_headers(head.headers)
        assert head.status_code == 302 and info.resource_type == "resolvers"
        cdn = http.get(head.headers["Location"])
        assert cdn.content == LORA and "RateLimit" not in cdn.headers


def test_quota_spent_gives_429_then_recovers_after_the_window(running):
    running.set_quotas(Quotas(api=3, resolvers=2, window_s=1.0))
    api = HfApi(endpoint=running.url)
    for _ in range(3):
        api.model_info(GOOD)
    with pytest.raises(HfHubHTTPError) as e:
        api.model_info(GOOD)  # model_info is not retried by the client
    r = e.value.response
    assert r.status_code == 429 and r.headers["X-Error-Code"] == "RateLimited"
    info = parse_ratelimit_headers(r.headers)
    assert info.remaining == 0 and info.limit == 3 and info.window_seconds == 1
    assert int(r.headers["Retry-After"]) >= 1
    # resolvers have their own quota
    url = running.resolve_url(GOOD, "big.ckpt")
    assert get_hf_file_metadata(url).etag == "ab" * 32
    assert get_hf_file_metadata(url).size == 3_000_000_000
    with pytest.raises(HfHubHTTPError) as e:
        get_hf_file_metadata(url)
    assert e.value.response.status_code == 429
    assert running.stats.rate_limited == 2
    deadline = time.monotonic() + 3
    while True:
        try:
            assert api.model_info(GOOD).id == GOOD
            break
        except HfHubHTTPError:
            assert time.monotonic() < deadline, "quota did not recover after its window"
            time.sleep(0.1)
    assert get_hf_file_metadata(url).etag == "ab" * 32


def test_paginated_listing_waits_out_a_429_using_the_headers(running):
    running.set_quotas(Quotas(api=2, resolvers=10, window_s=1.0))
    t = time.monotonic()
    ids = [m.id for m in HfApi(endpoint=running.url).list_models()]
    assert sorted(ids) == sorted([GOOD, *NAMES])  # 9 repos, pages of 4 -> 3 pages over 2 windows
    assert running.stats.rate_limited >= 1
    assert time.monotonic() - t >= 1.0


# -- faults --------------------------------------------------------------------------------

def test_latency(running):
    running.faults = Faults(latency_s=0.15, latency_jitter_s=0.05)
    api = HfApi(endpoint=running.url)
    t = time.monotonic()
    api.model_info(GOOD)
    assert time.monotonic() - t >= 0.15


def test_error_rate_is_seeded_and_mapped_to_5xx(running):
    running.faults = Faults(error_rate=1.0)
    with pytest.raises(HfHubHTTPError) as e:
        HfApi(endpoint=running.url).model_info(GOOD)
    assert e.value.response.status_code in (500, 502, 503)
    assert e.value.response.headers["X-Error-Code"] == "ServerError"
    url = f"{running.url}/api/models/{GOOD}"
    running.faults = Faults(error_rate=0.5, seed=7)
    first = statuses(url, 30)
    running.faults = Faults(error_rate=0.5, seed=7)
    assert statuses(url, 30) == first
    assert set(first) - {200} <= {500, 502, 503} and 200 in first and len(set(first)) > 1
    assert running.stats.faults["error_rate"] > 0


def test_error_repos_always_fail_others_do_not(running):
    bad = "bad-user/lora-g"
    running.faults = Faults(error_repos={bad})
    api = HfApi(endpoint=running.url)
    with pytest.raises(HfHubHTTPError) as e:
        api.model_info(bad)
    assert e.value.response.status_code == 500
    with pytest.raises(HfHubHTTPError):
        get_hf_file_metadata(running.resolve_url(bad, "big.ckpt"))
    assert api.model_info(GOOD, files_metadata=True).sha
    assert bad in {m.id for m in api.list_models()}  # listed normally


def test_storm(running):
    running.faults = Faults(storm=(2, 3))
    assert statuses(f"{running.url}/api/models/{GOOD}", 7) == [200, 200, 503, 503, 503, 200, 200]
    assert running.stats.faults["storm"] == 3


def test_malformed_json(running):
    junk = "junk-user/lora-h"
    running.faults = Faults(malformed_json_repos={junk})
    api = HfApi(endpoint=running.url)
    with pytest.raises(ValueError):
        api.model_info(junk, files_metadata=True)
    with pytest.raises(ValueError):
        list(api.list_repo_tree(junk))
    with httpx.Client() as http:
        r = http.get(f"{running.url}/api/models/{junk}")
        assert r.status_code == 200
        with pytest.raises(ValueError):
            r.json()
    assert api.model_info(GOOD).id == GOOD
    assert junk in {m.id for m in api.list_models()}


def test_wrong_types(running):
    running.faults = Faults(wrong_types_repos={
        "size-user/lora-a": "size_as_string", "hex-user/lora-b": "sha256_not_hex",
        "list-user/lora-c": "siblings_not_list", "huge-user/lora-d": "absurd_size"})
    api = HfApi(endpoint=running.url)
    a = {s.rfilename: s for s in api.model_info("size-user/lora-a", files_metadata=True).siblings}
    assert a["big.ckpt"].size == "3000000000" and a["big.ckpt"].lfs.size == "3000000000"
    b = {s.rfilename: s for s in api.model_info("hex-user/lora-b", files_metadata=True).siblings}
    assert b["big.ckpt"].lfs.sha256 == "z" * 64
    with pytest.raises(TypeError):
        api.model_info("list-user/lora-c", files_metadata=True)
    d = {s.rfilename: s for s in api.model_info("huge-user/lora-d", files_metadata=True).siblings}
    assert d["big.ckpt"].size == 10**30 and d["big.ckpt"].lfs.size == 10**30
    assert get_hf_file_metadata(running.resolve_url("size-user/lora-a", "big.ckpt")).size is None
    assert get_hf_file_metadata(running.resolve_url("hex-user/lora-b", "big.ckpt")).etag == "z" * 64
    assert get_hf_file_metadata(running.resolve_url("huge-user/lora-d", "big.ckpt")).size == 10**30
    with httpx.Client() as http:
        tree = http.get(f"{running.url}/api/models/list-user/lora-c/tree/main").json()
        assert isinstance(tree, dict)
    good = api.model_info(GOOD, files_metadata=True)
    assert {s.rfilename: s.size for s in good.siblings}["big.ckpt"] == 3_000_000_000
    assert running.faults.wrong_type_kind("list-user/lora-c") == "siblings_not_list"
    picked = Faults(wrong_types_repos={"x/y"}).wrong_type_kind("x/y")
    assert picked == Faults(wrong_types_repos={"x/y"}).wrong_type_kind("x/y") and picked is not None


def test_missing_fields(running):
    gone = "gone-user/lora-e"
    running.faults = Faults(missing_fields_repos={gone})
    api = HfApi(endpoint=running.url)
    info = api.model_info(gone, files_metadata=True)
    assert info.sha is None and info.created_at is None and info.last_modified is None
    assert all(s.lfs is None and s.size is None and s.blob_id is None for s in info.siblings)
    meta = get_hf_file_metadata(running.resolve_url(gone, "big.ckpt"))
    assert meta.etag is None and meta.size is None and meta.commit_hash is None
    assert all(getattr(e, "lfs", None) is None for e in api.list_repo_tree(gone))


def test_link_loop_repeats_the_listing_forever(running):
    running.faults = Faults(link_loop=True)
    ids = [m.id for m in itertools.islice(HfApi(endpoint=running.url).list_models(), 30)]
    assert len(ids) == 30 and len(set(ids)) == 9
    assert running.stats.faults["link_loop"] >= 2


def test_faults_in_listing_break_the_clients_iteration(running):
    running.faults = Faults(wrong_types_repos={"list-user/lora-c": "siblings_not_list"}, faults_in_listing=True)
    with pytest.raises(TypeError):
        list(HfApi(endpoint=running.url).list_models(expand=["siblings"]))


def test_slowloris_trickles_the_body(running):
    slow = "slow-user/lora-f"
    running.faults = Faults(slowloris_repos={slow}, slowloris_interval_s=0.5)
    with httpx.Client(timeout=httpx.Timeout(2.0, read=0.2)) as http:
        with http.stream("GET", f"{running.url}/api/models/{slow}") as r:
            assert r.status_code == 200  # headers arrive at once, then one byte per interval
            got = bytearray()
            with pytest.raises(httpx.ReadTimeout):
                for chunk in r.iter_raw():
                    got += chunk
        assert len(got) < int(r.headers["Content-Length"])
        with pytest.raises(httpx.ReadTimeout):
            http.head(running.resolve_url(slow, "big.ckpt"))  # a HEAD trickles its headers
        assert http.get(f"{running.url}/api/models/{GOOD}").status_code == 200
    t = time.monotonic()
    running.stop()
    assert time.monotonic() - t < 2.0


def test_faults_can_be_removed_at_run_time(running):
    running.faults = Faults(error_rate=1.0)
    assert statuses(f"{running.url}/api/models/{GOOD}", 2)[0] >= 500
    running.faults = None
    assert statuses(f"{running.url}/api/models/{GOOD}", 2) == [200, 200]


def test_generated_hub_with_faults_still_lists(testhub):
    repos = generate_repos(60, seed=5)
    running = testhub(Hub(repos), page_size=25, faults=Faults(malformed_json_repos={repos[0].repo_id}))
    listed = [m.id for m in HfApi(endpoint=running.url).list_models()]
    assert sorted(listed) == sorted(r.repo_id for r in repos if not r.private)
