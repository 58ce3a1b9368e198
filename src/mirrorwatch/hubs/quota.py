"""Pacing requests to a hub's announced quotas (the `RateLimit`/`RateLimit-Policy` headers).

Each quota pool ("api", "resolvers") keeps the latest remaining count and reset time the hub
announced. Before a request, `acquire` waits if the pool has no more room than the requests
already in flight, so a sweep slows down before the hub would answer 429."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass

_RATELIMIT = re.compile(r'"?(?P<pool>[\w-]+)"?\s*;\s*r=(?P<r>\d+)\s*;\s*t=(?P<t>\d+(?:\.\d+)?)')
_POLICY = re.compile(r'"?(?P<pool>[\w-]+)"?\s*;\s*q=(?P<q>\d+)\s*;\s*w=(?P<w>\d+)')


def parse_ratelimit(value: str) -> tuple[str, int, float] | None:
    m = _RATELIMIT.search(value or "")
    return (m.group("pool"), int(m.group("r")), float(m.group("t"))) if m else None


def parse_policy(value: str) -> tuple[str, int, int] | None:
    m = _POLICY.search(value or "")
    return (m.group("pool"), int(m.group("q")), int(m.group("w"))) if m else None


@dataclass
class PoolState:
    remaining: int | None = None  # None until the hub tells us
    reset_at: float = 0.0
    quota: int | None = None
    window: int | None = None
    inflight: int = 0
    sent: int = 0
    waited_s: float = 0.0
    throttled: int = 0  # 429s seen


class QuotaTracker:
    """Thread-safe view of the hub's quotas, fed from response headers."""

    def __init__(self, *, reserve: int = 2, clock=time.monotonic, sleep=time.sleep) -> None:
        self.pools: dict[str, PoolState] = {}
        self.reserve = reserve
        self._lock = threading.Condition()
        self._clock = clock
        self._sleep = sleep

    def _pool(self, name: str) -> PoolState:
        return self.pools.setdefault(name, PoolState())

    def acquire(self, pool: str, *, max_wait: float = 600.0) -> None:
        """Block until a request from `pool` fits in the announced quota."""
        deadline = self._clock() + max_wait
        with self._lock:
            p = self._pool(pool)
            while True:
                now = self._clock()
                if p.remaining is not None and now >= p.reset_at:
                    # The announced window should have rolled over. Rather than assume when the hub's
                    # window starts, send one probe and let its answer tell the new remaining count.
                    if p.inflight == 0:
                        p.inflight += 1
                        p.sent += 1
                        return
                    p.waited_s += 0.02
                    self._lock.wait(0.02)
                    continue
                if p.remaining is None or p.remaining - p.inflight > self.reserve:
                    p.inflight += 1
                    p.sent += 1
                    return
                wait = min(max(p.reset_at - now, 0.05), max(deadline - now, 0.0))
                if wait <= 0:
                    p.inflight += 1
                    p.sent += 1
                    return
                p.waited_s += wait
                self._lock.wait(wait)

    def release(self, pool: str, headers=None, status: int | None = None) -> None:
        """Record a response (or a failure with headers=None) for a request acquired from `pool`."""
        with self._lock:
            p = self._pool(pool)
            p.inflight = max(0, p.inflight - 1)
            if headers is not None:
                self._update(p, pool, headers)
            if status == 429:
                p.throttled += 1
            self._lock.notify_all()

    def _update(self, p: PoolState, pool: str, headers) -> None:
        pol = parse_policy(headers.get("RateLimit-Policy", ""))
        if pol and pol[0] == pool:
            p.quota, p.window = pol[1], pol[2]
        rl = parse_ratelimit(headers.get("RateLimit", ""))
        if rl and rl[0] == pool:
            reset_at = self._clock() + rl[2]
            same_window = p.remaining is not None and abs(reset_at - p.reset_at) < min(2.0, (p.window or 300) / 2)
            if same_window:
                # answers from concurrent requests arrive out of order: within one window the count
                # only goes down, so an older, larger figure must not raise it again
                p.remaining = min(p.remaining, rl[1])
                p.reset_at = max(p.reset_at, reset_at)
            else:
                p.remaining = rl[1]
                p.reset_at = reset_at

    def snapshot(self) -> dict[str, dict]:
        with self._lock:
            now = self._clock()
            return {
                name: {"remaining": p.remaining, "quota": p.quota, "reset_in_s": round(max(0.0, p.reset_at - now), 1),
                       "sent": p.sent, "throttled": p.throttled, "waited_s": round(p.waited_s, 1)}
                for name, p in self.pools.items()
            }

    def headroom(self, pool: str) -> float:
        """Fraction of the pool still available in this window (1.0 when unknown)."""
        with self._lock:
            p = self._pool(pool)
            if p.remaining is None or not p.quota:
                return 1.0
            if self._clock() >= p.reset_at:
                return 1.0
            return max(0.0, (p.remaining - p.inflight) / p.quota)


def pool_for_url(path: str) -> str:
    """Which quota a request spends on the Hugging Face Hub."""
    if path.startswith("/api/"):
        return "api"
    if "/resolve/" in path:
        return "resolvers"
    return "pages"
