"""The paced HTTP client for one Civitai origin.

- Every request goes to the configured endpoint only; the API key (CIVITAI_API_KEY, read by the
  hub from the environment) is sent as `Authorization: Bearer` to that origin and nowhere else,
  never logged, never put in a URL. Redirects are not followed (an API answer is never a redirect).
- Polite pacing: at least `interval_s` between requests (MIRRORWATCH_CIVITAI_PACE_S, default 1s);
  a 429 doubles the interval for the rest of the sweep (Civitai publishes no quota to pace to).
- Backoff on 408/429/5xx, timeouts and network errors (`hubs/retry.py`), honouring `Retry-After`
  when a server sends one (Civitai's docs say most answers do not).
- Bounded answers: a body larger than `max_bytes` is refused (read in chunks, whatever the server
  announces), and the whole request has a deadline."""

from __future__ import annotations

import json
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import httpx

from mirrorwatch.hubs.quota import QuotaTracker
from mirrorwatch.hubs.retry import RetryPolicy, with_retries

RETRY_STATUS = {408, 429, 500, 502, 503, 504}
DEFAULT_MAX_BYTES = 8 * 1024 * 1024  # a page of 100 models with every file is well under 2 MB


class CivitaiHTTPError(Exception):
    def __init__(self, status: int, url_path: str, retry_after: float | None = None) -> None:
        super().__init__(f"HTTP {status} from {url_path}")
        self.status = status
        self.retry_after = retry_after


class AnswerTooLarge(Exception):
    pass


def _retry_after(value: str | None) -> float | None:
    if value and value.strip().isdigit():
        return min(float(value.strip()), 300.0)
    return None


class CivitaiRetryRules:
    def retryable(self, exc: BaseException) -> bool:
        if isinstance(exc, CivitaiHTTPError):
            return exc.status in RETRY_STATUS
        return isinstance(exc, (httpx.TimeoutException, httpx.TransportError))

    def retry_after(self, exc: BaseException) -> float | None:
        return exc.retry_after if isinstance(exc, CivitaiHTTPError) else None

    def describe(self, exc: BaseException) -> str:
        if isinstance(exc, CivitaiHTTPError):
            return f"HTTP {exc.status}"
        if isinstance(exc, httpx.TimeoutException):
            return "timed out"
        if isinstance(exc, httpx.TransportError):
            return f"network error: {type(exc).__name__}"
        return f"{type(exc).__name__}: {str(exc)[:120]}"


RULES = CivitaiRetryRules()


class CivitaiClient:
    """GETs JSON from one Civitai origin, paced, retried, bounded."""

    def __init__(self, endpoint: str, *, api_key: str | None, tracker: QuotaTracker, retry: RetryPolicy,
                 interval_s: float = 1.0, timeout_s: float = 30.0, deadline_s: float = 120.0,
                 max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) endpoint: {endpoint[:100]!r}")
        self.endpoint = endpoint.rstrip("/")
        self._origin = (parts.scheme, parts.hostname, parts.port)
        self._api_key = api_key
        self.tracker = tracker
        self.retry = retry
        self.interval_s = interval_s
        self.deadline_s = deadline_s
        self.max_bytes = max_bytes
        self.requests = 0
        self._lock = threading.Lock()
        self._next_at = 0.0
        self._http = httpx.Client(timeout=httpx.Timeout(timeout_s), follow_redirects=False,
                                  headers={"Accept": "application/json", "User-Agent": "mirrorwatch"})

    def close(self) -> None:
        self._http.close()

    def _pace(self) -> None:
        with self._lock:
            now = time.monotonic()
            wait = self._next_at - now
            self._next_at = max(now, self._next_at) + self.interval_s
        if wait > 0:
            time.sleep(wait)

    def _headers(self, url: str) -> dict[str, str]:
        u = urlsplit(url)
        if self._api_key and (u.scheme, u.hostname, u.port) == self._origin:
            return {"Authorization": f"Bearer {self._api_key}"}
        return {}

    def _get_once(self, path: str, params: list[tuple[str, str]]) -> Any:
        url = f"{self.endpoint}{path}"
        self._pace()
        self.tracker.acquire("api")
        status: int | None = None
        started = time.monotonic()
        try:
            with self._http.stream("GET", url, params=params, headers=self._headers(url)) as r:
                status = r.status_code
                self.requests += 1
                if status == 429:
                    with self._lock:
                        self.interval_s = min(max(self.interval_s * 2, 0.5), 10.0)
                if status != 200:
                    raise CivitaiHTTPError(status, path, _retry_after(r.headers.get("Retry-After")))
                declared = r.headers.get("Content-Length")
                if declared and declared.isdigit() and int(declared) > self.max_bytes:
                    raise AnswerTooLarge(f"{path}: answer of {int(declared):,} bytes refused (cap {self.max_bytes:,})")
                body = bytearray()
                for chunk in r.iter_bytes():
                    body += chunk
                    if len(body) > self.max_bytes:
                        raise AnswerTooLarge(f"{path}: answer over {self.max_bytes:,} bytes refused")
                    if time.monotonic() - started > self.deadline_s:
                        raise httpx.ReadTimeout(f"{path}: answer exceeded its {self.deadline_s:.0f}s limit")
        finally:
            self.tracker.release("api", None, status)
        try:
            return json.loads(bytes(body))
        except (ValueError, RecursionError):
            raise ValueError(f"{path}: the answer is not JSON") from None

    def get_json(self, path: str, params: list[tuple[str, str]] | None = None) -> Any:
        """The JSON answer of GET endpoint+path (retried); CivitaiHTTPError / RetriesExhausted /
        AnswerTooLarge / ValueError otherwise."""
        return with_retries(lambda: self._get_once(path, params or []), f"GET {path}", self.retry, RULES)
