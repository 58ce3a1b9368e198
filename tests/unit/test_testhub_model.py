"""The test hub's model, generator and rate limiter, without a client (its command line is tested in
e2e/test_testhub_cli.py)."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime, timedelta

import pytest

from mirrorwatch.testhub import (
    Faults,
    Hub,
    Quotas,
    RateLimiter,
    Repo,
    RepoFile,
    fake_sha256,
    filler_bytes,
    generate_repos,
    git_blob_sha1,
    iso_z,
)
from mirrorwatch.testhub.server import parse_range


def test_git_blob_sha1_matches_git():
    assert git_blob_sha1(b"") == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
    assert git_blob_sha1(b"hello world\n") == "3b18e512dba79e4c8300dd08aeb37f8e728b8dad"


def test_repo_file_from_content_and_declared():
    f = RepoFile("notes.txt", content=b"hello world\n")
    assert f.size == 12 and f.lfs is False and f.pointer_size == 0
    assert f.sha256 == hashlib.sha256(b"hello world\n").hexdigest()
    assert f.git_oid == "3b18e512dba79e4c8300dd08aeb37f8e728b8dad"
    w = RepoFile("w.safetensors", content=b"abc")
    assert w.lfs is True  # weight extension, however small
    pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{w.sha256}\nsize 3\n".encode()
    assert w.pointer_size == len(pointer) and w.git_oid == git_blob_sha1(pointer)
    big = RepoFile("data.tar", size=11 * 1024 * 1024, sha256="AB" * 32)
    assert big.lfs is True and big.sha256 == "ab" * 32
    small = RepoFile("x.json", size=100)
    assert small.lfs is False and len(small.sha256) == 64
    forced = RepoFile("x.bin", size=10, sha256="00" * 32, lfs=False)
    assert forced.lfs is False
    for bad in (dict(path="/abs", size=1), dict(path="a/../b", size=1), dict(path="dir/", size=1),
                dict(path="x.bin"), dict(path="x.bin", size=1, sha256="nothex")):
        with pytest.raises(ValueError):
            RepoFile(**bad)


def test_repo_defaults_history_and_validation():
    t0 = datetime(2024, 5, 1)
    r = Repo("someone-1/repo", files=[RepoFile("a.txt", content=b"a")], created_at=t0)
    assert r.created_at.tzinfo is UTC and r.last_modified == r.created_at
    assert len(r.sha) == 40 and len(r.history) == 1 and r.author == "someone-1"
    r2 = Repo("someone-1/repo2", files=[RepoFile(".gitattributes", content=b"x"), RepoFile("b.txt", content=b"b")],
              created_at=t0, last_modified=t0 + timedelta(days=1), sha="AB" * 20)
    assert [c.title for c in r2.history] == ["initial commit", "Upload folder using huggingface_hub"]
    assert r2.sha == "ab" * 20 and r2.head.id == r2.sha and [f.path for f in r2.history[0].files] == [".gitattributes"]
    assert r2.resolve_revision("main") is r2.head
    assert r2.resolve_revision("abababa") is r2.head
    assert r2.resolve_revision("nope") is None
    for bad in (dict(repo_id="no-namespace"), dict(repo_id="a/b/c"), dict(repo_id="a/b", gated="yes"),
                dict(repo_id="a/b", sha="xyz"),
                dict(repo_id="a/b", files=[RepoFile("x", content=b""), RepoFile("x", content=b"")])):
        with pytest.raises(ValueError):
            Repo(**bad)
    assert iso_z(datetime(2024, 1, 2, 3, 4, 5, 678900, tzinfo=UTC)) == "2024-01-02T03:04:05.678Z"


def test_hub_changes_keep_history_and_bump_version():
    hub = Hub([Repo("u-1/r", files=[RepoFile("a.safetensors", size=5, sha256="aa" * 32)])])
    v = hub.version
    first = hub.get("u-1/r").sha
    sha = hub.update_files("u-1/r", [RepoFile("b.safetensors", size=6, sha256="bb" * 32)])
    repo = hub.get("u-1/r")
    assert repo.sha == sha != first and repo.last_modified > repo.created_at and hub.version > v
    assert repo.resolve_revision(first).files[0].path == "a.safetensors"
    last = repo.last_commits(repo.head)
    assert last["b.safetensors"].id == sha
    hub.set_gated("u-1/r", "auto")
    hub.set_disabled("u-1/r")
    hub.set_private("u-1/r")
    hub.set_counts("u-1/r", downloads=9, likes=2)
    assert (repo.gated, repo.disabled, repo.private, repo.downloads, repo.likes) == ("auto", True, True, 9, 2)
    with pytest.raises(ValueError):
        hub.add(Repo("u-1/r"))
    hub.add(Repo("u-1/r"), replace=True)
    assert hub.get("u-1/r").files == []
    hub.remove("u-1/r")
    assert "u-1/r" not in hub and len(hub) == 0
    with pytest.raises(KeyError):
        hub.get("u-1/r")


def test_generate_repos_is_deterministic_and_realistic():
    a = generate_repos(500, seed=11)
    b = generate_repos(500, seed=11)
    assert [r.repo_id for r in a] == [r.repo_id for r in b]
    assert [[f.sha256 for f in r.files] for r in a] == [[f.sha256 for f in r.files] for r in b]
    assert [r.repo_id for r in generate_repos(50, seed=12)] != [r.repo_id for r in a[:50]]
    assert len({r.repo_id for r in a}) == 500
    created = [r.created_at for r in a]
    assert created == sorted(created)
    weights = [r for r in a if any(f.path.endswith((".safetensors", ".ckpt", ".bin", ".pt", ".gguf")) for f in r.files)]
    assert 0.45 < len(weights) / 500 < 0.75
    assert any(r.gated for r in a) and any(r.disabled for r in a) and any(r.private for r in a)
    wf = [f for r in weights for f in r.files if f.lfs]
    assert all(f.content is None and f.size > 0 for f in wf)
    r0 = weights[0]
    f0 = next(f for f in r0.files if f.lfs)
    assert f0.sha256 == fake_sha256(11, r0.repo_id, f0.path)
    assert all(f.content is not None for r in a for f in r.files if f.path in ("README.md", ".gitattributes"))
    assert all(r.sha and len(r.sha) == 40 for r in a)


def test_generate_repos_planted():
    existing = generate_repos(100, seed=4)[10].repo_id
    mirror = RepoFile("totally-new-name.safetensors", size=144_000_000, sha256="12" * 32)
    real = RepoFile("kept.safetensors", content=b"real bytes")
    repos = generate_repos(100, seed=4, planted={existing: [mirror], "archivist-42/lora-archive-17": [real]})
    assert len(repos) == 100
    by_id = {r.repo_id: r for r in repos}
    assert any(f.sha256 == "12" * 32 for f in by_id[existing].files)
    planted = by_id["archivist-42/lora-archive-17"]
    assert not (planted.private or planted.gated or planted.disabled)
    assert any(f.content == b"real bytes" for f in planted.files)
    assert 20 < repos.index(planted) < 80  # spread through the creation dates, not at the end


def test_generate_20000_repos_quickly():
    t = time.perf_counter()
    repos = generate_repos(20_000, seed=2)
    elapsed = time.perf_counter() - t
    assert len(repos) == 20_000 and len({r.repo_id for r in repos}) == 20_000
    assert elapsed < 15  # about 2-3 s on the 2-core CI machine; generous for a loaded one


def test_rate_limiter_fixed_windows_with_fake_clock():
    now = [100.0]
    lim = RateLimiter(Quotas(api=2, resolvers=1, window_s=10.0), clock=lambda: now[0])
    d1, d2, d3 = lim.hit("api"), lim.hit("api"), lim.hit("api")
    assert (d1.allowed, d1.remaining, d2.remaining, d3.allowed, d3.remaining) == (True, 1, 0, False, 0)
    assert d3.reset_s == 10 and dict(d3.headers())["Retry-After"] == "10"
    assert lim.hit("resolvers").allowed and not lim.hit("resolvers").allowed
    now[0] = 107.5
    assert lim.hit("api").reset_s == 3
    now[0] = 110.0
    d = lim.hit("api")
    assert d.allowed and d.remaining == 1 and d.reset_s == 10
    assert dict(d.headers())["RateLimit"] == '"api";r=1;t=10'
    assert dict(d.headers())["RateLimit-Policy"] == '"fixed window";"api";q=2;w=10'
    unlimited = RateLimiter(None)
    assert unlimited.hit("api").quota == 1_000_000_000
    with pytest.raises(ValueError):
        Quotas(window_s=0)


def test_parse_range_and_filler():
    assert parse_range("bytes=0-9", 100) == (0, 9)
    assert parse_range("bytes=90-200", 100) == (90, 99)
    assert parse_range("bytes=-10", 100) == (90, 99)
    assert parse_range("bytes=5-", 100) == (5, 99)
    for bad in ("bytes=100-", "bytes=5-2", "bytes=-0", "items=0-1", "bytes=0-1,3-4", "bytes=x-y", "bytes=5"):
        with pytest.raises(Exception) as e:
            parse_range(bad, 100)
        assert e.value.status == 416
    f = RepoFile("x.ckpt", size=10**9, sha256="cd" * 32)
    assert filler_bytes(f, 0, 99) == filler_bytes(f, 0, 99)
    assert filler_bytes(f, 65_530, 65_545) == filler_bytes(f, 0, 70_000)[65_530:65_546]
    assert filler_bytes(f, 5, 4) == b""


def test_faults_validation():
    with pytest.raises(ValueError):
        Faults(error_rate=2)
    with pytest.raises(ValueError):
        Faults(wrong_types_repos={"a/b": "not-a-kind"})
    with pytest.raises(ValueError):
        Faults(storm=(-1, 3))
