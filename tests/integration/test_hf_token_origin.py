"""HF_TOKEN never leaves the configured endpoint's origin, and file names from hub answers that could
steer a URL ('..', absolute, backslash, NUL, control characters) are refused and recorded
(issue 13, defect 13)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from mirrorwatch.hubs.base import ListingProblem, RepoListing, SkipRepo
from mirrorwatch.hubs.huggingface.hub import HuggingFaceHub
from mirrorwatch.hubs.huggingface.listing import parse_page, path_problem
from mirrorwatch.hubs.retry import RetryPolicy
from mirrorwatch.store.models import HubFile, ScanError
from mirrorwatch.sweep.runner import Sweep, SweepOptions
from mirrorwatch.testhub import Faults, Hub, Repo, RepoFile
from pytest_testhub import hf_env, testhub  # noqa: F401

TOKEN = "hf_secret_token_for_this_test"


class _Recorder(BaseHTTPRequestHandler):
    """Another origin (another port of 127.0.0.1): records what it receives, serves a few bytes."""

    seen: list[tuple[str, str, str | None]] = []
    redirect_to: str | None = None  # when set: every GET/HEAD is a 302 there (the "hub" side)

    def _answer(self, body: bytes) -> None:
        type(self).seen.append((self.command, self.path, self.headers.get("Authorization")))
        if self.redirect_to:
            self.send_response(302)
            self.send_header("Location", self.redirect_to)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        rng = self.headers.get("Range")
        self.send_response(206 if rng else 200)
        self.send_header("Content-Type", "application/json" if self.path.startswith("/api/") else "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        self._answer(b"[]" if self.path.startswith("/api/") else b"0123456789abcdef")

    def do_HEAD(self):
        self._answer(b"")

    def log_message(self, *args):
        pass


def _serve(handler: type[BaseHTTPRequestHandler]):
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


@pytest.fixture
def other_origin():
    cls = type("OtherOrigin", (_Recorder,), {"seen": [], "redirect_to": None})
    srv = _serve(cls)
    yield srv, cls
    srv.shutdown()


def test_a_listing_link_to_another_origin_is_never_contacted(db, testhub, other_origin):  # noqa: F811
    srv, recorder = other_origin
    other = f"http://127.0.0.1:{srv.server_port}/api/models?cursor=next"
    repos = [Repo(f"someone/model-{i}", files=[RepoFile("m.safetensors", size=2_000_000)]) for i in range(3)]
    running = testhub(Hub(repos), faults=Faults(next_link=other))
    hub = HuggingFaceHub(running.url, token=TOKEN, retry=RetryPolicy(base_s=0.01, cap_s=0.05))
    out = Sweep(db, hub, SweepOptions(scope={"sort": "createdAt"}, concurrency=2, headers=False)).run()
    assert out.status == "failed"
    assert recorder.seen == []  # never contacted: neither the token nor anything else went there
    with db.session() as s:
        reasons = [e.reason for e in s.scalars(select(ScanError))]
    assert any("next-page link leaves" in r for r in reasons), reasons
    assert out.counts["fetched"] == 3  # what the first page listed was swept


def test_range_reads_redirected_to_another_origin_carry_no_token(hf_env, other_origin):  # noqa: F811
    cdn, cdn_seen = other_origin
    hub_cls = type("HubSide", (_Recorder,), {"seen": [],
                                              "redirect_to": f"http://127.0.0.1:{cdn.server_port}/cdn/blob"})
    hub_srv = _serve(hub_cls)
    try:
        hub = HuggingFaceHub(f"http://127.0.0.1:{hub_srv.server_port}", token=TOKEN,
                             retry=RetryPolicy(base_s=0.01, cap_s=0.05))
        data = hub.read_range("someone/model-1", "m.safetensors", "main", 0, 7)
        assert data == b"01234567"
        assert [a for _, _, a in hub_cls.seen] == [f"Bearer {TOKEN}"]  # the hub's own origin gets it
        assert cdn_seen.seen and all(a is None for _, _, a in cdn_seen.seen)  # the CDN never does
    finally:
        hub_srv.shutdown()


@pytest.mark.parametrize("name", ["../../api/models/x.safetensors", "/etc/passwd.safetensors", "a\\b.safetensors",
                                  "a\x00b.safetensors", "a\x1b[2Jb.safetensors", "a/./b.safetensors", "a//b.bin",
                                  "sub/../../x.safetensors", "x" * 2000 + ".bin"])
def test_unsafe_file_names_are_refused(name):
    assert path_problem(name) is not None
    page = parse_page([{"id": "someone/model", "siblings": [{"rfilename": name}, {"rfilename": "ok.safetensors"}]}])
    listing = page[0]
    assert isinstance(listing, RepoListing) and listing.paths == ["ok.safetensors"]
    assert isinstance(page[1], ListingProblem) and page[1].repo_id == "someone/model"
    with pytest.raises(SkipRepo):
        HuggingFaceHub("http://127.0.0.1:9", token="")._file_url("someone/model", name, None)


@pytest.mark.parametrize("rid", ["../x", "a/..", "a/.", "..a/b", "a/b..c"])
def test_repo_ids_with_dot_segments_are_refused(rid):
    [problem] = parse_page([{"id": rid}])
    assert isinstance(problem, ListingProblem)


def test_a_sweep_records_unsafe_names_and_never_requests_them(db, testhub):  # noqa: F811
    evil = [{"rfilename": "../../../api/models/other/evil.safetensors"}, {"rfilename": "ok.safetensors"},
            {"rfilename": "bad\\name.safetensors"}]
    repos = [Repo("someone/model-1", files=[RepoFile("ok.safetensors", size=2_000_000)])]
    running = testhub(Hub(repos), faults=Faults(faults_in_listing=True,
                                                hostile_fields={"someone/model-1": {"siblings": evil}}))
    hub = HuggingFaceHub(running.url, token="", retry=RetryPolicy(base_s=0.01, cap_s=0.05))
    out = Sweep(db, hub, SweepOptions(scope={"sort": "createdAt"}, concurrency=2, headers=True)).run()
    assert out.status == "finished"
    with db.session() as s:
        paths = list(s.scalars(select(HubFile.path)))
        reasons = [e.reason for e in s.scalars(select(ScanError))]
    assert paths == ["ok.safetensors"]
    assert sum("unsafe file name" in r for r in reasons) >= 2, reasons
