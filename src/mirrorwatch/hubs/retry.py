"""Retries for the Hub calls huggingface_hub does not retry itself (model_info, HEADs, range reads).

Retried: 408/429/5xx answers, timeouts and network errors, with exponential backoff (honouring
`Retry-After` and the `RateLimit` reset time on 429). Not retried: answers that will not change
(missing, gated, disabled repos) and malformed answers."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import httpx2
from huggingface_hub.errors import (
    DisabledRepoError,
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from mirrorwatch.hubs.quota import parse_ratelimit

T = TypeVar("T")
FINAL = (RepositoryNotFoundError, GatedRepoError, DisabledRepoError, RevisionNotFoundError, EntryNotFoundError)
RETRY_STATUS = {408, 429, 500, 502, 503, 504}


@dataclass
class RetryPolicy:
    attempts: int = 5
    base_s: float = 1.0
    cap_s: float = 8.0
    sleep: Callable[[float], None] = time.sleep


class RetriesExhausted(Exception):
    def __init__(self, what: str, last: BaseException, attempts: int) -> None:
        super().__init__(f"{what}: gave up after {attempts} tries ({describe(last)})")
        self.last = last


def describe(exc: BaseException) -> str:
    if isinstance(exc, HfHubHTTPError) and exc.response is not None:
        return f"HTTP {exc.response.status_code}"
    if isinstance(exc, httpx2.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx2.TransportError):
        return f"network error: {type(exc).__name__}"
    return f"{type(exc).__name__}: {str(exc)[:120]}"


def _retry_after(exc: BaseException) -> float | None:
    if not isinstance(exc, HfHubHTTPError) or exc.response is None:
        return None
    headers = exc.response.headers
    ra = headers.get("Retry-After")
    if ra and ra.strip().isdigit():
        return float(ra)
    rl = parse_ratelimit(headers.get("RateLimit", ""))
    if rl and rl[1] == 0:
        return rl[2]
    return None


def retryable(exc: BaseException) -> bool:
    if isinstance(exc, FINAL):
        return False
    if isinstance(exc, HfHubHTTPError):
        return exc.response is not None and exc.response.status_code in RETRY_STATUS
    return isinstance(exc, (httpx2.TimeoutException, httpx2.TransportError))


def with_retries(fn: Callable[[], T], what: str, policy: RetryPolicy) -> T:
    """Call fn, retrying transient failures; raise RetriesExhausted or the final error."""
    last: BaseException | None = None
    for attempt in range(policy.attempts):
        try:
            return fn()
        except Exception as exc:
            if not retryable(exc):
                raise
            last = exc
            if attempt == policy.attempts - 1:
                break
            delay = min(policy.cap_s, policy.base_s * (2**attempt))
            hinted = _retry_after(exc)
            if hinted is not None:
                delay = min(max(delay, hinted), 300.0)
            policy.sleep(delay)
    assert last is not None
    raise RetriesExhausted(what, last, policy.attempts)
