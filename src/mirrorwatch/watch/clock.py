"""The watcher's clock: the real one, or a fake one that tests move by hand.

`now()` is naive UTC (as every time in the database); `sleep(seconds, stop)` returns early when the
`stop` event is set (a signal asked the watcher to stop)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

from mirrorwatch.store.models import utcnow


class Clock(Protocol):
    def now(self) -> datetime: ...

    def sleep(self, seconds: float, stop: threading.Event) -> None: ...


class SystemClock:
    def now(self) -> datetime:
        return utcnow()

    def sleep(self, seconds: float, stop: threading.Event) -> None:
        if seconds > 0:
            stop.wait(seconds)


class FakeClock:
    """A clock that moves only when the watcher sleeps: `sleep` jumps straight to the end of the
    sleep, running on the way whatever the test scheduled with `at(when, action)` (a repo added to
    the hub between two cycles, a stop request), each at its own time."""

    def __init__(self, start: datetime) -> None:
        self._now = start
        self._actions: list[tuple[datetime, int, Callable[[], None]]] = []
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        return self._now

    def at(self, when: datetime, action: Callable[[], None]) -> None:
        self._actions.append((when, len(self._actions), action))
        self._actions.sort(key=lambda a: (a[0], a[1]))

    def advance(self, delta: timedelta) -> None:
        self._now += delta

    def sleep(self, seconds: float, stop: threading.Event) -> None:
        self.sleeps.append(seconds)
        end = self._now + timedelta(seconds=max(0.0, seconds))
        while self._actions and self._actions[0][0] <= end and not stop.is_set():
            when, _, action = self._actions.pop(0)
            self._now = max(self._now, when)
            action()
        if not stop.is_set():
            self._now = end
