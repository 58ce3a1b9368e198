"""Pacing requests to a hub's announced quotas (hub-neutral).

Each quota pool (e.g. "api", "resolvers") keeps the latest remaining count and reset time the hub
announced. Before a request, `acquire` waits if the pool has no more room than the requests
already in flight, so a sweep slows down before the hub would answer 429. A hub's transport parses
its own headers into `RateLimitUpdate`s and feeds them to `release`."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class RateLimitUpdate:
    """What one answer announced about a pool: remaining requests, seconds to reset, and the
    policy (quota per window) when the answer carried it."""

    pool: str
    remaining: int
    reset_in_s: float
    quota: int | None = None
    window_s: int | None = None


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

    def release(self, pool: str, update: RateLimitUpdate | None = None, status: int | None = None) -> None:
        """Record a response (or a failure with update=None) for a request acquired from `pool`."""
        with self._lock:
            p = self._pool(pool)
            p.inflight = max(0, p.inflight - 1)
            if update is not None and update.pool == pool:
                self._update(p, update)
            if status == 429:
                p.throttled += 1
            self._lock.notify_all()

    def _update(self, p: PoolState, rl: RateLimitUpdate) -> None:
        if rl.quota is not None and rl.window_s is not None:
            p.quota, p.window = rl.quota, rl.window_s
        reset_at = self._clock() + rl.reset_in_s
        same_window = p.remaining is not None and abs(reset_at - p.reset_at) < min(2.0, (p.window or 300) / 2)
        if same_window:
            # answers from concurrent requests arrive out of order: within one window the count
            # only goes down, so an older, larger figure must not raise it again
            p.remaining = min(p.remaining, rl.remaining)
            p.reset_at = max(p.reset_at, reset_at)
        else:
            p.remaining = rl.remaining
            p.reset_at = reset_at

    def snapshot(self) -> dict[str, dict]:
        with self._lock:
            now = self._clock()
            return {
                name: {"remaining": p.remaining, "quota": p.quota, "reset_in_s": round(max(0.0, p.reset_at - now), 1),
                       "sent": p.sent, "throttled": p.throttled, "waited_s": round(p.waited_s, 1)}
                for name, p in self.pools.items()
            }
