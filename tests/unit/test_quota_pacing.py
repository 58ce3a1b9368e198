"""Quota pacing: the Hugging Face transport reads `RateLimit` headers (with huggingface_hub's public
parser) into the hub-neutral tracker, which only lets a count go down within one window."""

from __future__ import annotations

import httpx2

from mirrorwatch.hubs.huggingface.transport import pool_for_url, ratelimit_update
from mirrorwatch.hubs.quota import QuotaTracker, RateLimitUpdate


def test_ratelimit_headers_become_an_update():
    headers = httpx2.Headers({"RateLimit": '"api";r=42;t=17', "RateLimit-Policy": '"fixed window";"api";q=500;w=300'})
    assert ratelimit_update(headers) == RateLimitUpdate("api", 42, 17.0, 500, 300)
    assert ratelimit_update(httpx2.Headers({})) is None


def test_pools_by_path():
    assert pool_for_url("/api/models") == "api"
    assert pool_for_url("/some-user/m/resolve/main/a.safetensors") == "resolvers"
    assert pool_for_url("/some-user/m") == "pages"


def test_tracker_keeps_the_lowest_count_within_a_window_and_ignores_other_pools():
    now = [100.0]
    tracker = QuotaTracker(clock=lambda: now[0])
    tracker.acquire("api")
    tracker.release("api", RateLimitUpdate("api", 40, 60.0, 500, 300))
    tracker.acquire("api")
    tracker.release("api", RateLimitUpdate("api", 45, 60.0))  # an older answer arriving late
    tracker.acquire("api")
    tracker.release("api", RateLimitUpdate("resolvers", 1, 60.0))  # not this pool's figure
    snap = tracker.snapshot()["api"]
    assert (snap["remaining"], snap["quota"], snap["sent"]) == (40, 500, 3)
    now[0] += 61.0  # a new window: the next answer sets the count again
    tracker.acquire("api")
    tracker.release("api", RateLimitUpdate("api", 499, 300.0), status=200)
    assert tracker.snapshot()["api"]["remaining"] == 499


def test_tracker_counts_throttled_answers():
    tracker = QuotaTracker()
    tracker.acquire("resolvers")
    tracker.release("resolvers", None, status=429)
    assert tracker.snapshot()["resolvers"]["throttled"] == 1
