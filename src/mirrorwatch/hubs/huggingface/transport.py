"""The HTTP client huggingface_hub uses, with quota pacing, timeouts and a whole-request deadline.

`install_client(endpoint, tracker)` sets huggingface_hub's client factory so that every request it
makes (listings, model_info, HEADs, range reads) goes through `PacedTransport`: it waits for room
in the announced quota before sending, records `RateLimit` headers from the answer, and bounds the
time a response body may take (a hub trickling bytes — a slow-loris — hits the deadline)."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from urllib.parse import urlsplit

import httpx2
from huggingface_hub import constants, set_client_factory
from huggingface_hub.errors import OfflineModeIsEnabled
from huggingface_hub.utils import parse_ratelimit_headers

from mirrorwatch.hubs.quota import QuotaTracker, RateLimitUpdate

DEFAULT_TIMEOUT = httpx2.Timeout(connect=10.0, read=30.0, write=30.0, pool=60.0)
# Size caps of the hub's API answers (a hostile or broken hub once sent a 107 MB listing page): a
# listing page may be up to 32 MB (1,000 repos with their file lists), any other API answer
# (model_info, paths-info, tree) up to 16 MB. File bytes (resolvers, the CDN) are bounded by their
# callers (range reads, the content tier's max_bytes), not here.
MAX_LISTING_BYTES = 32 * 1024 * 1024
MAX_API_BYTES = 16 * 1024 * 1024


class AnswerTooLarge(Exception):
    """A hub answer larger than its cap (not retried: the hub would send it again)."""


def answer_cap(path: str) -> int | None:
    """The byte cap of an answer of the hub's own origin at this path (None: not capped here)."""
    if path.rstrip("/") in ("/api/models", "/api/datasets", "/api/spaces"):
        return MAX_LISTING_BYTES
    if path.startswith("/api/"):
        return MAX_API_BYTES
    return None
DEFAULT_DEADLINE_S = 120.0
# Requests run on these threads so a hub that trickles its headers cannot hold a sweep past the
# deadline (a thread stuck on such a hub ends when the hub closes the connection).
_REQUEST_THREADS = ThreadPoolExecutor(max_workers=96, thread_name_prefix="hub-http")


def pool_for_url(path: str) -> str:
    """Which quota a request spends on the Hugging Face Hub."""
    if path.startswith("/api/"):
        return "api"
    if "/resolve/" in path:
        return "resolvers"
    return "pages"


def ratelimit_update(headers: httpx2.Headers) -> RateLimitUpdate | None:
    """The `RateLimit`/`RateLimit-Policy` headers of an answer, for the quota tracker."""
    info = parse_ratelimit_headers(headers)
    if info is None:
        return None
    return RateLimitUpdate(info.resource_type, info.remaining, float(info.reset_in_seconds), info.limit,
                           info.window_seconds)


def _request_hook(request: httpx2.Request) -> None:
    """What huggingface_hub's own client does before a request: honour offline mode, tag a request id."""
    if constants.is_offline_mode():
        raise OfflineModeIsEnabled(f"Cannot reach {request.url}: offline mode is enabled (HF_HUB_OFFLINE).")
    request.headers.setdefault("X-Amzn-Trace-Id", request.headers.get("X-Request-Id") or str(uuid.uuid4()))


class _DeadlineStream(httpx2.SyncByteStream):
    def __init__(self, inner: httpx2.SyncByteStream, deadline: float, url: str, cap: int | None = None) -> None:
        self._inner = inner
        self._deadline = deadline
        self._url = url
        self._cap = cap

    def __iter__(self):
        seen = 0
        for chunk in self._inner:
            if time.monotonic() > self._deadline:
                raise httpx2.ReadTimeout(f"response from {self._url} exceeded its time limit")
            seen += len(chunk)
            if self._cap is not None and seen > self._cap:
                raise AnswerTooLarge(f"the hub's answer is larger than the {self._cap // (1024 * 1024)} MB cap "
                                     f"for {urlsplit(self._url).path}: refused")
            yield chunk

    def close(self) -> None:
        self._inner.close()


class PacedTransport(httpx2.HTTPTransport):
    """Quota-aware transport for one hub origin; other origins (the CDN) pass through unpaced."""

    def __init__(self, origin: str, tracker: QuotaTracker, *, deadline_s: float = DEFAULT_DEADLINE_S, **kw) -> None:
        super().__init__(**kw)
        parts = urlsplit(origin)
        self._origin = (parts.scheme, parts.hostname, parts.port)
        self.tracker = tracker
        self.deadline_s = deadline_s

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        url = request.url
        same_origin = (url.scheme, url.host, url.port) == self._origin
        pool = pool_for_url(url.path) if same_origin else None
        if pool:
            self.tracker.acquire(pool)
        response = None
        started = time.monotonic()
        try:
            future = _REQUEST_THREADS.submit(super().handle_request, request)
            try:
                response = future.result(timeout=self.deadline_s)
            except FutureTimeout:
                raise httpx2.ReadTimeout(f"no answer from {url} within {self.deadline_s:.0f}s") from None
        finally:
            if pool:
                self.tracker.release(pool, ratelimit_update(response.headers) if response is not None else None,
                                     response.status_code if response is not None else None)
        cap = answer_cap(url.path) if same_origin else None
        length = response.headers.get("Content-Length", "")
        if cap is not None and length.isdigit() and int(length) > cap:
            response.close()
            raise AnswerTooLarge(f"the hub announced a {int(length):,}-byte answer for {url.path}, larger than "
                                 f"its {cap // (1024 * 1024)} MB cap: refused")
        response.stream = _DeadlineStream(response.stream, started + self.deadline_s, str(url), cap)
        return response


def install_client(endpoint: str, tracker: QuotaTracker, *, timeout: httpx2.Timeout = DEFAULT_TIMEOUT,
                   deadline_s: float = DEFAULT_DEADLINE_S, max_connections: int = 32) -> None:
    """Make huggingface_hub use a paced client for `endpoint` from now on (process-wide)."""

    def factory() -> httpx2.Client:
        transport = PacedTransport(
            endpoint, tracker, deadline_s=deadline_s,
            limits=httpx2.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )
        return httpx2.Client(transport=transport, event_hooks={"request": [_request_hook]},
                             follow_redirects=True, timeout=timeout)

    set_client_factory(factory)
