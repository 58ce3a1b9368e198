"""Fixed-window rate limits announced the way the Hub announces them.

Each request on the API origin spends one unit of a quota: `/api/*` spends "api", `/resolve/`
spends "resolvers"; the CDN spends nothing. Every response of a quota-spending route carries
`RateLimit: "api";r=<remaining>;t=<seconds to reset>` and
`RateLimit-Policy: "fixed window";"api";q=<quota>;w=<window>`; over quota the answer is 429 with
the same headers and `Retry-After`. huggingface_hub's retry loop reads exactly these (integer `t`).
Windows are fixed, aligned on the limiter's start, and shared by all clients (all are local).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

UNLIMITED = 1_000_000_000


@dataclass(frozen=True)
class Quotas:
    """Requests allowed per window for each quota kind (the anonymous Hub plan by default)."""

    api: int = 500
    resolvers: int = 3000
    window_s: float = 300.0

    def __post_init__(self) -> None:
        if self.api < 0 or self.resolvers < 0 or self.window_s <= 0:
            raise ValueError("quotas must be >= 0 and the window > 0 seconds")

    def quota(self, kind: str) -> int:
        return self.api if kind == "api" else self.resolvers


@dataclass(frozen=True)
class RateDecision:
    kind: str
    allowed: bool
    remaining: int
    reset_s: int
    quota: int
    window_s: int

    def headers(self) -> list[tuple[str, str]]:
        h = [
            ("RateLimit", f'"{self.kind}";r={self.remaining};t={self.reset_s}'),
            ("RateLimit-Policy", f'"fixed window";"{self.kind}";q={self.quota};w={self.window_s}'),
        ]
        if not self.allowed:
            h.append(("Retry-After", str(self.reset_s)))
        return h


class RateLimiter:
    """Counts requests per kind in fixed windows. `quotas=None` means unlimited (headers still sent)."""

    def __init__(self, quotas: Quotas | None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.unlimited = quotas is None
        self.quotas = quotas or Quotas(api=UNLIMITED, resolvers=UNLIMITED, window_s=300.0)
        self._start = clock()
        self._window_index = 0
        self._used: dict[str, int] = {"api": 0, "resolvers": 0}

    def reset(self, quotas: Quotas | None | bool = False) -> None:
        """Start a fresh window now; pass `quotas` (or None for unlimited) to change them too."""
        with self._lock:
            if quotas is not False:
                self.unlimited = quotas is None
                self.quotas = quotas or Quotas(api=UNLIMITED, resolvers=UNLIMITED, window_s=300.0)  # type: ignore[assignment]
            self._start = self._clock()
            self._window_index = 0
            self._used = {"api": 0, "resolvers": 0}

    def hit(self, kind: str) -> RateDecision:
        """Spend one request of `kind` ("api" or "resolvers") if the window allows it."""
        with self._lock:
            q = self.quotas
            now = self._clock()
            index = int((now - self._start) // q.window_s)
            if index != self._window_index:
                self._window_index = index
                self._used = {"api": 0, "resolvers": 0}
            window_end = self._start + (index + 1) * q.window_s
            reset_s = max(1, math.ceil(window_end - now))
            quota = q.quota(kind)
            used = self._used.get(kind, 0)
            allowed = used < quota
            if allowed:
                used += 1
                self._used[kind] = used
            return RateDecision(kind, allowed, max(0, quota - used), reset_s, quota, max(1, math.ceil(q.window_s)))

    def used(self, kind: str) -> int:
        with self._lock:
            return self._used.get(kind, 0)
