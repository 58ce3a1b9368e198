"""Which Hugging Face failures are worth retrying (for the calls huggingface_hub does not retry
itself: model_info, HEADs, range reads).

Retried: 408/429/5xx answers, timeouts and network errors, with exponential backoff (honouring
`Retry-After` and the `RateLimit` reset time on 429). Not retried: answers that will not change
(missing, gated, disabled repos) and malformed answers."""

from __future__ import annotations

from collections.abc import Callable
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
from huggingface_hub.utils import parse_ratelimit_headers

from mirrorwatch.hubs.retry import RetryPolicy, with_retries

T = TypeVar("T")
FINAL = (RepositoryNotFoundError, GatedRepoError, DisabledRepoError, RevisionNotFoundError, EntryNotFoundError)
RETRY_STATUS = {408, 429, 500, 502, 503, 504}


def describe(exc: BaseException) -> str:
    if isinstance(exc, HfHubHTTPError) and exc.response is not None:
        return f"HTTP {exc.response.status_code}"
    if isinstance(exc, httpx2.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx2.TransportError):
        return f"network error: {type(exc).__name__}"
    return f"{type(exc).__name__}: {str(exc)[:120]}"


class HfRetryRules:
    def retryable(self, exc: BaseException) -> bool:
        if isinstance(exc, FINAL):
            return False
        if isinstance(exc, HfHubHTTPError):
            return exc.response is not None and exc.response.status_code in RETRY_STATUS
        return isinstance(exc, (httpx2.TimeoutException, httpx2.TransportError))

    def retry_after(self, exc: BaseException) -> float | None:
        if not isinstance(exc, HfHubHTTPError) or exc.response is None:
            return None
        headers = exc.response.headers
        ra = headers.get("Retry-After")
        if ra and ra.strip().isdigit():
            return float(ra)
        rl = parse_ratelimit_headers(headers)
        if rl is not None and rl.remaining == 0:
            return float(rl.reset_in_seconds)
        return None

    def describe(self, exc: BaseException) -> str:
        return describe(exc)


RULES = HfRetryRules()


def hf_retries(fn: Callable[[], T], what: str, policy: RetryPolicy) -> T:
    return with_retries(fn, what, policy, RULES)
