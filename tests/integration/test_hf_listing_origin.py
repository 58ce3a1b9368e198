"""The Hugging Face hub follows listing pages on its own origin only (a next-page link elsewhere
stops the listing instead of sending the token there)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mirrorwatch.hubs.base import ListingProblem, RepoListing, SkipRepo
from mirrorwatch.hubs.huggingface.hub import HuggingFaceHub


class _Handler(BaseHTTPRequestHandler):
    seen: list[tuple[str, str | None]] = []
    next_link: str = ""

    def do_GET(self):
        type(self).seen.append((self.path, self.headers.get("Authorization")))
        body = json.dumps([{"id": "some-user/model-1", "siblings": [{"rfilename": "a.safetensors"}]},
                           {"id": "not a repo id"}]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if self.next_link:
            self.send_header("Link", f'<{self.next_link}>; rel="next"')
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    _Handler.seen = []
    yield srv
    srv.shutdown()


def test_next_page_link_off_origin_stops_the_listing(server, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(_Handler, "next_link", "http://elsewhere.invalid/api/models?cursor=2")
    hub = HuggingFaceHub(f"http://127.0.0.1:{server.server_port}", token="hf_secret_for_test")
    pages = hub.list_pages({"sort": "createdAt"})
    first = next(pages)
    assert [type(x) for x in first] == [RepoListing, ListingProblem]
    assert first[0].repo_id == "some-user/model-1" and first[0].paths == ["a.safetensors"]
    with pytest.raises(SkipRepo, match="next-page link leaves"):
        next(pages)
    assert len(_Handler.seen) == 1 and _Handler.seen[0][1] == "Bearer hf_secret_for_test"


def test_next_page_link_on_origin_is_followed(server, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(_Handler, "next_link", "/api/models?cursor=2")
    hub = HuggingFaceHub(f"http://127.0.0.1:{server.server_port}", token="")
    pages = hub.list_pages({"sort": "createdAt"})
    next(pages)
    next(pages)
    assert [p for p, _ in _Handler.seen][1] == "/api/models?cursor=2"
