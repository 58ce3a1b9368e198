"""A local Civitai REST API for tests, benchmarks and the demo (never touches the internet).

Speaks the documented subset of developer.civitai.com's Site API with its real field names:
`GET /api/v1/models` (limit ≤ 100, cursor pages with `metadata.nextCursor`/`nextPage`, sort Newest,
`nsfw`, `username`, `query`, `tag`) and `GET /api/v1/models/{id}`. Mature models are hidden unless
`nsfw=true`; hidden models are neither listed nor found (404); `mode` "TakenDown"/"Archived" are
listed as such. Every version carries `images[]` whose URLs point back here, so a test can check
that nothing ever fetches them (`stats.image_requests`). Faults: a 429 every `throttle_every`
requests (with `Retry-After` when `retry_after` is set), or for any request sooner than
`min_interval_s` after the last one served (an edge rate limit). Names are invented.

    with serve_civitai(CivitaiApi(generate_models(250, seed=1))) as running:
        CivitaiHub(running.url)
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

FIRST = ("Ardent", "Brisk", "Cobalt", "Dusky", "Ember", "Fable", "Gilded", "Hollow", "Ivory", "Jade")
SECOND = ("Meadow", "Lantern", "Harbor", "Summit", "Willow", "Canyon", "Orchid", "Quartz", "Tundra", "Zephyr")


def _hex(seed: str, n: int) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:n].upper()


@dataclass
class CFile:
    name: str
    sha256: str  # 64 hex
    size_kb: float = 147_000.0
    primary: bool = True
    id: int = 0
    hashes: dict[str, Any] | None = None  # the `hashes` object as served (default: all six forms)

    def as_json(self, version_id: int, base: str) -> dict[str, Any]:
        sha = self.sha256.upper()
        hashes = self.hashes if self.hashes is not None else {
            "AutoV1": _hex("v1" + sha, 8), "AutoV2": sha[:10], "SHA256": sha, "CRC32": _hex("crc" + sha, 8),
            "BLAKE3": _hex("b3" + sha, 64), "AutoV3": _hex("v3" + sha, 12)}
        return {"id": self.id, "sizeKB": self.size_kb, "name": self.name, "type": "Model",
                "pickleScanResult": "Success", "pickleScanMessage": "No Pickle imports", "virusScanResult": "Success",
                "scannedAt": "2024-05-01T00:00:00.000Z",
                "metadata": {"format": "SafeTensor", "size": "pruned", "fp": "fp16"},
                "hashes": hashes, "primary": self.primary,
                "downloadUrl": f"{base}/api/download/models/{version_id}"}


@dataclass
class CVersion:
    id: int
    name: str
    published_at: datetime
    files: list[CFile] = field(default_factory=list)


@dataclass
class CModel:
    id: int
    name: str
    creator: str
    versions: list[CVersion]
    nsfw: bool = False
    mode: str | None = None  # None, "Archived", "TakenDown"
    hidden: bool = False  # neither listed nor found
    type: str = "LORA"
    tags: list[str] = field(default_factory=list)

    @property
    def newest(self) -> datetime:
        return max(v.published_at for v in self.versions) if self.versions else datetime(2000, 1, 1)

    def as_json(self, base: str) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "description": "<p>An invented model.</p>", "type": self.type,
            "poi": False, "nsfw": self.nsfw, "nsfwLevel": 4 if self.nsfw else 1, "mode": self.mode,
            "allowNoCredit": True, "allowCommercialUse": ["Image"], "allowDerivatives": True,
            "stats": {"downloadCount": self.id % 997, "thumbsUpCount": self.id % 89},
            "creator": {"username": self.creator, "image": f"{base}/images/avatar/{self.creator}.jpeg"},
            "tags": self.tags,
            "modelVersions": [{
                "id": v.id, "index": i, "name": v.name, "baseModel": "SDXL 1.0", "baseModelType": "Standard",
                "createdAt": _iso(v.published_at - timedelta(minutes=5)), "publishedAt": _iso(v.published_at),
                "updatedAt": _iso(v.published_at), "status": "Published", "availability": "Public",
                "nsfwLevel": 4 if self.nsfw else 1, "trainedWords": [],
                "stats": {"downloadCount": v.id % 331},
                "files": [f.as_json(v.id, base) for f in v.files],
                "images": [{"id": v.id * 10, "url": f"{base}/images/{v.id}/preview.jpeg", "nsfwLevel": 1,
                            "width": 512, "height": 768, "hash": "U00000fQfQfQfQfQfQfQfQfQfQfQ", "type": "image"}],
                "downloadUrl": f"{base}/api/download/models/{v.id}",
            } for i, v in enumerate(sorted(self.versions, key=lambda v: v.published_at, reverse=True))],
        }


def _iso(d: datetime) -> str:
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z"


def generate_models(n: int, *, seed: int = 1, start_id: int = 400_000, now: datetime | None = None,
                    nsfw_every: int = 5) -> list[CModel]:
    """n invented models, one to three versions of one or two files each, published over ~n hours."""
    rng = random.Random(seed)
    now = now or datetime(2026, 11, 1, 12, 0, 0)
    models = []
    vid = start_id * 2
    fid = start_id * 3
    for i in range(n):
        mid = start_id + i
        versions = []
        for j in range(rng.randint(1, 3)):
            vid += 1
            files = []
            for k in range(rng.choice((1, 1, 2))):
                fid += 1
                files.append(CFile(f"{FIRST[i % 10].lower()}_{SECOND[(i // 10) % 10].lower()}_v{j + 1}"
                                   f"{'' if k == 0 else '_fp32'}.safetensors",
                                   sha256=_hex(f"civitai-file-{seed}-{fid}", 64), size_kb=round(rng.uniform(9e3, 2e5), 2),
                                   primary=k == 0, id=fid))
            versions.append(CVersion(vid, f"v{j + 1}.0", now - timedelta(hours=n - i, minutes=10 * (2 - j)), files))
        models.append(CModel(mid, f"{FIRST[i % 10]} {SECOND[(i // 10) % 10]} Style {i}",
                             f"{FIRST[(i * 7) % 10].lower()}_maker{i % 13}", versions,
                             nsfw=nsfw_every > 0 and i % nsfw_every == 0, tags=["style"]))
    return models


@dataclass
class CivitaiStats:
    requests: int = 0
    listing_requests: int = 0
    model_requests: int = 0
    throttled: int = 0
    image_requests: int = 0
    nsfw_missing: int = 0  # listing requests without nsfw=true
    auth_headers: list[str] = field(default_factory=list)
    cursors: list[str] = field(default_factory=list)


class CivitaiApi:
    """What the local API serves: models (mutable between requests) and its faults."""

    def __init__(self, models: list[CModel], *, throttle_every: int = 0, retry_after: str | None = None,
                 loop_cursor: bool = False, page_bytes: int = 0, min_interval_s: float = 0.0) -> None:
        self.models = {m.id: m for m in models}
        self.throttle_every = throttle_every
        self.retry_after = retry_after
        self.loop_cursor = loop_cursor  # every nextCursor points back at the first page's
        self.page_bytes = page_bytes  # pad listing answers to at least this many bytes (a 10 MB page)
        self.min_interval_s = min_interval_s  # an edge rate limit: sooner than this after the last answer -> 429
        self.last_at = 0.0
        self.stats = CivitaiStats()
        self.lock = threading.Lock()

    def newest_first(self, nsfw: bool) -> list[CModel]:
        shown = [m for m in self.models.values() if not m.hidden and (nsfw or not m.nsfw)]
        return sorted(shown, key=lambda m: (m.newest, m.id), reverse=True)


@dataclass
class RunningCivitai:
    url: str
    api: CivitaiApi

    @property
    def stats(self) -> CivitaiStats:
        return self.api.stats


def _answer(handler: BaseHTTPRequestHandler, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
    raw = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json; charset=utf-8")
    handler.send_header("Content-Length", str(len(raw)))
    for k, v in (headers or {}).items():
        handler.send_header(k, v)
    handler.end_headers()
    handler.wfile.write(raw)


def _handler(api: CivitaiApi, base: list[str]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            q = {k: v[-1] for k, v in parse_qs(url.query).items()}
            with api.lock:
                api.stats.requests += 1
                n = api.stats.requests
                if self.headers.get("Authorization"):
                    api.stats.auth_headers.append(self.headers["Authorization"])
                if url.path.startswith("/images/"):
                    api.stats.image_requests += 1
                throttled = api.throttle_every > 0 and n % api.throttle_every == 0
                now = time.monotonic()
                if api.min_interval_s and now - api.last_at < api.min_interval_s:
                    throttled = True
                else:
                    api.last_at = now
                if throttled:
                    api.stats.throttled += 1
            if throttled:
                _answer(self, 429, {"error": "Too Many Requests"},
                        {"Retry-After": api.retry_after} if api.retry_after else None)
                return
            if url.path == "/api/v1/models":
                self._list(q)
            elif url.path.startswith("/api/v1/models/"):
                self._one(url.path.rsplit("/", 1)[-1])
            else:
                _answer(self, 404, {"error": "Not found"})

        def _one(self, raw_id: str) -> None:
            with api.lock:
                api.stats.model_requests += 1
                m = api.models.get(int(raw_id)) if raw_id.isdigit() and len(raw_id) < 17 else None
                body = m.as_json(base[0]) if m is not None and not m.hidden else None
            if body is None:
                _answer(self, 404, {"error": f"No model with id {raw_id[:20]}"})
            else:
                _answer(self, 200, body)

        def _list(self, q: dict[str, str]) -> None:
            try:
                limit = int(q.get("limit", "100"))
            except ValueError:
                limit = -1
            if not 1 <= limit <= 100:
                _answer(self, 400, {"error": "limit must be between 1 and 100"})
                return
            nsfw = q.get("nsfw") == "true"
            with api.lock:
                api.stats.listing_requests += 1
                if not nsfw:
                    api.stats.nsfw_missing += 1
                models = api.newest_first(nsfw)
                if q.get("username"):
                    models = [m for m in models if m.creator.lower() == q["username"].lower()]
                if q.get("query"):
                    models = [m for m in models if q["query"].lower() in m.name.lower()]
                if q.get("tag"):
                    models = [m for m in models if q["tag"] in m.tags]
                start = 0
                cursor = q.get("cursor")
                if cursor:
                    api.stats.cursors.append(cursor)
                    try:
                        start = int(cursor.split("|")[0])
                    except ValueError:
                        _answer(self, 400, {"error": "invalid cursor"})
                        return
                page = models[start : start + limit]
                items = [m.as_json(base[0]) for m in page]
            meta: dict[str, Any] = {}
            if start + limit < len(models):
                nxt = f"{start + limit if not api.loop_cursor else limit}|{page[-1].id}|{page[-1].versions[0].id}"
                params = {k: v for k, v in q.items() if k != "cursor"}
                meta = {"nextCursor": nxt, "nextPage": f"{base[0]}/api/v1/models?{urlencode({**params, 'cursor': nxt})}"}
            body: dict[str, Any] = {"items": items, "metadata": meta}
            if api.page_bytes:
                body["padding"] = "x" * api.page_bytes
            _answer(self, 200, body)

    return Handler


@contextmanager
def serve_civitai(api: CivitaiApi, host: str = "127.0.0.1", port: int = 0) -> Iterator[RunningCivitai]:
    base: list[str] = [""]
    server = ThreadingHTTPServer((host, port), _handler(api, base))
    server.daemon_threads = True
    base[0] = f"http://{host}:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield RunningCivitai(base[0], api)
    finally:
        server.shutdown()
        server.server_close()
