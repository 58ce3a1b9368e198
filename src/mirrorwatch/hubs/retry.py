"""Retries with exponential backoff for hub calls (hub-neutral).

Which failures are transient, how long a hub asks to wait, and how to describe an error are the
hub's business: it passes a `RetryRules` (see e.g. `hubs/huggingface/retry.py`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

T = TypeVar("T")


@dataclass
class RetryPolicy:
    attempts: int = 5
    base_s: float = 1.0
    cap_s: float = 8.0
    sleep: Callable[[float], None] = time.sleep


class RetryRules(Protocol):
    def retryable(self, exc: BaseException) -> bool: ...

    def retry_after(self, exc: BaseException) -> float | None: ...

    def describe(self, exc: BaseException) -> str: ...


class RetriesExhausted(Exception):
    def __init__(self, what: str, last: BaseException, attempts: int, description: str) -> None:
        super().__init__(f"{what}: gave up after {attempts} tries ({description})")
        self.last = last


def with_retries(fn: Callable[[], T], what: str, policy: RetryPolicy, rules: RetryRules) -> T:
    """Call fn, retrying what `rules` call transient; raise RetriesExhausted or the final error."""
    last: BaseException | None = None
    for attempt in range(policy.attempts):
        try:
            return fn()
        except Exception as exc:
            if not rules.retryable(exc):
                raise
            last = exc
            if attempt == policy.attempts - 1:
                break
            delay = min(policy.cap_s, policy.base_s * (2**attempt))
            hinted = rules.retry_after(exc)
            if hinted is not None:
                delay = min(max(delay, hinted), 300.0)
            policy.sleep(delay)
    assert last is not None
    raise RetriesExhausted(what, last, policy.attempts, rules.describe(last))
